// Package onnx runs CNN classifiers stored as ONNX graphs (as written by
// torch.onnx.export, opsets 11–17; 7–17 accepted) through cnnviz's model
// protocol, so every explanation method works on them.
//
// Parsing uses Go code generated from ONNX's onnx.proto
// (internal/onnxpb, scripts/gen_onnxpb.sh) and google.golang.org/protobuf;
// the graph is interpreted by this package for the CNN operator subset
// (SupportedOperators). Shape computations (Shape→Gather→Unsqueeze→Concat→
// Reshape chains) are folded to constants while the graph is built, when
// the input's shape is known; the batch axis may be dynamic.
//
// Layer names. Every node output is a layer under its ONNX value name
// ("/layer4/layer4.1/relu_1/Relu_output_0", "logits"). Where the exporter
// recorded PyTorch module scopes in node names (torch ≥ 1.13:
// "/layer4/layer4.1/relu_1/Relu"), module paths are layers too: leaves
// ("layer4.1.relu", applied twice here: Layer.Calls = 2) and containers
// ("layer4.1", "layer4": the output of the last node under the scope). When
// torch.onnx.export folds a BatchNorm2d into the preceding Conv2d (its
// default in eval mode), the conv module's output ("layer1.0.conv1") is the
// batch norm's output in PyTorch, and the batch norm is no layer.
//
// Inputs are NCHW float32 images (N,C,H,W) with the model's channel count
// (any C, e.g. 1 for grey-scale models). Outputs must be (N,K) (or (N)); K
// may be 1 (a single logit or a regression value).
//
// Backward rules: Relu nodes pass through the scope's ReLU (guided
// backpropagation and deconvnet rules apply) and Clip(0,6) through its ReLU6.
// Requesting those rules on a graph with other activations (Sigmoid, Tanh,
// LeakyRelu, other Clip bounds) fails with an error saying so.
package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // Load traces the graph on the pure-Go backend (build only, never run).
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"google.golang.org/protobuf/proto"
)

// Model is an ONNX CNN as a models.Network (also models.ParamShaper and
// models.BiasedNetwork). It is safe for concurrent use.
type Model struct {
	// Source is the file (or name) the model was loaded from.
	Source string
	// Opset is the model's default-domain opset version.
	Opset int
	// Producer is the exporter recorded in the file ("pytorch 1.13.1").
	Producer string

	arch       string
	p          *program
	channels   int
	refDims    []int // Reference input (1,C,H,W) used to describe the layers.
	numClasses int
	layers     []models.Layer
	camLayer   string
	outRank    int

	mu     sync.Mutex
	params []*tensors.Tensor
	bound  compute.Backend
	closed bool
	checks map[string]error // CheckInput results by shape.
}

var (
	_ models.Network       = (*Model)(nil)
	_ models.ParamShaper   = (*Model)(nil)
	_ models.BiasedNetwork = (*Model)(nil)
)

// Load reads an ONNX model file (at most MaxFileBytes).
func Load(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("onnx: %s is %d bytes; at most %d are supported", path, st.Size(), int64(MaxFileBytes))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	m, err := LoadBytes(data, path)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// LoadBytes parses an ONNX model held in memory; name is used in messages
// and, without its extension, in Arch ("onnx:<name>").
func LoadBytes(data []byte, name string) (m *Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("onnx %s: malformed model: %v", name, r)
		}
	}()
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("onnx %s: %d bytes; at most %d are supported", name, len(data), int64(MaxFileBytes))
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("onnx %s: not a readable ONNX model: %w", name, err)
	}
	p, err := parseModel(&mp)
	if err != nil {
		return nil, fmt.Errorf("onnx %s: %w", name, err)
	}
	stem := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	if stem == "" || stem == "." {
		stem = mp.GetGraph().GetName()
	}
	m = &Model{Source: name, Opset: p.opset, Producer: strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion()),
		arch: "onnx:" + stem, p: p, channels: p.inDims[1], checks: map[string]error{}}
	h, w := p.inDims[2], p.inDims[3]
	if h < 1 {
		h = 224
	}
	if w < 1 {
		w = 224
	}
	m.refDims = []int{1, m.channels, h, w}
	calls, err := models.Trace(m, m.refDims)
	if err != nil {
		return nil, fmt.Errorf("onnx %s: %w", name, err)
	}
	if err := m.describe(calls); err != nil {
		return nil, fmt.Errorf("onnx %s: %w", name, err)
	}
	return m, nil
}

