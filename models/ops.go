package models

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// Conv3x3 is a 3×3, stride-1, padding-1 convolution of x [N,H,W,C] with kernel
// [3,3,C,O] plus bias [O], returning [N,H,W,O].
func Conv3x3(x, kernel, bias *Node, lowering Lowering) *Node {
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	o := kernel.Shape().Dimensions[3]
	var y *Node
	if lowering == LoweringNative {
		y = Convolve(x, kernel).PadSame().Done()
	} else {
		padded := Pad(x, ScalarZero(x.Graph(), x.DType()),
			compute.PadAxis{}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{})
		slices := make([]*Node, 0, 9)
		for dy := 0; dy < 3; dy++ {
			for dx := 0; dx < 3; dx++ {
				slices = append(slices, Slice(padded, AxisRange(), AxisRange(dy, dy+h), AxisRange(dx, dx+w)))
			}
		}
		patches := Reshape(Stack(slices, 3), n*h*w, 9*c) // [NHW, (ky,kx,C)]
		y = Reshape(Dot(patches, Reshape(kernel, 9*c, o)).Product(), n, h, w, o)
	}
	return Add(y, Reshape(bias, 1, 1, 1, o))
}

// ReLUWithRule is max(x, 0) with the backward rule chosen by rule.
func ReLUWithRule(x *Node, rule ReLURule) *Node {
	zero := ZerosLike(x)
	switch rule {
	case ReLUGuided:
		y := Where(GreaterThan(x, zero), x, zero)
		return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
			return Where(GreaterThan(v, ZerosLike(v)), v, ZerosLike(v))
		})
	case ReLUDeconv:
		// Forward: (relu(x) − x) + x = relu(x) exactly; backward only through the
		// custom identity, which passes relu(v).
		y := Where(GreaterThan(x, zero), x, zero)
		pass := IdentityWithCustomGradient(x, func(_, v *Node) *Node {
			return Where(GreaterThan(v, ZerosLike(v)), v, ZerosLike(v))
		})
		return Add(StopGradient(Sub(y, x)), pass)
	default:
		// Where's gradient goes to the selected branch: 0 where x ≤ 0, as PyTorch.
		return Where(GreaterThan(x, zero), x, zero)
	}
}

// MaxPool2x2 is MaxPool2d(kernel 2, stride 2) on x [N,H,W,C] (floor mode).
func MaxPool2x2(x *Node, exactGrad bool) *Node {
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	h2, w2 := h/2, w/2
	if h != 2*h2 || w != 2*w2 {
		x = Slice(x, AxisRange(), AxisRange(0, 2*h2), AxisRange(0, 2*w2))
	}
	x = Reshape(x, n, h2, 2, w2, 2, c)
	if !exactGrad {
		return ReduceMax(x, 2, 4)
	}
	at := func(i, j int) *Node {
		return Reshape(Slice(x, AxisRange(), AxisRange(), AxisRange(i, i+1), AxisRange(), AxisRange(j, j+1)), n, h2, w2, c)
	}
	a := [4]*Node{at(0, 0), at(0, 1), at(1, 0), at(1, 1)}
	mx := StopGradient(Max(Max(a[0], a[1]), Max(a[2], a[3])))
	// One-hot of the first maximum in row-major window order (PyTorch's choice).
	var taken *Node
	var y *Node
	for i, ai := range a {
		hit := Equal(ai, mx)
		if taken != nil {
			hit = LogicalAnd(hit, LogicalNot(taken))
		}
		if i < 3 {
			if taken == nil {
				taken = hit
			} else {
				taken = LogicalOr(taken, hit)
			}
		}
		term := Mul(ai, StopGradient(ConvertDType(hit, dtypes.Float32)))
		if y == nil {
			y = term
		} else {
			y = Add(y, term)
		}
	}
	return y
}

// adaptivePoolMatrix returns the [out,in] averaging matrix of PyTorch's
// AdaptiveAvgPool along one axis: bin i covers [floor(i·in/out), ceil((i+1)·in/out)).
func adaptivePoolMatrix(in, out int) []float32 {
	m := make([]float32, out*in)
	for i := 0; i < out; i++ {
		start := (i * in) / out
		end := ((i+1)*in + out - 1) / out
		for j := start; j < end; j++ {
			m[i*in+j] = 1 / float32(end-start)
		}
	}
	return m
}

// AdaptiveAvgPool is AdaptiveAvgPool2d((p,p)) on x [N,H,W,C].
func AdaptiveAvgPool(x *Node, p int) *Node {
	dims := x.Shape().Dimensions
	h, w := dims[1], dims[2]
	if h == p && w == p {
		return x
	}
	g := x.Graph()
	ph := Const(g, reshape2(adaptivePoolMatrix(h, p), p, h))
	pw := Const(g, reshape2(adaptivePoolMatrix(w, p), p, w))
	y := DotGeneral(ph, []int{1}, nil, x, []int{1}, nil) // [P, N, W, C]
	y = DotGeneral(pw, []int{1}, nil, y, []int{2}, nil)  // [Q, P, N, C]
	return TransposeAllDims(y, 2, 1, 0, 3)               // [N, P, Q, C]
}

func reshape2(data []float32, rows, cols int) [][]float32 {
	out := make([][]float32, rows)
	for r := range out {
		out[r] = data[r*cols : (r+1)*cols]
	}
	return out
}
