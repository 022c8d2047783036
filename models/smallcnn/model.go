package smallcnn

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Model is a smallcnn with its parameters in the graph's layouts. It is safe
// for concurrent use; Close releases the parameter buffers.
type Model struct {
	// Config is the architecture, as inferred from the weights.
	Config Config
	// Source describes where the weights came from.
	Source string

	layers []models.Layer
	names  []string          // Parameter names, in Params order.
	host   [][]float32       // Parameters in graph layouts, host copies.
	dims   [][]int           // Their graph shapes.
	index  map[string]int    // Parameter name → position.
	mu     sync.Mutex        // Guards params, backend, closed, exec.
	params []*tensors.Tensor // On the backend, once Params was called.
	closed bool
	bound  compute.Backend
	exec   *graph.Exec // Logits executable (see Logits).
}

var _ models.Network = (*Model)(nil)

// Load converts a torchvision-named weight set into a Model; the
// architecture is inferred (ConfigFromWeights). Missing, mis-shaped or
// non-finite tensors are errors naming the tensor. Graph layouts:
//
//	conv   [O,I,3,3] → [3,3,I,O] (HWIO, channels-last)
//	linear [K,C]     → [K,C] (PyTorch's layout is the graph's)
func Load(w *weights.Set) (*Model, error) {
	if w == nil {
		return nil, fmt.Errorf("smallcnn: Load needs a weight set, got nil")
	}
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

func build(cfg Config, w *weights.Set) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Source: w.Source, layers: cfg.Layers(), index: map[string]int{}}
	for _, l := range m.layers {
		if l.Kind != models.Conv2d && l.Kind != models.Linear {
			continue
		}
		wShape := []int{l.Out, l.In, 3, 3}
		if l.Kind == models.Linear {
			wShape = []int{l.Out, l.In}
		}
		wt, err := w.Get(l.Name+".weight", wShape...)
		if err != nil {
			return nil, err
		}
		b, err := w.Get(l.Name+".bias", l.Out)
		if err != nil {
			return nil, err
		}
		for _, t := range []struct {
			name string
			data []float32
		}{{l.Name + ".weight", wt.Data}, {l.Name + ".bias", b.Data}} {
			for i, v := range t.data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("weights %s: tensor %q holds a non-finite value (%v) at flat index %d", w.Source, t.name, v, i)
				}
			}
		}
		if l.Kind == models.Conv2d {
			m.add(l.Name+".weight", kernelToHWIO(wt.Data, l.Out, l.In), 3, 3, l.In, l.Out)
		} else {
			m.add(l.Name+".weight", append([]float32(nil), wt.Data...), l.Out, l.In) // PyTorch's layout is the graph's.
		}
		m.add(l.Name+".bias", append([]float32(nil), b.Data...), l.Out)
	}
	return m, nil
}

func (m *Model) add(name string, data []float32, dims ...int) {
	m.index[name] = len(m.names)
	m.names = append(m.names, name)
	m.host = append(m.host, data)
	m.dims = append(m.dims, dims)
}

// Arch is "smallcnn".
func (m *Model) Arch() string { return Arch }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

// Layers returns the modules in execution order (torchvision-style names).
func (m *Model) Layers() []models.Layer { return m.layers }

// ParamNames lists the parameters in the order Params returns them.
func (m *Model) ParamNames() []string { return m.names }

// NumParams is the number of learned values.
func (m *Model) NumParams() int {
	n := 0
	for _, l := range m.layers {
		n += l.Params
	}
	return n
}

// CheckInput validates an NCHW input shape: (N,3,H,W) with N ≥ 1 and H, W at
// least 2^NumPools (8 for DefaultConfig), so the last block keeps ≥ 1 pixel.
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N ≥ 1, got %v", Arch, dims)
	}
	if minSize := 1 << m.Config.NumPools(); dims[2] < minSize || dims[3] < minSize {
		return fmt.Errorf("model %s needs inputs of at least %d×%d pixels (it has %d max-pools), got %d×%d", Arch, minSize, minSize, m.Config.NumPools(), dims[2], dims[3])
	}
	return nil
}