// describe fills layers, numClasses and the default CAM layer from a trace.
func (m *Model) describe(calls []models.ModuleCall) error {
	counts := map[string]int{}
	inFrom := map[string]int{}
	for _, n := range m.p.nodes {
		names := append([]string{n.outputs[0]}, aliasPaths(n)...)
		switch n.op {
		case "Conv", "Gemm", "MatMul":
			if len(n.inputs) < 2 {
				continue
			}
			w, ok := m.p.consts[n.inputs[1]]
			if !ok {
				continue
			}
			k := w.size()
			if len(n.inputs) > 2 && n.inputs[2] != "" {
				if c, ok := m.p.consts[n.inputs[2]]; ok {
					k += c.size()
				}
			}
			in := 0
			if n.op == "Conv" && len(w.dims) == 4 {
				in = w.dims[1] * int(n.a.int("group", 1))
			} else if len(w.dims) == 2 {
				in = w.dims[0]
				if n.op == "Gemm" && n.a.int("transB", 0) != 0 {
					in = w.dims[1]
				}
			}
			for _, nm := range names {
				counts[nm+".weight"] = k
				inFrom[nm] = in
			}
		case "BatchNormalization":
			if t, ok := m.p.consts[n.inputs[1]]; ok {
				for _, nm := range names {
					counts[nm+".weight"] = 2 * t.size()
				}
			}
		}
	}
	m.layers = models.LayersFromCalls(calls, counts, inFrom) // The load's own trace: no second build.
	var out *models.ModuleCall
	for i := range calls {
		if calls[i].Path == m.p.output {
			out = &calls[i]
		}
	}
	if out == nil {
		return fmt.Errorf("output %q is a constant, not computed from the input", m.p.output)
	}
	switch len(out.Dims) {
	case 1:
		m.numClasses, m.outRank = 1, 1
	case 2:
		m.numClasses, m.outRank = out.Dims[1], 2
	default:
		return fmt.Errorf("output %q has shape %v; a classifier or regression head gives (N,K)", m.p.output, out.Dims)
	}
	m.camLayer = m.defaultCAMLayer(calls)
	return nil
}

func aliasPaths(n *node) []string {
	out := make([]string, len(n.aliases))
	for i, a := range n.aliases {
		out[i] = a.path
	}
	return out
}

// defaultCAMLayer: the last 4-D output with H·W > 1 of an activation node
// (Relu, Clip, LeakyRelu, Sigmoid, Tanh) — the last one before global pooling
// in a CNN — named by its outermost module path where the exporter recorded
// one; without activations, the last such output of any node.
func (m *Model) defaultCAMLayer(calls []models.ModuleCall) string {
	dims := map[string][]int{}
	for _, c := range calls {
		dims[c.Path] = c.Dims
	}
	spatial := func(n *node) bool {
		d := dims[n.outputs[0]]
		return len(d) == 4 && d[1]*d[2] > 1
	}
	pick := func(acts bool) string {
		for i := len(m.p.nodes) - 1; i >= 0; i-- {
			n := m.p.nodes[i]
			if !spatial(n) {
				continue
			}
			if acts && !slices.Contains([]string{"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh"}, n.op) {
				continue
			}
			if len(n.aliases) > 0 {
				return n.aliases[len(n.aliases)-1].path
			}
			return n.outputs[0]
		}
		return ""
	}
	if l := pick(true); l != "" {
		return l
	}
	return pick(false)
}

