package vgg

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
)

// BatchNormEps is the epsilon of torchvision's BatchNorm2d (models.BatchNormEps).
const BatchNormEps = models.BatchNormEps

// Model is a VGG network with its parameters converted to the graph's layouts.
// It is safe for concurrent use; Close releases the parameter buffers.
type Model struct {
	// Config is the architecture, as inferred from the weights.
	Config Config
	// Source describes where the weights came from.
	Source string
	// Warnings lists surprising content of the weights that loading tolerated:
	// tensors no module reads (BatchNorm's num_batches_tracked excepted) and
	// parameters stored as integers (converted to float32). See LoadWarnings.
	Warnings []string

	layers []models.Layer
	byName map[string]int
	set    models.ParamSet
}

// Load converts a torchvision-named weight set into a Model. The architecture is
// inferred from the tensors (see ConfigFromWeights). Unused extra tensors and
// integer-typed parameters load, each with a line in Model.Warnings (BN's
// num_batches_tracked, an integer counter no module reads, is expected and
// silent); missing or mis-shaped ones are errors naming the tensor with
// expected and found shapes. A set that aliases a file mapping
// (weights.MapSafetensors) has each conv weight released
// (weights.Set.Release) once converted, and its linear weights kept in the
// mapping (weights.Set.Keep; see models.ParamSet): they are the backend's
// buffers on the pure-Go backend, and the file stays mapped until Close.
//
// Parameter layouts held by the model (PyTorch's on the left):
//
//	conv   [O,I,3,3] → [3,3,I,O] (HWIO, channels-last)
//	BN     γ,β,μ,σ² → scale = γ/√(σ²+ε), shift = β − μ·scale, each [C]
//	linear [out,in]  → [out,in] (classifier.0 reads the features flattened
//	                   in PyTorch's (C,H,W) order, models.Flatten); bound
//	                   to the pure-Go backend, row chunks
//	                   "<layer>.weight[a:b]" (models.ParamSet)
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

// newModel returns a model of cfg without parameters.
func newModel(cfg Config, source string) *Model {
	m := &Model{Config: cfg, Source: source, layers: cfg.Layers(), byName: map[string]int{}}
	for i, l := range m.layers {
		m.byName[l.Name] = i
	}
	return m
}

// add appends a zero parameter tensor and returns its storage to fill in
// (the model is still being built: nothing else sees the tensor yet).
func (m *Model) add(name string, dims ...int) []float32 { return m.set.Add(name, dims...) }

