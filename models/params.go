package models

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// BatchNormEps is the epsilon of torchvision's BatchNorm2d modules.
const BatchNormEps = 1e-5

// ParamStore converts a torchvision-named weight set into the parameter
// layouts the graph builders use (through Scope) and holds them: the shared
// part of every model family's Load. Layouts (PyTorch's on the left):
//
//	conv    [O,I/g,kh,kw] → "<m>.weight" HWIO [kh,kw,I/g,O], "<m>.bias" [O]
//	BN      γ,β,μ,σ²      → "<m>.scale" = γ/√(σ²+ε), "<m>.shift" = β − μ·scale, each [C]
//	linear  [out,in]      → "<m>.weight" [in,out] (on the pure-Go backend: row
//	                        chunks "<m>.weight[a:b]", see LinearChunked), "<m>.bias" [out]
//
// Every tensor read is checked (name, shape, finite values); Unused lists
// tensors of the set that no module read. It is safe for concurrent use.
type ParamStore struct {
	// Source describes where the weights came from.
	Source string

	w      *weights.Set
	used   map[string]bool
	names  []string
	host   [][]float32
	dims   [][]int
	linear map[string]bool // Linear weights ([in,out]), chunked when bound to the Go backend.
	orig   map[string]*weights.Tensor
	counts map[string]int
	convIn map[string]int

	mu     sync.Mutex
	params []*tensors.Tensor
	bNames []string
	bound  compute.Backend
	closed bool
}

// NewParamStore starts converting w.
func NewParamStore(w *weights.Set) *ParamStore {
	return &ParamStore{Source: w.Source, w: w, used: map[string]bool{}, linear: map[string]bool{},
		orig: map[string]*weights.Tensor{}, counts: map[string]int{}, convIn: map[string]int{}}
}

func (p *ParamStore) get(name string, dims ...int) (*weights.Tensor, error) {
	t, err := p.w.Get(name, dims...)
	if err != nil {
		if !p.w.Has(name) {
			return nil, fmt.Errorf("weights %s: tensor %q is missing (expected shape %v)", p.w.Source, name, dims)
		}
		return nil, err
	}
	if i := weights.FirstNonFinite(t.Data); i >= 0 {
		return nil, fmt.Errorf("weights %s: tensor %q holds a non-finite value at index %d; the checkpoint is corrupt", p.w.Source, name, i)
	}
	p.used[name] = true
	return t, nil
}

// Tensor returns the named tensor of the weight set, checked, marking it used.
// A nil dims accepts any shape.
func (p *ParamStore) Tensor(name string, dims ...int) (*weights.Tensor, error) {
	return p.get(name, dims...)
}

// Has reports whether the weight set holds name.
func (p *ParamStore) Has(name string) bool { return p.w.Has(name) }

// keep returns t for the store to hold beyond conversion: a copy when t
// aliases a file mapping (weights.MapSafetensors), which is released after
// loading.
func (p *ParamStore) keep(t *weights.Tensor) *weights.Tensor {
	if !p.w.Mapped() {
		return t
	}
	return &weights.Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...), DType: t.DType}
}

func (p *ParamStore) add(name string, data []float32, dims ...int) {
	p.names = append(p.names, name)
	p.host = append(p.host, data)
	p.dims = append(p.dims, dims)
}

// Conv converts the convolution module m with o outputs, in/groups inputs
// per group and a kh×kw kernel; bias says whether it has one.
func (p *ParamStore) Conv(m string, o, inPerGroup, kh, kw int, bias bool) error {
	k, err := p.get(m+".weight", o, inPerGroup, kh, kw)
	if err != nil {
		return err
	}
	hwio := make([]float32, len(k.Data))
	kk := kh * kw
	for oi := 0; oi < o; oi++ {
		for ii := 0; ii < inPerGroup; ii++ {
			for q := 0; q < kk; q++ {
				hwio[(q*inPerGroup+ii)*o+oi] = k.Data[(oi*inPerGroup+ii)*kk+q]
			}
		}
	}
	p.add(m+".weight", hwio, kh, kw, inPerGroup, o)
	p.orig[m+".weight"] = p.keep(k)
	p.counts[m+".weight"] = len(k.Data)
	if bias {
		b, err := p.get(m+".bias", o)
		if err != nil {
			return err
		}
		p.add(m+".bias", append([]float32(nil), b.Data...), o)
		p.orig[m+".bias"] = p.keep(b)
		p.counts[m+".bias"] = o
	}
	return nil
}

