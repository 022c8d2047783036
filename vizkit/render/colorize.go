package render

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Colorized is the result of [Colorize].
type Colorized struct {
	// Image is the W×H colourised map (pixel (x, y) shows Map value [y*W+x]); opaque.
	Image *image.RGBA
	// Range is the value range actually used: t = (v-Min)/(Max-Min). For an automatic
	// range it is the map's finite min–max ({v, v} for a constant map, {0, 0} when
	// there is no finite value).
	Range Range
	// Flat is true when the picture carries no contrast: all finite values are equal,
	// there is no finite value, or the explicit range is degenerate (Min == Max).
	Flat bool
	// NonFinite counts NaN and ±Inf values (drawn in the colormap's Bad colour).
	NonFinite int
	// Note is a short human-readable remark for a caption, e.g. "constant map (value 0)"
	// or "3 non-finite values"; "" when there is nothing to remark.
	Note string
}

// Colorize maps every value of m through cmap.
//
// With r.IsAuto() (the zero Range) the range is m's finite min–max; otherwise r is
// used as given (it must be finite with Max ≥ Min) and values outside it are clamped
// to the end colours. The colour of value v is cmap.At((v-Min)/(Max-Min)) (matplotlib
// indexing). Special cases, none of which produce NaN arithmetic:
//   - non-finite values (NaN, ±Inf) are drawn in cmap.Bad() (default: the low end);
//   - a constant map with an automatic range, or any map with a degenerate explicit
//     range, is drawn entirely in the low-end colour cmap.Index(0) (finite values);
//   - a constant map with a non-degenerate explicit range is mapped normally
//     (e.g. zeros under [Diverging] land on the neutral middle), and still flagged Flat.
func Colorize(m Map, cmap Colormap, r Range) (Colorized, error) {
	if err := m.Validate(); err != nil {
		return Colorized{}, fmt.Errorf("render.Colorize: %w", err)
	}
	if err := cmap.check(); err != nil {
		return Colorized{}, fmt.Errorf("render.Colorize: %w", err)
	}
	stats := m.Stats()
	res := Colorized{NonFinite: stats.NonFinite()}
	var notes []string
	if r.IsAuto() {
		r = Range{Min: stats.Min, Max: stats.Max}
	} else if err := r.Validate(); err != nil {
		return Colorized{}, fmt.Errorf("render.Colorize: %w", err)
	}
	res.Range = r
	switch {
	case stats.Finite == 0:
		res.Flat = true
		notes = append(notes, fmt.Sprintf("no finite values (%s)", describeNonFinite(stats)))
	case stats.Min == stats.Max:
		res.Flat = true
		notes = append(notes, fmt.Sprintf("constant map (value %s)", heatmap.FormatValue(stats.Min)))
	case r.Min == r.Max:
		res.Flat = true
		notes = append(notes, fmt.Sprintf("degenerate range %s", r))
	}
	if stats.Finite > 0 && res.NonFinite > 0 {
		notes = append(notes, describeNonFinite(stats))
	}
	res.Note = strings.Join(notes, "; ")

	img := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, v := range m.Data {
		var c color.RGBA
		f := float64(v)
		if isFinite(f) {
			c = cmap.At(r.Norm(f))
		} else {
			c = cmap.Bad()
		}
		o := 4 * i // image.NewRGBA has Stride == 4*W
		img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = c.R, c.G, c.B, c.A
	}
	res.Image = img
	return res, nil
}

func describeNonFinite(s heatmap.Stats) string {
	var parts []string
	if s.NaN > 0 {
		parts = append(parts, fmt.Sprintf("%d NaN", s.NaN))
	}
	if s.PosInf > 0 {
		parts = append(parts, fmt.Sprintf("%d +Inf", s.PosInf))
	}
	if s.NegInf > 0 {
		parts = append(parts, fmt.Sprintf("%d -Inf", s.NegInf))
	}
	return strings.Join(parts, ", ")
}

// RGBFromCHW renders a 3-channel channels-first array [3, H, W] (row-major, len 3·H·W;
// channel 0 = red) as an RGB image, each value mapped by t = r.Norm(v) to
// uint8(255·t + 0.5). With r.IsAuto() the range is the finite min–max over all three
// channels together (so relative channel weights survive; this is the usual way to
// show first-layer convolution kernels). Non-finite values become 0. A constant
// array renders black.
func RGBFromCHW(data []float32, h, w int, r Range) (*image.RGBA, error) {
	if err := checkSize(h, w); err != nil {
		return nil, fmt.Errorf("render.RGBFromCHW: %w", err)
	}
	if len(data) != 3*h*w {
		return nil, fmt.Errorf("render.RGBFromCHW: len(data)=%d, want 3*H*W=3*%d*%d=%d", len(data), h, w, 3*h*w)
	}
	if r.IsAuto() {
		r, _ = Map{H: 3 * h, W: w, Data: data}.Range()
	} else if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("render.RGBFromCHW: %w", err)
	}
	n := h * w
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < n; p++ {
		for ch := 0; ch < 3; ch++ {
			f := float64(data[ch*n+p])
			var b uint8
			if isFinite(f) {
				b = uint8(math.Floor(255*r.Norm(f) + 0.5))
			}
			img.Pix[4*p+ch] = b
		}
		img.Pix[4*p+3] = 255
	}
	return img, nil
}
