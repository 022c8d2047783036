// Package custom explains a user's own GoMLX graph function with cnnviz,
// without implementing models.Network: describe the function in a Spec and
// New returns a network every vizkit method works on.
//
// The function receives the input channels-last (x [N,H,W,C], already
// normalised) and returns the outputs [N,K]. It names what should be
// tappable (Grad-CAM layers, feature maps) by passing those nodes through
// the scope: x = s.Out("block2", models.Kind("Block"), x). Activations passed
// through s.ReLU / s.ReLU6 also get guided-backprop and deconvnet rules.
// cnnviz does the rest: taps, gradients, ablation, the layer table.
//
// Parameters come in one of two ways:
//
//   - Params: named tensors, read in Build with s.Param(name) (bound as graph
//     parameters, uploaded once per backend). Weight(layer), for kernel
//     pictures, reads "<layer>.weight" — HWIO [kh,kw,I,O] for convolutions
//     (models.Conv2D's layout), [in,out] for dense layers — and "<layer>.bias".
//   - Store: a GoMLX model.Store whose variables the function reads through
//     BuildModel's *model.Scope (ml/layers: layers.Convolution, layers.Dense).
//     New copies the variables (their values at that moment) into a store
//     whose graphs embed them as constants (Store.WithVariableAsConst): fine
//     for small models; each compiled explanation graph holds a copy. Weight(layer) reads the variables
//     "/<layer>/weights" and "/<layer>/biases" (GoMLX's layouts: HWIO and
//     [in,out]) or, for ml/layers' own sub-scopes, "/<layer>/conv/…" and
//     "/<layer>/dense/…".
//
// The same function serves training: call it with TrainingScope() as the
// *models.Scope (see the package example).
package custom

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend" // New traces the function on the pure-Go backend (build only).
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Spec describes a GoMLX graph function to explain.
type Spec struct {
	// Arch names the model (default "custom").
	Arch string
	// InputChannels is C of the (N,C,H,W) input (default 3).
	InputChannels int
	// InputSize is the reference height and width used to describe the layers
	// (default 64); MinSize the smallest accepted (default 1).
	InputSize, MinSize int
	// NumClasses is K of the output; 0 takes it from a trace.
	NumClasses int
	// CAMLayer is the default CAM layer; empty means the last spatial layer
	// before the first non-spatial output (vizkit's rule).
	CAMLayer string

	// Params and Build: named parameter tensors (float32) and the function,
	// which reads them with s.Param(name).
	Params map[string]*tensors.Tensor
	Build  func(s *models.Scope, x *graph.Node) *graph.Node

	// Store and BuildModel: a GoMLX store and a function reading its
	// variables through ms (ml/layers).
	Store      *model.Store
	BuildModel func(ms *model.Scope, s *models.Scope, x *graph.Node) *graph.Node
}

// Model is a Spec as a models.Network (and models.ParamShaper).
type Model struct {
	spec   Spec
	store  *model.Store // Clone with variables as constants (Store specs).
	names  []string
	host   [][]float32
	dims   [][]int
	layers []models.Layer

	mu     sync.Mutex
	params []*tensors.Tensor
	bound  compute.Backend
	closed bool
}

var (
	_ models.Network     = (*Model)(nil)
	_ models.ParamShaper = (*Model)(nil)
)

// TrainingScope returns a scope for calling a Spec's function outside cnnviz
// (training, plain inference): outputs pass through unchanged, activations
// use their standard differentiable forms.
func TrainingScope() *models.Scope {
	s := models.NewScope(nil, models.LoweringNative)
	s.AllDifferentiable = true
	return s
}

