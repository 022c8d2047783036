package models

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// Conv3x3 is a 3×3, stride-1, padding-1 convolution of x [N,H,W,C] with kernel
// [3,3,C,O] plus bias [O], returning [N,H,W,O].
//
// With LoweringIm2Col the zero-padded input [N,H+2,W+2,C] is viewed as rows
// [N·(H+2), W+2, C] and ONE GatherSlices copies every 3×3 window into the
// patch matrix [N·H·W, 9·C] (order ky, kx, c: the kernel's), followed by one
// matrix product with the kernel as [9·C, O]. Its gradient with respect to x
// is one matrix product and one ScatterSum of the windows. (Nine shifted
// slices stacked together, the first version, copied the patches twice and
// differentiated into nine padded copies and eight additions.)
func Conv3x3(x, kernel, bias *Node, lowering Lowering) *Node {
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	o := kernel.Shape().Dimensions[3]
	var y *Node
	switch lowering {
	case LoweringNative:
		y = Convolve(x, kernel).PadSame().Done()
	case LoweringWinograd, LoweringWinograd4:
		y = conv3x3Winograd(x, kernel, winogradFor(lowering))
	default:
		// Large batches go through in groups of images, so that no patch
		// matrix exceeds im2colGroupBytes (for a batch of 16 at 224×224 the
		// second VGG convolution's would be 462 MB).
		g := max(1, min(n, im2colGroupBytes/(h*w*9*c*4)))
		parts := make([]*Node, 0, (n+g-1)/g)
		for i := 0; i < n; i += g {
			xi := x
			if g < n {
				xi = Slice(x, AxisRange(i, min(i+g, n)))
			}
			// The patches [NHW,3,3,C] contract with the kernel's own
			// [3,3,C] axes: a Reshape of the kernel would copy it on every
			// call (parameters are never owned by an execution).
			parts = append(parts, Reshape(DotGeneral(im2col3x3(xi), []int{1, 2, 3}, nil, kernel, []int{0, 1, 2}, nil), min(g, n-i), h, w, o))
		}
		y = parts[0]
		if len(parts) > 1 {
			y = Concatenate(parts, 0)
		}
	}
	return Add(y, PerChannel(bias, y))
}

// im2colGroupBytes bounds the patch matrix of one im2col product (see Conv3x3).
const im2colGroupBytes = 64 << 20

// im2col3x3 returns the patches [N·H·W, 3, 3, C] of x [N,H,W,C] for a 3×3
// window with padding 1: patch (n,i,j) is x's padded window centred at (i,j).
func im2col3x3(x *Node) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	padded := Pad(x, ScalarZero(g, x.DType()),
		compute.PadAxis{}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{})
	rows := Reshape(padded, n*(h+2), w+2, c)
	// Window starts (row, column) in rows, for every output position.
	start := make([]int32, 0, n*h*w*2)
	for ni := 0; ni < n; ni++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				start = append(start, int32(ni*(h+2)+i), int32(j))
			}
		}
	}
	return gatherWindows(rows, start, [2]int{3, 3}) // [NHW, 3, 3, C]
}

// gatherWindows copies the windows of size [kh,kw] of rows [R, W, C] that
// start at the (row, column) pairs in start into [M, kh, kw, C] with one
// GatherSlices. Where a window spans a whole axis of rows (R = kh or W = kw),
// that axis is first padded by one zero at the end: GoMLX v0.28.16's gradient
// of such a GatherSlices fails to build (a shape check in its ScatterSum),
// which made the input gradient of a 3×3 convolution on a 1×1 map (one image),
// or of any convolution whose single window covers its padded input, panic.
func gatherWindows(rows *Node, start []int32, size [2]int) *Node {
	d := rows.Shape().Dimensions
	if d[0] == size[0] || d[1] == size[1] {
		var e0, e1 int
		if d[0] == size[0] {
			e0 = 1
		}
		if d[1] == size[1] {
			e1 = 1
		}
		rows = Pad(rows, ScalarZero(rows.Graph(), rows.DType()), compute.PadAxis{End: e0}, compute.PadAxis{End: e1}, compute.PadAxis{})
	}
	starts := Const(rows.Graph(), tensors.FromFlatDataAndDimensions(start, len(start)/2, 2))
	return GatherSlices(rows, []int{0, 1}, starts, size[:], true)
}

// goSmallMatMulFlops is the product size (batch·M·N·K) below which the
// pure-Go backend (github.com/gomlx/compute v0.1.14, SmallMatMulSizeThreshold)
// multiplies matrices in place with its unpacked "small" kernels; larger
// products copy ("pack") both operands into cache panels on every call.
const goSmallMatMulFlops = 4 << 20

// linearRowGroup is the number of rows of x LinearChunked multiplies at once:
// the Go backend's small kernels work on 4 rows at a time (fewer fall back to
// scalar code), so x is zero-padded to a multiple of 4 rows.
const linearRowGroup = 4

// LinearChunkRows returns how many output rows each chunk of a linear
// layer's [out,in] weight holds for LinearChunked: the largest r with
// 4·r·in below the Go backend's small-product size, so that every chunk
// product runs in its small kernels. At least 1.
func LinearChunkRows(in int) int {
	return max(1, (goSmallMatMulFlops-1)/(linearRowGroup*max(in, 1)))
}

// LinearDot is PyTorch's linear map without bias: x [M,in] · Wᵀ → [M,out]
// for a weight W [out,in] in PyTorch's layout (the Go backend's fastest
// layout for the right-hand side: both operands contract their last axis).
func LinearDot(x, w *Node) *Node {
	return DotGeneral(x, []int{1}, nil, w, []int{1}, nil)
}

