package render

import (
	"image"
	"image/color"
	"strings"
	"testing"
)

// A 1-pixel box on a 5×5 black image: exactly the ring of the rect is coloured.
func TestDrawBoxPixels(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 5))
	red := color.RGBA{255, 0, 0, 255}
	out, err := DrawBox(img, image.Rect(1, 1, 4, 4), red, 1)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 5; y++ {
		for x := 0; x < 5; x++ {
			inRect := x >= 1 && x < 4 && y >= 1 && y < 4
			ring := inRect && (x == 1 || x == 3 || y == 1 || y == 3)
			got := out.RGBAAt(x, y)
			if ring && got != red || !ring && got.R != 0 {
				t.Fatalf("pixel (%d,%d) = %v, ring %v", x, y, got, ring)
			}
		}
	}
	if img.RGBAAt(1, 1).R != 0 {
		t.Fatal("DrawBox modified its input")
	}
	if _, err := DrawBox(img, image.Rect(10, 10, 12, 12), red, 1); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("box outside: %v", err)
	}
	if _, err := DrawBox(img, image.Rect(0, 0, 2, 2), red, 0); err == nil {
		t.Fatal("thickness 0 accepted")
	}
}
