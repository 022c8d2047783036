// Package engine is cnnviz's shared computation: one Explainer per network
// runs explanation requests, and every method (packages cam, attr, actmax,
// metrics) is built on it.
//
// A Request names the layers whose activations it wants ("taps", PyTorch's
// forward hooks), the layers (and/or the input) to differentiate a Target with
// respect to, the target (a class logit, a softmax score, a function of the
// outputs) and the ReLU backward rule. The engine builds ONE graph that
// returns all of it from one execution, compiles it once per input shape, and
// caches the executable. There are no hooks to leak: the cache has one owner,
// the Explainer, and Close releases it.
//
// Every attribution method (Grad-CAM, saliency, Integrated Gradients, …)
// implements one contract, [Method]: model (the Explainer), input and target
// in, an [Attribution] with one (H,W) map per example out. [Register] makes a
// method known by name to the CLI, the lab and the method × model tests.
//
// Layouts follow PyTorch: inputs and spatial activations are NCHW (N,C,H,W),
// classifier activations (N,F), logits (N,K). Nothing here draws: package
// vizkit/render does, and package vizkit puts both behind notebook calls.
package engine

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TargetKind says which scalar per example is explained.
type TargetKind int

const (
	// TargetLogit is the pre-softmax score of a class (pytorch-grad-cam's
	// ClassifierOutputTarget; Captum's default).
	TargetLogit TargetKind = iota
	// TargetSoftmax is the softmax probability of a class
	// (pytorch-grad-cam's ClassifierOutputSoftmaxTarget).
	TargetSoftmax
	// TargetLogSoftmax is the log-probability of a class.
	TargetLogSoftmax
	// TargetFunc is a user function of the logits (see Target.Func).
	TargetFunc
)

// Target is what an explanation explains: one scalar per example.
type Target struct {
	// Kind selects the score; default TargetLogit.
	Kind TargetKind
	// Classes are the class indices: nil means each example's predicted (top-1)
	// class; one value applies to every example; N values give one per example.
	Classes []int
	// Func maps the logits [N,K] to one score per example [N]; used when Kind is
	// TargetFunc. It must treat examples independently.
	Func func(logits *graph.Node) *graph.Node
	// Layer, with TargetFunc, makes Func receive that layer's output instead of
	// the logits: NCHW [N,C,H,W] for spatial layers, [N,F] otherwise (e.g. a
	// filter's mean activation for activation maximisation). The network then
	// runs only as far as needed, and Result.Logits is nil.
	Layer string
	// Name labels Func in captions; required with TargetFunc. It does not
	// identify Func: the executable cache keys a user's Func by the function
	// value itself, so two different functions (or two closures of one
	// function literal) never share a compiled graph, whatever their names.
	// Reuse one Target value to reuse its compiled graph.
	Name string

	channel      int    // ChannelMean's channel + 1, validated against the layer.
	unit         *Unit  // The unit ChannelMean and Neuron targets read (see Target.Unit).
	outputs      int    // Output width the target needs (at least, or exactly with exactOutputs); 0: any.
	exactOutputs bool   // outputs must equal the network's output width.
	invalid      string // Why the target cannot be used (reported by Run).
	setClasses   []int  // ClassSetTarget's classes.
	// named is set by cnnviz's own constructors whose Name encodes every
	// value Func captures; the cache then keys Func by Name, so equal
	// targets built in separate calls share one compiled graph.
	named bool
}

// NamedFunc is a function target (Kind TargetFunc) on layer's output (the
// network's output when layer is empty) whose name identifies it completely:
// fn must depend on nothing that name does not encode, since the executable
// cache then keys fn by name, and equal targets built in separate calls
// share one compiled graph. For functions that capture other values, build
// Target{Kind: TargetFunc, Func: fn} instead (keyed by the function's
// identity).
func NamedFunc(layer, name string, fn func(*graph.Node) *graph.Node) Target {
	return Target{Kind: TargetFunc, Layer: layer, Name: name, named: name != "", Func: fn}
}

// Class targets the logits of the given class(es) (see Target.Classes).
func Class(classes ...int) Target { return Target{Kind: TargetLogit, Classes: classes} }

