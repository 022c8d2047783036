package vgg

import (
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Linear weights large enough to be split into row chunks (a quarter-wide
// VGG11: classifier.0 is 1024×6272) come back from Weight in PyTorch's
// layout exactly, and the chunks cover the rows in order.
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
	chunked := 0
	for _, l := range m.Layers() {
		if l.Kind != models.Linear {
			continue
		}
		idx := m.linear[l.Name]
		rows := 0
		for _, i := range idx {
			dims := m.params[i].Shape().Dimensions
			if dims[1] != l.Out || dims[0] > models.LinearChunkRows(l.Out) {
				t.Fatalf("%s chunk %s has shape %v", l.Name, m.names[i], dims)
			}
			if !strings.HasPrefix(m.names[i], l.Name+".weight[") {
				t.Fatalf("%s chunk named %q", l.Name, m.names[i])
			}
			rows += dims[0]
		}
		if rows != l.In {
			t.Fatalf("%s chunks hold %d rows, want %d", l.Name, rows, l.In)
		}
		if len(idx) > 1 {
			chunked++
		}
		got, bias, err := m.Weight(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range want[l.Name+".weight"] {
			if got.Data[i] != v {
				t.Fatalf("%s weight differs at %d", l.Name, i)
			}
		}
		for i, v := range want[l.Name+".bias"] {
			if bias[i] != v {
				t.Fatalf("%s bias differs at %d", l.Name, i)
			}
		}
	}
	if chunked < 2 {
		t.Fatalf("only %d linear layers were chunked; the test needs classifier.0 and classifier.3 split", chunked)
	}
}

// Bound to a backend other than the pure-Go one, a model merges each chunked
// linear weight back into one [in,out] tensor; the merged model gives the
// same weights, logits and input gradients as the chunked one.
func TestMergeLinearChunks(t *testing.T) {
	chunked, err := NewRandom("vgg11", 10, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer chunked.Close()
	merged, err := NewRandom("vgg11", 10, 4, 11)
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	merged.mu.Lock()
	merged.mergeLinearChunks() // What Params does for XLA.
	merged.mu.Unlock()
	for _, l := range merged.Layers() {
		if l.Kind != models.Linear {
			continue
		}
		if idx := merged.linear[l.Name]; len(idx) != 1 || (len(chunked.linear[l.Name]) > 1 && merged.names[idx[0]] != l.Name+".weight") {
			t.Fatalf("%s not merged: %v", l.Name, idx)
		}
		a, _, err := merged.Weight(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := chunked.Weight(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b.Data {
			if a.Data[i] != b.Data[i] {
				t.Fatalf("%s weight differs at %d after merging", l.Name, i)
			}
		}
	}
	if len(merged.ParamNames()) >= len(chunked.ParamNames()) {
		t.Fatalf("merged %d params, chunked %d", len(merged.ParamNames()), len(chunked.ParamNames()))
	}
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	var res [2][2][]float32 // logits, input gradient of class 4's logit
	for i, m := range []*Model{chunked, merged} {
		res[i] = logitsAndInputGrad(t, m, x, []int{2, 3, 32, 32}, 4)
	}
	for k := range res[0] {
		a, b := res[0][k], res[1][k]
		scale := 0.0
		for _, v := range b {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range b {
			if d := math.Abs(float64(a[i] - b[i])); d > 1e-4*scale+1e-7 {
				t.Fatalf("chunked vs merged differ at %d: %g vs %g", i, a[i], b[i])
			}
		}
	}
}

// logitsAndInputGrad runs m on x (NCHW dims) on the pure-Go backend and
// returns the logits and the gradient of class k's summed logit w.r.t. x
// (the package cannot use vizkit's engine in its own tests: vizkit's façade
// imports the model registry, which imports this package).
func logitsAndInputGrad(t *testing.T, m *Model, x []float32, dims []int, k int) [2][]float32 {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	params, err := m.Params(b)
	if err != nil {
		t.Fatal(err)
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
