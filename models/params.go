package models

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
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
//	linear  [out,in]      → "<m>.weight" [out,in] (on the pure-Go backend: row
//	                        chunks "<m>.weight[a:b]", output rows a..b-1, see
//	                        LinearChunked), "<m>.bias" [out]
//
// Every tensor read is checked (name, shape, finite values); Unused lists
// tensors of the set that no module read. Each converted tensor is copied
// once, from the weight set straight into its graph parameter's own buffer
// in the graph layout. Linear weights need no conversion: where the set
// aliases a file mapping (weights.MapSafetensors) they are kept in it
// (weights.Set.Keep) and, bound to the pure-Go backend, the mapping is their
// backend buffer (BindExternal): never copied, and the file stays mapped
// until Close. Weight and ModuleBias read the parameters back. It is safe
// for concurrent use.
type ParamStore struct {
	// Source describes where the weights came from.
	Source string

	w      *weights.Set
	used   map[string]bool
	set    ParamSet
	linear map[string]bool  // Linear weights ([out,in]), chunked when bound to the Go backend.
	convs  map[string][]int // Conv module → its PyTorch kernel shape [O, I/g, kh, kw].
	counts map[string]int
	convIn map[string]int
}

// NewParamStore starts converting w.
func NewParamStore(w *weights.Set) *ParamStore {
	return &ParamStore{Source: w.Source, w: w, used: map[string]bool{}, linear: map[string]bool{},
		convs: map[string][]int{}, counts: map[string]int{}, convIn: map[string]int{}}
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

// add appends a zero parameter of shape dims and returns its storage to
// fill in (the store is still converting: nothing else sees it yet).
func (p *ParamStore) add(name string, dims ...int) []float32 { return p.set.Add(name, dims...) }

// Conv converts the convolution module m with o outputs, in/groups inputs
// per group and a kh×kw kernel; bias says whether it has one.
func (p *ParamStore) Conv(m string, o, inPerGroup, kh, kw int, bias bool) error {
	k, err := p.get(m+".weight", o, inPerGroup, kh, kw)
	if err != nil {
		return err
	}
	KernelToHWIO(p.add(m+".weight", kh, kw, inPerGroup, o), k.Data, o, inPerGroup, kh*kw)
	p.convs[m] = []int{o, inPerGroup, kh, kw}
	p.counts[m+".weight"] = len(k.Data)
	if bias {
		b, err := p.get(m+".bias", o)
		if err != nil {
			return err
		}
		copy(p.add(m+".bias", o), b.Data)
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
	scale := p.add(m+".scale", c)
	shift := p.add(m+".shift", c)
	for i := range scale {
		v := float64(ts[3].Data[i])
		if v < 0 {
			return fmt.Errorf("weights %s: tensor %q has a negative variance %g at channel %d", p.w.Source, m+".running_var", v, i)
		}
		s := float64(ts[0].Data[i]) / math.Sqrt(v+BatchNormEps)
		scale[i] = float32(s)
		shift[i] = float32(float64(ts[1].Data[i]) - float64(ts[2].Data[i])*s)
	}
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
	// PyTorch's layout is the graph's: keep a mapped file's data, else copy.
	p.set.AddLinearWeight(p.w, m+".weight", w.Data, out, in)
	p.linear[m+".weight"] = true
	copy(p.add(m+".bias", out), b.Data)
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
func (p *ParamStore) Names() []string { return p.set.Names() }

// Shapes lists the graph shapes in Names order.
func (p *ParamStore) Shapes() [][]int { return p.set.Shapes() }

// Params binds the parameters to backend (once: a store serves one backend,
// see ParamSet.Bind) and returns them in Names order.
func (p *ParamStore) Params(backend compute.Backend) ([]*tensors.Tensor, error) {
	return p.set.Bind(backend, p.Source)
}

// flat returns a copy of the parameter name (see ParamSet.Flat).
func (p *ParamStore) flat(name string) (data []float32, ok bool, err error) {
	data, ok, err = p.set.Flat(name)
	if err != nil && p.set.Closed() {
		err = fmt.Errorf("model (%s) was closed", p.Source)
	}
	return data, ok, err
}

// Weight returns a copy of a conv or linear module's weight in PyTorch layout
// and its bias (nil when it has none).
func (p *ParamStore) Weight(m string) (*weights.Tensor, []float32, error) {
	if p.set.Closed() {
		return nil, nil, fmt.Errorf("model (%s) was closed", p.Source)
	}
	var w *weights.Tensor
	if k, ok := p.convs[m]; ok {
		hwio, _, err := p.flat(m + ".weight")
		if err != nil {
			return nil, nil, err
		}
		o, in, kk := k[0], k[1], k[2]*k[3]
		oihw := make([]float32, len(hwio))
		for oi := 0; oi < o; oi++ {
			for ii := 0; ii < in; ii++ {
				for q := 0; q < kk; q++ {
					oihw[(oi*in+ii)*kk+q] = hwio[(q*in+ii)*o+oi]
				}
			}
		}
		w = &weights.Tensor{Shape: append([]int(nil), k...), Data: oihw}
	} else if p.linear[m+".weight"] {
		wt, _, err := p.flat(m + ".weight")
		if err != nil {
			return nil, nil, err
		}
		in := p.convIn[m]
		out := len(wt) / max(in, 1)
		w = &weights.Tensor{Shape: []int{out, in}, Data: wt}
	} else {
		var mods []string
		for c := range p.convs {
			mods = append(mods, c)
		}
		for name := range p.linear {
			mods = append(mods, strings.TrimSuffix(name, ".weight"))
		}
		sort.Strings(mods)
		return nil, nil, fmt.Errorf("module %q has no convolution or linear weight; modules with weights: %s", m, strings.Join(mods, ", "))
	}
	bias, _, err := p.flat(m + ".bias")
	if err != nil {
		return nil, nil, err
	}
	return w, bias, nil
}

// Close releases the parameter buffers (and kept file mappings).
func (p *ParamStore) Close() { p.set.Close() }

// ModuleBias returns a BatchNorm2d module's effective bias (its folded shift
// β − μ·scale), or a convolution's bias.
func (p *ParamStore) ModuleBias(m string) ([]float32, error) {
	if p.set.Closed() {
		return nil, fmt.Errorf("model (%s) was closed", p.Source)
	}
	for _, name := range []string{m + ".shift", m + ".bias"} {
		if b, ok, err := p.flat(name); ok || err != nil {
			return b, err
		}
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
