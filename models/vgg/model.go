package vgg

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
)

// BatchNormEps is the epsilon of torchvision's models.BatchNorm2d.
const BatchNormEps = 1e-5

// Model is a VGG network with its parameters converted to the graph's layouts.
// It is safe for concurrent use; Close releases the parameter buffers.
type Model struct {
	// Config is the architecture, as inferred from the weights.
	Config Config
	// Source describes where the weights came from.
	Source string

	layers  []models.Layer
	byName  map[string]int
	params  []*tensors.Tensor // In the order of paramNames.
	names   []string
	index   map[string]int
	mu      sync.Mutex
	closed  bool
	backend compute.Backend
}

// Load converts a torchvision-named weight set into a Model. The architecture is
// inferred from the tensors (see ConfigFromWeights). Unused extra tensors (such as
// BN's num_batches_tracked) are ignored; missing or mis-shaped ones are errors
// naming the tensor with expected and found shapes.
//
// Parameter layouts held by the model (PyTorch's on the left):
//
//	conv   [O,I,3,3] → [3,3,I,O] (HWIO, channels-last)
//	BN     γ,β,μ,σ² → scale = γ/√(σ²+ε), shift = β − μ·scale, each [C]
//	linear [out,in]  → [in,out]; classifier.0's input axis is reordered from
//	                   PyTorch's flatten order (C,H,W) to channels-last (H,W,C).
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

func build(cfg Config, w *weights.Set) (*Model, error) {
	m := &Model{Config: cfg, Source: w.Source, layers: cfg.Layers(), byName: map[string]int{}, index: map[string]int{}}
	for i, l := range m.layers {
		m.byName[l.Name] = i
	}
	add := func(name string, data []float32, dims ...int) {
		m.index[name] = len(m.params)
		m.names = append(m.names, name)
		m.params = append(m.params, tensors.FromFlatDataAndDimensions(data, dims...))
	}
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d:
			k, err := w.Get(l.Name+".weight", l.Out, l.In, 3, 3)
			if err != nil {
				return nil, err
			}
			b, err := w.Get(l.Name+".bias", l.Out)
			if err != nil {
				return nil, err
			}
			add(l.Name+".weight", oihwToHWIO(k.Data, l.Out, l.In), 3, 3, l.In, l.Out)
			add(l.Name+".bias", clone(b.Data), l.Out)
		case models.BatchNorm2d:
			var ts [4]*weights.Tensor
			for i, f := range []string{"weight", "bias", "running_mean", "running_var"} {
				t, err := w.Get(l.Name+"."+f, l.Out)
				if err != nil {
					return nil, err
				}
				ts[i] = t
			}
			scale := make([]float32, l.Out)
			shift := make([]float32, l.Out)
			for c := range scale {
				v := float64(ts[3].Data[c])
				if v < 0 || math.IsNaN(v) {
					return nil, fmt.Errorf("weights %s: tensor %q has a negative or NaN variance %g at channel %d", w.Source, l.Name+".running_var", v, c)
				}
				s := float64(ts[0].Data[c]) / math.Sqrt(v+BatchNormEps)
				scale[c] = float32(s)
				shift[c] = float32(float64(ts[1].Data[c]) - float64(ts[2].Data[c])*s)
			}
			add(l.Name+".scale", scale, l.Out)
			add(l.Name+".shift", shift, l.Out)
		case models.Linear:
			wt, err := w.Get(l.Name+".weight", l.Out, l.In)
			if err != nil {
				return nil, err
			}
			b, err := w.Get(l.Name+".bias", l.Out)
			if err != nil {
				return nil, err
			}
			var data []float32
			if l.Name == "classifier.0" {
				data = linearCHWToHWCIn(wt.Data, l.Out, cfg.LastChannels(), cfg.PoolSize)
			} else {
				data = transpose2D(wt.Data, l.Out, l.In)
			}
			add(l.Name+".weight", data, l.In, l.Out)
			add(l.Name+".bias", clone(b.Data), l.Out)
		}
	}
	for _, v := range w.Tensors {
		for _, x := range v.Data {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("weights %s: a tensor holds a non-finite value (NaN or Inf); the checkpoint is corrupt", w.Source)
			}
		}
	}
	return m, nil
}

// Arch is the architecture name (see Config.Arch).
func (m *Model) Arch() string { return m.Config.Arch }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

var _ models.Network = (*Model)(nil)

// Layers returns the modules in execution order (torchvision names).
func (m *Model) Layers() []models.Layer { return m.layers }

// models.Layer returns the named layer, or an error listing the valid names.
func (m *Model) Layer(name string) (models.Layer, error) {
	i, ok := m.byName[name]
	if !ok {
		return models.Layer{}, fmt.Errorf("model %s has no layer %q; valid layers: %s", m.Config.Arch, name, strings.Join(m.LayerNames(), ", "))
	}
	return m.layers[i], nil
}

// LayerNames lists every layer name in execution order.
func (m *Model) LayerNames() []string {
	names := make([]string, len(m.layers))
	for i, l := range m.layers {
		names[i] = l.Name
	}
	return names
}

// LayerIndex returns the position of a layer in execution order, or -1.
func (m *Model) LayerIndex(name string) int {
	if i, ok := m.byName[name]; ok {
		return i
	}
	return -1
}

// ParamNames lists the converted parameters, in the order Params returns them.
func (m *Model) ParamNames() []string { return m.names }

