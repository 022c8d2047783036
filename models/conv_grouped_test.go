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

// convDirect is PyTorch's grouped Conv2d written as loops on channels-last
// data: x [N,H,W,C], kernel HWIO [kh,kw,C/g,O] → [N,Ho,Wo,O].
func convDirect(x []float32, n, h, w, c int, k []float32, kh, kw, o int, spec ConvSpec) ([]float32, int, int) {
	spec = spec.norm()
	ci, og := c/spec.Groups, o/spec.Groups
	ho := ConvOutSize(h, kh, spec.Stride[0], spec.Padding[0])
	wo := ConvOutSize(w, kw, spec.Stride[1], spec.Padding[1])
	y := make([]float32, n*ho*wo*o)
	for b := 0; b < n; b++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				for oc := 0; oc < o; oc++ {
					g := oc / og
					var s float64
					for dy := 0; dy < kh; dy++ {
						for dx := 0; dx < kw; dx++ {
							yy, xx := i*spec.Stride[0]-spec.Padding[0]+dy, j*spec.Stride[1]-spec.Padding[1]+dx
							if yy < 0 || yy >= h || xx < 0 || xx >= w {
								continue
							}
							for q := 0; q < ci; q++ {
								s += float64(x[((b*h+yy)*w+xx)*c+g*ci+q]) * float64(k[((dy*kw+dx)*ci+q)*o+oc])
							}
						}
					}
					y[((b*ho+i)*wo+j)*o+oc] = float32(s)
				}
			}
		}
	}
	return y, ho, wo
}

// TestConv2DGroupedLowerings checks Conv2D's lowerings against the direct
// loops (values) and against each other (gradients w.r.t. input and kernel):
// dense, grouped, depthwise (with and without a channel multiplier), strided
// 1×1, non-square inputs, strides and paddings as in MobileNet-V2/DenseNet.
func TestConv2DGroupedLowerings(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	randData := func(n int) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		return d
	}
	for _, c := range []struct {
		c, o, k int
		spec    ConvSpec
	}{
		{3, 4, 3, ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}},
		{6, 4, 3, ConvSpec{Padding: [2]int{1, 1}, Groups: 2}},
		{5, 5, 3, ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 5}},
		{5, 5, 3, ConvSpec{Padding: [2]int{1, 1}, Groups: 5}},
		{3, 6, 3, ConvSpec{Stride: [2]int{1, 2}, Padding: [2]int{1, 0}, Groups: 3}},
		{4, 6, 1, ConvSpec{Stride: [2]int{2, 2}}},
		{4, 6, 1, ConvSpec{Groups: 2}},
		{3, 8, 7, ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}},
	} {
		name := fmt.Sprintf("C%d_O%d_k%d_%+v", c.c, c.o, c.k, c.spec)
		n, h, w := 2, 9, 7
		ci := c.c / c.spec.norm().Groups
		xd, kd := randData(n*h*w*c.c), randData(c.k*c.k*ci*c.o)
		want, ho, wo := convDirect(xd, n, h, w, c.c, kd, c.k, c.k, c.o, c.spec)
		v := randData(n * ho * wo * c.o)
		var outs [2][]*tensors.Tensor
		for li, low := range []Lowering{LoweringIm2Col, LoweringNative} {
			ex := MustNewExec(b, func(x, k, v *Node) []*Node {
				y := Conv2D(x, k, nil, c.spec, low)
				g := Gradient(ReduceAllSum(Mul(y, v)), x, k)
				return []*Node{y, g[0], g[1]}
			})
			outs[li] = ex.MustExec(tensors.FromFlatDataAndDimensions(xd, n, h, w, c.c),
				tensors.FromFlatDataAndDimensions(kd, c.k, c.k, ci, c.o), tensors.FromFlatDataAndDimensions(v, n, ho, wo, c.o))
			got := tensors.MustCopyFlatData[float32](outs[li][0])
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s lowering %d: y[%d] = %g, want %g", name, low, i, got[i], want[i])
				}
			}
			ex.Finalize()
		}
		for gi, what := range []string{"dx", "dk"} {
			a, e := tensors.MustCopyFlatData[float32](outs[0][gi+1]), tensors.MustCopyFlatData[float32](outs[1][gi+1])
			for i := range e {
				if d := math.Abs(float64(a[i] - e[i])); d > 1e-4*(1+math.Abs(float64(e[i]))) {
					t.Fatalf("%s: im2col %s[%d] = %g, native %g", name, what, i, a[i], e[i])
				}
			}
		}
	}
}
