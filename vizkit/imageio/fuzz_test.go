package imageio

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode (seeded with every fixture image
// and the sample photos). Decode must never panic; when it succeeds the result
// must be a non-empty opaque image at the origin that preprocesses cleanly.
//
//	go test ./vizkit/imageio -run '^$' -fuzz FuzzDecode -fuzztime 20s
func FuzzDecode(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/*", "../../testdata/images/*"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	n := 0
	for _, p := range seeds {
		switch strings.ToLower(filepath.Ext(p)) {
		case ".png", ".jpg", ".gif", ".webp", ".bmp":
		default:
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		n++
	}
	if n < 10 {
		f.Fatalf("only %d seed images found", n)
	}
	f.Add([]byte{})
	f.Add([]byte("GIF89a\x00\x00\x00\x00\x00\x00\x00;"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1})

	// Keep fuzzed headers from allocating huge images.
	old := MaxPixels
	MaxPixels = 1 << 20
	f.Cleanup(func() { MaxPixels = old })

	p := Preprocess{ResizeShort: 9, CropH: 7, CropW: 8, Mean: ImageNetMean, Std: ImageNetStd}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(bytes.NewReader(data))
		if err != nil {
			if img != nil {
				t.Fatalf("Decode returned an image and the error %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Empty() || b.Min.X != 0 || b.Min.Y != 0 {
			t.Fatalf("Decode returned bounds %v", b)
		}
		for i := 3; i < len(img.Pix); i += 4 {
			if img.Pix[i] != 255 {
				t.Fatalf("alpha %d at byte %d", img.Pix[i], i)
			}
		}
		if b.Dx() > 2000 || b.Dy() > 2000 {
			return // skip preprocessing very long thin images: slow, and covered above
		}
		in, err := p.Apply(img)
		if err != nil {
			t.Fatalf("Apply on a decoded %v image: %v", b, err)
		}
		if len(in.Data) != 3*7*8 {
			t.Fatalf("Apply gave %d values", len(in.Data))
		}
	})
}
