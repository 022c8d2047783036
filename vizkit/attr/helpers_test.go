package attr

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// goldenExplainer is an Explainer on one of the tiny PyTorch-made VGGs of
// testdata/golden (scripts/gen_golden.py).
func goldenExplainer(t testing.TB, file string) *engine.Explainer {
	t.Helper()
	w, err := weights.LoadSafetensors(filepath.Join("..", "..", "testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vgg.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); m.Close() })
	return ex
}

// saliencyFixture returns the tiny VGG11 explainer, the (2,3,32,32) input of
// testdata/golden_saliency and its per-example target (classes 3 and 7).
func saliencyFixture(t testing.TB) (*engine.Explainer, *engine.Array, engine.Target) {
	t.Helper()
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	shape, data, err := npy.ReadFile(filepath.Join("..", "..", "testdata", "golden_saliency", "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return ex, &engine.Array{Shape: shape, Data: data}, engine.Class(3, 7)
}

// tinyExplainer is an Explainer on a random narrow VGG (10 classes, width 16).
func tinyExplainer(t testing.TB, arch string) *engine.Explainer {
	t.Helper()
	m, err := vgg.NewRandom(arch, 10, 16, 7)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); m.Close() })
	return ex
}

// assertClose checks got against want with a tolerance relative to want's
// largest magnitude (rtol·max|want| + 1e-7).
func assertClose(t testing.TB, what string, got, want *engine.Array, rtol float64) {
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
