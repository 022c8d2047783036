package vgg

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Linear weights large enough to be split into row chunks (a quarter-wide
// VGG11: classifier.0 is 1024×6272) come back from Weight in PyTorch's
// layout exactly, before and after binding to the pure-Go backend, and once
// bound the chunks cover the output rows in order.
func TestChunkedLinearWeightRoundTrip(t *testing.T) {
	cfg, err := StandardConfig("vgg11", 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	w, err := RandomWeights(cfg, 9)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for name, ten := range w.Tensors {
		want[name] = append([]float32(nil), ten.Data...)
	}
	m, err := build(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	check := func(when string) {
		for _, l := range m.Layers() {
			if l.Kind != models.Linear {
				continue
			}
			got, bias, err := m.Weight(l.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Shape, []int{l.Out, l.In}) || !slices.Equal(got.Data, want[l.Name+".weight"]) {
				t.Fatalf("%s: %s weight %v differs", when, l.Name, got.Shape)
			}
			if !slices.Equal(bias, want[l.Name+".bias"]) {
				t.Fatalf("%s: %s bias differs", when, l.Name)
			}
		}
	}
	check("before binding")
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	params, err := m.Params(b)
	if err != nil {
		t.Fatal(err)
	}
	names := m.ParamNames()
	chunked := 0
	for _, l := range m.Layers() {
		if l.Kind != models.Linear {
			continue
		}
		rows, parts := 0, 0
		for i, n := range names {
			if !strings.HasPrefix(n, l.Name+".weight[") {
				continue
			}
			dims := params[i].Shape().Dimensions
			if dims[1] != l.In || dims[0] > models.LinearChunkRows(l.In) {
				t.Fatalf("%s chunk %s has shape %v", l.Name, n, dims)
			}
			if want := fmt.Sprintf("%s.weight[%d:%d]", l.Name, rows, rows+dims[0]); n != want {
				t.Fatalf("chunk %q, want %q", n, want)
			}
			rows += dims[0]
			parts++
		}
		if parts > 0 && rows != l.Out {
			t.Fatalf("%s chunks hold %d rows, want %d", l.Name, rows, l.Out)
		}
		if parts > 1 {
			chunked++
		}
	}
	if chunked < 2 {
		t.Fatalf("only %d linear layers were chunked; the test needs classifier.0 and classifier.3 split", chunked)
	}
	check("after binding")
}

// The chunked linear layers (as bound to the pure-Go backend) give the
// same logits and input gradients as whole [out,in] weights (as other
// backends get them).
func TestChunkedEqualsWholeLinear(t *testing.T) {
	chunked, err := NewRandom("vgg11", 10, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer chunked.Close()
	whole, err := NewRandom("vgg11", 10, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	// whole is never bound: its unchunked parameters go in as host tensors.
	var hostParams []*tensors.Tensor
	for _, name := range whole.ParamNames() {
		d, ok, err := whole.set.Flat(name)
		if err != nil || !ok {
			t.Fatalf("%s: %v", name, err)
		}
		hostParams = append(hostParams, tensors.FromFlatDataAndDimensions(d, whole.set.Shapes()[len(hostParams)]...))
	}
	res := [2][2][]float32{
		logitsAndInputGrad(t, chunked, nil, x, []int{2, 3, 32, 32}, 4),
		logitsAndInputGrad(t, whole, hostParams, x, []int{2, 3, 32, 32}, 4),
	}
	if len(chunked.ParamNames()) <= len(whole.ParamNames()) {
		t.Fatalf("chunked %d params, whole %d", len(chunked.ParamNames()), len(whole.ParamNames()))
	}
	for k := range res[0] {
		a, b := res[0][k], res[1][k]
		scale := 0.0
		for _, v := range b {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range b {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-4*scale+1e-7 {
				t.Fatalf("chunked vs whole differ at %d: %g vs %g", i, a[i], b[i])
			}
		}
	}
}

// logitsAndInputGrad runs m on x (NCHW dims) on the pure-Go backend, with
// params (nil: m's own, bound) and returns the logits and the gradient of class k's summed logit w.r.t. x
// (the package cannot use vizkit's engine in its own tests: vizkit's façade
// imports the model registry, which imports this package).
func logitsAndInputGrad(t *testing.T, m *Model, params []*tensors.Tensor, x []float32, dims []int, k int) [2][]float32 {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	if params == nil {
		if params, err = m.Params(b); err != nil {
			t.Fatal(err)
		}
	}
	exec, err := graph.NewExec(b, func(inputs []*graph.Node) []*graph.Node {
		xn := inputs[0]
		logits := models.Forward(m, xn, inputs[1:])
		score := graph.ReduceAllSum(graph.Slice(logits, graph.AxisRange(), graph.AxisRange(k, k+1)))
		return []*graph.Node{logits, graph.Gradient(score, xn)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	args := []any{tensors.FromFlatDataAndDimensions(x, dims...)}
	for _, p := range params {
		args = append(args, p)
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	var res [2][]float32
	for i := range res {
		if res[i], err = tensors.CopyFlatData[float32](outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return res
}
