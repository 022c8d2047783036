package models

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// winogradTransforms holds the 1-D transforms of Winograd's minimal filtering
// algorithm F(m, 3) (Lavin & Gray 2015): input tiles of α = m+2 values give m
// outputs. Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for one α×α tile d and 3×3 filter g.
type winogradTransforms struct {
	m      int
	bt, g  [][]float64 // Bᵀ [α,α], G [α,3]
	at     [][]float64 // Aᵀ [m,α]
	alpha  int
	tiling string
}

var (
	winogradF2 = winogradTransforms{m: 2, alpha: 4, tiling: "F(2x2,3x3)",
		bt: [][]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
		g:  [][]float64{{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}},
		at: [][]float64{{1, 1, 1, 0}, {0, 1, -1, -1}},
	}
	winogradF4 = winogradTransforms{m: 4, alpha: 6, tiling: "F(4x4,3x3)",
		bt: [][]float64{
			{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
			{0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}},
		g: [][]float64{
			{1. / 4, 0, 0}, {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6},
			{1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}},
		at: [][]float64{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
	}
)

// kron returns the 2-D transform of a 1-D one, a [r,c] → [r·r, c·c] matrix K
// with K[(a,b),(p,q)] = T[a,p]·T[b,q], so that for a tile X [c,c] flattened
// row-major, K·vec(X) = vec(T X Tᵀ).
func kron(t [][]float64) [][]float32 {
	r, c := len(t), len(t[0])
	k := make([][]float32, r*r)
	for a := 0; a < r; a++ {
		for b := 0; b < r; b++ {
			row := make([]float32, c*c)
			for p := 0; p < c; p++ {
				for q := 0; q < c; q++ {
					row[p*c+q] = float32(t[a][p] * t[b][q])
				}
			}
			k[a*r+b] = row
		}
	}
	return k
}

// winogradFor returns the transforms of a Winograd lowering.
func winogradFor(l Lowering) winogradTransforms {
	switch l {
	case LoweringWinograd:
		return winogradF2
	case LoweringWinograd4:
		return winogradF4
	}
	panic(fmt.Errorf("lowering %v is not a Winograd lowering", l))
}

// winogradGroupBytes bounds the transformed input [α², T, C] of one group of
// images (like im2colGroupBytes for patch matrices).
var winogradGroupBytes = 64 << 20 // A variable for tests.

// conv3x3Winograd is Conv3x3 (3×3, stride 1, padding 1, no bias) of x
// [N,H,W,C] with kernel [3,3,C,O] through Winograd's F(m×m, 3×3), whose
// tiles of α = m+2 input rows and columns give m×m outputs:
//
//  1. the input, zero-padded by 1 (and on the bottom/right up to whole tiles),
//     is cut into overlapping α×α tiles at stride m with one GatherSlices:
//     [T, α², C] with T = N·⌈H/m⌉·⌈W/m⌉;
//  2. each tile is transformed, V = (Bᵀ⊗Bᵀ)·vec(d): one product with a
//     constant [α², α²] matrix → [α², T, C];
//  3. the kernel is transformed, U = (G⊗G)·vec(g) → [α², C, O];
//  4. one batched product over the α² tile positions, M_p = V_p·U_p →
//     [α², T, O] (the only O(C·O) work: α²/m² multiply-adds per output and
//     input channel against 9 for im2col — 4 for F(2×2,3×3), 2.25 for
//     F(4×4,3×3));
//  5. the output transform (Aᵀ⊗Aᵀ)·M → [m², T, O], rearranged into
//     [N, H, W, O] (cropped to H×W).
//
// Large batches go through in image groups (winogradGroupBytes). Every step
// is linear, so the gradients with respect to x and the kernel are GoMLX's
// transposed products and a ScatterSum of the tiles. Results equal the direct
// convolution up to float32 rounding: the transforms' entries are exact in
// float32 for F(2×2,3×3) (0, ±½, ±1); F(4×4,3×3)'s (±1/6, 1/24, ±8, −5)
// amplify rounding (TestConv2DLoweringsAgree, TestWinogradError).
//
// Speed on the Go backend (compute v0.1.14, 2 AVX-512 cores): slower than
// im2col — the transforms are single-threaded memory passes, the products
// with K = C are less efficient than im2col's one product with K = 9·C, and
// the batched product ran ~2–3× slower than α² separate products of the same
// size. A separable form (row and column gathers combined by additions, α²
// separate products) measured no better. See docs/benchmarks.md.
func conv3x3Winograd(x, kernel *Node, wt winogradTransforms) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	o := kernel.Shape().Dimensions[3]
	m, a := wt.m, wt.alpha
	th, tw := (h+m-1)/m, (w+m-1)/m
	hp, wp := th*m+2, tw*m+2
	padded := Pad(x, ScalarZero(g, x.DType()), compute.PadAxis{},
		compute.PadAxis{Start: 1, End: hp - h - 1}, compute.PadAxis{Start: 1, End: wp - w - 1}, compute.PadAxis{})
	u := Reshape(Dot(Const(g, kron(wt.g)), Reshape(kernel, 9, c*o)).Product(), a*a, c, o) // [α², C, O]
	bk := Const(g, kron(wt.bt))
	ak := Const(g, kron(wt.at))
	grp := max(1, min(n, winogradGroupBytes/max(th*tw*a*a*c*4, 1)))
	var parts []*Node
	for i0 := 0; i0 < n; i0 += grp {
		ng := min(grp, n-i0)
		xi := padded
		if ng < n {
			xi = Slice(padded, AxisRange(i0, i0+ng))
		}
		t := ng * th * tw
		rows := Reshape(xi, ng*hp, wp, c)
		start := make([]int32, 0, 2*t)
		for ni := 0; ni < ng; ni++ {
			for i := 0; i < th; i++ {
				for j := 0; j < tw; j++ {
					start = append(start, int32(ni*hp+i*m), int32(j*m))
				}
			}
		}
		tiles := Reshape(gatherWindows(rows, start, [2]int{a, a}), t, a*a, c) // [T, α², C]
		v := DotGeneral(bk, []int{1}, nil, tiles, []int{1}, nil)              // [α², T, C]
		mm := DotGeneral(v, []int{2}, []int{0}, u, []int{1}, []int{0})        // [α², T, O]
		y := DotGeneral(ak, []int{1}, nil, mm, []int{0}, nil)                 // [m², T, O]
		y = Reshape(y, m, m, ng, th, tw, o)
		y = Reshape(TransposeAllDims(y, 2, 3, 0, 4, 1, 5), ng, th*m, tw*m, o)
		if th*m != h || tw*m != w {
			y = Slice(y, AxisRange(), AxisRange(0, h), AxisRange(0, w))
		}
		parts = append(parts, y)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 0)
}