// build converts w into a Model: each tensor is checked (shape, finite
// values) and copied once, from w into the parameter's own buffer in the
// graph layout. w may alias a file mapping (weights.MapSafetensors), released
// after build returns: the model keeps no reference to w's data, and each
// conv and linear weight of a mapped w is released (weights.Set.Release) as
// soon as it is converted, so that the file's pages and the converted
// parameters are not all resident at once. An unmapped w is not modified.
func build(cfg Config, w *weights.Set) (*Model, error) {
	m := newModel(cfg, w.Source)
	used := map[string]bool{}
	// get returns a checked tensor of w.
	get := func(name string, dims ...int) (*weights.Tensor, error) {
		t, err := w.Get(name, dims...)
		if err != nil {
			return nil, err
		}
		if err := checkFinite(w.Source, name, t.Data); err != nil {
			return nil, err
		}
		used[name] = true
		if t.IsInteger() {
			m.Warnings = append(m.Warnings, fmt.Sprintf("weights %s: parameter %q is stored as integers (%s), converted to float32; is this the right file?", w.Source, name, t.DType))
		}
		return t, nil
	}
	add := m.add
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d:
			k, err := get(l.Name+".weight", l.Out, l.In, 3, 3)
			if err != nil {
				return nil, err
			}
			b, err := get(l.Name+".bias", l.Out)
			if err != nil {
				return nil, err
			}
			models.KernelOIHWToHWIO(add(l.Name+".weight", 3, 3, l.In, l.Out), k.Data, l.Out, l.In)
			copy(add(l.Name+".bias", l.Out), b.Data)
			w.Release(l.Name + ".weight") // A mapped file's pages can go now.
		case models.BatchNorm2d:
			var ts [4]*weights.Tensor
			for i, f := range []string{"weight", "bias", "running_mean", "running_var"} {
				t, err := get(l.Name+"."+f, l.Out)
				if err != nil {
					return nil, err
				}
				ts[i] = t
			}
			scale := add(l.Name+".scale", l.Out)
			shift := add(l.Name+".shift", l.Out)
			for c := range scale {
				v := float64(ts[3].Data[c])
				if v < 0 || math.IsNaN(v) {
					return nil, fmt.Errorf("weights %s: tensor %q has a negative or NaN variance %g at channel %d", w.Source, l.Name+".running_var", v, c)
				}
				s := float64(ts[0].Data[c]) / math.Sqrt(v+BatchNormEps)
				scale[c] = float32(s)
				shift[c] = float32(float64(ts[1].Data[c]) - float64(ts[2].Data[c])*s)
			}
		case models.Linear:
			wt, err := get(l.Name+".weight", l.Out, l.In)
			if err != nil {
				return nil, err
			}
			b, err := get(l.Name+".bias", l.Out)
			if err != nil {
				return nil, err
			}
			m.set.AddLinearWeight(w, l.Name+".weight", wt.Data, l.Out, l.In)
			copy(add(l.Name+".bias", l.Out), b.Data)
			w.Release(l.Name + ".weight")
		}
	}
	var unused []string
	for name, t := range w.Tensors { // Unused extras must be sane too.
		if used[name] {
			continue
		}
		if err := checkFinite(w.Source, name, t.Data); err != nil {
			return nil, err
		}
		if !used[name] && !strings.HasSuffix(name, ".num_batches_tracked") {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		total := len(unused)
		more := ""
		if len(unused) > 8 {
			more = fmt.Sprintf(" and %d more", len(unused)-8)
			unused = unused[:8]
		}
		m.Warnings = append(m.Warnings, fmt.Sprintf("weights %s: %d tensor(s) are not part of %s and were ignored: %s%s",
			w.Source, total, cfg.Arch, strings.Join(unused, ", "), more))
	}
	return m, nil
}

// checkFinite returns an error naming the tensor when data holds a NaN or
// ±Inf (scanned in parallel: weights.FirstNonFinite).
func checkFinite(source, name string, data []float32) error {
	if i := weights.FirstNonFinite(data); i >= 0 {
		return fmt.Errorf("weights %s: tensor %q holds a non-finite value (NaN or Inf) at index %d; the checkpoint is corrupt", source, name, i)
	}
	return nil
}

// Arch is the architecture name (see Config.Arch).
func (m *Model) Arch() string { return m.Config.Arch }

// LoadWarnings returns Warnings (see zoo.Info.Warnings).
func (m *Model) LoadWarnings() []string { return m.Warnings }

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
func (m *Model) ParamNames() []string { return m.set.Names() }

// Params returns the converted parameter tensors (see Load for layouts),
// bound to backend on first use (models.ParamSet.Bind). The caller must not
// modify or finalize them.
func (m *Model) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	return m.set.Bind(backend, m.Config.Arch+" from "+m.Source)
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
	read := func(name string) ([]float32, error) {
		d, _, err := m.set.Flat(name)
		if err != nil && m.set.Closed() {
			return nil, fmt.Errorf("model %s was closed", m.Config.Arch)
		}
		return d, err
	}
	if bias, err = read(layer + ".bias"); err != nil {
		return nil, nil, err
	}
	wt, err := read(layer + ".weight")
	if err != nil {
		return nil, nil, err
	}
	if l.Kind == models.Conv2d {
		return &weights.Tensor{Shape: []int{l.Out, l.In, 3, 3}, Data: models.KernelHWIOToOIHW(wt, l.Out, l.In)}, bias, nil
	}
	return &weights.Tensor{Shape: []int{l.Out, l.In}, Data: wt}, bias, nil
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

// Close releases the parameter buffers (and a kept file mapping).
// Executables built on the model must not be used afterwards.
func (m *Model) Close() { m.set.Close() }

func clone(x []float32) []float32 { return append([]float32(nil), x...) }
