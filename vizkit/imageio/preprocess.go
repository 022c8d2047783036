package imageio

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// ImageNet normalisation constants (per RGB channel), as used by torchvision's
// pretrained classifiers.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Preprocess describes torchvision's
//
//	Resize → CenterCrop → ToTensor → Normalize(mean, std)
//
// on a PIL RGB image. The zero value does nothing but ToTensor (pixel/255, no
// resize, no crop, no normalisation); [DefaultImageNet] gives the standard
// ImageNet evaluation transform.
type Preprocess struct {
	// ResizeShort scales the image so that its shorter side becomes ResizeShort
	// pixels, keeping the aspect ratio; the longer side becomes
	// int(ResizeShort*long/short) (torchvision Resize(int)). 0 means no resize.
	ResizeShort int
	// Resize, when non-zero, resizes to exactly Resize[0] rows × Resize[1]
	// columns (H, W), ignoring the aspect ratio and overriding ResizeShort
	// (torchvision Resize((h, w))). Both entries must be set, or neither.
	Resize [2]int
	// CropH, CropW give the center crop (torchvision CenterCrop((h, w))), applied
	// after the resize. Both 0 means no crop; set both or neither. A crop larger
	// than the image pads it with black, as torchvision does.
	CropH, CropW int
	// Mean and Std normalise each RGB channel: (pixel/255 - Mean[c]) / Std[c].
	// An all-zero Std means {1, 1, 1} (no scaling); otherwise every Std entry
	// must be non-zero.
	Mean, Std [3]float32
	// Filter is the resampling kernel; the zero value is Bilinear, torchvision's
	// default (PIL's antialiased BILINEAR).
	Filter Filter
}

// DefaultImageNet returns torchvision's ImageNet evaluation transform:
// Resize(256) with bilinear (PIL) resampling, CenterCrop(224), ToTensor,
// Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]).
func DefaultImageNet() Preprocess {
	return Preprocess{ResizeShort: 256, CropH: 224, CropW: 224, Mean: ImageNetMean, Std: ImageNetStd, Filter: Bilinear}
}

// Input is one preprocessed image.
type Input struct {
	// Data holds C×H×W float32 values in CHW order (channel-major, then rows,
	// then columns): element (c, y, x) is Data[(c*H+y)*W+x]. It is a PyTorch
	// NCHW tensor without the batch axis; channels are R, G, B.
	Data []float32
	// C, H, W are the channel count (3), height and width of Data.
	C, H, W int
	// Image is the resized and cropped RGB image that Data was computed from
	// (W×H pixels, bounds at the origin), for drawing overlays.
	Image *image.RGBA
}

// Shape returns {C, H, W}.
func (in *Input) Shape() [3]int { return [3]int{in.C, in.H, in.W} }

// Validate reports whether the settings are usable.
func (p Preprocess) Validate() error {
	switch {
	case p.ResizeShort < 0:
		return fmt.Errorf("imageio: Preprocess.ResizeShort=%d must not be negative", p.ResizeShort)
	case p.Resize[0] < 0 || p.Resize[1] < 0 || (p.Resize[0] == 0) != (p.Resize[1] == 0):
		return fmt.Errorf("imageio: Preprocess.Resize=%v (H, W) must be two positive sizes or both 0", p.Resize)
	case p.CropH < 0 || p.CropW < 0 || (p.CropH == 0) != (p.CropW == 0):
		return fmt.Errorf("imageio: Preprocess crop %dx%d (HxW) must be two positive sizes or both 0", p.CropH, p.CropW)
	case p.Filter != Bilinear && p.Filter != Bicubic && p.Filter != Nearest:
		return fmt.Errorf("imageio: Preprocess.Filter: unknown resampling filter %v", p.Filter)
	case int64(p.ResizeShort) > MaxWorkPixels || int64(p.ResizeShort)*int64(p.ResizeShort) > MaxWorkPixels:
		return fmt.Errorf("imageio: Preprocess.ResizeShort=%d gives at least %d² pixels, more than imageio.MaxWorkPixels=%d", p.ResizeShort, p.ResizeShort, MaxWorkPixels)
	}
	if p.Resize[0] > 0 {
		if err := checkWork("Preprocess.Resize", p.Resize[1], p.Resize[0]); err != nil {
			return err
		}
	}
	if p.CropH > 0 {
		if err := checkWork("Preprocess crop", p.CropW, p.CropH); err != nil {
			return err
		}
	}
	if p.Std != ([3]float32{}) {
		for c, s := range p.Std {
			if s == 0 || math.IsNaN(float64(s)) {
				return fmt.Errorf("imageio: Preprocess.Std[%d]=%v must be non-zero (Std=%v)", c, s, p.Std)
			}
		}
	}
	return nil
}

