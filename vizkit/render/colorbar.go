package render

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Colorbar draws a horizontal colour bar legend of exactly width×height pixels on
// white: an optional centred label on top, the gradient (low values left) in a 1 px
// grey frame, and tick marks with labels for r.Min (left), r.Max (right) and the
// midpoint (centre, when it fits), formatted by [FormatValue]. Text is a 7×13 px
// ASCII font.
//
// Column i of the gradient's n columns shows cmap.At(i/(n−1)), matching how
// [Colorize] maps the same range. r must be explicit and valid (finite, Max ≥ Min;
// pass [Colorized].Range to describe an automatic one). The image must be tall enough
// for the label, tick labels and a bar ≥ 4 px (height ≥ 25, or 40 with a label) and
// wide enough for the min and max labels side by side.
func Colorbar(cmap Colormap, r Range, width, height int, label string) (*image.RGBA, error) {
	if err := cmap.check(); err != nil {
		return nil, fmt.Errorf("render.Colorbar: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("render.Colorbar: %w", err)
	}
	if err := checkSize(height, width); err != nil {
		return nil, fmt.Errorf("render.Colorbar: %w", err)
	}
	const (
		margin   = 4 // left/right, and above the label or bar
		tickLen  = 3
		minBar   = 4
		labelGap = 2
	)
	labelH := 0
	if label != "" {
		labelH = small.height + labelGap
	}
	bottomH := tickLen + small.height + 1
	barH := height - margin - labelH - bottomH
	if barH < minBar {
		return nil, fmt.Errorf("render.Colorbar: height %d too small, need at least %d", height, height-barH+minBar)
	}
	lo, hi := heatmap.FormatValue(r.Min), heatmap.FormatValue(r.Max)
	need := 2*margin + small.width(lo) + small.width(hi) + small.em()
	if width < need || width < 2*margin+4 {
		return nil, fmt.Errorf("render.Colorbar: width %d too small for labels %q and %q, need at least %d", width, lo, hi, max(need, 2*margin+4))
	}

	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	ink := color.Black
	frame := color.RGBA{R: 150, G: 150, B: 150, A: 255}

	if label != "" {
		s := small.fit(label, width-2*margin)
		small.draw(dst, s, (width-small.width(s))/2, margin, ink)
	}
	// Frame and gradient.
	x0, x1 := margin, width-margin // frame spans [x0, x1)
	y0 := margin + labelH
	y1 := y0 + barH
	draw.Draw(dst, image.Rect(x0, y0, x1, y1), image.NewUniform(frame), image.Point{}, draw.Src)
	n := x1 - x0 - 2
	for i := 0; i < n; i++ {
		t := 0.0
		if n > 1 {
			t = float64(i) / float64(n-1)
		}
		draw.Draw(dst, image.Rect(x0+1+i, y0+1, x0+2+i, y1-1), image.NewUniform(cmap.At(t)), image.Point{}, draw.Src)
	}
	// Ticks and labels.
	ty := y1 + tickLen
	tick := func(x int) {
		draw.Draw(dst, image.Rect(x, y1, x+1, ty), image.NewUniform(ink), image.Point{}, draw.Src)
	}
	tick(x0)
	tick(x1 - 1)
	small.draw(dst, lo, x0, ty, ink)
	small.draw(dst, hi, x1-small.width(hi), ty, ink)
	mid := heatmap.FormatValue((r.Min + r.Max) / 2)
	xm := x0 + (x1-x0)/2
	mx := xm - small.width(mid)/2
	if r.Max > r.Min && mx >= x0+small.width(lo)+small.em() && mx+small.width(mid)+small.em() <= x1-small.width(hi) {
		tick(xm)
		small.draw(dst, mid, mx, ty, ink)
	}
	return dst, nil
}
