package imageio

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"runtime"
	"testing"
)

// pngOf encodes a w×h gray PNG (tiny on disk whatever its size).
func pngOf(tb testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// allocated runs f and returns the bytes it allocated (process-wide).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// Tiny files whose resize would be huge are refused before allocating, with a
// message that says what to do instead.
func TestPreprocessBoundsTinyButHuge(t *testing.T) {
	p := DefaultImageNet()
	for _, c := range []struct{ w, h int }{{1, 20000}, {20000, 1}, {1, 3000}, {2, 40000}} {
		data := pngOf(t, c.w, c.h)
		var err error
		n := allocated(func() {
			var img *image.RGBA
			img, err = Decode(bytes.NewReader(data))
			if err == nil {
				_, err = p.Apply(img)
			}
		})
		if err == nil {
			t.Fatalf("%dx%d: Resize(256) accepted", c.w, c.h)
		}
		for _, want := range []string{"MaxWorkPixels", "aspect ratio", "Crop the image", "fixed size"} {
			if !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Fatalf("%dx%d: error %q lacks %q", c.w, c.h, err, want)
			}
		}
		if n > 16<<20 {
			t.Fatalf("%dx%d: allocated %d MB before failing", c.w, c.h, n>>20)
		}
	}
	// Within the limit: a 1:100 strip resizes (256 × 25600 ≈ 6.5 Mpx) and crops.
	img, err := Decode(bytes.NewReader(pngOf(t, 100, 10000)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.Apply(img)
	if err != nil || in.H != 224 || in.W != 224 {
		t.Fatalf("1:100 strip: %v", err)
	}
	// Every other allocation path is bounded too.
	src := image.NewRGBA(image.Rect(0, 0, 2, 2))
	if _, err := Resize(src, 1<<20, 1<<20, Bilinear); err == nil {
		t.Fatal("Resize to 2^40 pixels accepted")
	}
	if _, err := Resize(src, math.MaxInt, 2, Nearest); err == nil {
		t.Fatal("Resize to MaxInt columns accepted")
	}
	if _, err := CenterCrop(src, 1<<16, 1<<16); err == nil {
		t.Fatal("crop of 2^32 pixels accepted")
	}
	for _, bad := range []Preprocess{{ResizeShort: 1 << 20}, {Resize: [2]int{1 << 16, 1 << 16}}, {CropH: 1 << 30, CropW: 1 << 30}, {ResizeShort: math.MaxInt}} {
		if err := bad.Validate(); err == nil {
			t.Fatalf("%+v validated", bad)
		}
	}
	if _, err := (Preprocess{}).Apply(image.NewGray(image.Rect(0, 0, 8000, 8000))); err == nil {
		t.Fatal("a 64 Mpx tensor without resize or crop accepted")
	}
}

// FuzzInputPath runs the whole input path — Decode → Preprocess.Apply
// (Resize(short) + CenterCrop + Normalize) → Batch (the NCHW tensor) — on
// arbitrary bytes and sizes. It must never panic; a success must give a finite
// tensor of the documented shape; and the bytes allocated per input must stay
// under a bound set by the limits (MaxPixels, MaxWorkPixels) and the input size.
//
//	go test ./vizkit/imageio -run '^$' -fuzz FuzzInputPath -fuzztime 60s
func FuzzInputPath(f *testing.F) {
	f.Add(pngOf(f, 1, 3000), uint16(256), uint16(224))
	f.Add(pngOf(f, 7, 5), uint16(9), uint16(8))
	f.Add(pngOf(f, 40, 1), uint16(256), uint16(0))
	var rgb bytes.Buffer
	im := image.NewNRGBA(image.Rect(0, 0, 3, 4))
	im.Set(1, 1, color.NRGBA{200, 10, 10, 128})
	if err := png.Encode(&rgb, im); err != nil {
		f.Fatal(err)
	}
	f.Add(rgb.Bytes(), uint16(16), uint16(300))
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), uint16(1), uint16(1))

	oldP, oldW := MaxPixels, MaxWorkPixels
	MaxPixels, MaxWorkPixels = 1<<20, 1<<21
	f.Cleanup(func() { MaxPixels, MaxWorkPixels = oldP, oldW })
	bound := uint64(32*MaxPixels + 24*MaxWorkPixels + 8<<20)

	f.Fuzz(func(t *testing.T, data []byte, short, crop uint16) {
		p := Preprocess{ResizeShort: int(short % 320), CropH: int(crop % 320), CropW: int(crop % 320), Mean: ImageNetMean, Std: ImageNetStd}
		var in *Input
		var err error
		n := allocated(func() {
			var img *image.RGBA
			if img, err = Decode(bytes.NewReader(data)); err != nil {
				return
			}
			if in, err = p.Apply(img); err != nil {
				return
			}
			var flat []float32
			var shape [4]int
			if flat, shape, err = Batch(in); err != nil {
				t.Fatalf("Batch of a preprocessed image: %v", err)
			}
			if shape != [4]int{1, 3, in.H, in.W} || len(flat) != 3*in.H*in.W {
				t.Fatalf("tensor shape %v with %d values", shape, len(flat))
			}
			if p.CropH > 0 && (in.H != p.CropH || in.W != p.CropW) {
				t.Fatalf("crop %dx%d gave %dx%d", p.CropH, p.CropW, in.H, in.W)
			}
			for i, v := range flat {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("value %d is %v", i, v)
				}
			}
		})
		if err != nil && in != nil && in.Data == nil {
			t.Fatalf("error %v with an empty result", err)
		}
		if lim := bound + 32*uint64(len(data)); n > lim {
			t.Fatalf("allocated %d bytes (bound %d) for %d input bytes, preprocess %+v", n, lim, len(data), p)
		}
	})
}
