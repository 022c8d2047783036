package models

import (
	"fmt"
	"sort"
	"strings"

	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// Scope is what a model builder names its module outputs through: the one
// mechanism, written once, that gives every architecture taps, gradients with
// respect to modules, module overrides and activation backward rules.
//
// A builder (Network.Build) computes the network on channels-last nodes and
// passes every module's output through the scope under torchvision's module
// path ("features.3", "layer4.1", "layer4.1.conv2", "features.denseblock4"),
// containers included (a block's output after its children's). The scope
// belongs to the caller (the engine): through OnOutput it decides per request
// whether to return an output (a tap), to differentiate with respect to it,
// to replace it (channel scaling for Ablation-CAM; an injected activation to
// start the network from a module) — and through Rule which backward rule every
// activation module (ReLU, ReLU6) applies. A module may be applied several
// times (torchvision's ResNet blocks apply one `relu` module up to three
// times): each application passes through the scope, and the rule applies to
// every one.
//
// Layouts inside the scope: spatial outputs are channels-last [N,H,W,C]; flat
// outputs are [N,F].
type Scope struct {
	// Lowering of convolutions (resolved: never LoweringAuto inside Build).
	Lowering Lowering
	// Rule is the backward rule of every activation module.
	Rule ReLURule
	// ExactMaxPoolGrad gives max-pools PyTorch's gradient tie rule (the first
	// maximum of each window) where a gradient may flow.
	ExactMaxPoolGrad bool
	// AllDifferentiable says a gradient may flow anywhere (e.g. an input
	// gradient is taken). Otherwise nothing is differentiated before the first
	// output named in GradFrom, and layers before it get forward-only forms.
	AllDifferentiable bool
	// GradFrom names the modules whose outputs are differentiated with respect
	// to: once one of them has passed, later layers are differentiable.
	GradFrom map[string]bool
	// OnOutput, if set, sees every module output (after the module's own
	// computation) and returns the node to continue with.
	OnOutput func(m ModuleCall, x *Node) *Node

	params map[string]*Node
	calls  map[string]int
	diff   bool
	record []ModuleCall
}

// ModuleCall is one application of a module during a build.
type ModuleCall struct {
	// Path is torchvision's module path, e.g. "layer4.1.relu".
	Path string
	// Kind is the PyTorch module class ("Conv2d", "Bottleneck", …).
	Kind Kind
	// Call counts the applications of this module so far, from 0.
	Call int
	// Index is the position of this output among all outputs of the build.
	Index int
	// Dims is the output shape as the scope sees it (channels-last for spatial outputs).
	Dims []int
}

// NewScope returns a scope over named parameter nodes.
func NewScope(params map[string]*Node, lowering Lowering) *Scope {
	return &Scope{params: params, Lowering: lowering, calls: map[string]int{}}
}

// BindParams binds parameter nodes to a scope by the network's parameter names.
func BindParams(names []string, nodes []*Node) map[string]*Node {
	m := make(map[string]*Node, len(names))
	for i, n := range names {
		m[n] = nodes[i]
	}
	return m
}

// Param returns the named parameter node. A missing name is a builder bug: it
// panics with the name and the names available (graph construction panics in
// GoMLX; callers recover — see Trace and the engine).
func (s *Scope) Param(name string) *Node {
	p, ok := s.params[name]
	if !ok {
		names := make([]string, 0, len(s.params))
		for n := range s.params {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) > 12 {
			names = append(names[:12], "…")
		}
		panic(fmt.Errorf("model builder asked for parameter %q, which the model does not hold (have %s)", name, strings.Join(names, ", ")))
	}
	return p
}

// HasParam reports whether the model holds the named parameter.
func (s *Scope) HasParam(name string) bool { _, ok := s.params[name]; return ok }

// Differentiable reports whether a gradient may flow through what is built
// now: layers built before any gradient target may use forward-only forms
// (same values, cheaper or no tie rules).
func (s *Scope) Differentiable() bool { return s.AllDifferentiable || s.diff }

// Out names a module's output: every builder passes each module's output
// through it (leaves and containers). It returns the node to continue with.
func (s *Scope) Out(path string, kind Kind, x *Node) *Node {
	call := ModuleCall{Path: path, Kind: kind, Call: s.calls[path], Index: len(s.record), Dims: append([]int(nil), x.Shape().Dimensions...)}
	s.calls[path]++
	s.record = append(s.record, call)
	if s.OnOutput != nil {
		x = s.OnOutput(call, x)
	}
	if s.GradFrom[path] {
		s.diff = true
	}
	return x
}

// Calls returns the module outputs recorded so far, in build order.
func (s *Scope) Calls() []ModuleCall { return s.record }

// ReLU applies the activation module at path (max(x,0)) with the scope's
// backward rule, or a forward-only form where no gradient flows.
func (s *Scope) ReLU(path string, x *Node) *Node {
	if s.Differentiable() {
		x = ReLUWithRule(x, s.Rule)
	} else {
		x = MaxScalar(x, float32(0))
	}
	return s.Out(path, ReLU, x)
}

// ReLU6 applies the activation module at path (min(max(x,0),6)) with the
// scope's backward rule: guided and deconvnet rules pass a gradient only
// where it is positive (and, guided, where 0 < x < 6), as for ReLU.
func (s *Scope) ReLU6(path string, x *Node) *Node {
	if s.Differentiable() {
		x = ReLU6WithRule(x, s.Rule)
	} else {
		x = MinScalar(MaxScalar(x, float32(0)), float32(6))
	}
	return s.Out(path, ReLU6, x)
}

// Conv applies the convolution module at path: parameters "<path>.weight"
// (graph layout HWIO [kh,kw,I/groups,O]) and, when the model holds it,
// "<path>.bias" [O].
func (s *Scope) Conv(path string, x *Node, spec ConvSpec) *Node {
	var bias *Node
	if s.HasParam(path + ".bias") {
		bias = s.Param(path + ".bias")
	}
	return s.Out(path, Conv2d, Conv2D(x, s.Param(path+".weight"), bias, spec, s.Lowering))
}

// BatchNorm applies an eval-mode BatchNorm2d module at path from its folded
// parameters "<path>.scale" = γ/√(σ²+ε) and "<path>.shift" = β − μ·scale.
// Folding into an affine map (not into the preceding convolution) keeps the
// convolution's output — a module users tap — exactly as PyTorch computes it.
func (s *Scope) BatchNorm(path string, x *Node) *Node {
	y := Add(Mul(x, PerChannel(s.Param(path+".scale"), x)), PerChannel(s.Param(path+".shift"), x))
	return s.Out(path, BatchNorm2d, y)
}

// MaxPool applies a MaxPool2d module at path, with PyTorch's gradient tie
// rule where a gradient flows and the scope asks for it.
func (s *Scope) MaxPool(path string, x *Node, spec PoolSpec) *Node {
	return s.Out(path, MaxPool2d, MaxPool2D(x, spec, s.ExactMaxPoolGrad && s.Differentiable()))
}

// Linear applies the Linear module at path to x [N,in]: parameter
// "<path>.weight" in PyTorch's layout [out,in] (or its row chunks
// "<path>.weight[a:b]", output rows a..b-1, see LinearChunked) and
// "<path>.bias" [out].
func (s *Scope) Linear(path string, x *Node) *Node {
	var y *Node
	if w, ok := s.params[path+".weight"]; ok {
		y = LinearDot(x, w)
	} else {
		chunks := s.linearChunks(path)
		if len(chunks) == 0 {
			s.Param(path + ".weight") // Panics with the names available.
		}
		if s.Lowering == LoweringNative {
			y = LinearDot(x, Concatenate(chunks, 0))
		} else {
			y = LinearChunked(x, chunks)
		}
	}
	if b, ok := s.params[path+".bias"]; ok {
		y = Add(y, PerChannel(b, y))
	}
	return s.Out(path, Linear, y)
}

// linearChunks returns the row-chunk parameters "<path>.weight[a:b]" in row order.
func (s *Scope) linearChunks(path string) []*Node {
	type chunk struct {
		start int
		node  *Node
	}
	var cs []chunk
	prefix := path + ".weight["
	for name, n := range s.params {
		if strings.HasPrefix(name, prefix) {
			var a, b int
			if _, err := fmt.Sscanf(name[len(prefix):], "%d:%d]", &a, &b); err == nil {
				cs = append(cs, chunk{a, n})
			}
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].start < cs[j].start })
	out := make([]*Node, len(cs))
	for i, c := range cs {
		out[i] = c.node
	}
	return out
}