// New checks spec (by building the function once for the reference input)
// and returns the network.
func New(spec Spec) (*Model, error) {
	if spec.Arch == "" {
		spec.Arch = "custom"
	}
	if spec.InputChannels == 0 {
		spec.InputChannels = 3
	}
	if spec.InputSize == 0 {
		spec.InputSize = 64
	}
	if spec.MinSize == 0 {
		spec.MinSize = 1
	}
	switch {
	case (spec.Build == nil) == (spec.BuildModel == nil):
		return nil, fmt.Errorf("custom %s: set exactly one of Build (with Params) and BuildModel (with Store)", spec.Arch)
	case spec.BuildModel != nil && spec.Store == nil:
		return nil, fmt.Errorf("custom %s: BuildModel needs a Store", spec.Arch)
	case spec.InputChannels < 1 || spec.InputSize < spec.MinSize || spec.MinSize < 1:
		return nil, fmt.Errorf("custom %s: InputChannels %d, InputSize %d and MinSize %d must be ≥ 1 with InputSize ≥ MinSize", spec.Arch, spec.InputChannels, spec.InputSize, spec.MinSize)
	}
	m := &Model{spec: spec}
	if spec.Store != nil {
		// A copy of the variables (taken now: later training does not change
		// the explained model) in a store that embeds them as constants.
		st := model.NewStore().WithVariableAsConst(true)
		for v := range spec.Store.IterVariables() {
			t, err := v.Value()
			if err != nil {
				return nil, fmt.Errorf("custom %s: variable %q: %w", spec.Arch, v.Path(), err)
			}
			c, err := t.Clone()
			if err != nil {
				return nil, fmt.Errorf("custom %s: variable %q: %w", spec.Arch, v.Path(), err)
			}
			if _, err := st.CreateVariable(v.Path(), c); err != nil {
				return nil, fmt.Errorf("custom %s: %w", spec.Arch, err)
			}
		}
		m.store = st
	}
	names := make([]string, 0, len(spec.Params))
	for n := range spec.Params {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := spec.Params[n]
		if t == nil {
			return nil, fmt.Errorf("custom %s: parameter %q is nil", spec.Arch, n)
		}
		data, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, fmt.Errorf("custom %s: parameter %q: %w (float32 tensors only)", spec.Arch, n, err)
		}
		m.names = append(m.names, n)
		m.host = append(m.host, data)
		m.dims = append(m.dims, slices.Clone(t.Shape().Dimensions))
	}
	ref := []int{1, spec.InputChannels, spec.InputSize, spec.InputSize}
	counts := map[string]int{}
	for i, n := range m.names {
		counts[n] = len(m.host[i])
	}
	var err error
	if m.layers, err = models.TraceLayers(m, ref, counts, nil); err != nil {
		return nil, fmt.Errorf("custom %s: %w", spec.Arch, err)
	}
	if len(m.layers) == 0 {
		return nil, fmt.Errorf("custom %s: the function names no outputs; pass the layers to explain through s.Out (or s.ReLU)", spec.Arch)
	}
	k, err := m.outputClasses()
	if err != nil {
		return nil, fmt.Errorf("custom %s: %w", spec.Arch, err)
	}
	if spec.NumClasses != 0 && spec.NumClasses != k {
		return nil, fmt.Errorf("custom %s: NumClasses is %d but the function returns %d outputs", spec.Arch, spec.NumClasses, k)
	}
	m.spec.NumClasses = k
	if spec.CAMLayer != "" {
		if _, _, err := models.FindLayer(spec.Arch, m.layers, spec.CAMLayer); err != nil {
			return nil, fmt.Errorf("custom: CAMLayer: %w", err)
		}
	}
	return m, nil
}

// outputClasses builds the function once more and reads the output width.
func (m *Model) outputClasses() (k int, err error) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		return 0, err
	}
	g := graph.NewGraph(b, "custom-out")
	defer g.Finalize()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("building: %v", r)
		}
	}()
	nodes := make([]*graph.Node, len(m.names))
	for i := range m.names {
		nodes[i] = graph.Zeros(g, shapes.Make(dtypes.Float32, m.dims[i]...))
	}
	x := graph.Zeros(g, shapes.Make(dtypes.Float32, 1, m.spec.InputSize, m.spec.InputSize, m.spec.InputChannels))
	y := m.Build(models.NewScope(models.BindParams(m.names, nodes), models.LoweringNative), x)
	d := y.Shape().Dimensions
	if len(d) != 2 || d[0] != 1 {
		return 0, fmt.Errorf("the function returns shape %v for one image; it must return [N,K]", d)
	}
	return d[1], nil
}

// Arch names the model.
func (m *Model) Arch() string { return m.spec.Arch }

// Layers lists the outputs named through the scope (see models.TraceLayers).
func (m *Model) Layers() []models.Layer { return m.layers }

// NumClasses is K of the output [N,K].
func (m *Model) NumClasses() int { return m.spec.NumClasses }

// InputChannels is C of the (N,C,H,W) input (Spec.InputChannels; read by
// models.InputChannels).
func (m *Model) InputChannels() int { return m.spec.InputChannels }