// ResizedSize returns the size (height, width) that p's resize step gives an
// image of w×h pixels, with torchvision's rounding. A long side that would not
// fit in an int is clamped to math.MaxInt32 (Apply rejects it).
func (p Preprocess) ResizedSize(w, h int) (rh, rw int) {
	long := func(l, s int) int {
		v := float64(p.ResizeShort) * float64(l) / float64(s)
		if v >= math.MaxInt32 {
			return math.MaxInt32
		}
		return int(v)
	}
	switch {
	case p.Resize[0] > 0 && p.Resize[1] > 0:
		return p.Resize[0], p.Resize[1]
	case p.ResizeShort > 0 && w > 0 && h > 0:
		if w <= h {
			return long(h, w), p.ResizeShort
		}
		return p.ResizeShort, long(w, h)
	}
	return h, w
}

// Apply runs the transform on img (any image; it is converted with [ToRGB]
// unless it is already an opaque *image.RGBA). The result has C=3 and, with a
// crop, H=CropH and W=CropW.
//
// Every image and tensor it creates stays within [MaxWorkPixels]: an image
// whose resize would exceed it (a very elongated image under ResizeShort, whose
// long side grows with the aspect ratio) is an error saying the largest aspect
// ratio the resize allows, checked before anything is allocated.
func (p Preprocess) Apply(img image.Image) (*Input, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if img == nil {
		return nil, errors.New("imageio: Preprocess.Apply: nil image")
	}
	if img.Bounds().Empty() {
		return nil, fmt.Errorf("imageio: Preprocess.Apply: image has zero size (%dx%d)", img.Bounds().Dx(), img.Bounds().Dy())
	}
	ib := img.Bounds()
	rh, rw := p.ResizedSize(ib.Dx(), ib.Dy())
	if err := p.checkSizes(ib.Dx(), ib.Dy(), rw, rh); err != nil {
		return nil, err
	}
	rgb, ok := img.(*image.RGBA)
	if !ok || !rgb.Opaque() {
		rgb = ToRGB(img)
	}
	b := rgb.Bounds()
	if rh != b.Dy() || rw != b.Dx() {
		var err error
		if rgb, err = Resize(rgb, rw, rh, p.Filter); err != nil {
			return nil, err
		}
	}
	if p.CropH > 0 {
		var err error
		if rgb, err = CenterCrop(rgb, p.CropH, p.CropW); err != nil {
			return nil, err
		}
	} else {
		rgb = compact(rgb)
		if rgb == img { // never hand back the caller's image as Input.Image
			rgb = opaqueCopy(rgb)
		}
	}
	mean, std := p.Mean, p.Std
	if std == ([3]float32{}) {
		std = [3]float32{1, 1, 1}
	}
	h, w := rgb.Rect.Dy(), rgb.Rect.Dx()
	data := make([]float32, 3*h*w)
	for y := 0; y < h; y++ {
		row := rgb.Pix[y*rgb.Stride:]
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				// ToTensor (float32 division by 255) then Normalize, in float32 as torch does.
				v := float32(row[x*4+c]) / 255
				data[(c*h+y)*w+x] = (v - mean[c]) / std[c]
			}
		}
	}
	return &Input{Data: data, C: 3, H: h, W: w, Image: rgb}, nil
}

// checkSizes checks the resized (rw×rh) and final sizes of a w×h image
// against MaxWorkPixels before Apply allocates anything.
func (p Preprocess) checkSizes(w, h, rw, rh int) error {
	if rw != w || rh != h {
		if err := checkWork(fmt.Sprintf("resizing the %dx%d image", w, h), rw, rh); err != nil {
			if p.Resize[0] == 0 && p.ResizeShort > 0 {
				s := int64(p.ResizeShort)
				return fmt.Errorf("imageio: the %dx%d (WxH) image has an aspect ratio of 1:%.4g; scaling its short side to %d pixels (Resize(%d)) makes it %dx%d = %.4g pixels, more than imageio.MaxWorkPixels=%d, which allows aspect ratios up to 1:%d at this size. Crop the image to a less elongated region first, or resize it to a fixed size (Preprocess.Resize) instead",
					w, h, float64(max(w, h))/float64(min(w, h)), p.ResizeShort, p.ResizeShort, rw, rh, float64(rw)*float64(rh), MaxWorkPixels, MaxWorkPixels/(s*s))
			}
			return err
		}
		if p.Filter != Nearest && rw != w && rh != h {
			if err := checkWork(fmt.Sprintf("resizing the %dx%d image to %dx%d: the intermediate horizontal pass", w, h, rw, rh), rw, h); err != nil {
				return err
			}
		}
	}
	if p.CropH == 0 {
		if err := checkWork(fmt.Sprintf("the %dx%d image's tensor (no crop)", w, h), rw, rh); err != nil {
			return fmt.Errorf("%w; set a resize or a crop (Preprocess.Resize, CropH/CropW)", err)
		}
	}
	return nil
}