// Flatten is torch.flatten(x, 1) of a channels-last map [N,H,W,C]: the result
// [N,C·H·W] is in PyTorch's (C,H,W) order, so linear weights keep their layout.
func Flatten(x *Node) *Node {
	if x.Rank() != 4 {
		return x
	}
	d := x.Shape().Dimensions
	if d[1] == 1 && d[2] == 1 {
		return Reshape(x, d[0], d[3])
	}
	return Reshape(TransposeAllDims(x, 0, 3, 1, 2), d[0], d[1]*d[2]*d[3])
}

// GlobalMeanPool averages a channels-last map [N,H,W,C] over H and W: [N,C].
func GlobalMeanPool(x *Node) *Node { return ReduceMean(x, 1, 2) }

// ReLU6WithRule is min(max(x,0),6) with the backward rule chosen by rule:
// standard (PyTorch's hardtanh gradient: 1 where 0 < x < 6), guided (also only
// positive incoming gradients) or deconvnet (positive incoming gradients,
// whatever x).
func ReLU6WithRule(x *Node, rule ReLURule) *Node {
	zero := ZerosLike(x)
	six := AddScalar(zero, 6)
	inside := LogicalAnd(GreaterThan(x, zero), LessThan(x, six))
	y := Where(inside, x, Where(GreaterOrEqual(x, six), six, zero))
	switch rule {
	case ReLUGuided:
		return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
			return Where(GreaterThan(v, ZerosLike(v)), v, ZerosLike(v))
		})
	case ReLUDeconv:
		pass := IdentityWithCustomGradient(x, func(_, v *Node) *Node {
			return Where(GreaterThan(v, ZerosLike(v)), v, ZerosLike(v))
		})
		return Add(StopGradient(Sub(y, x)), pass)
	}
	return y
}

// Forward is a plain forward pass of net on x (NCHW [N,C,H,W]) with its
// parameter nodes (ParamNames order): forward-only forms everywhere, lowering
// chosen by x's backend. It returns the output [N,NumClasses].
func Forward(net Network, x *Node, params []*Node) *Node {
	s := NewScope(BindParams(net.ParamNames(), params), ResolveLowering(LoweringAuto, x.Graph().Backend()))
	return net.Build(s, TransposeAllDims(x, 0, 2, 3, 1))
}
