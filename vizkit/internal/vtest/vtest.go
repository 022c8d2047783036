// Package vtest holds the test helpers the computing packages (engine, cam,
// attr, actmax, metrics) and the façade share: explainers on the
// PyTorch-made fixtures of testdata/, random inputs, .npy fixtures, a
// tolerance check, and a linear toy network on which the perturbation
// metrics have closed forms. It is internal and used only by tests.
package vtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Testdata is the repository's testdata folder, found from this file's
// location so that tests at any depth use the same path.
func Testdata(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "..", "testdata"}, elem...)...)
}

// GoldenModel loads one of the tiny PyTorch-made VGGs of testdata/golden
// (scripts/gen_golden.py), e.g. "tinyvgg11.safetensors".
func GoldenModel(t testing.TB, file string) *vgg.Model {
	t.Helper()
	w, err := weights.LoadSafetensors(Testdata("golden", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vgg.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Explainer is an Explainer on net, closed (with net) when the test ends.
func Explainer(t testing.TB, net models.Network) *engine.Explainer {
	t.Helper()
	ex, err := engine.NewExplainer(net, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); net.Close() })
	return ex
}

// GoldenExplainer is an Explainer on GoldenModel(file).
func GoldenExplainer(t testing.TB, file string) *engine.Explainer {
	t.Helper()
	return Explainer(t, GoldenModel(t, file))
}

// TinyExplainer is an Explainer on a random narrow VGG of arch (10 classes,
// width 16, seed 7).
func TinyExplainer(t testing.TB, arch string) *engine.Explainer {
	t.Helper()
	m, err := vgg.NewRandom(arch, 10, 16, 7)
	if err != nil {
		t.Fatal(err)
	}
	return Explainer(t, m)
}

// RandomArray is standard normal values of the given shape (PCG(seed, 1)).
func RandomArray(seed uint64, shape ...int) *engine.Array {
	r := rand.New(rand.NewPCG(seed, 1))
	a := engine.NewArray(shape...)
	for i := range a.Data {
		a.Data[i] = float32(r.NormFloat64())
	}
	return a
}

// LoadNPY reads a .npy fixture.
func LoadNPY(t testing.TB, path string) *engine.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Array{Shape: shape, Data: data}
}

// AssertClose checks got against want with a tolerance relative to want's
// largest magnitude (rtol·max|want| + 1e-7); NaN fails.
func AssertClose(t testing.TB, what string, got, want *engine.Array, rtol float64) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	scale := 0.0
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	tol := rtol*scale + 1e-7
	worst, at := 0.0, 0
	for i := range want.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if math.IsNaN(d) {
			t.Fatalf("%s: NaN at %d", what, i)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: max abs diff %.3g at flat index %d (got %g, want %g), tolerance %.3g (scale %.3g)",
			what, worst, at, got.Data[at], want.Data[at], tol, scale)
	}
}

// Approx fails unless |got − want| ≤ tol.
func Approx(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Fatalf("%s = %.6g, want %.6g (±%g)", what, got, want, tol)
	}
}

// LinearNet is a toy model with logits (Σ w·x, 0) for inputs (N,3,H,W):
// every perturbation metric has a closed form on it.
type LinearNet struct {
	H, W int
	Wt   []float32 // (3,H,W)
}

func (m *LinearNet) Arch() string    { return "linear-toy" }
func (m *LinearNet) NumClasses() int { return 2 }
func (m *LinearNet) Close()          {}
func (m *LinearNet) Layers() []models.Layer {
	return []models.Layer{{Name: "fc", Kind: models.Linear, In: 3 * m.H * m.W, Out: 2, Params: 3 * m.H * m.W}}
}
func (m *LinearNet) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 || dims[2] != m.H || dims[3] != m.W {
		return fmt.Errorf("linear-toy expects (N,3,%d,%d), got %v", m.H, m.W, dims)
	}
	return nil
}
func (m *LinearNet) Params(compute.Backend) ([]*tensors.Tensor, error) { return nil, nil }
func (m *LinearNet) Weight(string) (*weights.Tensor, []float32, error) {
	return nil, nil, fmt.Errorf("no weights")
}
func (m *LinearNet) ParamNames() []string { return nil }
func (m *LinearNet) ParamShapes() [][]int { return nil }
func (m *LinearNet) Build(sc *models.Scope, x *graph.Node) *graph.Node {
	n := x.Shape().Dimensions[0]
	flat := graph.Reshape(graph.TransposeAllDims(x, 0, 3, 1, 2), n, 3*m.H*m.W)
	wcol := graph.Reshape(graph.Const(x.Graph(), m.Wt), 3*m.H*m.W, 1)
	s := graph.Dot(flat, wcol).Product() // (N,1)
	out := graph.Concatenate([]*graph.Node{s, graph.ZerosLike(s)}, 1)
	return sc.Out("fc", models.Linear, out)
}

// F is the toy's class-0 logit on one (3,H,W) image, in float64.
func (m *LinearNet) F(img []float32) float64 {
	s := 0.0
	for i, v := range img {
		s += float64(m.Wt[i]) * float64(v)
	}
	return s
}

// LinearExplainer is an Explainer on a LinearNet of weights wt (3,H,W).
func LinearExplainer(t testing.TB, h, w int, wt []float32) (*engine.Explainer, *LinearNet) {
	t.Helper()
	net := &LinearNet{H: h, W: w, Wt: wt}
	return Explainer(t, net), net
}

// SaliencyGolden reads a fixture of testdata/golden_saliency
// (scripts/gen_saliency_golden.py).
func SaliencyGolden(t testing.TB, name string) *engine.Array {
	t.Helper()
	return LoadNPY(t, Testdata("golden_saliency", name))
}

// SaliencyFixture returns an Explainer on the tiny PyTorch-made VGG11, the
// (2,3,32,32) input of testdata/golden_saliency and its per-example target
// (classes 3 and 7).
func SaliencyFixture(t testing.TB) (*engine.Explainer, *engine.Array, engine.Target) {
	t.Helper()
	return GoldenExplainer(t, "tinyvgg11.safetensors"), SaliencyGolden(t, "input.npy"), engine.Class(3, 7)
}
