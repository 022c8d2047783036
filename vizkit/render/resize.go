package render

import (
	"fmt"
	"image"
	"image/draw"
)

// UpscaleNearest returns img enlarged k times in both directions by pixel
// replication (k ≥ 1), as an *image.RGBA whose bounds start at (0, 0).
func UpscaleNearest(img image.Image, k int) (*image.RGBA, error) {
	if img == nil {
		return nil, fmt.Errorf("render.UpscaleNearest: nil image")
	}
	if k < 1 {
		return nil, fmt.Errorf("render.UpscaleNearest: factor %d must be ≥ 1", k)
	}
	b := img.Bounds()
	if b.Empty() {
		return nil, fmt.Errorf("render.UpscaleNearest: empty image")
	}
	if b.Dy() > MaxPixels/k/k/b.Dx() {
		return nil, fmt.Errorf("render.UpscaleNearest: %dx%d scaled by %d exceeds the limit of %d pixels", b.Dx(), b.Dy(), k, MaxPixels)
	}
	src := toRGBA(img)
	w, h := b.Dx()*k, b.Dy()*k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		srow := src.Pix[(y/k)*src.Stride:]
		drow := dst.Pix[y*dst.Stride:]
		for x := 0; x < w; x++ {
			copy(drow[4*x:4*x+4], srow[4*(x/k):4*(x/k)+4])
		}
	}
	return dst, nil
}

// toRGBA returns img as an *image.RGBA with bounds starting at (0, 0), copying unless
// it already is one.
func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok && r.Bounds().Min == (image.Point{}) {
		return r
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	return dst
}