// Batch stacks inputs of equal shape into one NCHW array: the result holds
// len(inputs)×C×H×W float32 values, input i at offset i*C*H*W, and shape is
// {N, C, H, W}. It fails on no inputs, a nil input, an input whose Data length
// is not C*H*W, or shapes that differ (the error names both).
func Batch(inputs ...*Input) ([]float32, [4]int, error) {
	if len(inputs) == 0 {
		return nil, [4]int{}, errors.New("imageio: Batch: no inputs")
	}
	for i, in := range inputs {
		if in == nil {
			return nil, [4]int{}, fmt.Errorf("imageio: Batch: input %d is nil", i)
		}
		if in.C <= 0 || in.H <= 0 || in.W <= 0 || len(in.Data) != in.C*in.H*in.W {
			return nil, [4]int{}, fmt.Errorf("imageio: Batch: input %d has %d values, not C*H*W for shape %dx%dx%d", i, len(in.Data), in.C, in.H, in.W)
		}
		if in.Shape() != inputs[0].Shape() {
			return nil, [4]int{}, fmt.Errorf("imageio: Batch: input %d has shape %dx%dx%d (CxHxW) but input 0 has %dx%dx%d; preprocess all images to the same size",
				i, in.C, in.H, in.W, inputs[0].C, inputs[0].H, inputs[0].W)
		}
	}
	s := inputs[0].Shape()
	n := s[0] * s[1] * s[2]
	data := make([]float32, 0, len(inputs)*n)
	for _, in := range inputs {
		data = append(data, in.Data...)
	}
	return data, [4]int{len(inputs), s[0], s[1], s[2]}, nil
}

// ToImage undoes Normalize and ToTensor for display: chw holds c×h×w values in
// CHW order (as [Input].Data), each channel is mapped back by
// pixel = round((v*std[c] + mean[c]) * 255), clamped to [0,255] (NaN gives 0).
// c must be 3 (RGB) or 1 (gray, using mean[0] and std[0]). An all-zero std means
// {1, 1, 1}. The result is opaque with bounds (0,0)-(w,h).
func ToImage(chw []float32, c, h, w int, mean, std [3]float32) (*image.RGBA, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("imageio: ToImage: %d channels, want 3 (RGB) or 1 (gray)", c)
	}
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("imageio: ToImage: size %dx%d (HxW) must be positive", h, w)
	}
	if len(chw) != c*h*w {
		return nil, fmt.Errorf("imageio: ToImage: %d values, want c*h*w = %d*%d*%d = %d", len(chw), c, h, w, c*h*w)
	}
	if std == ([3]float32{}) {
		std = [3]float32{1, 1, 1}
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := out.Pix[out.PixOffset(x, y):]
			for k := 0; k < 3; k++ {
				ch := min(k, c-1)
				v := float64(chw[(ch*h+y)*w+x])*float64(std[ch]) + float64(mean[ch])
				d[k] = toUint8(v * 255)
			}
			d[3] = 255
		}
	}
	return out, nil
}

func toUint8(v float64) uint8 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= 255:
		return 255
	}
	return uint8(math.Round(v))
}

// Gray turns an unnormalised RGB input (C = 3, values pixel/255 in [0,1], as
// Apply gives with zero Mean and Std) into one channel the way PIL's "L"
// conversion does, L = (299·R + 587·G + 114·B)/1000 on the 8-bit values
// (rounded), normalised as (L/255 − mean)/std. The result is (1,H,W) and
// keeps in.Image. std must be positive and finite.
func Gray(in *Input, mean, std float32) (*Input, error) {
	if in == nil || in.C != 3 || in.H < 1 || in.W < 1 || len(in.Data) != 3*in.H*in.W {
		return nil, errors.New("imageio: Gray needs a 3-channel input")
	}
	if !(std > 0) || math.IsInf(float64(std), 0) || math.IsNaN(float64(mean)) || math.IsInf(float64(mean), 0) {
		return nil, fmt.Errorf("imageio: Gray: mean %v and std %v must be finite with std > 0", mean, std)
	}
	hw := in.H * in.W
	out := make([]float32, hw)
	for i := 0; i < hw; i++ {
		r := math.Round(float64(in.Data[i]) * 255)
		g := math.Round(float64(in.Data[hw+i]) * 255)
		b := math.Round(float64(in.Data[2*hw+i]) * 255)
		l := math.Floor((r*299 + g*587 + b*114 + 500) / 1000)
		out[i] = float32((l/255 - float64(mean)) / float64(std))
	}
	return &Input{Data: out, C: 1, H: in.H, W: in.W, Image: in.Image}, nil
}
