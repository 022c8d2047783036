package models

import (
	"fmt"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// ConvSpec describes a Conv2d module's geometry (PyTorch's arguments).
// Zero values mean stride 1, padding 0, groups 1.
type ConvSpec struct {
	// Stride and Padding per spatial axis (H, W).
	Stride, Padding [2]int
	// Groups splits input and output channels into groups (depthwise: Groups = C).
	Groups int
}

func (c ConvSpec) norm() ConvSpec {
	if c.Stride[0] < 1 {
		c.Stride[0] = 1
	}
	if c.Stride[1] < 1 {
		c.Stride[1] = 1
	}
	if c.Groups < 1 {
		c.Groups = 1
	}
	return c
}

// ConvOutSize is PyTorch's output size of a convolution or pool along one axis.
func ConvOutSize(in, k, stride, pad int) int {
	if in+2*pad < k {
		return 0 // The kernel does not fit.
	}
	return (in+2*pad-k)/stride + 1
}

// Conv2D is PyTorch's Conv2d on channels-last nodes: x [N,H,W,C], kernel HWIO
// [kh,kw,C/groups,O], bias [O] or nil → [N,Ho,Wo,O].
//
// LoweringNative uses the backend's convolution (XLA's is best). Otherwise
// (the pure-Go backend) it is lowered to matrix products: 3×3 stride-1
// padding-1 dense convolutions take Conv3x3's row-window im2col; 1×1
// convolutions are one product (after a strided slice); other shapes gather
// every window with one GatherSlices into patches [N·Ho·Wo, kh·kw·C] and
// multiply by the kernel [kh·kw·C, O]; grouped convolutions contract each group
// separately in one DotGeneral with the group as a batch axis, and depthwise
// ones (C/groups = 1, O = groups) are a multiply-and-sum over the window.
func Conv2D(x, kernel, bias *Node, spec ConvSpec, lowering Lowering) *Node {
	spec = spec.norm()
	kd := kernel.Shape().Dimensions
	kh, kw, ci, o := kd[0], kd[1], kd[2], kd[3]
	xd := x.Shape().Dimensions
	n, h, w, c := xd[0], xd[1], xd[2], xd[3]
	if c != ci*spec.Groups || o%spec.Groups != 0 {
		panic(fmt.Errorf("Conv2D: input with %d channels and kernel %v do not fit %d groups", c, kd, spec.Groups))
	}
	ho := ConvOutSize(h, kh, spec.Stride[0], spec.Padding[0])
	wo := ConvOutSize(w, kw, spec.Stride[1], spec.Padding[1])
	if ho < 1 || wo < 1 {
		panic(fmt.Errorf("Conv2D: input %dx%d is too small for a %dx%d kernel with stride %v and padding %v", h, w, kh, kw, spec.Stride, spec.Padding))
	}
	var y *Node
	switch {
	case lowering == LoweringNative:
		y = Convolve(x, kernel).StridePerAxis(spec.Stride[0], spec.Stride[1]).
			PaddingPerDim([][2]int{{spec.Padding[0], spec.Padding[0]}, {spec.Padding[1], spec.Padding[1]}}).
			ChannelGroupCount(spec.Groups).Done()
	case spec.Groups == 1 && kh == 3 && kw == 3 && spec.Stride == [2]int{1, 1} && spec.Padding == [2]int{1, 1}:
		if bias == nil {
			bias = Zeros(x.Graph(), shapes.Make(x.DType(), o))
		}
		return Conv3x3(x, kernel, bias, lowering)
	case kh == 1 && kw == 1 && spec.Padding == [2]int{} && spec.Groups == 1:
		xs := x
		if spec.Stride != [2]int{1, 1} {
			xs = Slice(x, AxisRange(), AxisRange().Stride(spec.Stride[0]), AxisRange().Stride(spec.Stride[1]), AxisRange())
			xs = Slice(xs, AxisRange(), AxisRange(0, ho), AxisRange(0, wo), AxisRange())
		}
		// Contract over the kernel's own [1,1,C] axes: a Reshape of the
		// kernel would copy it on every call (the Go backend copies a
		// Reshape's input unless the execution owns it, and parameters are
		// never owned).
		y = Reshape(DotGeneral(Reshape(xs, n*ho*wo, 1, 1, c), []int{1, 2, 3}, nil, kernel, []int{0, 1, 2}, nil), n, ho, wo, o)
	default:
		// Image groups keep each patch matrix below im2colGroupBytes.
		per := ho * wo * kh * kw * c * 4
		g := max(1, min(n, im2colGroupBytes/max(per, 1)))
		var parts []*Node
		for i := 0; i < n; i += g {
			xi := x
			if g < n {
				xi = Slice(x, AxisRange(i, min(i+g, n)))
			}
			parts = append(parts, convPatches(xi, kernel, spec, ho, wo))
		}
		y = parts[0]
		if len(parts) > 1 {
			y = Concatenate(parts, 0)
		}
	}
	if bias != nil {
		y = Add(y, PerChannel(bias, y))
	}
	return y
}

// convPatches is the im2col form of Conv2D for one group of images.
func convPatches(x, kernel *Node, spec ConvSpec, ho, wo int) *Node {
	g := x.Graph()
	xd := x.Shape().Dimensions
	n, h, w, c := xd[0], xd[1], xd[2], xd[3]
	kd := kernel.Shape().Dimensions
	kh, kw, ci, o := kd[0], kd[1], kd[2], kd[3]
	ph, pw := spec.Padding[0], spec.Padding[1]
	if ph > 0 || pw > 0 {
		x = Pad(x, ScalarZero(g, x.DType()), compute.PadAxis{}, compute.PadAxis{Start: ph, End: ph}, compute.PadAxis{Start: pw, End: pw}, compute.PadAxis{})
	}
	hp, wp := h+2*ph, w+2*pw
	rows := Reshape(x, n*hp, wp, c)
	start := make([]int32, 0, n*ho*wo*2)
	for ni := 0; ni < n; ni++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				start = append(start, int32(ni*hp+i*spec.Stride[0]), int32(j*spec.Stride[1]))
			}
		}
	}
	win := gatherWindows(rows, start, [2]int{kh, kw}) // [M, kh, kw, C]
	m := n * ho * wo
	groups := spec.Groups
	var y *Node
	switch {
	case groups == 1:
		y = DotGeneral(win, []int{1, 2, 3}, nil, kernel, []int{0, 1, 2}, nil) // No copy of the kernel (see the 1×1 case).
	case ci == 1 && o == groups:
		// Depthwise: each channel with its own kh×kw filter.
		y = ReduceSum(Mul(Reshape(win, m, kh*kw, c), Reshape(kernel, 1, kh*kw, c)), 1)
	default:
		og := o / groups
		p := Reshape(win, m, kh*kw, groups, ci)                            // [M, K, G, Ci]
		k := Reshape(kernel, kh*kw, ci, groups, og)                        // [K, Ci, G, Og]
		y = DotGeneral(p, []int{1, 3}, []int{2}, k, []int{0, 1}, []int{2}) // [G, M, Og]
		y = Reshape(TransposeAllDims(y, 1, 0, 2), m, o)
	}
	return Reshape(y, n, ho, wo, o)
}