// DefaultCAMLayer is Spec.CAMLayer ("" lets vizkit pick the last spatial layer).
func (m *Model) DefaultCAMLayer() string { return m.spec.CAMLayer }

// CheckInput validates an NCHW input shape: (N,C,H,W) with the spec's
// channels and H, W ≥ MinSize.
func (m *Model) CheckInput(dims []int) error {
	c, ms := m.spec.InputChannels, m.spec.MinSize
	if len(dims) != 4 || dims[0] < 1 || dims[1] != c || dims[2] < ms || dims[3] < ms {
		return fmt.Errorf("model %s expects an input of shape (N,%d,H,W) with N ≥ 1 and H, W ≥ %d, got %v", m.spec.Arch, c, ms, dims)
	}
	return nil
}

// ParamNames lists Spec.Params' names, sorted.
func (m *Model) ParamNames() []string { return m.names }

// ParamShapes returns their shapes.
func (m *Model) ParamShapes() [][]int { return m.dims }

// Params uploads the parameters to the backend (once; the model is then
// bound to that backend).
func (m *Model) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("model %s was closed", m.spec.Arch)
	}
	if m.params != nil {
		if m.bound != backend {
			return nil, fmt.Errorf("model %s is bound to backend %s; create it again to use backend %s", m.spec.Arch, m.bound.Name(), backend.Name())
		}
		return m.params, nil
	}
	ps := make([]*tensors.Tensor, len(m.names))
	for i, data := range m.host {
		t := tensors.FromFlatDataAndDimensions(slices.Clone(data), m.dims[i]...)
		if err := t.ToDevice(backend, 0); err != nil {
			return nil, fmt.Errorf("moving parameter %q to backend %s: %w", m.names[i], backend.Name(), err)
		}
		ps[i] = t
	}
	m.params, m.bound = ps, backend
	return ps, nil
}

// Build calls the spec's function.
func (m *Model) Build(s *models.Scope, x *graph.Node) *graph.Node {
	if m.spec.Build != nil {
		return m.spec.Build(s, x)
	}
	return m.spec.BuildModel(m.store.RootScope(), s, x)
}

// Weight returns a layer's weight in PyTorch layout ([O,I,kh,kw] or
// [out,in]) and its bias, from the conventions in the package doc.
func (m *Model) Weight(layer string) (*weights.Tensor, []float32, error) {
	if _, _, err := models.FindLayer(m.spec.Arch, m.layers, layer); err != nil {
		return nil, nil, err
	}
	get := func(names ...string) ([]float32, []int) {
		for _, n := range names {
			if i := slices.Index(m.names, n); i >= 0 {
				return m.host[i], m.dims[i]
			}
			if m.store != nil {
				if v := m.store.GetVariable(n); v != nil {
					if t, err := v.Value(); err == nil {
						if d, err := tensors.CopyFlatData[float32](t); err == nil {
							return d, t.Shape().Dimensions
						}
					}
				}
			}
		}
		return nil, nil
	}
	p := "/" + strings.ReplaceAll(layer, ".", "/")
	w, wd := get(layer+".weight", p+"/weights", p+"/conv/weights", p+"/dense/weights")
	if w == nil {
		return nil, nil, fmt.Errorf("model %s: layer %q has no weight (looked for %q and the variables %s/weights, %s/conv/weights, %s/dense/weights)", m.spec.Arch, layer, layer+".weight", p, p, p)
	}
	b, _ := get(layer+".bias", p+"/biases", p+"/conv/biases", p+"/dense/biases")
	b = slices.Clone(b)
	switch len(wd) {
	case 4:
		kh, kw, in, o := wd[0], wd[1], wd[2], wd[3]
		out := make([]float32, len(w))
		for y := 0; y < kh; y++ {
			for x := 0; x < kw; x++ {
				for i := 0; i < in; i++ {
					for c := 0; c < o; c++ {
						out[((c*in+i)*kh+y)*kw+x] = w[((y*kw+x)*in+i)*o+c]
					}
				}
			}
		}
		return &weights.Tensor{Shape: []int{o, in, kh, kw}, Data: out}, b, nil
	case 2:
		return &weights.Tensor{Shape: []int{wd[1], wd[0]}, Data: models.Transpose2D(w, wd[0], wd[1])}, b, nil
	}
	return nil, nil, fmt.Errorf("model %s: layer %q has a weight of shape %v (want HWIO or [in,out])", m.spec.Arch, layer, wd)
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