// DefaultCAMLayer is the layer CAM methods use by default: the last spatial
// activation before global pooling (see package doc), e.g. "layer4" for a
// torchvision ResNet, "features.18" for MobileNet-V2.
func (m *Model) DefaultCAMLayer() string { return m.camLayer }

// Arch is "onnx:<file name without extension>".
func (m *Model) Arch() string { return m.arch }

// Layers lists ONNX values and PyTorch module paths in output order, with
// shapes for the reference input (the declared input size, 224 where it is
// symbolic).
func (m *Model) Layers() []models.Layer { return m.layers }

// NumClasses is the size of the output vector.
func (m *Model) NumClasses() int { return m.numClasses }

// InputChannels is the channel count the model takes.
func (m *Model) InputChannels() int { return m.channels }

// ReferenceInput is the input shape (1,C,H,W) the layers are described at.
func (m *Model) ReferenceInput() []int { return slices.Clone(m.refDims) }

// CheckInput validates an NCHW input shape: (N,C,H,W) with the model's
// channel count, N ≥ 1, and a size the graph can be built for (checked by
// building it once per shape; the error names the node that fails, e.g. a
// Reshape exported with a fixed batch size).
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != m.channels || dims[2] < 1 || dims[3] < 1 {
		return fmt.Errorf("model %s expects an input of shape (N,%d,H,W) with N, H, W ≥ 1, got %v", m.arch, m.channels, dims)
	}
	if dims[2] > 8192 || dims[3] > 8192 {
		return fmt.Errorf("model %s: input %v is larger than 8192 pixels per side", m.arch, dims)
	}
	key := fmt.Sprint(dims)
	m.mu.Lock()
	err, ok := m.checks[key]
	m.mu.Unlock()
	if ok {
		return err
	}
	_, err = models.Trace(m, dims)
	m.mu.Lock()
	if len(m.checks) < 64 {
		m.checks[key] = err
	}
	m.mu.Unlock()
	return err
}

// ParamNames names the parameters in Params order: convolution kernels
// "<initializer>#hwio", folded batch norms "<value>#scale"/"#shift", other
// float constants by their ONNX names.
func (m *Model) ParamNames() []string { return m.p.paramNames }

// ParamShapes returns the graph shapes of the parameters.
func (m *Model) ParamShapes() [][]int { return m.p.paramDims }

// Params returns the parameters on the backend (graph layouts: kernels HWIO
// [kh,kw,I/groups,O]). The model is bound to the first backend it is used with.
func (m *Model) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("model %s was closed", m.arch)
	}
	if m.params != nil {
		if m.bound != backend {
			return nil, fmt.Errorf("model %s is bound to backend %s; load it again to use backend %s", m.arch, m.bound.Name(), backend.Name())
		}
		return m.params, nil
	}
	ps := make([]*tensors.Tensor, len(m.p.paramNames))
	for i, data := range m.p.paramHost {
		t := tensors.FromFlatDataAndDimensions(slices.Clone(data), m.p.paramDims[i]...)
		if err := t.ToDevice(backend, 0); err != nil {
			return nil, fmt.Errorf("moving parameter %q to backend %s: %w", m.p.paramNames[i], backend.Name(), err)
		}
		ps[i] = t
	}
	m.params, m.bound = ps, backend
	return ps, nil
}

// Build builds the graph on x (channels-last [N,H,W,C]) and returns the
// output [N,K], naming every node output and module through s.
func (m *Model) Build(s *models.Scope, x *graph.Node) *graph.Node {
	b := &builder{p: m.p, s: s, g: x.Graph()}
	y := b.run(&value{n: x, nhwc: true})
	if y.static() {
		panic(fmt.Errorf("output %q does not depend on the input", m.p.output))
	}
	out := b.logical(y)
	if out.Rank() == 1 {
		out = graph.Reshape(out, out.Shape().Dimensions[0], 1)
	}
	return out
}