// Predicted targets each example's top-1 class logit.
func Predicted() Target { return Target{Kind: TargetLogit} }

// ChannelMean targets the mean activation of one channel of a layer
// (FlashTorch's filter objective), per example.
func ChannelMean(layer string, channel int) Target {
	return Target{Kind: TargetFunc, Layer: layer, Name: fmt.Sprintf("mean of %s channel %d", layer, channel), named: true,
		unit: &Unit{Layer: layer, Channel: channel},
		Func: func(act *graph.Node) *graph.Node {
			if act.Rank() == 2 {
				return graph.Squeeze(graph.Slice(act, graph.AxisRange(), graph.AxisRange(channel, channel+1)), 1)
			}
			return graph.ReduceMean(graph.Squeeze(graph.Slice(act, graph.AxisRange(), graph.AxisRange(channel, channel+1)), 1), 1, 2)
		}, channel: channel + 1}
}

// SoftmaxOf targets the softmax probabilities of the given class(es).
func SoftmaxOf(classes ...int) Target { return Target{Kind: TargetSoftmax, Classes: classes} }

// String describes the target for captions.
func (t Target) String() string {
	what := "logit"
	switch t.Kind {
	case TargetSoftmax:
		what = "softmax"
	case TargetLogSoftmax:
		what = "log-softmax"
	case TargetFunc:
		return t.Name
	}
	if t.Classes == nil {
		return what + " of the predicted class"
	}
	return fmt.Sprintf("%s of class %v", what, t.Classes)
}

// Request describes one engine execution.
type Request struct {
	// Taps are layers whose outputs to return (the forward-hook equivalent).
	Taps []string
	// GradTaps are layers to return the target's gradient with respect to.
	GradTaps []string
	// GradInput asks for the gradient with respect to the input.
	GradInput bool
	// Target is differentiated when GradTaps or GradInput ask for gradients; its
	// value per example is always returned.
	Target Target
	// ReLU selects the backward rule of every ReLU (guided backprop, deconvnet).
	ReLU models.ReLURule
	// StartAfter runs only what follows this module: the input is then the
	// module's output (NCHW or (N,F)), e.g. to re-run the tail on edited
	// activations. The module must be one every path from the input to the
	// output goes through (VGG's layers, ResNet's stages and blocks, DenseNet's
	// blocks; not a layer inside a residual branch): otherwise Run fails and
	// says so. StartInput gives the shape (N,C,H,W) of the network input the
	// module's output came from (the batch size is taken from the input).
	StartAfter string
	StartInput []int
	// ScaleLayer, if set, multiplies this layer's output channel-wise by the
	// RunOptions.Scale array (N,C) inside the graph, before the rest of the
	// network sees it (channel ablation).
	ScaleLayer string
}

// RunOptions carries per-call values that do not change the compiled graph.
type RunOptions struct {
	// Scale is the (N,C) channel scale for Request.ScaleLayer.
	Scale *Array
}

// Result holds what a Request asked for. Spatial arrays are NCHW.
type Result struct {
	// Logits are the network outputs (N,K); nil when the target is a layer
	// function (Target.Layer), which stops the network early.
	Logits *Array
	// Classes are the target classes used per example (resolved top-1 when the
	// target named none; -1 for TargetFunc).
	Classes []int
	// Scores are the target values per example (N).
	Scores []float32
	// Acts maps tap names to activations.
	Acts map[string]*Array
	// Grads maps GradTaps names to the gradient of the summed target scores with
	// respect to that layer's output (each example's gradient is its own, since
	// examples do not interact).
	Grads map[string]*Array
	// InputGrad is the gradient with respect to the input (N,3,H,W) when asked.
	InputGrad *Array
}

// Options configures an Explainer.
type Options struct {
	// Backend is a backend configuration ("go", "xla:cpu", "xla:cuda"); empty
	// means $GOMLX_BACKEND, else "go". Ignored when BackendInstance is set.
	Backend string
	// BackendInstance is an already created backend to use.
	BackendInstance compute.Backend
	// Lowering of convolutions (default: by backend, see models.ResolveLowering).
	Lowering models.Lowering
}

