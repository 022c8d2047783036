package render

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Overlay blends a heat map over base exactly like pytorch-grad-cam's
//
//	show_cam_on_image(img, mask, use_rgb=True, colormap=cv2.COLORMAP_JET, image_weight=1-alpha)
//
// with img = float32(base RGB)/255 and cmap = [Jet] (any Colormap may be used):
//
//	heatmap = cmap.Index(uint8(255*mask)) / 255         // float32, RGB
//	cam     = alpha*heatmap + (1-alpha)*img              // float32
//	cam     = cam / max(cam)                             // max over all pixels and channels
//	out     = uint8(255*cam)                             // truncation
//
// All arithmetic is float32 in numpy's order, so results match bit for bit
// (alpha = 0.5 is grad-cam's default image_weight = 0.5). The result is the size of base
// and opaque; base's alpha channel is ignored (its un-premultiplied RGB is used).
//
// heat should hold values in [0, 1] (see [ScaleCAM]); it is first resized to base's
// size with [heatmap.Bilinear], alignCorners=false (= cv2.resize INTER_LINEAR, which
// grad-cam's scale_cam_image uses) if the sizes differ. Values are then clamped to
// [0, 1] and NaN counts as 0 (numpy would wrap around or give platform-dependent
// results there). If every blended value is 0 (only possible with a colormap whose
// entries include black), the result is black rather than NaN.
// alpha must be in [0, 1].
func Overlay(base image.Image, heat Map, cmap Colormap, alpha float64) (*image.RGBA, error) {
	if base == nil {
		return nil, fmt.Errorf("render.Overlay: nil base image")
	}
	b := base.Bounds()
	if err := checkSize(b.Dy(), b.Dx()); err != nil {
		return nil, fmt.Errorf("render.Overlay: base image %w", err)
	}
	if err := heat.Validate(); err != nil {
		return nil, fmt.Errorf("render.Overlay: heat %w", err)
	}
	if err := cmap.check(); err != nil {
		return nil, fmt.Errorf("render.Overlay: %w", err)
	}
	if !(alpha >= 0 && alpha <= 1) {
		return nil, fmt.Errorf("render.Overlay: alpha %v must be in [0, 1] (heat-map weight; grad-cam's image_weight = 1-alpha)", alpha)
	}
	w, h := b.Dx(), b.Dy()
	if heat.H != h || heat.W != w {
		var err error
		if heat, err = heatmap.Resize(heat, h, w, heatmap.Bilinear, false); err != nil {
			return nil, fmt.Errorf("render.Overlay: %w", err)
		}
	}
	// numpy: (1 - image_weight) * heatmap + image_weight * img, both Python floats
	// cast to float32 against float32 arrays.
	imageWeight := 1 - alpha
	wHeat, wImg := float32(1-imageWeight), float32(imageWeight)
	cam := make([]float32, 3*w*h)
	maxv := float32(math.Inf(-1))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := y*w + x
			hc := cmap.Index(QuantizeCV(heat.Data[p]))
			ic := color.NRGBAModel.Convert(base.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			hv := [3]uint8{hc.R, hc.G, hc.B}
			iv := [3]uint8{ic.R, ic.G, ic.B}
			for c := 0; c < 3; c++ {
				// Explicit float32 conversions forbid fused multiply-add, keeping
				// numpy's separate roundings.
				hf := float32(hv[c]) / 255
				imf := float32(iv[c]) / 255
				v := float32(wHeat*hf) + float32(wImg*imf)
				cam[3*p+c] = v
				if v > maxv {
					maxv = v
				}
			}
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < w*h; p++ {
		for c := 0; c < 3; c++ {
			var u uint8
			if maxv > 0 {
				u = uint8(float32(255) * float32(cam[3*p+c]/maxv))
			}
			out.Pix[4*p+c] = u
		}
		out.Pix[4*p+3] = 255
	}
	return out, nil
}
