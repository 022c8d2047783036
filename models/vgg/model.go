package vgg

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
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

	layers  []models.Layer
	byName  map[string]int
	params  []*tensors.Tensor // In the order of paramNames.
	names   []string
	index   map[string]int
	linear  map[string][]int // Linear layer → indices of its weight's row chunks in params.
	mu      sync.Mutex
	closed  bool
	backend compute.Backend
}

// Load converts a torchvision-named weight set into a Model. The architecture is
// inferred from the tensors (see ConfigFromWeights). Unused extra tensors and
// integer-typed parameters load, each with a line in Model.Warnings (BN's
// num_batches_tracked, an integer counter no module reads, is expected and
// silent); missing or mis-shaped ones are errors naming the tensor with
// expected and found shapes. A set that aliases a file mapping
// (weights.MapSafetensors) has each conv and linear weight released
// (weights.Set.Release) once converted; the model keeps nothing of w.
//
// Parameter layouts held by the model (PyTorch's on the left):
//
//	conv   [O,I,3,3] → [3,3,I,O] (HWIO, channels-last)
//	BN     γ,β,μ,σ² → scale = γ/√(σ²+ε), shift = β − μ·scale, each [C]
//	linear [out,in]  → [in,out], stored as consecutive row chunks
//	                   "<layer>.weight[a:b]" of at most
//	                   models.LinearChunkRows(out) rows each (see
//	                   models.LinearChunked); classifier.0's input axis is
//	                   reordered from PyTorch's flatten order (C,H,W) to
//	                   channels-last (H,W,C). Bound to a backend other
//	                   than the pure-Go one (XLA), each weight is merged
//	                   back into one [in,out] tensor "<layer>.weight".
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

// newModel returns a model of cfg without parameters.
func newModel(cfg Config, source string) *Model {
	m := &Model{Config: cfg, Source: source, layers: cfg.Layers(), byName: map[string]int{}, index: map[string]int{},
		linear: map[string][]int{}}
	for i, l := range m.layers {
		m.byName[l.Name] = i
	}
	return m
}

// add appends a zero parameter tensor and returns its storage to fill in
// (the model is still being built: nothing else sees the tensor yet).
func (m *Model) add(name string, dims ...int) []float32 {
	m.index[name] = len(m.params)
	m.names = append(m.names, name)
	t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
	var flat []float32
	tensors.MustMutableFlatData(t, func(f []float32) { flat = f })
	models.AdviseHugePages(flat) // Before the first write: see its doc.
	m.params = append(m.params, t)
	return flat
}

// addLinear appends the row chunks of linear layer l's [in,out] weight (see
// Load) and returns their storage and boundaries.
func (m *Model) addLinear(l models.Layer) (chunks [][]float32, bounds []int) {
	bounds = linearChunkBounds(l.In, l.Out)
	chunks = make([][]float32, len(bounds)-1)
	for i := range chunks {
		m.linear[l.Name] = append(m.linear[l.Name], len(m.params))
		chunks[i] = m.add(fmt.Sprintf("%s.weight[%d:%d]", l.Name, bounds[i], bounds[i+1]), bounds[i+1]-bounds[i], l.Out)
	}
	return chunks, bounds
}

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
			chunks, bounds := m.addLinear(l)
			c, pp := 0, 0 // classifier.0 reads a flattened map: reorder its inputs from (C,H,W) to (H,W,C).
			if l.Name == "classifier.0" {
				c, pp = cfg.LastChannels(), cfg.PoolSize*cfg.PoolSize
			}
			fillLinearChunks(chunks, bounds, wt.Data, l.In, l.Out, c, pp)
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

// linearChunkBounds splits the `in` input rows of a linear layer's [in,out]
// weight into equal-as-possible chunks of at most models.LinearChunkRows(out)
// rows; it returns the chunk boundaries 0 = b_0 < b_1 < … < b_k = in.
func linearChunkBounds(in, out int) []int {
	k := (in + models.LinearChunkRows(out) - 1) / models.LinearChunkRows(out)
	bounds := make([]int, k+1)
	for i := range bounds {
		bounds[i] = i * in / k
	}
	return bounds
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
		if !models.IsGoBackend(backend) {
			m.mergeLinearChunks() // Other backends multiply the whole weight best.
		}
		// Each move copies a tensor into a backend buffer and drops the local
		// copy; collecting every ~64 MB lets the next moves reuse that memory,
		// so binding needs about one copy of the weights instead of two.
		moved := 0
		for i, t := range m.params {
			if err := t.ToDevice(backend, 0); err != nil {
				return nil, fmt.Errorf("moving parameter %q to backend %s: %w", m.names[i], backend.Name(), err)
			}
			if moved += int(t.Memory()); moved >= 64<<20 {
				runtime.GC()
				moved = 0
			}
		}
		if moved > 0 {
			runtime.GC()
		}
		m.backend = backend
	} else if m.backend != backend {
		return nil, fmt.Errorf("model %s is bound to backend %s; load it again to use backend %s", m.Config.Arch, m.backend.Name(), backend.Name())
	}
	return m.params, nil
}

