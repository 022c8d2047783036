package render

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
)

// DrawBox returns a copy of img (bounds moved to start at (0,0)) with the
// outline of rect drawn in c, thickness pixels wide, inside rect (the outline
// covers the rect's outermost rows and columns, so a box around an object's
// pixels touches them). rect is in img's pixel coordinates relative to its
// bounds' origin, Max exclusive (image.Rectangle's convention), and is clipped
// to the image. thickness must be ≥ 1; an empty rect (after clipping) is an
// error.
func DrawBox(img image.Image, rect image.Rectangle, c color.Color, thickness int) (*image.RGBA, error) {
	if img == nil {
		return nil, fmt.Errorf("render.DrawBox: nil image")
	}
	if thickness < 1 {
		return nil, fmt.Errorf("render.DrawBox: thickness must be ≥ 1, got %d", thickness)
	}
	if c == nil {
		return nil, fmt.Errorf("render.DrawBox: nil colour")
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	r := rect.Intersect(out.Bounds())
	if r.Empty() {
		return nil, fmt.Errorf("render.DrawBox: box %v lies outside the %d×%d image", rect, b.Dx(), b.Dy())
	}
	src := image.NewUniform(c)
	t := min(thickness, (r.Dx()+1)/2, (r.Dy()+1)/2)
	for _, edge := range []image.Rectangle{
		{Min: r.Min, Max: image.Pt(r.Max.X, r.Min.Y+t)}, // top
		{Min: image.Pt(r.Min.X, r.Max.Y-t), Max: r.Max}, // bottom
		{Min: r.Min, Max: image.Pt(r.Min.X+t, r.Max.Y)}, // left
		{Min: image.Pt(r.Max.X-t, r.Min.Y), Max: r.Max}, // right
	} {
		draw.Draw(out, edge, src, image.Point{}, draw.Over)
	}
	return out, nil
}

// BoxColor is the default outline colour of ground-truth boxes: a bright
// green that stays visible on both photos and jet-coloured heat maps.
var BoxColor = color.RGBA{R: 0, G: 255, B: 0, A: 255}
