package models

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// ParamSet holds a network's graph parameters in order, from conversion to
// Close: host tensors (Add) or External data (AddExternal, e.g. a linear
// weight kept in its file's mapping), bound once to one backend (Bind).
//
// Bound to the pure-Go backend nothing is copied: every parameter's buffer
// is its host storage or its External data (BindExternal), and linear
// weights ([out,in], marked with MarkLinear) are split into row chunks
// "<name>[a:b]" (output rows a..b-1) of at most LinearChunkRows(in) rows
// for LinearChunked. Other backends (XLA) get each parameter whole, copied
// to their device. It is safe for concurrent use once conversion is over
// (Add, AddExternal and MarkLinear are for the converting goroutine).
type ParamSet struct {
	mu     sync.Mutex
	names  []string
	local  []*tensors.Tensor // Host tensors in names order; nil where ext holds the parameter.
	ext    []External
	dims   [][]int
	linear map[string]bool
	kept   []*weights.Kept // Released at Close.

	params []*tensors.Tensor // Once bound.
	bNames []string
	bound  compute.Backend
	closed bool
}

// Add appends a zero parameter of shape dims and returns its storage to
// fill in.
func (s *ParamSet) Add(name string, dims ...int) []float32 {
	t := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
	var flat []float32
	tensors.MustMutableFlatData(t, func(f []float32) { flat = f })
	AdviseHugePages(flat) // Before the first write: see its doc.
	s.names = append(s.names, name)
	s.local = append(s.local, t)
	s.ext = append(s.ext, External{})
	s.dims = append(s.dims, dims)
	return flat
}

// AddExternal appends a parameter held in e; its Kept is released at Close
// (or at Bind, where the backend copied the data).
func (s *ParamSet) AddExternal(name string, e External) {
	s.names = append(s.names, name)
	s.local = append(s.local, nil)
	s.ext = append(s.ext, e)
	s.dims = append(s.dims, e.Dims)
	if e.Kept != nil {
		s.kept = append(s.kept, e.Kept)
	}
}

// AddLinearWeight appends the linear weight name [out,in] (PyTorch's layout,
// which is the graph's) from w, keeping it in the file's mapping where w
// aliases one (weights.Set.Keep), else copying it; data are w's checked
// values. It is marked linear (see MarkLinear).
func (s *ParamSet) AddLinearWeight(w *weights.Set, name string, data []float32, out, in int) {
	if kd, kept, err := w.Keep(name, out, in); err == nil && kept != nil {
		s.AddExternal(name, External{Data: kd, Dims: []int{out, in}, Kept: kept})
	} else {
		copy(s.Add(name, out, in), data)
	}
	s.MarkLinear(name)
}

// MarkLinear marks parameter name as a linear weight [out,in] (chunked on
// the pure-Go backend).
func (s *ParamSet) MarkLinear(name string) {
	if s.linear == nil {
		s.linear = map[string]bool{}
	}
	s.linear[name] = true
}

// Len is the number of parameters added (before binding).
func (s *ParamSet) Len() int { return len(s.names) }

// Names lists the graph parameters in Bind's order: before binding the
// names as added, after it the bound ones (with chunks on the Go backend).
func (s *ParamSet) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bNames != nil {
		return s.bNames
	}
	return s.names
}

// Shapes lists the graph shapes in Names order.
func (s *ParamSet) Shapes() [][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.params != nil {
		out := make([][]int, len(s.params))
		for i, t := range s.params {
			out[i] = t.Shape().Dimensions
		}
		return out
	}
	return s.dims
}