// PoolSpec describes a pooling module's geometry (PyTorch's arguments).
// Zero Stride means stride = kernel size.
type PoolSpec struct {
	Kernel, Stride, Padding [2]int
	// CeilMode rounds the output size up (PyTorch's ceil_mode).
	CeilMode bool
}

func (p PoolSpec) norm() PoolSpec {
	for i := 0; i < 2; i++ {
		if p.Stride[i] < 1 {
			p.Stride[i] = p.Kernel[i]
		}
	}
	return p
}

// poolOutSize is PyTorch's pooling output size (with ceil_mode's rule that the
// last window must start inside the input or left padding).
func poolOutSize(in, k, s, pad int, ceil bool) int {
	num := in + 2*pad - k
	if num < 0 {
		return 0 // The window does not fit (PyTorch raises an error).
	}
	out := num/s + 1
	if ceil {
		out = (num+s-1)/s + 1
		if (out-1)*s >= in+pad {
			out--
		}
	}
	return out
}

// MaxPool2D is PyTorch's MaxPool2d on x [N,H,W,C] (padding counts as −∞). With
// exactGrad the gradient goes to the first maximum of each window in
// row-major order, as PyTorch's CPU kernel does; otherwise to every tied
// maximum (cheaper; same values).
func MaxPool2D(x *Node, spec PoolSpec, exactGrad bool) *Node {
	spec = spec.norm()
	if spec.Kernel == [2]int{2, 2} && spec.Stride == [2]int{2, 2} && spec.Padding == [2]int{} && !spec.CeilMode {
		return MaxPool2x2(x, exactGrad)
	}
	return poolWindows(x, spec, func(ws []*Node, padded bool) *Node {
		if exactGrad && !padded {
			return firstMax(ws)
		}
		mx := ws[0]
		for _, w := range ws[1:] {
			mx = Max(mx, w)
		}
		if !exactGrad {
			return mx
		}
		// Windows padded with −∞: firstMax's arithmetic would give
		// −∞ − (−∞) = NaN, so the masks come from comparisons.
		mx = StopGradient(mx)
		var taken, y *Node
		for i, a := range ws {
			hit := Equal(a, mx)
			if taken != nil {
				hit = LogicalAnd(hit, LogicalNot(taken))
			}
			if i < len(ws)-1 {
				if taken == nil {
					taken = hit
				} else {
					taken = LogicalOr(taken, hit)
				}
			}
			term := Where(hit, a, ZerosLike(a))
			if y == nil {
				y = term
			} else {
				y = Add(y, term)
			}
		}
		return y
	}, float32(math.Inf(-1)))
}

