package cam

import (
	"math"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

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

var goldenDir = vtest.Testdata("golden")

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
