package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // The pure-Go backend "go".
	. "github.com/gomlx/gomlx/core/graph"  //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// LinearChunked equals one product with the whole weight — values, the
// gradient with respect to x and the gradients with respect to the chunks —
// for batch sizes that are and are not multiples of its 4-row groups, and for
// uneven chunks.
func TestLinearChunkedMatchesDot(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	randT := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(data, dims...)
	}
	in, out := 37, 19
	bounds := []int{0, 5, 11, 16, 19} // Uneven chunks of output rows.
	for _, m := range []int{1, 3, 4, 5, 8, 9, 16} {
		x := randT(m, in)
		w := randT(out, in) // PyTorch's layout.
		v := randT(m, out)  // Weights of the scalar whose gradient is taken.
		// Reference: the chunks are slices of w inside the graph.
		ref := MustNewExec(b, func(x, w, v *Node) []*Node {
			y := Dot(x, Transpose(w, 0, 1)).Product()
			s := ReduceAllSum(Mul(y, v))
			g := Gradient(s, x, w)
			return []*Node{y, g[0], g[1]}
		})
		got := MustNewExec(b, func(x, w, v *Node) []*Node {
			chunks := make([]*Node, len(bounds)-1)
			for i := range chunks {
				chunks[i] = Slice(w, AxisRange(bounds[i], bounds[i+1]))
			}
			y := LinearChunked(x, chunks)
			s := ReduceAllSum(Mul(y, v))
			g := Gradient(s, x, w)
			return []*Node{y, g[0], g[1]}
		})
		r := ref.MustExec(x, w, v)
		g := got.MustExec(x, w, v)
		for i, what := range []string{"y", "dx", "dw"} {
			a, e := tensors.MustCopyFlatData[float32](g[i]), tensors.MustCopyFlatData[float32](r[i])
			if !sameInts(g[i].Shape().Dimensions, r[i].Shape().Dimensions) {
				t.Fatalf("m=%d %s: shape %v, want %v", m, what, g[i].Shape(), r[i].Shape())
			}
			for j := range e {
				if d := math.Abs(float64(a[j] - e[j])); d > 1e-4*(1+math.Abs(float64(e[j]))) {
					t.Fatalf("m=%d %s[%d] = %g, want %g", m, what, j, a[j], e[j])
				}
			}
		}
		ref.Finalize()
		got.Finalize()
	}
}

func TestLinearChunkRows(t *testing.T) {
	for _, in := range []int{1, 10, 1000, 4096, 25088, 1 << 22} {
		r := LinearChunkRows(in)
		if r < 1 {
			t.Fatalf("LinearChunkRows(%d) = %d", in, r)
		}
		if r > 1 && linearRowGroup*r*in >= goSmallMatMulFlops {
			t.Fatalf("LinearChunkRows(%d) = %d: a 4-row product has %d ≥ %d multiply-adds", in, r, linearRowGroup*r*in, goSmallMatMulFlops)
		}
		if linearRowGroup*(r+1)*in < goSmallMatMulFlops {
			t.Fatalf("LinearChunkRows(%d) = %d is not the largest", in, r)
		}
	}
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