// Bind binds the parameters to backend, once (a set serves one backend),
// and returns them in Names order. source names the weights in errors.
func (s *ParamSet) Bind(backend compute.Backend, source string) ([]*tensors.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("model (%s) was closed", source)
	}
	if s.bound != nil {
		if s.bound != backend {
			return nil, fmt.Errorf("model (%s) is bound to backend %s; load it again to use backend %s", source, s.bound.Name(), backend.Name())
		}
		return s.params, nil
	}
	goBackend := IsGoBackend(backend)
	var names []string
	var params []*tensors.Tensor
	var created []bool // Per params entry: made here by BindExternal (already on the device).
	keptInUse := false
	fail := func(err error) ([]*tensors.Tensor, error) {
		for i, t := range params {
			if created[i] { // The others are still s.local's.
				_ = t.FinalizeAll()
			}
		}
		return nil, err
	}
	for i, name := range s.names {
		d := s.dims[i]
		e := s.ext[i]
		if e.Data == nil {
			if !goBackend { // Other backends copy the tensor to their device.
				names = append(names, name)
				params = append(params, s.local[i])
				created = append(created, false)
				continue
			}
			// On the pure-Go backend the tensor's own storage becomes its
			// buffer (BindExternal aliases it; the buffer keeps it alive).
			tensors.MustConstFlatData(s.local[i], func(f []float32) { e = External{Data: f, Dims: d} })
		}
		k := 1
		if goBackend && s.linear[name] {
			k = (d[0] + LinearChunkRows(d[1]) - 1) / LinearChunkRows(d[1])
		}
		for c := 0; c < k; c++ {
			part, pname := e, name
			if k > 1 {
				a, b := c*d[0]/k, (c+1)*d[0]/k
				part, pname = e.Slice(a, b), fmt.Sprintf("%s[%d:%d]", name, a, b)
			}
			t, al, err := BindExternal(backend, part.Data, part.Dims...)
			if err != nil {
				return fail(fmt.Errorf("moving parameter %q of %s to backend %s: %w", pname, source, backend.Name(), err))
			}
			keptInUse = keptInUse || (al && e.Kept != nil)
			names = append(names, pname)
			params = append(params, t)
			created = append(created, true)
		}
	}
	// Each other move copies a tensor into a backend buffer and frees the
	// local one; collecting every ~64 MB lets the next moves reuse that memory.
	moved := 0
	for i, t := range params {
		if created[i] {
			continue
		}
		if err := t.ToDevice(backend, 0); err != nil {
			return fail(fmt.Errorf("moving parameter %q of %s to backend %s: %w", names[i], source, backend.Name(), err))
		}
		if moved += int(t.Memory()); moved >= 64<<20 {
			runtime.GC()
			moved = 0
		}
	}
	for i, t := range s.local {
		if t != nil && goBackend {
			_ = s.local[i].FinalizeAll() // Drops the tensor; its storage lives on in its buffers.
		}
	}
	if !keptInUse { // Kept data was copied (or there was none): the file can go.
		for _, k := range s.kept {
			_ = k.Release()
		}
		s.kept = nil
	}
	s.params, s.bNames, s.bound = params, names, backend
	s.local, s.ext = nil, nil
	return s.params, nil
}

// Flat returns a copy of parameter name (before or after binding; a
// chunked linear weight is gathered from its row chunks), or ok false.
func (s *ParamSet) Flat(name string) (data []float32, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, fmt.Errorf("the model was closed")
	}
	names, ts := s.names, s.local
	if s.bound != nil {
		names, ts = s.bNames, s.params
	}
	for i, n := range names {
		if n == name || (s.linear[name] && strings.HasPrefix(n, name+"[")) {
			if s.bound == nil && ts[i] == nil { // External.
				data, ok = append(data, s.ext[i].Data...), true
				continue
			}
			part, err := tensors.CopyFlatData[float32](ts[i])
			if err != nil {
				return nil, true, fmt.Errorf("reading parameter %q: %w", n, err)
			}
			data, ok = append(data, part...), true
		}
	}
	return data, ok, nil
}

// Close releases the parameter buffers, then the kept file mappings.
func (s *ParamSet) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, t := range s.params {
		_ = t.FinalizeAll()
	}
	for _, t := range s.local {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
	for _, k := range s.kept { // Only now, with no buffer left on them.
		_ = k.Release()
	}
	s.params, s.local, s.ext, s.kept = nil, nil, nil, nil
}

// Closed reports whether Close was called.
func (s *ParamSet) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