// SetConvIn records a convolution's total input channels (for layer tables).
func (p *ParamStore) SetConvIn(m string, in int) { p.convIn[m] = in }

// BatchNorm converts the eval-mode BatchNorm2d module m over c channels.
func (p *ParamStore) BatchNorm(m string, c int) error {
	var ts [4]*weights.Tensor
	for i, f := range []string{"weight", "bias", "running_mean", "running_var"} {
		t, err := p.get(m+"."+f, c)
		if err != nil {
			return err
		}
		ts[i] = t
	}
	if p.w.Has(m + ".num_batches_tracked") {
		p.used[m+".num_batches_tracked"] = true
	}
	scale := make([]float32, c)
	shift := make([]float32, c)
	for i := range scale {
		v := float64(ts[3].Data[i])
		if v < 0 {
			return fmt.Errorf("weights %s: tensor %q has a negative variance %g at channel %d", p.w.Source, m+".running_var", v, i)
		}
		s := float64(ts[0].Data[i]) / math.Sqrt(v+BatchNormEps)
		scale[i] = float32(s)
		shift[i] = float32(float64(ts[1].Data[i]) - float64(ts[2].Data[i])*s)
	}
	p.add(m+".scale", scale, c)
	p.add(m+".shift", shift, c)
	p.orig[m+".shift"] = &weights.Tensor{Shape: []int{c}, Data: append([]float32(nil), shift...)}
	p.counts[m+".weight"] = c
	p.counts[m+".bias"] = c
	return nil
}

// Linear converts the Linear module m [out,in] (with bias).
func (p *ParamStore) Linear(m string, out, in int) error {
	w, err := p.get(m+".weight", out, in)
	if err != nil {
		return err
	}
	b, err := p.get(m+".bias", out)
	if err != nil {
		return err
	}
	p.add(m+".weight", Transpose2D(w.Data, out, in), in, out)
	p.linear[m+".weight"] = true
	p.add(m+".bias", append([]float32(nil), b.Data...), out)
	p.orig[m+".weight"], p.orig[m+".bias"] = p.keep(w), p.keep(b)
	p.counts[m+".weight"], p.counts[m+".bias"] = len(w.Data), out
	p.convIn[m] = in
	return nil
}

// Unused lists the tensors of the weight set that no conversion read, sorted.
func (p *ParamStore) Unused() []string {
	var out []string
	for name := range p.w.Tensors {
		if !p.used[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// CheckAllUsed returns an error naming the tensors no module read (a weight
// file for another architecture or variant), at most 8 of them.
func (p *ParamStore) CheckAllUsed(arch string) error {
	u := p.Unused()
	if len(u) == 0 {
		return nil
	}
	more := ""
	if len(u) > 8 {
		more = fmt.Sprintf(" and %d more", len(u)-8)
		u = u[:8]
	}
	return fmt.Errorf("weights %s: %d tensor(s) are not part of %s: %s%s; is this a checkpoint of another architecture?", p.w.Source, len(p.Unused()), arch, strings.Join(u, ", "), more)
}

// Done ends conversion: the weight set is released.
func (p *ParamStore) Done() { p.w = nil }

// Counts maps each PyTorch parameter name to its number of learned values.
func (p *ParamStore) Counts() map[string]int { return p.counts }

// ConvIn maps conv and linear modules to their input widths.
func (p *ParamStore) ConvIn() map[string]int { return p.convIn }

// NumParams is the total number of learned values (PyTorch's parameters()).
func (p *ParamStore) NumParams() int {
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// Names lists the graph parameters in Params order for a backend (the pure-Go
// backend gets linear weights as row chunks). Before binding, the unchunked names.
func (p *ParamStore) Names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bNames != nil {
		return p.bNames
	}
	return p.names
}

// Shapes lists the graph shapes in Names order.
func (p *ParamStore) Shapes() [][]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.params != nil {
		out := make([][]int, len(p.params))
		for i, t := range p.params {
			out[i] = t.Shape().Dimensions
		}
		return out
	}
	return p.dims
}

// Params binds the parameters to backend (once: a store serves one backend)
// and returns them in Names order.
func (p *ParamStore) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("model (%s) was closed", p.Source)
	}
	if p.bound != nil {
		if p.bound != backend {
			return nil, fmt.Errorf("model (%s) is bound to backend %s; load it again to use backend %s", p.Source, p.bound.Name(), backend.Name())
		}
		return p.params, nil
	}
	chunk := IsGoBackend(backend)
	var names []string
	var params []*tensors.Tensor
	for i, name := range p.names {
		d := p.dims[i]
		if chunk && p.linear[name] {
			in, out := d[0], d[1]
			k := (in + LinearChunkRows(out) - 1) / LinearChunkRows(out)
			if k > 1 {
				for c := 0; c < k; c++ {
					a, b := c*in/k, (c+1)*in/k
					t := tensors.FromShape(shapes.Make(dtypes.Float32, b-a, out))
					tensors.MustMutableFlatData(t, func(f []float32) { copy(f, p.host[i][a*out:b*out]) })
					names = append(names, fmt.Sprintf("%s[%d:%d]", name, a, b))
					params = append(params, t)
				}
				continue
			}
		}
		t := tensors.FromShape(shapes.Make(dtypes.Float32, d...))
		tensors.MustMutableFlatData(t, func(f []float32) { copy(f, p.host[i]) })
		names = append(names, name)
		params = append(params, t)
	}
	for i, t := range params {
		if err := t.ToDevice(backend, 0); err != nil {
			return nil, fmt.Errorf("moving parameter %q to backend %s: %w", names[i], backend.Name(), err)
		}
	}
	p.params, p.bNames, p.bound = params, names, backend
	p.host = nil
	return p.params, nil
}

