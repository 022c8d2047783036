package cam

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// goldenExplainer is an Explainer on one of the tiny PyTorch-made VGGs of
// testdata/golden (scripts/gen_golden.py).
func goldenExplainer(t *testing.T, file string) *engine.Explainer {
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

// pearson is the correlation of a and b.
func pearson(a, b []float32) float64 {
	n := float64(len(a))
	var ma, mb float64
	for i := range a {
		ma += float64(a[i]) / n
		mb += float64(b[i]) / n
	}
	var sab, saa, sbb float64
	for i := range a {
		da, db := float64(a[i])-ma, float64(b[i])-mb
		sab, saa, sbb = sab+da*db, saa+da*da, sbb+db*db
	}
	return sab / math.Sqrt(saa*sbb)
}

var goldenDir = filepath.Join("..", "..", "testdata", "golden")

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

// randomArray is standard normal values of the given shape, seeded.
func randomArray(seed uint64, shape ...int) *engine.Array {
	r := rand.New(rand.NewPCG(seed, 1))
	a := engine.NewArray(shape...)
	for i := range a.Data {
		a.Data[i] = float32(r.NormFloat64())
	}
	return a
}

// checkCAMShapes checks a result's map shapes, flags and the [0,1] range.
func checkCAMShapes(t *testing.T, what string, r *Result, n, h, w int) {
	t.Helper()
	if !slices.Equal(r.Map.Shape, []int{n, h, w}) || len(r.Flat) != n || len(r.Classes) != n || len(r.Scores) != n {
		t.Fatalf("%s: map %v, %d flags, %d classes, %d scores; want (%d,%d,%d)", what, r.Map.Shape, len(r.Flat), len(r.Classes), len(r.Scores), n, h, w)
	}
	for _, v := range r.Map.Data {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("%s: map value %v outside [0,1]", what, v)
		}
	}
}

// assertClose fails unless got is within rtol·max|want| of want.
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