// Params returns the parameter tensors (graph layouts, see Load) on the
// backend's device, in ParamNames order. The caller must not modify or
// finalize them. A model is bound to the first backend it is used with.
func (m *Model) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("model %s (%s) was closed", Arch, m.Source)
	}
	if m.params == nil {
		for i, data := range m.host {
			t := tensors.FromFlatDataAndDimensions(append([]float32(nil), data...), m.dims[i]...)
			if err := t.ToDevice(backend, 0); err != nil {
				return nil, fmt.Errorf("moving parameter %q to backend %s: %w", m.names[i], backend.Name(), err)
			}
			m.params = append(m.params, t)
		}
		m.bound = backend
	} else if m.bound != backend {
		return nil, fmt.Errorf("model %s is bound to backend %s; load it again to use backend %s", Arch, m.bound.Name(), backend.Name())
	}
	return m.params, nil
}

// Build builds the network on x (channels-last [N,H,W,3]) with the
// parameters bound in s, naming every module output through s. It returns
// the logits [N,NumClasses].
func (m *Model) Build(s *models.Scope, x *graph.Node) *graph.Node {
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d:
			x = s.Out(l.Name, l.Kind, models.Conv3x3(x, s.Param(l.Name+".weight"), s.Param(l.Name+".bias"), s.Lowering))
		case models.ReLU:
			x = s.ReLU(l.Name, x)
		case models.MaxPool2d:
			x = s.Out(l.Name, l.Kind, models.MaxPool2x2(x, s.ExactMaxPoolGrad && s.Differentiable()))
		case models.GlobalAvgPool:
			x = s.Out(l.Name, l.Kind, models.GlobalMeanPool(x)) // (N,H,W,C) → (N,C).
		case models.Linear:
			x = s.Linear(l.Name, x)
		}
	}
	return x
}

// ParamShapes returns the graph shapes of the parameters in ParamNames order.
func (m *Model) ParamShapes() [][]int { return m.dims }

// Weight returns a copy of a conv or linear layer's weight in PyTorch layout
// ([O,I,3,3] or [K,C]) and its bias.
func (m *Model) Weight(layer string) (*weights.Tensor, []float32, error) {
	l, _, err := models.FindLayer(Arch, m.layers, layer)
	if err != nil {
		return nil, nil, err
	}
	if l.Kind != models.Conv2d && l.Kind != models.Linear {
		var names []string
		for _, x := range m.layers {
			if x.Kind == models.Conv2d || x.Kind == models.Linear {
				names = append(names, x.Name)
			}
		}
		return nil, nil, fmt.Errorf("layer %q is a %s, which has no weight; layers with weights: %s", layer, l.Kind, strings.Join(names, ", "))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, fmt.Errorf("model %s was closed", Arch)
	}
	w := m.host[m.index[layer+".weight"]]
	bias := append([]float32(nil), m.host[m.index[layer+".bias"]]...)
	if l.Kind == models.Conv2d {
		return &weights.Tensor{Shape: []int{l.Out, l.In, 3, 3}, Data: models.KernelHWIOToOIHW(w, l.Out, l.In)}, bias, nil
	}
	return &weights.Tensor{Shape: []int{l.Out, l.In}, Data: append([]float32(nil), w...)}, bias, nil
}

// Weights returns all parameters as a torchvision-named weight set in
// PyTorch layouts (what SaveSafetensors writes and Load reads).
func (m *Model) Weights() (*weights.Set, error) {
	s := weights.NewSet(m.Source)
	for _, l := range m.layers {
		if l.Kind != models.Conv2d && l.Kind != models.Linear {
			continue
		}
		w, b, err := m.Weight(l.Name)
		if err != nil {
			return nil, err
		}
		s.Tensors[l.Name+".weight"] = w
		s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: b}
	}
	return s, nil
}

// Close releases the parameter buffers and the cached executable.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	if m.exec != nil {
		m.exec.Finalize()
		m.exec = nil
	}
	for _, t := range m.params {
		_ = t.FinalizeAll()
	}
	m.params = nil
}

func kernelToHWIO(k []float32, o, in int) []float32 {
	out := make([]float32, len(k))
	models.KernelOIHWToHWIO(out, k, o, in)
	return out
}

// WeightsSource says where the weights came from.
func (m *Model) WeightsSource() string { return m.Source }
