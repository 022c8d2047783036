package models

import (
	"fmt"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend" // Trace builds on the pure-Go backend: link it wherever models is.
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

var (
	traceOnce    sync.Once
	traceBackend compute.Backend
	traceErr     error
)

// traceBackendGo is the pure-Go backend used to build (never run) graphs for
// shape tracing: building is backend-independent and the Go backend is
// always linked.
func traceBackendGo() (compute.Backend, error) {
	traceOnce.Do(func() { traceBackend, traceErr = compute.NewWithConfig("go") })
	return traceBackend, traceErr
}

// ParamShaper is implemented by networks that can describe their parameter
// shapes without binding them to a backend (every network in this module).
type ParamShaper interface {
	// ParamShapes returns the graph shapes of the parameters, in ParamNames order.
	ParamShapes() [][]int
}

// Trace builds net's graph for an input of shape dims (NCHW) — without
// compiling or running it — and returns every module output in build order,
// with channels-last Dims as the scope saw them. Builder panics (GoMLX
// reports shape errors by panicking) come back as errors.
func Trace(net Network, dims []int) (calls []ModuleCall, err error) {
	ps, ok := net.(ParamShaper)
	if !ok {
		return nil, fmt.Errorf("model %s cannot describe its parameter shapes (no ParamShapes method)", net.Arch())
	}
	b, err := traceBackendGo()
	if err != nil {
		return nil, err
	}
	g := graph.NewGraph(b, "trace-"+net.Arch())
	defer g.Finalize()
	defer func() {
		if r := recover(); r != nil {
			calls, err = nil, fmt.Errorf("building %s for an input of shape %v: %v", net.Arch(), dims, r)
		}
	}()
	x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, dims...))
	names := net.ParamNames()
	pd := ps.ParamShapes()
	nodes := make([]*graph.Node, len(names))
	for i, n := range names {
		nodes[i] = graph.Parameter(g, "p"+fmt.Sprint(i), shapes.Make(dtypes.Float32, pd[i]...))
		_ = n
	}
	s := NewScope(BindParams(names, nodes), LoweringNative)
	net.Build(s, graph.TransposeAllDims(x, 0, 2, 3, 1))
	return s.Calls(), nil
}

// TraceLayers describes net's modules from a trace at input shape dims: one
// Layer per module path in the order of its last output, with Calls, Dims
// (NCHW order, no batch axis), Out and Spatial from the output, In from the
// module's weight where it has one (counts: learned values per PyTorch tensor
// name, see ParamStore.Counts), and Params summed over the module's tensors.
func TraceLayers(net Network, dims []int, counts map[string]int, inFromWeight map[string]int) ([]Layer, error) {
	calls, err := Trace(net, dims)
	if err != nil {
		return nil, err
	}
	return LayersFromCalls(calls, counts, inFromWeight), nil
}

// LayersFromCalls is TraceLayers on the module outputs of a trace already made.
func LayersFromCalls(calls []ModuleCall, counts map[string]int, inFromWeight map[string]int) []Layer {
	last := map[string]int{}
	n := map[string]int{}
	for i, c := range calls {
		last[c.Path] = i
		n[c.Path]++
	}
	var out []Layer
	for i, c := range calls {
		if last[c.Path] != i {
			continue
		}
		l := Layer{Name: c.Path, Kind: c.Kind, Calls: n[c.Path], In: inFromWeight[c.Path]}
		d := c.Dims
		if len(d) == 4 {
			l.Spatial, l.Out, l.Dims = true, d[3], []int{d[3], d[1], d[2]}
		} else if len(d) == 2 {
			l.Out, l.Dims = d[1], []int{d[1]}
		}
		for name, k := range counts {
			if strings.HasPrefix(name, c.Path+".") {
				l.Params += k
			}
		}
		out = append(out, l)
	}
	return out
}
