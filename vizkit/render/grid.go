package render

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
)

// GridOptions configures [Grid]. The zero value is usable: ceil(√n) columns, no
// padding, white background, no captions, scale 1, no title.
type GridOptions struct {
	// Cols is the number of columns; 0 means ceil(sqrt(len(tiles))). Rows follow.
	Cols int
	// Pad is the gap in pixels between cells and around the border (≥ 0).
	Pad int
	// Background fills the padding and empty cell area; nil means white.
	Background color.Color
	// TextColor draws captions and the title; nil means black or white, whichever
	// contrasts with Background.
	TextColor color.Color
	// Captions are optional labels drawn centred under each tile (index-aligned with
	// tiles; may be shorter, must not be longer). Drawn in a 7×13 px ASCII font;
	// a caption wider than its cell is cut with "..". Cells widen to fit captions up to
	// MaxCaptionChars characters.
	Captions []string
	// MaxCaptionChars caps how far captions widen a cell; 0 means 16.
	MaxCaptionChars int
	// Scale enlarges every tile by pixel replication (nearest neighbour); 0 means 1.
	Scale int
	// Compact sizes each column to its widest cell and each row to its tallest cell
	// (and gives a caption line only to rows that have a caption) instead of making
	// all cells equal; useful to assemble panels of different sizes.
	Compact bool
	// Title is drawn in bold 8×16 px above the grid, left-aligned, cut at 100
	// characters; "" for none.
	Title string
}

// Grid lays tiles out row-major in a grid of equal cells and returns one opaque image
// with bounds starting at (0, 0).
//
// Every cell is as wide as the widest (scaled) tile or caption and as tall as the
// tallest tile, plus a caption line (2 px gap + 13 px) when any caption is
// non-empty (per column and per row with Compact). Tiles of different sizes are
// centred in their cells (rounding down);
// nil tiles leave their cell empty. Tiles are composited over the background
// (draw.Over). Layout in pixels, with P = Pad:
//
//	width  = P + cols·cellW + (cols−1)·P + P
//	height = P + [title line 16 + 4] + rows·cellH + (rows−1)·P + P
//
// so four 1×1 tiles with Cols 2 and Pad 1 give a 5×5 image with tiles at (1,1),
// (3,1), (1,3), (3,3). If the title is wider than the grid, the image widens and the
// grid is centred.
func Grid(tiles []image.Image, opts GridOptions) (*image.RGBA, error) {
	n := len(tiles)
	if n == 0 {
		return nil, fmt.Errorf("render.Grid: no tiles")
	}
	if len(opts.Captions) > n {
		return nil, fmt.Errorf("render.Grid: %d captions for %d tiles", len(opts.Captions), n)
	}
	if opts.Pad < 0 || opts.Cols < 0 || opts.Scale < 0 || opts.MaxCaptionChars < 0 {
		return nil, fmt.Errorf("render.Grid: Pad (%d), Cols (%d), Scale (%d) and MaxCaptionChars (%d) must not be negative",
			opts.Pad, opts.Cols, opts.Scale, opts.MaxCaptionChars)
	}
	scale := max(opts.Scale, 1)
	cols := opts.Cols
	if cols == 0 {
		cols = 1
		for cols*cols < n {
			cols++
		}
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	maxCap := opts.MaxCaptionChars
	if maxCap == 0 {
		maxCap = 16
	}

	// Cell sizes: colW[c] (tile or caption width), tileH[r] (tile area) and capH[r]
	// (caption line or 0). Uniform unless Compact.
	const captionGap = 2
	// Caption and title sizes follow the tiles' width (see captionPx).
	widest := 0
	for _, t := range tiles {
		if t != nil {
			widest = max(widest, min(t.Bounds().Dx(), MaxPixels/scale)*scale)
		}
	}
	small := faceAt(false, captionPx(widest))
	title := faceAt(true, captionPx(widest)+3)
	colW := make([]int, cols)
	tileH := make([]int, rows)
	capH := make([]int, rows)
	for i := 0; i < n; i++ {
		r, c := i/cols, i%cols
		if t := tiles[i]; t != nil {
			b := t.Bounds()
			if b.Dx() > MaxPixels/scale || b.Dy() > MaxPixels/scale {
				return nil, fmt.Errorf("render.Grid: tile %d (%dx%d) scaled by %d is too large", i, b.Dx(), b.Dy(), scale)
			}
			colW[c] = max(colW[c], b.Dx()*scale)
			tileH[r] = max(tileH[r], b.Dy()*scale)
		}
		if i < len(opts.Captions) && opts.Captions[i] != "" {
			colW[c] = max(colW[c], min(small.width(small.sanitizeFor(opts.Captions[i])), maxCap*small.em()))
			capH[r] = captionGap + small.height
		}
	}
	if !opts.Compact {
		uniform := func(v []int) {
			m := 0
			for _, x := range v {
				m = max(m, x)
			}
			for i := range v {
				v[i] = m
			}
		}
		uniform(colW)
		uniform(tileH)
		uniform(capH)
	}
	pad := opts.Pad
	gridW, gridH := pad, 0
	colX := make([]int, cols) // left edge of each column, relative to the grid
	for c, w := range colW {
		colX[c] = gridW
		gridW += w + pad
	}
	rowY := make([]int, rows) // top edge of each row, relative to the grid body
	for r := range rowY {
		rowY[r] = gridH
		gridH += tileH[r] + capH[r] + pad
	}
	gridH -= pad
	if gridW == 2*pad || gridH <= 0 {
		return nil, fmt.Errorf("render.Grid: all tiles are nil or empty and there are no captions")
	}

	width := gridW
	top := pad
	titleText := ""
	const titleGap = 4
	if opts.Title != "" {
		titleText = title.fit(opts.Title, 100*title.em())
		width = max(width, title.width(titleText)+2*max(pad, 2))
		top += title.height + titleGap
	}
	height := top + gridH + pad
	if err := checkSize(height, width); err != nil {
		return nil, fmt.Errorf("render.Grid: %w", err)
	}

	bg := opts.Background
	if bg == nil {
		bg = color.White
	}
	fg := opts.TextColor
	if fg == nil {
		fg = contrastText(bg)
	}
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	if titleText != "" {
		title.draw(dst, titleText, max(pad, 2), pad, fg)
	}
	left := (width - gridW) / 2
	for i, t := range tiles {
		r, c := i/cols, i%cols
		cx, cy, cw := left+colX[c], top+rowY[r], colW[c]
		if t != nil && !t.Bounds().Empty() {
			src := t
			if scale > 1 {
				var err error
				if src, err = UpscaleNearest(t, scale); err != nil {
					return nil, fmt.Errorf("render.Grid: tile %d: %w", i, err)
				}
			}
			sb := src.Bounds()
			x := cx + (cw-sb.Dx())/2
			y := cy + (tileH[r]-sb.Dy())/2
			draw.Draw(dst, image.Rect(x, y, x+sb.Dx(), y+sb.Dy()), src, sb.Min, draw.Over)
		}
		if i < len(opts.Captions) && opts.Captions[i] != "" {
			s := small.fit(opts.Captions[i], cw)
			x := cx + (cw-small.width(s))/2
			small.draw(dst, s, x, cy+tileH[r]+captionGap, fg)
		}
	}
	return dst, nil
}