// AvgPool2D is PyTorch's AvgPool2d on x [N,H,W,C] without padding (as DenseNet's
// transitions use it).
func AvgPool2D(x *Node, spec PoolSpec) *Node {
	spec = spec.norm()
	if spec.Padding != [2]int{} {
		panic(fmt.Errorf("AvgPool2D: padding %v is not supported", spec.Padding))
	}
	return poolWindows(x, spec, func(ws []*Node, _ bool) *Node {
		s := ws[0]
		for _, w := range ws[1:] {
			s = Add(s, w)
		}
		return MulScalar(s, 1/float64(len(ws)))
	}, 0)
}

// poolWindows pads x with fill and combines the kh·kw strided views of it
// (one per window offset, row-major) with f.
func poolWindows(x *Node, spec PoolSpec, f func(ws []*Node, padded bool) *Node, fill float32) *Node {
	d := x.Shape().Dimensions
	h, w := d[1], d[2]
	kh, kw := spec.Kernel[0], spec.Kernel[1]
	sh, sw := spec.Stride[0], spec.Stride[1]
	ho := poolOutSize(h, kh, sh, spec.Padding[0], spec.CeilMode)
	wo := poolOutSize(w, kw, sw, spec.Padding[1], spec.CeilMode)
	if ho < 1 || wo < 1 {
		panic(fmt.Errorf("pool: input %dx%d is too small for a %dx%d window", h, w, kh, kw))
	}
	// Pad: left by Padding, right as far as the last window reaches.
	rh := max(0, (ho-1)*sh+kh-h-spec.Padding[0])
	rw := max(0, (wo-1)*sw+kw-w-spec.Padding[1])
	padded := spec.Padding != [2]int{} || rh > 0 || rw > 0
	if padded {
		x = Pad(x, Scalar(x.Graph(), x.DType(), fill), compute.PadAxis{},
			compute.PadAxis{Start: spec.Padding[0], End: rh}, compute.PadAxis{Start: spec.Padding[1], End: rw}, compute.PadAxis{})
	}
	ws := make([]*Node, 0, kh*kw)
	for dy := 0; dy < kh; dy++ {
		for dx := 0; dx < kw; dx++ {
			ws = append(ws, Slice(x, AxisRange(),
				AxisRange(dy, dy+(ho-1)*sh+1).Stride(sh), AxisRange(dx, dx+(wo-1)*sw+1).Stride(sw), AxisRange()))
		}
	}
	return f(ws, padded)
}
