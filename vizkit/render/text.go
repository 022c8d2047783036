package render

import (
	"image"
	"image/color"
	"image/draw"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/inconsolata"
	"golang.org/x/image/math/fixed"
)

// Fonts: fixed-width bitmap faces covering printable ASCII. Runes outside
// U+0020..U+007E are drawn as '?'.
var (
	smallFace = basicfont.Face7x13   // captions and tick labels: 7 px advance, 13 px line
	titleFace = inconsolata.Bold8x16 // titles and colour-bar labels: 8 px advance, 16 px line
)

// textFace describes a basicfont face's fixed metrics.
type textFace struct {
	face    *basicfont.Face
	advance int // pixels per rune
	height  int // line height in pixels
	ascent  int
}

var (
	small = textFace{face: smallFace, advance: smallFace.Advance, height: smallFace.Height, ascent: smallFace.Ascent}
	title = textFace{face: titleFace, advance: titleFace.Advance, height: titleFace.Height, ascent: titleFace.Ascent}
)

// sanitize replaces runes the bitmap fonts lack by '?', and control characters
// (newlines, tabs) by spaces.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}

// width returns the pixel width of s (already sanitised) in face f.
func (f textFace) width(s string) int { return len(s) * f.advance }

// fit sanitises s and truncates it with ".." so that it is at most maxPx wide.
func (f textFace) fit(s string, maxPx int) string {
	s = sanitize(s)
	n := maxPx / f.advance
	if len(s) <= n {
		return s
	}
	if n <= 2 {
		if n < 0 {
			n = 0
		}
		return s[:n]
	}
	return s[:n-2] + ".."
}

// draw writes s with its top-left corner at (x, y) in colour c.
func (f textFace) draw(dst draw.Image, s string, x, y int, c color.Color) {
	d := font.Drawer{
		Dst:  dst,
		Src:  image.NewUniform(c),
		Face: f.face,
		Dot:  fixed.P(x, y+f.ascent),
	}
	d.DrawString(s)
}

// contrastText returns black or white, whichever reads better on bg.
func contrastText(bg color.Color) color.Color {
	r, g, b, _ := bg.RGBA()
	// Rec. 601 luma on 16-bit channels.
	luma := (299*r + 587*g + 114*b) / 1000
	if luma > 0x8000 {
		return color.Black
	}
	return color.White
}
