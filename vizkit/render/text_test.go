package render

import (
	"image"
	"image/color"
	"strings"
	"sync"
	"testing"
)

// Text is antialiased (grey levels between ink and paper), Unicode runes of
// the Go fonts draw as themselves, missing ones as '?', and sizes scale.
func TestTextUnicodeAntialiasedAndScaled(t *testing.T) {
	f := faceAt(false, 14)
	img := image.NewRGBA(image.Rect(0, 0, 80, 24))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	f.draw(img, "7×7 α→β", 2, 2, color.Black)
	levels := map[uint8]bool{}
	for i := 0; i < len(img.Pix); i += 4 {
		levels[img.Pix[i]] = true
	}
	if len(levels) < 5 {
		t.Fatalf("text drew %d grey levels, want antialiasing (≥ 5)", len(levels))
	}
	for _, r := range "×αβ→−√Σ–…" {
		if s := f.sanitizeFor(string(r)); s != string(r) {
			t.Errorf("rune %q became %q", r, s)
		}
	}
	if s := f.sanitizeFor("a\u4e2db\nc"); s != "a?b c" {
		t.Errorf("sanitised %q", s)
	}
	if f.width("×") == f.width("?") && f.width("×") == 0 {
		t.Error("× has no width")
	}
	if a, b := faceAt(false, 11).width("features.20"), faceAt(false, 18).width("features.20"); !(b > a) {
		t.Errorf("18 px text (%d) not wider than 11 px (%d)", b, a)
	}
	if captionPx(10) != 11 || captionPx(224) != 14 || captionPx(2000) != 18 {
		t.Errorf("caption sizes %d %d %d", captionPx(10), captionPx(224), captionPx(2000))
	}
	// Captions of big tiles are bigger than those of small tiles.
	big := solid(320, 320, rgba(0, 0, 0))
	tiny := solid(32, 32, rgba(0, 0, 0))
	gb, _ := Grid([]image.Image{big}, GridOptions{Captions: []string{"x"}})
	gt, _ := Grid([]image.Image{tiny}, GridOptions{Captions: []string{"x"}})
	if hb, ht := gb.Bounds().Dy()-320, gt.Bounds().Dy()-32; !(hb > ht) {
		t.Errorf("caption band %d px under a 320 px tile, %d under a 32 px one", hb, ht)
	}
	// Fit never exceeds the width, even for tiny widths.
	for _, w := range []int{0, 3, 10, 40} {
		if s := f.fit(strings.Repeat("W", 20), w); f.width(s) > w {
			t.Errorf("fit to %d px gave %q (%d px)", w, s, f.width(s))
		}
	}
}

// Faces are shared through a cache; drawing from several goroutines must
// not race (run with -race).
func TestTextConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := image.NewRGBA(image.Rect(0, 0, 60, 20))
			for range 20 {
				small.draw(img, "0.5 ×", 0, 0, color.Black)
				_ = small.width("abc")
			}
		}()
	}
	wg.Wait()
}