// Explainer runs explanation requests on one network and backend, caching one
// compiled executable per (request, input shape). It is safe for concurrent
// use, Close included: a call that races with Close either completes normally
// (Close waits for it) or returns [ErrClosed].
type Explainer struct {
	net      models.Network
	backend  compute.Backend
	lowering models.Lowering
	layers   []models.Layer

	mu       sync.Mutex
	execs    map[string]*graph.Exec
	closed   bool
	inflight sync.WaitGroup // executions holding the executables and the network's params
}

// MaxInputPixels bounds batch × height × width of an input to one execution
// (Run and every method built on it), checked before anything is compiled or
// allocated: the memory of the activations, and of their gradients, grows
// with it (VGG16 at 224×224 takes 2–4 GB on the Go backend). The default,
// 2^23 ≈ 8.4 million pixels, is 167 images of 224×224 or one 2896×2896 image.
// Raise it (before use, not concurrently) on a machine with the memory.
var MaxInputPixels int64 = 1 << 23

// ErrClosed is returned (wrapped) by every call on an Explainer after Close.
var ErrClosed = errors.New("vizkit: the Explainer was closed")

// NewExplainer prepares net for explanation on the chosen backend.
func NewExplainer(net models.Network, opts Options) (*Explainer, error) {
	if net == nil {
		return nil, errors.New("vizkit: NewExplainer needs a network, got nil")
	}
	b := opts.BackendInstance
	if b == nil {
		var err error
		b, err = backend.Shared(opts.Backend)
		if err != nil {
			return nil, err
		}
	}
	if k := net.NumClasses(); k < 1 {
		return nil, fmt.Errorf("vizkit: network %s has %d output classes; a classifier needs at least 1 (check the weights' last layer)", net.Arch(), k)
	}
	params, err := net.Params(b)
	if err != nil {
		return nil, err
	}
	// Put every parameter on the device now, once: GoMLX moves a host tensor
	// to the device lazily at its first execution, writing the tensor's fields
	// while a concurrent execution reads them without its lock (a data race
	// the race detector reports when two goroutines run the first requests).
	for i, p := range params {
		if _, err := p.Buffer(b, 0); err != nil {
			return nil, fmt.Errorf("vizkit: moving parameter %d of %s to backend %s: %w", i, net.Arch(), b.Name(), err)
		}
	}
	return &Explainer{net: net, backend: b, lowering: models.ResolveLowering(opts.Lowering, b),
		layers: net.Layers(), execs: map[string]*graph.Exec{}}, nil
}

// Layers returns the network's layers, in execution order (do not modify).
func (e *Explainer) Layers() []models.Layer { return e.layers }

// Net returns the explained network.
func (e *Explainer) Net() models.Network { return e.net }

// Backend returns the backend in use.
func (e *Explainer) Backend() compute.Backend { return e.backend }

// Layer returns a layer by name, or an error listing the valid names.
func (e *Explainer) Layer(name string) (models.Layer, error) {
	l, _, err := models.FindLayer(e.net.Arch(), e.layers, name)
	return l, err
}

// Close releases the cached executables. The network stays open: close it
// separately, after the Explainer. Close waits for executions already running
// (on other goroutines) to finish; calls that start after it fail with
// [ErrClosed]. Calling Close more than once is fine; every call returns only
// once nothing is executing.
func (e *Explainer) Close() {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	e.mu.Unlock()
	e.inflight.Wait() // No new execution can start: closed is set.
	if !first {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ex := range e.execs {
		ex.Finalize()
	}
	e.execs = nil
}

// NumExecutables reports how many request kinds are compiled and cached.
func (e *Explainer) NumExecutables() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.execs)
}

func (e *Explainer) layerIndex(name, role string) (int, error) {
	_, i, err := models.FindLayer(e.net.Arch(), e.layers, name)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", role, err)
	}
	return i, nil
}