// Weight returns a copy of a conv or linear module's weight in PyTorch layout
// and its bias (nil when it has none).
func (p *ParamStore) Weight(m string) (*weights.Tensor, []float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, fmt.Errorf("model (%s) was closed", p.Source)
	}
	w, ok := p.orig[m+".weight"]
	if !ok {
		var mods []string
		for name := range p.orig {
			if strings.HasSuffix(name, ".weight") {
				mods = append(mods, strings.TrimSuffix(name, ".weight"))
			}
		}
		sort.Strings(mods)
		return nil, nil, fmt.Errorf("module %q has no convolution or linear weight; modules with weights: %s", m, strings.Join(mods, ", "))
	}
	out := &weights.Tensor{Shape: append([]int(nil), w.Shape...), Data: append([]float32(nil), w.Data...)}
	var bias []float32
	if b, ok := p.orig[m+".bias"]; ok {
		bias = append([]float32(nil), b.Data...)
	}
	return out, bias, nil
}

// Close releases the parameter buffers.
func (p *ParamStore) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, t := range p.params {
		_ = t.FinalizeAll()
	}
	p.params, p.host = nil, nil
}

// ModuleBias returns a BatchNorm2d module's effective bias (its folded shift
// β − μ·scale), or a convolution's bias.
func (p *ParamStore) ModuleBias(m string) ([]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b, ok := p.orig[m+".shift"]; ok {
		return append([]float32(nil), b.Data...), nil
	}
	if b, ok := p.orig[m+".bias"]; ok {
		return append([]float32(nil), b.Data...), nil
	}
	return nil, fmt.Errorf("module %q has no bias", m)
}

// Stored implements the parameter half of Network, ParamShaper and
// BiasedNetwork (ParamNames, ParamShapes, Params, Weight, ModuleBias,
// NumParams, Close) on a ParamStore: model families embed it.
type Stored struct{ store *ParamStore }

// StoredIn returns the embeddable methods of p.
func StoredIn(p *ParamStore) Stored { return Stored{store: p} }

// ParamNames names the graph parameters in Params order.
func (s Stored) ParamNames() []string { return s.store.Names() }

// ParamShapes returns the graph shapes of the parameters in ParamNames order.
func (s Stored) ParamShapes() [][]int { return s.store.Shapes() }

// Params binds the parameters to backend (once) and returns them.
func (s Stored) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	return s.store.Params(backend)
}

// Weight returns a copy of a conv ([O,I/groups,kh,kw]) or linear ([out,in])
// module's weight in PyTorch layout, and its bias (nil when it has none).
func (s Stored) Weight(layer string) (*weights.Tensor, []float32, error) {
	return s.store.Weight(layer)
}

// ModuleBias returns a batch norm's effective bias β − μ·γ/√(σ²+ε), or a
// convolution's or linear module's bias (FullGrad).
func (s Stored) ModuleBias(module string) ([]float32, error) { return s.store.ModuleBias(module) }

// NumParams is the total number of learned values (PyTorch's parameters()).
func (s Stored) NumParams() int { return s.store.NumParams() }

// Close releases the parameter buffers.
func (s Stored) Close() { s.store.Close() }