// LinearChunked is LinearDot(x, W) with W [out,in] given as row chunks
// W_i [r_i,in] (consecutive output rows; concatenated they form W), for the
// pure-Go backend. Row chunks of PyTorch's layout are contiguous pieces of a
// weight file, so a chunk can be the file's own memory (see BindExternal).
//
// For small M a single product with the whole W (in the classifier of VGG,
// 4096×25088 = 411 MB) runs in the backend's packing kernels, which copy all
// of W into cache panels on every call — forward and backward. Here, for
// M ≤ 8, each 4-row group of x (zero-padded to a multiple of 4) is
// multiplied by every chunk separately (outputs [4,r_i], side by side); each
// product is small enough to run in the unpacked kernels, which stream W
// once. The gradient with respect to x is Σ_i dY_i·W_i, also chunk by chunk.
// For M > 8 it is one product with the concatenated chunks. Results equal
// x·Wᵀ up to float32 summation order.
func LinearChunked(x *Node, chunks []*Node) *Node {
	dims := x.Shape().Dimensions
	m, in := dims[0], dims[1]
	for _, c := range chunks {
		if c.Rank() != 2 || c.Shape().Dimensions[1] != in {
			panic(fmt.Errorf("LinearChunked: x %s does not match weight chunk %s", x.Shape(), c.Shape()))
		}
	}
	if x.Rank() != 2 || len(chunks) == 0 {
		panic(fmt.Errorf("LinearChunked: x %s with %d weight chunks", x.Shape(), len(chunks)))
	}
	mp := (m + linearRowGroup - 1) / linearRowGroup * linearRowGroup
	if mp > 2*linearRowGroup || len(chunks) == 1 {
		// From 3 groups on, one packed product with the whole W is faster
		// than streaming W once per group.
		w := chunks[0]
		if len(chunks) > 1 {
			w = Concatenate(chunks, 0)
		}
		return LinearDot(x, w)
	}
	xp := x
	if mp != m {
		xp = Pad(x, ScalarZero(x.Graph(), x.DType()), compute.PadAxis{End: mp - m}, compute.PadAxis{})
	}
	var groups []*Node
	for g := 0; g < mp/linearRowGroup; g++ {
		xg := xp
		if mp != linearRowGroup {
			xg = Slice(xp, AxisRange(g*linearRowGroup, (g+1)*linearRowGroup))
		}
		parts := make([]*Node, len(chunks))
		for i, c := range chunks {
			parts[i] = LinearDot(xg, c) // [4, r_i]
		}
		groups = append(groups, Concatenate(parts, 1))
	}
	y := groups[0]
	if len(groups) > 1 {
		y = Concatenate(groups, 0)
	}
	if mp != m {
		y = Slice(y, AxisRange(0, m))
	}
	return y
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
	return firstMax([]*Node{at(0, 0), at(0, 1), at(1, 0), at(1, 1)})
}

// firstMax is the elementwise maximum of the windows ws (same shapes, finite
// values) whose gradient goes only to the first window, in order, that holds
// the maximum — PyTorch's max-pool tie rule. The selection masks are built
// from floating-point operations only: e_i = 1 − sign(max − w_i) is 1 exactly
// where w_i equals the maximum (max − w_i ≥ 0, and x − x = +0), and m_i =
// e_i·Π_{j<i}(1 − e_j) keeps the first of them. (Comparisons and logical
// operations on booleans run as slow element-by-element loops on the Go
// backend; these run vectorised: the mask operations' share of VGG11's
// input-gradient CPU fell from ~16% to ≤ 6%.) The value is exact: one term is
// w_i·1, the others ±0.
func firstMax(ws []*Node) *Node {
	mx := ws[0]
	for _, w := range ws[1:] {
		mx = Max(mx, w)
	}
	mx = StopGradient(mx)
	var y, free *Node // free: Π(1 − e_j) over the windows so far (nil = 1).
	for i, w := range ws {
		e := OneMinus(Sign(Sub(mx, w)))
		m := e
		if free != nil {
			m = Mul(e, free)
		}
		if i < len(ws)-1 {
			if free == nil {
				free = OneMinus(e)
			} else {
				free = Mul(free, OneMinus(e))
			}
		}
		term := Mul(w, StopGradient(m))
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

// PerChannel returns v ([C]) shaped to combine element-wise with x, whose
// last axis has C entries ([N,H,W,C] or [N,C]).
//
// When C is not a multiple of 16, v is broadcast to x's full shape
// explicitly, from rank 1. Reason: the pure-Go backend (github.com/gomlx/compute
// v0.1.14) runs "tensor ⊕ vector along the last axis" with SIMD kernels that
// load each row's last C mod 16 values with Go 1.27.4's
// archsimd.LoadFloat32x16Part, which reads 64 bytes and masks afterwards:
// on the last row that read goes past the end of the tensor and faults
// (SIGSEGV) when the tensor ends at a page boundary before unmapped memory —
// seen in training the 8-channel lab network. Same-shape element-wise
// kernels only do such a read once, inside the tensor's last 64-byte block,
// which never crosses a page. The broadcast must change the rank: the
// backend's ImplicitBroadcastFusion pass removes a same-rank broadcast
// ([1,1,1,C] → [N,H,W,C]) in front of a binary operation, which brings the
// faulting kernel back (TestPerChannelPageEnd reproduces the fault).
func PerChannel(v, x *Node) *Node {
	dims := x.Shape().Dimensions
	c := dims[len(dims)-1]
	if c%16 == 0 {
		shape := make([]int, len(dims))
		for i := range shape {
			shape[i] = 1
		}
		shape[len(shape)-1] = c
		return Reshape(v, shape...)
	}
	lead := make([]int, len(dims)-1)
	for i := range lead {
		lead[i] = i
	}
	return ExpandAndBroadcast(Reshape(v, c), dims, lead)
}
