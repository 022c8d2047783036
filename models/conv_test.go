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

// convCase is one random convolution layer.
type convCase struct {
	n, h, w, c, o, k int
	spec             ConvSpec
	bias             bool
}

func (cc convCase) String() string {
	return fmt.Sprintf("n%d_%dx%dx%d_o%d_k%d_s%v_p%v_g%d", cc.n, cc.h, cc.w, cc.c, cc.o, cc.k, cc.spec.Stride, cc.spec.Padding, cc.spec.Groups)
}

// directConv is an independent float64 reference of PyTorch's Conv2d on
// channels-last data: x [N,H,W,C], kernel [k,k,C/G,O], bias [O] or nil. It
// also returns, for the scalar s = Σ y·v, ds/dx and ds/dkernel.
func directConv(cc convCase, x, kern, bias, v []float32) (y, dx, dk []float64, ho, wo int) {
	s := cc.spec.norm()
	ho = ConvOutSize(cc.h, cc.k, s.Stride[0], s.Padding[0])
	wo = ConvOutSize(cc.w, cc.k, s.Stride[1], s.Padding[1])
	ci, og := cc.c/s.Groups, cc.o/s.Groups
	y = make([]float64, cc.n*ho*wo*cc.o)
	dx = make([]float64, len(x))
	dk = make([]float64, len(kern))
	for n := 0; n < cc.n; n++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				for o := 0; o < cc.o; o++ {
					g := o / og
					yi := ((n*ho+i)*wo+j)*cc.o + o
					acc := 0.0
					if bias != nil {
						acc = float64(bias[o])
					}
					for ky := 0; ky < cc.k; ky++ {
						r := i*s.Stride[0] - s.Padding[0] + ky
						if r < 0 || r >= cc.h {
							continue
						}
						for kx := 0; kx < cc.k; kx++ {
							q := j*s.Stride[1] - s.Padding[1] + kx
							if q < 0 || q >= cc.w {
								continue
							}
							for c := 0; c < ci; c++ {
								xi := ((n*cc.h+r)*cc.w+q)*cc.c + g*ci + c
								ki := ((ky*cc.k+kx)*ci+c)*cc.o + o
								acc += float64(x[xi]) * float64(kern[ki])
								dx[xi] += float64(v[yi]) * float64(kern[ki])
								dk[ki] += float64(v[yi]) * float64(x[xi])
							}
						}
					}
					y[yi] = acc
				}
			}
		}
	}
	return
}

// convTestCases covers the kernel sizes, strides, paddings and groups of the
// model zoo (VGG, AlexNet's 11×11/4 and 5×5, ResNet's 7×7/2 and 1×1/2,
// MobileNet's depthwise 3×3/2, DenseNet's 1×1) and VGG's 3×3 with odd sizes.
func convTestCases() []convCase {
	return []convCase{
		{n: 2, h: 8, w: 8, c: 5, o: 7, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}, bias: true},
		{n: 1, h: 7, w: 9, c: 4, o: 6, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}, bias: true},
		{n: 1, h: 5, w: 3, c: 3, o: 8, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}},
		{n: 3, h: 1, w: 1, c: 6, o: 4, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}, bias: true},
		{n: 1, h: 1, w: 1, c: 6, o: 4, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}, bias: true},
		{n: 1, h: 2, w: 2, c: 3, o: 5, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}},
		{n: 1, h: 4, w: 4, c: 3, o: 5, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}},
		{n: 1, h: 5, w: 5, c: 3, o: 5, k: 5},
		{n: 1, h: 9, w: 9, c: 4, o: 6, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}, Groups: 2}, bias: true},
		{n: 2, h: 9, w: 8, c: 6, o: 6, k: 3, spec: ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 6}},
		{n: 1, h: 8, w: 8, c: 4, o: 4, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}, Groups: 4}, bias: true},
		{n: 2, h: 6, w: 7, c: 5, o: 9, k: 1, bias: true},
		{n: 1, h: 9, w: 9, c: 6, o: 4, k: 1, spec: ConvSpec{Stride: [2]int{2, 2}}},
		{n: 1, h: 8, w: 8, c: 4, o: 6, k: 1, spec: ConvSpec{Groups: 2}, bias: true},
		{n: 1, h: 11, w: 10, c: 3, o: 5, k: 5, spec: ConvSpec{Padding: [2]int{2, 2}}, bias: true},
		{n: 1, h: 12, w: 12, c: 4, o: 4, k: 5, spec: ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{2, 2}, Groups: 2}},
		{n: 2, h: 15, w: 13, c: 3, o: 5, k: 7, spec: ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}}, bias: true},
		{n: 1, h: 27, w: 27, c: 3, o: 4, k: 11, spec: ConvSpec{Stride: [2]int{4, 4}, Padding: [2]int{2, 2}}, bias: true},
		{n: 1, h: 13, w: 12, c: 2, o: 3, k: 5, spec: ConvSpec{Stride: [2]int{1, 2}, Padding: [2]int{0, 1}}},
		{n: 1, h: 9, w: 9, c: 4, o: 4, k: 3, spec: ConvSpec{Stride: [2]int{4, 4}, Groups: 4}, bias: true},
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return d
}

// maxRelErr is max|got−want| / max(1, max|want|).
func maxRelErr(got []float32, want []float64) float64 {
	scale, worst := 1.0, 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	for i, w := range want {
		worst = max(worst, math.Abs(float64(got[i])-w))
	}
	return worst / scale
}