// validate checks a request against the network and input; it returns the
// resolved per-example classes (nil for top-1 or TargetFunc).
func (e *Explainer) validate(x *Array, req *Request, ro RunOptions) ([]int32, error) {
	if x == nil {
		return nil, errors.New("vizkit: input is nil")
	}
	if err := x.Check("input"); err != nil {
		return nil, err
	}
	if len(x.Shape) == 4 {
		if n := int64(x.Shape[0]) * int64(x.Shape[2]) * int64(x.Shape[3]); n > MaxInputPixels {
			return nil, fmt.Errorf("vizkit: input of shape %v has %d×%d×%d = %d pixels (batch × height × width), more than vizkit.MaxInputPixels=%d: activations grow with the pixel count (a VGG needs several GB per megapixel); use a smaller input or batch, or raise the limit",
				x.Shape, x.Shape[0], x.Shape[2], x.Shape[3], n, MaxInputPixels)
		}
	}
	start := -1
	if req.StartAfter != "" {
		i, err := e.layerIndex(req.StartAfter, "StartAfter")
		if err != nil {
			return nil, err
		}
		start = i
		l := e.layers[i]
		want := "(N,F)"
		ok := len(x.Shape) == 2 && x.Shape[1] == l.Out
		if l.Spatial {
			want = "(N,C,H,W)"
			ok = len(x.Shape) == 4 && x.Shape[1] == l.Out
		}
		if !ok {
			return nil, fmt.Errorf("input for StartAfter %q must be that layer's output %s with %d channels, got shape %v", req.StartAfter, want, l.Out, x.Shape)
		}
		if len(req.StartInput) != 4 {
			return nil, fmt.Errorf("StartAfter %q needs StartInput, the shape (N,C,H,W) of the network input the activations came from; got %v", req.StartAfter, req.StartInput)
		}
		if err := e.net.CheckInput(append([]int{x.Shape[0]}, req.StartInput[1:]...)); err != nil {
			return nil, fmt.Errorf("StartInput: %w", err)
		}
	} else if err := e.net.CheckInput(x.Shape); err != nil {
		return nil, err
	}
	if err := x.CheckFinite("input"); err != nil {
		return nil, err
	}
	n := x.Shape[0]
	for _, group := range [][]string{req.Taps, req.GradTaps} {
		for _, name := range group {
			i, err := e.layerIndex(name, "tap")
			if err != nil {
				return nil, err
			}
			if i <= start {
				return nil, fmt.Errorf("layer %q runs before StartAfter %q, so it cannot be tapped", name, req.StartAfter)
			}
		}
	}
	if req.GradInput && start >= 0 {
		// The "input" is then the StartAfter activation; its gradient is still well defined.
	}
	if req.ScaleLayer != "" {
		i, err := e.layerIndex(req.ScaleLayer, "ScaleLayer")
		if err != nil {
			return nil, err
		}
		if i <= start {
			return nil, fmt.Errorf("ScaleLayer %q runs before StartAfter %q", req.ScaleLayer, req.StartAfter)
		}
		c := e.layers[i].Out
		if ro.Scale == nil || len(ro.Scale.Shape) != 2 || ro.Scale.Shape[0] != n || ro.Scale.Shape[1] != c {
			var got any = "nil"
			if ro.Scale != nil {
				got = ro.Scale.Shape
			}
			return nil, fmt.Errorf("ScaleLayer %q needs RunOptions.Scale of shape (%d,%d), got %v", req.ScaleLayer, n, c, got)
		}
	}
	t := req.Target
	if t.Kind == TargetFunc {
		if t.Func == nil || t.Name == "" {
			return nil, errors.New("a TargetFunc target needs both Func and Name")
		}
		if t.Layer == "" {
			if err := t.checkOutputs(e.net.NumClasses()); err != nil {
				return nil, err
			}
		}
		if t.Layer != "" {
			i, err := e.layerIndex(t.Layer, "target layer")
			if err != nil {
				return nil, err
			}
			if i <= start {
				return nil, fmt.Errorf("target layer %q runs before StartAfter %q", t.Layer, req.StartAfter)
			}
			if t.channel > e.layers[i].Out {
				return nil, fmt.Errorf("channel %d is out of range for layer %q with %d channels (valid: 0..%d)", t.channel-1, t.Layer, e.layers[i].Out, e.layers[i].Out-1)
			}
		}
		return nil, nil
	}
	if t.Kind < TargetLogit || t.Kind > TargetFunc {
		return nil, fmt.Errorf("unknown target kind %d", t.Kind)
	}
	if t.Classes == nil {
		return nil, nil
	}
	if len(t.Classes) != 1 && len(t.Classes) != n {
		return nil, fmt.Errorf("target names %d classes for a batch of %d examples; give 1 (for all) or %d", len(t.Classes), n, n)
	}
	k := e.net.NumClasses()
	out := make([]int32, n)
	for i := range out {
		c := t.Classes[0]
		if len(t.Classes) == n {
			c = t.Classes[i]
		}
		if c < 0 || c >= k {
			return nil, fmt.Errorf("class index %d is out of range for model %s with %d classes (valid: 0..%d)", c, e.net.Arch(), k, k-1)
		}
		out[i] = int32(c)
	}
	return out, nil
}

