package actmax

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

var saliencyGoldenDir = filepath.Join("..", "..", "testdata", "golden_saliency")

func loadNPY(t testing.TB, path string) *engine.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Array{Shape: shape, Data: data}
}

func saliencyGolden(t *testing.T, name string) *engine.Array {
	t.Helper()
	return loadNPY(t, filepath.Join(saliencyGoldenDir, name))
}

// saliencyFixture returns an Explainer on the tiny PyTorch-made VGG11 of
// testdata/golden (scripts/gen_golden.py), the (2,3,32,32) input of
// testdata/golden_saliency and its per-example target (classes 3 and 7).
func saliencyFixture(t *testing.T) (*engine.Explainer, *engine.Array, engine.Target) {
	t.Helper()
	w, err := weights.LoadSafetensors(filepath.Join("..", "..", "testdata", "golden", "tinyvgg11.safetensors"))
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
	return ex, saliencyGolden(t, "input.npy"), engine.Class(3, 7)
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
	for i := range want.Data {
		if d := math.Abs(float64(got.Data[i]) - float64(want.Data[i])); !(d <= tol) {
			t.Fatalf("%s: abs diff %.3g at flat index %d (got %g, want %g), tolerance %.3g", what, d, i, got.Data[i], want.Data[i], tol)
		}
	}
}
