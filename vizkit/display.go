package vizkit

import (
	"fmt"
	"image"
	"math"

	"github.com/cnnviz/cnnviz/vizkit/render"
)

// HTMLer is a result that renders itself as a self-contained HTML fragment
// (images embedded as PNG data URIs, no external resources), for GoNB cells
// (see package vizkit/nb) and reports. KernelsResult, FeatureMapsResult and
// LayerTableResult implement it.
type HTMLer interface {
	HTML() (string, error)
}

// Norm selects how the values of several tiles (kernels, feature maps) are
// mapped to colours.
type Norm int

const (
	// NormPerMap (the default) stretches each tile to its own min–max (or, with a
	// diverging colormap, to its own ±max|v|), so every tile shows its pattern at
	// full contrast but tiles cannot be compared by brightness.
	NormPerMap Norm = iota
	// NormShared uses one range for all tiles shown of a layer, so brightness is
	// comparable across tiles (weak tiles look faint).
	NormShared
)

// String names the normalisation for captions.
func (n Norm) String() string {
	if n == NormShared {
		return "one shared range"
	}
	return "each tile scaled to its own range"
}

func (n Norm) valid() error {
	if n != NormPerMap && n != NormShared {
		return fmt.Errorf("unknown normalisation %d (use NormPerMap or NormShared)", int(n))
	}
	return nil
}

// valueRange returns the finite min and max of data; ok is false when data
// has no finite value.
func valueRange(data []float32) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// symmetric returns [-a, a] with a = max(|lo|, |hi|), or [-1, 1] when a is 0
// (so zeros land on a diverging colormap's neutral middle).
func symmetric(lo, hi float64) render.Range {
	a := math.Max(math.Abs(lo), math.Abs(hi))
	if a == 0 {
		a = 1
	}
	return render.Range{Min: -a, Max: a}
}

// colorbarFor draws the legend of a set of tiles: the shared range when there
// is one, otherwise the normalised scale each tile was stretched to (0 = the
// tile's low end, 1 = its high end; -1/+1 = ∓ its max |v| when diverging).
func colorbarFor(cmap render.Colormap, shared *render.Range, diverging bool, what string) (image.Image, error) {
	r := render.Range{Min: 0, Max: 1}
	label := "each tile: own min -> max"
	if diverging {
		r = render.Range{Min: -1, Max: 1}
		label = "each tile: -max|v| .. 0 .. +max|v|"
	}
	if shared != nil {
		r = *shared
		label = what
	}
	return render.Colorbar(cmap, r, 300, 44, label)
}

// autoScale is the default nearest-neighbour enlargement of a tile of h×w
// pixels: the largest integer k ≥ 1 with k·max(h,w) ≤ target (at least 1).
func autoScale(h, w, target int) int {
	return max(1, target/max(h, w, 1))
}

// displayWidth is the width at which HTML shows a grid: doubled (and drawn
// pixelated) when it is narrower than 400 px, else its natural width.
func displayWidth(img image.Image) int {
	if w := img.Bounds().Dx(); w < 400 {
		return 2 * w
	}
	return 0
}