func (req *Request) key(haveClasses bool) string {
	t := req.Target
	return fmt.Sprintf("taps=%s|grads=%s|gin=%v|kind=%d|fn=%s@%s|classes=%v|relu=%d|start=%s%v|scale=%s",
		strings.Join(req.Taps, ","), strings.Join(req.GradTaps, ","), req.GradInput, t.Kind, t.funcKey(), t.Layer,
		haveClasses, req.ReLU, req.StartAfter, req.StartInput, req.ScaleLayer)
}

// funcKey identifies a TargetFunc's Func in the executable cache: by Name for
// cnnviz's own constructors (whose names encode everything Func captures),
// otherwise by the function value — the address of its closure record, which
// differs between two functions and between two closures of one literal. The
// cached executable's graph function holds the Target, so the closure stays
// alive as long as its entry and its address cannot be reused by another one.
func (t Target) funcKey() string {
	if t.Kind != TargetFunc || t.Func == nil {
		return ""
	}
	if t.named {
		return "name:" + t.Name
	}
	f := t.Func
	return fmt.Sprintf("func:%p", *(*unsafe.Pointer)(unsafe.Pointer(&f)))
}

// Run executes a request on x: NCHW images (N,3,H,W), normalised as the network
// expects, or a layer's output when req.StartAfter is set.
func (e *Explainer) Run(x *Array, req Request) (*Result, error) {
	return e.RunWith(x, req, RunOptions{})
}

// RunWith is Run with per-call values (see RunOptions).
func (e *Explainer) RunWith(x *Array, req Request, ro RunOptions) (*Result, error) {
	classes, err := e.validate(x, &req, ro)
	if err != nil {
		return nil, err
	}
	haveClasses := classes != nil
	key := req.key(haveClasses)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	// Hold the executable and the parameters until this execution ends: Close
	// waits for it before finalizing anything.
	e.inflight.Add(1)
	defer e.inflight.Done()
	ex, ok := e.execs[key]
	if !ok {
		ex, err = graph.NewExec(e.backend, e.graphFn(req, haveClasses))
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		ex.SetMaxCache(64)
		e.execs[key] = ex
	}
	e.mu.Unlock()

	params, err := e.net.Params(e.backend)
	if err != nil {
		return nil, err
	}
	var owned []*tensors.Tensor
	defer func() {
		for _, t := range owned {
			_ = t.FinalizeAll()
		}
	}()
	xt := tensors.FromFlatDataAndDimensions(x.Data, x.Shape...)
	owned = append(owned, xt)
	args := []any{xt}
	if haveClasses {
		ct := tensors.FromFlatDataAndDimensions(classes, len(classes))
		owned = append(owned, ct)
		args = append(args, ct)
	}
	if req.ScaleLayer != "" {
		st := tensors.FromFlatDataAndDimensions(ro.Scale.Data, ro.Scale.Shape...)
		owned = append(owned, st)
		args = append(args, st)
	}
	for _, p := range params {
		args = append(args, p)
	}
	outs, err := execSafely(ex, args)
	if err != nil {
		var cut NotACutError
		if errors.As(err, &cut) {
			return nil, cut
		}
		return nil, fmt.Errorf("vizkit: executing on backend %s (target: %s): %w", e.backend.Name(), req.Target, err)
	}
	owned = append(owned, outs...)
	get := func(i int) (*Array, error) {
		data, err := tensors.CopyFlatData[float32](outs[i])
		if err != nil {
			return nil, err
		}
		return &Array{Shape: append([]int(nil), outs[i].Shape().Dimensions...), Data: data}, nil
	}
	res := &Result{Acts: map[string]*Array{}, Grads: map[string]*Array{}}
	if res.Logits, err = get(0); err != nil {
		return nil, err
	}
	cls, err := get(1)
	if err != nil {
		return nil, err
	}
	sc, err := get(2)
	if err != nil {
		return nil, err
	}
	res.Scores = sc.Data
	res.Classes = make([]int, len(cls.Data))
	for i, c := range cls.Data {
		res.Classes[i] = int(c)
	}
	i := 3
	for _, name := range req.Taps {
		if res.Acts[name], err = get(i); err != nil {
			return nil, err
		}
		i++
	}
	for _, name := range req.GradTaps {
		if res.Grads[name], err = get(i); err != nil {
			return nil, err
		}
		i++
	}
	if req.GradInput {
		if res.InputGrad, err = get(i); err != nil {
			return nil, err
		}
	}
	if req.Target.Kind == TargetFunc && req.Target.Layer != "" {
		res.Logits = nil
	} else if err := res.Logits.CheckFinite("logits"); err != nil {
		return nil, err
	}
	return res, nil
}

