package metrics

import (
	"math"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

func loadNPY(t testing.TB, path string) *engine.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &engine.Array{Shape: shape, Data: data}
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