// Params returns the converted parameter tensors (see Load for layouts), moved
// to the backend's device on first use. The caller must not modify or finalize them.
func (m *Model) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("model %s (%s) was closed", m.Config.Arch, m.Source)
	}
	if m.backend == nil {
		for i, t := range m.params {
			if err := t.ToDevice(backend, 0); err != nil {
				return nil, fmt.Errorf("moving parameter %q to backend %s: %w", m.names[i], backend.Name(), err)
			}
		}
		m.backend = backend
	} else if m.backend != backend {
		return nil, fmt.Errorf("model %s is bound to backend %s; load it again to use backend %s", m.Config.Arch, m.backend.Name(), backend.Name())
	}
	return m.params, nil
}

// Weight returns a copy of a conv or linear layer's weight in PyTorch layout
// ([O,I,kh,kw] for convolutions, [out,in] for linear layers) and its bias.
func (m *Model) Weight(layer string) (w *weights.Tensor, bias []float32, err error) {
	l, err := m.Layer(layer)
	if err != nil {
		return nil, nil, err
	}
	if l.Kind != models.Conv2d && l.Kind != models.Linear {
		return nil, nil, fmt.Errorf("layer %q is a %s, which has no weight; conv layers: %s", layer, l.Kind, strings.Join(m.NamesOfKind(models.Conv2d), ", "))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, fmt.Errorf("model %s was closed", m.Config.Arch)
	}
	wt, err := tensors.CopyFlatData[float32](m.params[m.index[layer+".weight"]])
	if err != nil {
		return nil, nil, err
	}
	bias, err = tensors.CopyFlatData[float32](m.params[m.index[layer+".bias"]])
	if err != nil {
		return nil, nil, err
	}
	if l.Kind == models.Conv2d {
		return &weights.Tensor{Shape: []int{l.Out, l.In, 3, 3}, Data: hwioToOIHW(wt, l.Out, l.In)}, bias, nil
	}
	var data []float32
	if layer == "classifier.0" {
		data = linearHWCInToCHW(wt, l.Out, m.Config.LastChannels(), m.Config.PoolSize)
	} else {
		data = transpose2D(wt, l.In, l.Out)
	}
	return &weights.Tensor{Shape: []int{l.Out, l.In}, Data: data}, bias, nil
}

// NamesOfKind lists the layers of one kind, in order.
func (m *Model) NamesOfKind(k models.Kind) []string {
	var out []string
	for _, l := range m.layers {
		if l.Kind == k {
			out = append(out, l.Name)
		}
	}
	return out
}

// NumParams is the total number of learned values (as PyTorch's parameters()).
func (m *Model) NumParams() int {
	n := 0
	for _, l := range m.layers {
		n += l.Params
	}
	return n
}

// Close releases the parameter buffers. Executables built on the model must not
// be used afterwards.
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

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

func oihwToHWIO(k []float32, o, in int) []float32 {
	out := make([]float32, len(k))
	for oi := 0; oi < o; oi++ {
		for ii := 0; ii < in; ii++ {
			for p := 0; p < 9; p++ {
				out[(p*in+ii)*o+oi] = k[(oi*in+ii)*9+p]
			}
		}
	}
	return out
}

func hwioToOIHW(k []float32, o, in int) []float32 {
	out := make([]float32, len(k))
	for oi := 0; oi < o; oi++ {
		for ii := 0; ii < in; ii++ {
			for p := 0; p < 9; p++ {
				out[(oi*in+ii)*9+p] = k[(p*in+ii)*o+oi]
			}
		}
	}
	return out
}

// transpose2D returns the [cols,rows] transpose of a row-major [rows,cols]
// matrix, in 16×16 tiles (so each tile's reads and writes stay in cache)
// spread over the CPUs.
func transpose2D(x []float32, rows, cols int) []float32 {
	out := make([]float32, len(x))
	const blk = 16
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for r0 := wk * blk; r0 < rows; r0 += workers * blk {
				r1 := min(r0+blk, rows)
				for c0 := 0; c0 < cols; c0 += blk {
					c1 := min(c0+blk, cols)
					for r := r0; r < r1; r++ {
						row := x[r*cols : r*cols+cols]
						for c := c0; c < c1; c++ {
							out[c*rows+r] = row[c]
						}
					}
				}
			}
		}(wk)
	}
	wg.Wait()
	return out
}

// linearCHWToHWCIn converts classifier.0's [out, C*P*P] weight (PyTorch flatten
// order C,H,W) to [P*P*C, out] (channels-last flatten order, input-major): each
// row is reordered to H,W,C, then the matrix is transposed in cache blocks.
func linearCHWToHWCIn(w []float32, out, c, p int) []float32 {
	pp := p * p
	in := c * pp
	rows := make([]float32, len(w))
	for o := 0; o < out; o++ {
		src := w[o*in : (o+1)*in]
		dst := rows[o*in : (o+1)*in]
		for ci := 0; ci < c; ci++ {
			for s := 0; s < pp; s++ {
				dst[s*c+ci] = src[ci*pp+s]
			}
		}
	}
	return transpose2D(rows, out, in)
}

func linearHWCInToCHW(w []float32, out, c, p int) []float32 {
	res := make([]float32, len(w))
	pp := p * p
	for o := 0; o < out; o++ {
		for ci := 0; ci < c; ci++ {
			for s := 0; s < pp; s++ {
				res[o*c*pp+ci*pp+s] = w[(s*c+ci)*out+o]
			}
		}
	}
	return res
}
