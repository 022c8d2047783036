package imageio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustLoad(t *testing.T, name string) *image.RGBA {
	t.Helper()
	img, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkRGB fails unless img is opaque with bounds at the origin.
func checkRGB(t *testing.T, name string, img *image.RGBA) {
	t.Helper()
	if img.Rect.Min != (image.Point{}) || img.Rect.Empty() {
		t.Errorf("%s: bounds %v, want non-empty at the origin", name, img.Rect)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		if img.Pix[i] != 255 {
			t.Fatalf("%s: alpha byte %d is %d, want 255", name, i, img.Pix[i])
		}
	}
}

// maxDiff returns the largest per-channel RGB difference of two same-size images.
func maxDiff(t *testing.T, a, b *image.RGBA) int {
	t.Helper()
	if a.Rect != b.Rect {
		t.Fatalf("sizes differ: %v vs %v", a.Rect, b.Rect)
	}
	m := 0
	for i := range a.Pix {
		if i%4 == 3 {
			continue
		}
		d := int(a.Pix[i]) - int(b.Pix[i])
		m = max(m, d, -d)
	}
	return m
}

func TestFormatsAndModes(t *testing.T) {
	syn := mustLoad(t, "synthetic.png")
	for _, tc := range []struct {
		file, want string
		tol        int
	}{
		{"synthetic.webp", "synthetic.png", 0}, // lossless WebP
		{"synthetic.bmp", "synthetic.png", 0},
		{"gray.png", "gray_rgb.png", 0},       // PIL's convert("RGB") of mode L
		{"palette.png", "palette_rgb.png", 0}, // PIL's convert("RGB") of mode P
		{"rgba.png", "rgba_on_white.png", 1},  // PIL's alpha_composite over white
	} {
		got, want := mustLoad(t, tc.file), mustLoad(t, tc.want)
		checkRGB(t, tc.file, got)
		if d := maxDiff(t, got, want); d > tc.tol {
			t.Errorf("%s differs from %s by up to %d levels (allowed %d)", tc.file, tc.want, d, tc.tol)
		}
	}
	if syn.Rect.Dx() != 37 || syn.Rect.Dy() != 23 {
		t.Errorf("synthetic.png is %v, want 37x23", syn.Rect)
	}
	// Alpha 0 must give white, whatever colour the pixel stores.
	rgba := mustLoad(t, "rgba.png")
	if px := rgba.Pix[0:3]; px[0] != 255 || px[1] != 255 || px[2] != 255 {
		t.Errorf("fully transparent pixel became %v, want white", px)
	}

	gif := mustLoad(t, "anim.gif") // frame 0: left half red, right half transparent
	checkRGB(t, "anim.gif", gif)
	if gif.Rect.Dx() != 8 || gif.Rect.Dy() != 6 {
		t.Fatalf("anim.gif is %v, want 8x6", gif.Rect)
	}
	if c := gif.RGBAAt(1, 1); c != (color.RGBA{230, 20, 20, 255}) {
		t.Errorf("anim.gif first frame at (1,1) = %v, want red", c)
	}
	if c := gif.RGBAAt(6, 4); c != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("anim.gif first frame at (6,4) = %v, want white (transparent over white)", c)
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSixteenBit(t *testing.T) {
	g := image.NewGray16(image.Rect(0, 0, 3, 1))
	vals := []uint16{0x0000, 0x12FF, 0xFFFF}
	for x, v := range vals {
		g.SetGray16(x, 0, color.Gray16{Y: v})
	}
	img, err := Decode(bytes.NewReader(encodePNG(t, g)))
	if err != nil {
		t.Fatal(err)
	}
	checkRGB(t, "gray16", img)
	for x, v := range vals {
		want := uint8(v >> 8)
		if c := img.RGBAAt(x, 0); c != (color.RGBA{want, want, want, 255}) {
			t.Errorf("16-bit gray %#04x became %v, want high byte %d", v, c, want)
		}
	}

	n := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	n.SetNRGBA64(0, 0, color.NRGBA64{R: 0xABCD, G: 0x0102, B: 0xFF00, A: 0xFFFF})
	n.SetNRGBA64(1, 0, color.NRGBA64{R: 0, G: 0xFFFF, B: 0, A: 0x8000}) // half-transparent green
	img, err = Decode(bytes.NewReader(encodePNG(t, n)))
	if err != nil {
		t.Fatal(err)
	}
	checkRGB(t, "rgba64", img)
	if c := img.RGBAAt(0, 0); c != (color.RGBA{0xAB, 0x01, 0xFF, 255}) {
		t.Errorf("opaque 16-bit pixel became %v, want high bytes {171 1 255}", c)
	}
	// Over white: R = B = 255*(1-a) ≈ 127, G = 255.
	if c := img.RGBAAt(1, 0); absDiff(c.R, 127) > 1 || c.G != 255 || absDiff(c.B, 127) > 1 {
		t.Errorf("half-transparent 16-bit green over white became %v, want about {127 255 127}", c)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// blockColours is the upright pattern of orient_*.jpg: 3x2 blocks of 16x16
// pixels (scripts/gen_image_fixtures.py, BLOCK_COLOURS).
var blockColours = []color.RGBA{
	{230, 20, 20, 255}, {20, 200, 20, 255}, {20, 20, 230, 255},
	{240, 240, 30, 255}, {20, 220, 220, 255}, {220, 20, 220, 255},
}

// TestEXIFOrientation decodes JPEGs stored rotated/mirrored with Orientation
// tags 1–8 (the generator checked that PIL's exif_transpose makes each upright)
// and expects the same upright 48x32 pattern from each.
func TestEXIFOrientation(t *testing.T) {
	for o := 1; o <= 8; o++ {
		name := fmt.Sprintf("orient_%d.jpg", o)
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := jpegOrientation(raw); got != o {
			t.Errorf("%s: EXIF orientation read as %d", name, got)
		}
		img := mustLoad(t, name)
		checkRGB(t, name, img)
		if img.Rect.Dx() != 48 || img.Rect.Dy() != 32 {
			t.Errorf("%s: %v, want 48x32 upright", name, img.Rect)
			continue
		}
		for i, want := range blockColours {
			x, y := (i%3)*16+8, (i/3)*16+8
			c := img.RGBAAt(x, y)
			if absDiff(c.R, want.R) > 24 || absDiff(c.G, want.G) > 24 || absDiff(c.B, want.B) > 24 {
				t.Errorf("%s: block %d at (%d,%d) is %v, want about %v", name, i, x, y, c, want)
			}
		}
	}
}

func TestOrient(t *testing.T) {
	// 3x2 image with distinct pixels p(x,y) = 10*y + x.
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for y := 0; y < 2; y++ {
		for x := 0; x < 3; x++ {
			src.SetRGBA(x, y, color.RGBA{uint8(10*y + x), 0, 0, 255})
		}
	}
	want := map[int][]string{ // rows of the result, as p values
		1: {"0 1 2", "10 11 12"},
		2: {"2 1 0", "12 11 10"},
		3: {"12 11 10", "2 1 0"},
		4: {"10 11 12", "0 1 2"},
		5: {"0 10", "1 11", "2 12"},
		6: {"10 0", "11 1", "12 2"}, // 90° clockwise
		7: {"12 2", "11 1", "10 0"},
		8: {"2 12", "1 11", "0 10"}, // 90° counter-clockwise
		9: {"0 1 2", "10 11 12"},    // invalid: unchanged
	}
	for o, rows := range want {
		got := Orient(src, o)
		var gotRows []string
		for y := 0; y < got.Rect.Dy(); y++ {
			var r []string
			for x := 0; x < got.Rect.Dx(); x++ {
				r = append(r, fmt.Sprint(got.RGBAAt(x, y).R))
			}
			gotRows = append(gotRows, strings.Join(r, " "))
		}
		if strings.Join(gotRows, "/") != strings.Join(rows, "/") {
			t.Errorf("Orient(%d) = %v, want %v", o, gotRows, rows)
		}
	}
}

func TestTIFFOrientation(t *testing.T) {
	entry := func(be bool, tag, typ uint16, count, val uint32) []byte {
		b := make([]byte, 12)
		if be {
			b[0], b[1], b[2], b[3] = byte(tag>>8), byte(tag), byte(typ>>8), byte(typ)
			b[4], b[5], b[6], b[7] = byte(count>>24), byte(count>>16), byte(count>>8), byte(count)
			if typ == 3 {
				b[8], b[9] = byte(val>>8), byte(val)
			} else {
				b[8], b[9], b[10], b[11] = byte(val>>24), byte(val>>16), byte(val>>8), byte(val)
			}
		} else {
			b[0], b[1], b[2], b[3] = byte(tag), byte(tag>>8), byte(typ), byte(typ>>8)
			b[4], b[5], b[6], b[7] = byte(count), byte(count>>8), byte(count>>16), byte(count>>24)
			b[8], b[9], b[10], b[11] = byte(val), byte(val>>8), byte(val>>16), byte(val>>24)
		}
		return b
	}
	tiff := func(be bool, entries ...[]byte) []byte {
		var b []byte
		if be {
			b = []byte{'M', 'M', 0, 42, 0, 0, 0, 8, 0, byte(len(entries))}
		} else {
			b = []byte{'I', 'I', 42, 0, 8, 0, 0, 0, byte(len(entries)), 0}
		}
		for _, e := range entries {
			b = append(b, e...)
		}
		return append(b, 0, 0, 0, 0)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"little-endian short", tiff(false, entry(false, 0x010F, 2, 4, 0), entry(false, 0x0112, 3, 1, 6)), 6},
		{"big-endian short", tiff(true, entry(true, 0x0112, 3, 1, 8)), 8},
		{"big-endian long", tiff(true, entry(true, 0x0112, 4, 1, 3)), 3},
		{"no orientation tag", tiff(false, entry(false, 0x010F, 2, 4, 0)), 0},
		{"wrong type", tiff(false, entry(false, 0x0112, 2, 1, 6)), 0},
		{"bad magic", []byte("II*\x01\x08\x00\x00\x00"), 0},
		{"IFD offset past the end", []byte("II*\x00\xff\xff\xff\xff"), 0},
		{"entry count past the end", []byte("II*\x00\x08\x00\x00\x00\x09\x00\x12\x01"), 0},
		{"short", []byte("MM\x00"), 0},
	} {
		if got := tiffOrientation(tc.data); got != tc.want {
			t.Errorf("%s: tiffOrientation = %d, want %d", tc.name, got, tc.want)
		}
	}
	// A JPEG whose APP1 segment runs past the end, and non-JPEG data: orientation 1.
	for _, b := range [][]byte{{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'}, []byte("\x89PNG\r\n"), nil} {
		if got := jpegOrientation(b); got != 1 {
			t.Errorf("jpegOrientation(%q) = %d, want 1", b, got)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	photo, err := os.ReadFile(filepath.Join("testdata", "photo.png"))
	if err != nil {
		t.Fatal(err)
	}
	jpg, err := os.ReadFile(filepath.Join("testdata", "orient_6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	// GIF header with a 0x0 logical screen and no frames.
	zeroGIF := []byte("GIF89a\x00\x00\x00\x00\x00\x00\x00;")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{filepath.Join(dir, "missing.png"), []string{"missing.png", "no such file"}},
		{write("empty.jpg", nil), []string{"empty.jpg", "empty"}},
		{write("notes.png", []byte("this is plain text, not an image")), []string{"notes.png", "unknown image format"}},
		{write("cut.png", photo[:len(photo)/2]), []string{"cut.png", "truncated png"}},
		{write("cut.jpg", jpg[:len(jpg)/2]), []string{"cut.jpg", "truncated jpeg"}},
		{write("header.png", photo[:20]), []string{"header.png", "truncated"}},
		{write("zero.gif", zeroGIF), []string{"zero.gif", "zero size (0x0)"}},
	} {
		img, err := Load(tc.path)
		if err == nil {
			t.Errorf("Load(%s) = %v, want an error", tc.path, img.Rect)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s) error %q does not mention %q", filepath.Base(tc.path), err, w)
			}
		}
	}

	old := MaxPixels
	MaxPixels = 100
	defer func() { MaxPixels = old }()
	if _, err := Decode(bytes.NewReader(photo)); err == nil || !strings.Contains(err.Error(), "png image is 120x80, more than imageio.MaxPixels=100") {
		t.Errorf("oversized image error %v", err)
	}
}
