package render

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Text is drawn with the Go fonts that golang.org/x/image ships (Go Regular
// for captions and tick labels, Go Bold for titles): antialiased, with
// Unicode (Latin, Greek, Cyrillic, arrows, ×, −, √, …; a rune the font lacks
// is drawn as '?'), at pixel sizes that scale with the picture (see
// captionPx).

// Default sizes in pixels (the em size; a line is about 1.2 em).
const (
	smallPx = 11 // colour-bar labels and ticks
	titlePx = 15 // titles
)

// textFace is one font at one pixel size.
type textFace struct {
	face    font.Face
	height  int // line height in pixels
	ascent  int
	ellipse string // "…" or ".." when the font lacks it
	// mu serialises use of face: an opentype face is not safe for
	// concurrent use, and faces are shared through a cache.
	mu *sync.Mutex
}

var (
	fontsOnce           sync.Once
	regularTTF, boldTTF *opentype.Font
	fontsErr            error
	facesMu             sync.Mutex
	faces               = map[[2]int]textFace{}
)

func parseFonts() {
	regularTTF, fontsErr = opentype.Parse(goregular.TTF)
	if fontsErr == nil {
		boldTTF, fontsErr = opentype.Parse(gobold.TTF)
	}
}

// faceAt returns the regular (bold false) or bold Go font at px pixels
// (clamped to 6..96). The fonts are embedded, so this cannot fail at run
// time; a broken embedded font panics at first use with the parse error.
func faceAt(bold bool, px int) textFace {
	fontsOnce.Do(parseFonts)
	if fontsErr != nil {
		panic(fmt.Sprintf("render: parsing the embedded Go fonts: %v", fontsErr))
	}
	px = min(max(px, 6), 96)
	key := [2]int{0, px}
	f := regularTTF
	if bold {
		key[0], f = 1, boldTTF
	}
	facesMu.Lock()
	defer facesMu.Unlock()
	if tf, ok := faces[key]; ok {
		return tf
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(px), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic(fmt.Sprintf("render: Go font at %d px: %v", px, err))
	}
	m := face.Metrics()
	tf := textFace{face: face, ascent: m.Ascent.Ceil(), height: (m.Ascent + m.Descent).Ceil(), ellipse: "…", mu: &sync.Mutex{}}
	if _, ok := face.GlyphAdvance('…'); !ok {
		tf.ellipse = ".."
	}
	faces[key] = tf
	return tf
}

// small and title are the default faces.
var (
	small = faceAt(false, smallPx)
	title = faceAt(true, titlePx)
)

// captionPx is the caption size for tiles about tilePx pixels wide: 1/16 of
// the tile, between 11 and 18 pixels (so small tiles keep legible captions
// and big pictures get proportionate ones).
func captionPx(tilePx int) int {
	return min(max(int(math.Round(float64(tilePx)/16)), 11), 18)
}

// sanitize replaces control characters (newlines, tabs) by spaces and
// invalid UTF-8 by U+FFFD; sanitizeFor also replaces runes the face lacks.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f:
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func (f textFace) sanitizeFor(s string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Map(func(r rune) rune {
		if _, ok := f.face.GlyphAdvance(r); !ok {
			return '?'
		}
		return r
	}, sanitize(s))
}

// width returns the pixel width of s (already sanitised) in face f.
func (f textFace) width(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return font.MeasureString(f.face, s).Ceil()
}

// em is the width of an average character ('n'), for character caps.
func (f textFace) em() int { return max(1, f.width("n")) }

// fit sanitises s and shortens it with an ellipsis so that it is at most
// maxPx wide.
func (f textFace) fit(s string, maxPx int) string {
	s = f.sanitizeFor(s)
	if f.width(s) <= maxPx {
		return s
	}
	runes := []rune(s)
	// Binary search the longest prefix that fits with the ellipsis.
	lo, hi := 0, len(runes)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if f.width(string(runes[:mid])+f.ellipse) <= maxPx {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		// Not even one character and the ellipsis: as many characters as fit.
		n := 0
		for n < len(runes) && f.width(string(runes[:n+1])) <= maxPx {
			n++
		}
		return string(runes[:n])
	}
	return strings.TrimRight(string(runes[:lo]), " ") + f.ellipse
}

// draw writes s with its top-left corner at (x, y) in colour c, antialiased
// (each glyph's coverage blended over dst).
func (f textFace) draw(dst draw.Image, s string, x, y int, c color.Color) {
	if !utf8.ValidString(s) {
		s = sanitize(s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
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