// toNCHW converts a channels-last spatial node to NCHW (flat nodes unchanged).
func toNCHW(x *graph.Node) *graph.Node {
	if x.Rank() == 4 {
		return graph.TransposeAllDims(x, 0, 3, 1, 2)
	}
	return x
}

// NotACutError is raised (as a panic inside graph building, recovered by
// graph.NewExec's caller) when StartAfter names a module some path bypasses.
type NotACutError struct{ module string }

func (e NotACutError) Error() string {
	return fmt.Sprintf("StartAfter %q: the network's output also depends on values computed before this module (a residual or parallel branch bypasses it), so it cannot be started from this module's output alone; use a module every path goes through (a whole block or stage)", e.module)
}

// reaches reports whether target is reachable from any of outs through node inputs.
func reaches(outs []*graph.Node, target *graph.Node) bool {
	seen := map[graph.NodeId]bool{}
	stack := append([]*graph.Node(nil), outs...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil || seen[n.Id()] {
			continue
		}
		if n == target {
			return true
		}
		seen[n.Id()] = true
		stack = append(stack, n.Inputs()...)
	}
	return false
}

func (e *Explainer) graphFn(req Request, haveClasses bool) func(inputs []*graph.Node) []*graph.Node {
	net := e.net
	lowering := e.lowering
	numClasses := net.NumClasses()
	tapSet := map[string]bool{}
	for _, t := range req.Taps {
		tapSet[t] = true
	}
	for _, t := range req.GradTaps {
		tapSet[t] = true
	}
	needGrad := len(req.GradTaps) > 0 || req.GradInput
	gradFrom := map[string]bool{}
	for _, t := range req.GradTaps {
		gradFrom[t] = true
	}
	layerTarget := req.Target.Kind == TargetFunc && req.Target.Layer != ""
	if layerTarget {
		tapSet[req.Target.Layer] = true
	}
	paramNames := net.ParamNames()
	return func(inputs []*graph.Node) []*graph.Node {
		x := inputs[0]
		next := 1
		var classes, scale *graph.Node
		if haveClasses {
			classes = inputs[next]
			next++
		}
		if req.ScaleLayer != "" {
			scale = inputs[next]
			next++
		}
		params := inputs[next:]
		in := x
		var dummy, start *graph.Node
		if req.StartAfter != "" {
			// The network is built from a stand-in input; the module's output is
			// replaced by x. What only the stand-in feeds is never executed
			// (backends compute only what the outputs need).
			dims := append([]int{x.Shape().Dimensions[0]}, req.StartInput[1:]...)
			dummy = graph.Zeros(x.Graph(), shapes.Make(dtypes.Float32, dims...))
			in = dummy
			start = toNHWC(x)
		}
		captured := map[string]*graph.Node{}
		s := models.NewScope(models.BindParams(paramNames, params), lowering)
		s.Rule = req.ReLU
		s.ExactMaxPoolGrad = needGrad
		s.AllDifferentiable = req.GradInput
		s.GradFrom = gradFrom
		s.OnOutput = func(m models.ModuleCall, h *graph.Node) *graph.Node {
			if m.Path == req.StartAfter {
				h = start
			}
			if m.Path == req.ScaleLayer {
				if h.Rank() == 4 {
					c := h.Shape().Dimensions[3]
					// Broadcast from rank 2 (see models.PerChannel: a same-rank
					// broadcast is fused away by the Go backend).
					h = graph.Mul(h, graph.ExpandAndBroadcast(graph.Reshape(scale, h.Shape().Dimensions[0], c), h.Shape().Dimensions, []int{1, 2}))
				} else {
					h = graph.Mul(h, scale)
				}
			}
			if tapSet[m.Path] {
				// An identity node marks the tap so gradients w.r.t. it are exactly
				// the gradients w.r.t. this module's output (its last application).
				h = graph.IdentityWithCustomGradient(h, passGradient)
				captured[m.Path] = h
			}
			return h
		}
		logits := net.Build(s, graph.TransposeAllDims(in, 0, 2, 3, 1))
		if d := logits.Shape().Dimensions; !layerTarget && (len(d) != 2 || d[1] < 1) {
			// Caught by execSafely; an ArgMax over 0 classes would panic in a
			// backend worker goroutine instead, killing the process.
			panic(fmt.Errorf("vizkit: network %s returned logits of shape %v; want (N, classes) with at least 1 class", net.Arch(), d))
		}
		var perExample, usedClasses *graph.Node
		if layerTarget {
			perExample = req.Target.Func(toNCHW(captured[req.Target.Layer]))
			usedClasses = graph.MulScalar(graph.OnesLike(perExample), -1)
			logits = graph.Reshape(perExample, -1, 1) // Placeholder output; dropped in RunWith.
		} else if req.Target.Kind == TargetFunc {
			perExample = req.Target.Func(logits)
			usedClasses = graph.MulScalar(graph.OnesLike(perExample), -1)
		} else {
			if classes == nil {
				classes = graph.ArgMax(graph.StopGradient(logits), 1, dtypes.Int32)
			}
			score := logits
			switch req.Target.Kind {
			case TargetSoftmax:
				score = graph.Softmax(logits, 1)
			case TargetLogSoftmax:
				score = graph.LogSoftmax(logits, 1)
			}
			oneHot := graph.OneHot(classes, numClasses, dtypes.Float32)
			perExample = graph.ReduceSum(graph.Mul(score, oneHot), 1)
			usedClasses = graph.ConvertDType(classes, dtypes.Float32)
		}
		outs := []*graph.Node{logits, usedClasses, perExample}
		for _, name := range req.Taps {
			outs = append(outs, toNCHW(captured[name]))
		}
		if needGrad {
			wrt := make([]*graph.Node, 0, len(req.GradTaps)+1)
			for _, name := range req.GradTaps {
				wrt = append(wrt, captured[name])
			}
			if req.GradInput {
				wrt = append(wrt, x)
			}
			grads := graph.Gradient(graph.ReduceAllSum(perExample), wrt...)
			for i, g := range grads {
				if i < len(req.GradTaps) {
					g = toNCHW(g) // Taps are channels-last inside the graph; x is already NCHW.
				}
				outs = append(outs, g)
			}
		}
		if dummy != nil && reaches(outs, dummy) {
			panic(NotACutError{req.StartAfter})
		}
		return outs
	}
}

// execSafely runs ex, turning a panic raised while the graph is built (GoMLX
// reports shape errors by panicking) into an error.
func execSafely(ex *graph.Exec, args []any) (outs []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return ex.Exec(args...)
}

func passGradient(_, v *graph.Node) *graph.Node { return v }

func toNHWC(x *graph.Node) *graph.Node {
	if x.Rank() == 4 {
		return graph.TransposeAllDims(x, 0, 2, 3, 1)
	}
	return x
}