// mergeLinearChunks replaces each chunked linear weight by one [in,out]
// tensor named "<layer>.weight" (before the parameters are first moved to a
// backend other than the pure-Go one: XLA gains nothing from the chunks).
// Called with m.mu held.
func (m *Model) mergeLinearChunks() {
	var params []*tensors.Tensor
	var names []string
	index := map[string]int{}
	linear := map[string][]int{}
	chunkOf := map[int]string{}
	for layer, idx := range m.linear {
		for _, i := range idx {
			chunkOf[i] = layer
		}
	}
	for i, t := range m.params {
		if layer, ok := chunkOf[i]; ok {
			idx := m.linear[layer]
			if len(idx) == 1 {
				linear[layer] = []int{len(params)}
			} else if i != idx[0] {
				continue // Merged with the first chunk.
			} else {
				out, rows := t.Shape().Dimensions[1], 0
				for _, j := range idx {
					rows += m.params[j].Shape().Dimensions[0]
				}
				t = tensors.FromShape(shapes.Make(dtypes.Float32, rows, out))
				tensors.MustMutableFlatData(t, func(merged []float32) {
					at := 0
					for _, j := range idx {
						tensors.MustConstFlatData(m.params[j], func(flat []float32) { at += copy(merged[at:], flat) })
						_ = m.params[j].FinalizeAll()
					}
				})
				linear[layer] = []int{len(params)}
				index[layer+".weight"] = len(params)
				params = append(params, t)
				names = append(names, layer+".weight")
				continue
			}
		}
		index[m.names[i]] = len(params)
		params = append(params, t)
		names = append(names, m.names[i])
	}
	m.params, m.names, m.index, m.linear = params, names, index, linear
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
	bias, err = tensors.CopyFlatData[float32](m.params[m.index[layer+".bias"]])
	if err != nil {
		return nil, nil, err
	}
	if l.Kind == models.Conv2d {
		wt, err := tensors.CopyFlatData[float32](m.params[m.index[layer+".weight"]])
		if err != nil {
			return nil, nil, err
		}
		return &weights.Tensor{Shape: []int{l.Out, l.In, 3, 3}, Data: models.KernelHWIOToOIHW(wt, l.Out, l.In)}, bias, nil
	}
	wt := make([]float32, 0, l.In*l.Out) // [in,out]: the row chunks one after the other.
	for _, i := range m.linear[layer] {
		part, err := tensors.CopyFlatData[float32](m.params[i])
		if err != nil {
			return nil, nil, err
		}
		wt = append(wt, part...)
	}
	var data []float32
	if layer == "classifier.0" {
		data = linearHWCInToCHW(wt, l.Out, m.Config.LastChannels(), m.Config.PoolSize)
	} else {
		data = models.Transpose2D(wt, l.In, l.Out)
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

// fillLinearChunks writes the transpose of a PyTorch linear weight w
// [out,in] — the [in,out] matrix — into its row chunks (chunk i holds rows
// bounds[i]..bounds[i+1]). With c > 0 (classifier.0) the input axis is also
// reordered from PyTorch's flatten order (C,H,W), pp = H·W, to channels-last
// (H,W,C): row s·c+ch of the result is column ch·pp+s of w.
//
// The transposition is models.TransposeRows (cache-tiled, in parallel).
func fillLinearChunks(chunks [][]float32, bounds []int, w []float32, in, out, c, pp int) {
	if c <= 0 {
		c, pp = in, 1
	}
	rows := make([][]float32, in) // Destination row r of the [in,out] matrix.
	for k, chunk := range chunks {
		for j := bounds[k]; j < bounds[k+1]; j++ {
			rows[j] = chunk[(j-bounds[k])*out : (j-bounds[k]+1)*out]
		}
	}
	models.TransposeRows(rows, w, out, c, pp)
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
