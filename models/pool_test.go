package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// directMaxPool is PyTorch's MaxPool2d on x [N,H,W,C] in float64 loops: the
// output and the gradient of Σ y·v with respect to x, which goes to the first
// maximum of each window in row-major order (padding never wins: it is −∞).
// ho, wo: the output size (poolOutSize).
func directMaxPool(x []float32, n, h, w, c, ho, wo int, spec PoolSpec, v []float32) (y, dx []float64) {
	spec = spec.norm()
	kh, kw, sh, sw := spec.Kernel[0], spec.Kernel[1], spec.Stride[0], spec.Stride[1]
	y = make([]float64, n*ho*wo*c)
	dx = make([]float64, len(x))
	for b := 0; b < n; b++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				for ch := 0; ch < c; ch++ {
					best, at := math.Inf(-1), -1
					for dy := 0; dy < kh; dy++ {
						for dxx := 0; dxx < kw; dxx++ {
							r, q := i*sh-spec.Padding[0]+dy, j*sw-spec.Padding[1]+dxx
							if r < 0 || q < 0 || r >= h || q >= w {
								continue
							}
							k := ((b*h+r)*w+q)*c + ch
							if at < 0 || float64(x[k]) > best {
								best, at = float64(x[k]), k
							}
						}
					}
					o := ((b*ho+i)*wo+j)*c + ch
					y[o] = best
					dx[at] += float64(v[o])
				}
			}
		}
	}
	return y, dx
}

// MaxPool2D with exactGrad (firstMax on unpadded windows, comparisons on
// padded ones) against the direct loop, on inputs full of ties (values drawn
// from {−1, −0, 0, 2}) so that the first-maximum rule decides most windows.
func TestMaxPoolFirstMaxGradient(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	specs := []PoolSpec{
		{Kernel: [2]int{2, 2}},                                              // VGG (MaxPool2x2)
		{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}},                        // AlexNet: unpadded, overlapping
		{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}},                        // stride 1
		{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}, // ResNet's stem: padded
		{Kernel: [2]int{2, 2}, CeilMode: true},                              // ceil mode on odd sizes: padded on the right
	}
	vals := []float32{-1, float32(math.Copysign(0, -1)), 0, 2}
	for _, spec := range specs {
		for _, hw := range [][2]int{{6, 6}, {7, 9}} {
			n, h, w, c := 2, hw[0], hw[1], 3
			x := make([]float32, n*h*w*c)
			for i := range x {
				x[i] = vals[rng.IntN(len(vals))]
			}
			ns := spec.norm()
			ho := poolOutSize(h, ns.Kernel[0], ns.Stride[0], ns.Padding[0], ns.CeilMode)
			wo := poolOutSize(w, ns.Kernel[1], ns.Stride[1], ns.Padding[1], ns.CeilMode)
			v := randSlice(rng, n*ho*wo*c)
			wantY, wantDx := directMaxPool(x, n, h, w, c, ho, wo, spec, v)
			exec := MustNewExec(b, func(xn, vn *Node) []*Node {
				y := MaxPool2D(xn, spec, true)
				return []*Node{y, Gradient(ReduceAllSum(Mul(y, vn)), xn)[0]}
			})
			out := exec.MustExec(tensors.FromFlatDataAndDimensions(x, n, h, w, c), tensors.FromFlatDataAndDimensions(v, n, ho, wo, c))
			exec.Finalize()
			name := fmt.Sprintf("%+v on %dx%d", spec, h, w)
			gotY, gotDx := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
			for k, got := range gotY {
				if float64(got) != wantY[k] {
					t.Fatalf("%s: y[%d] = %v, want %v", name, k, got, wantY[k])
				}
			}
			for k, got := range gotDx {
				if math.Abs(float64(got)-wantDx[k]) > 1e-5 {
					t.Fatalf("%s: dx[%d] = %v, want %v", name, k, got, wantDx[k])
				}
			}
		}
	}
}