// Every lowering of Conv2D gives PyTorch's convolution — values, gradient with
// respect to the input and to the kernel — on random layers with the kernel
// sizes, strides, paddings and groups of the model zoo, checked against an
// independent float64 loop (so the reference im2col lowering is tested too).
func TestConv2DLoweringsAgree(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	tols := map[Lowering]float64{LoweringIm2Col: 1e-5, LoweringNative: 1e-5, LoweringWinograd: 1e-5, LoweringWinograd4: 1e-4}
	for _, cc := range convTestCases() {
		s := cc.spec.norm()
		x := randSlice(rng, cc.n*cc.h*cc.w*cc.c)
		kern := randSlice(rng, cc.k*cc.k*(cc.c/s.Groups)*cc.o)
		var bias []float32
		if cc.bias {
			bias = randSlice(rng, cc.o)
		}
		ho := ConvOutSize(cc.h, cc.k, s.Stride[0], s.Padding[0])
		wo := ConvOutSize(cc.w, cc.k, s.Stride[1], s.Padding[1])
		v := randSlice(rng, cc.n*ho*wo*cc.o)
		wantY, wantDx, wantDk, _, _ := directConv(cc, x, kern, bias, v)
		xt := tensors.FromFlatDataAndDimensions(x, cc.n, cc.h, cc.w, cc.c)
		kt := tensors.FromFlatDataAndDimensions(kern, cc.k, cc.k, cc.c/s.Groups, cc.o)
		vt := tensors.FromFlatDataAndDimensions(v, cc.n, ho, wo, cc.o)
		bt := tensors.FromFlatDataAndDimensions(append([]float32{0}, bias...), len(bias)+1)
		for _, low := range []Lowering{LoweringIm2Col, LoweringNative, LoweringWinograd, LoweringWinograd4} {
			res, err := runConv(b, cc, low, xt, kt, bt, vt)
			if err != nil {
				t.Errorf("%s %v: %v", cc, low, err)
				continue
			}
			if !sameInts(res[0].Shape().Dimensions, []int{cc.n, ho, wo, cc.o}) {
				t.Fatalf("%s %v: output shape %v, want [%d %d %d %d]", cc, low, res[0].Shape(), cc.n, ho, wo, cc.o)
			}
			for i, want := range [][]float64{wantY, wantDx, wantDk} {
				got := tensors.MustCopyFlatData[float32](res[i])
				if e := maxRelErr(got, want); e > tols[low] || math.IsNaN(e) {
					t.Errorf("%s %v %s: max relative error %.2g > %.0g", cc, low, []string{"y", "dx", "dkernel"}[i], e, tols[low])
				}
			}
		}
	}
}

// runConv runs Conv2D and its gradients (of Σ y·v with respect to x and the
// kernel) with a lowering; panics while building or running become errors.
func runConv(b compute.Backend, cc convCase, low Lowering, xt, kt, bt, vt *tensors.Tensor) (res []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	exec := MustNewExec(b, func(x, k, bb, v *Node) []*Node {
		var bn *Node
		if cc.bias {
			bn = Slice(bb, AxisRange(1, cc.o+1))
		}
		y := Conv2D(x, k, bn, cc.spec, low)
		g := Gradient(ReduceAllSum(Mul(y, v)), x, k)
		return []*Node{y, g[0], g[1]}
	})
	defer exec.Finalize()
	return exec.MustExec(xt, kt, bt, vt), nil
}

// Winograd's rounding error on a VGG-sized layer (3×3, 128 → 64 channels,
// 28×28, two images, forced into one-image groups), against the float64
// loop, relative to the largest output: F(2×2,3×3) stays at im2col's level;
// F(4×4,3×3) is reported and bounded more loosely.
func TestWinogradError(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer func(v int) { winogradGroupBytes = v }(winogradGroupBytes)
	winogradGroupBytes = 1 // One image per group: exercises the split and the concatenation.
	rng := rand.New(rand.NewPCG(9, 10))
	cc := convCase{n: 2, h: 28, w: 28, c: 128, o: 64, k: 3, spec: ConvSpec{Padding: [2]int{1, 1}}, bias: true}
	x := randSlice(rng, cc.n*cc.h*cc.w*cc.c)
	kern := randSlice(rng, 9*cc.c*cc.o)
	for i := range kern {
		kern[i] *= 0.03 // He-like scale, as in trained VGG layers.
	}
	bias := randSlice(rng, cc.o)
	v := randSlice(rng, cc.n*cc.h*cc.w*cc.o)
	wantY, wantDx, wantDk, _, _ := directConv(cc, x, kern, bias, v)
	xt := tensors.FromFlatDataAndDimensions(x, cc.n, cc.h, cc.w, cc.c)
	kt := tensors.FromFlatDataAndDimensions(kern, 3, 3, cc.c, cc.o)
	bt := tensors.FromFlatDataAndDimensions(append([]float32{0}, bias...), cc.o+1)
	vt := tensors.FromFlatDataAndDimensions(v, cc.n, cc.h, cc.w, cc.o)
	bounds := map[Lowering]float64{LoweringIm2Col: 2e-6, LoweringWinograd: 2e-6, LoweringWinograd4: 5e-5}
	for _, low := range []Lowering{LoweringIm2Col, LoweringWinograd, LoweringWinograd4} {
		res, err := runConv(b, cc, low, xt, kt, bt, vt)
		if err != nil {
			t.Fatalf("%v: %v", low, err)
		}
		for i, want := range [][]float64{wantY, wantDx, wantDk} {
			e := maxRelErr(tensors.MustCopyFlatData[float32](res[i]), want)
			t.Logf("%-9v %-7s max error / max |value| = %.2g", low, []string{"y", "dx", "dkernel"}[i], e)
			if e > bounds[low] || math.IsNaN(e) {
				t.Errorf("%v %s: relative error %.2g > %.0g", low, []string{"y", "dx", "dkernel"}[i], e, bounds[low])
			}
		}
	}
}