// findNode returns the node whose output value or module path is layer.
func (m *Model) findNode(layer string) *node {
	if n, ok := m.p.byValue[layer]; ok {
		return n
	}
	for _, n := range m.p.nodes {
		for _, a := range n.aliases {
			if a.path == layer {
				return n
			}
		}
	}
	return nil
}

// LayerAlias returns, for a PyTorch module path, the ONNX value name of the
// same output (listed before it in Layers); "" for value names and unknown
// layers. Methods that walk Layers use it to skip the duplicate view.
func (m *Model) LayerAlias(layer string) string {
	if _, ok := m.p.byValue[layer]; ok {
		return ""
	}
	if n := m.findNode(layer); n != nil {
		return n.outputs[0]
	}
	return ""
}

// Weight returns a Conv layer's kernel in PyTorch layout [O,I/groups,kh,kw]
// (ONNX's own) or a Gemm/MatMul layer's weight as [out,in], and the bias (nil
// when none). layer is a value name or module path.
func (m *Model) Weight(layer string) (*weights.Tensor, []float32, error) {
	if _, _, err := models.FindLayer(m.arch, m.layers, layer); err != nil {
		return nil, nil, err
	}
	n := m.findNode(layer)
	if n == nil || (n.op != "Conv" && n.op != "Gemm" && n.op != "MatMul") || len(n.inputs) < 2 {
		var with []string
		for _, l := range m.layers {
			if k := m.findNode(l.Name); k != nil && (k.op == "Conv" || k.op == "Gemm") && len(k.aliases) > 0 && l.Name == k.aliases[0].path {
				with = append(with, l.Name)
			}
		}
		op := "no node"
		if n != nil {
			op = n.op
		}
		return nil, nil, fmt.Errorf("layer %q (%s) has no weight; Conv and Gemm layers do: %s", layer, op, strings.Join(with, ", "))
	}
	w, ok := m.p.consts[n.inputs[1]]
	if !ok || w.isInt {
		return nil, nil, fmt.Errorf("layer %q: the weight %q is computed in the graph, not stored", layer, n.inputs[1])
	}
	var bias []float32
	if len(n.inputs) > 2 && n.inputs[2] != "" {
		if c, ok := m.p.consts[n.inputs[2]]; ok && !c.isInt {
			bias = slices.Clone(c.f)
		}
	}
	switch {
	case n.op == "Conv":
		return &weights.Tensor{Shape: slices.Clone(w.dims), Data: slices.Clone(w.f)}, bias, nil
	case len(w.dims) != 2:
		return nil, nil, fmt.Errorf("layer %q: weight of shape %v is not a matrix", layer, w.dims)
	case n.op == "Gemm" && n.a.int("transB", 0) != 0:
		return &weights.Tensor{Shape: slices.Clone(w.dims), Data: slices.Clone(w.f)}, bias, nil
	default:
		return &weights.Tensor{Shape: []int{w.dims[1], w.dims[0]}, Data: models.Transpose2D(w.f, w.dims[0], w.dims[1])}, bias, nil
	}
}

// ModuleBias returns a BatchNormalization layer's effective bias
// β − μ·γ/√(σ²+ε) (FullGrad). Exports that fold batch norms into
// convolutions have none.
func (m *Model) ModuleBias(module string) ([]float32, error) {
	n := m.findNode(module)
	if n == nil || n.op != "BatchNormalization" {
		return nil, fmt.Errorf("model %s: layer %q is not a BatchNormalization (exports in eval mode fold batch norms into convolutions; export with training=torch.onnx.TrainingMode.PRESERVE to keep them)", m.arch, module)
	}
	return slices.Clone(m.p.bnShift[n.outputs[0]]), nil
}

// Close releases the parameter buffers.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	for _, t := range m.params {
		_ = t.FinalizeAll()
	}
	m.params = nil
}
