package imageio

import (
	"fmt"
	"image"
	"math"
)

// The resampling here is hand-written because it must reproduce Pillow's
// Image.resize bit for bit, which is what torchvision's Resize does on PIL images;
// no Go library does that (golang.org/x/image/draw's ApproxBiLinear does not
// antialias, and its CatmullRom/BiLinear kernels differ from Pillow's in support
// scaling, rounding and per-pass uint8 quantisation). It follows the algorithm of
// Pillow's src/libImaging/Resample.c (convolution filters) and Geometry.c
// (NEAREST, via ImagingScaleAffine): separable passes, horizontal first, each
// pass with 22-bit fixed-point coefficients, rounded and clamped to uint8.
// Pillow is under the HPND licence; this is an independent Go re-implementation
// of the same arithmetic.

// Filter selects the resampling kernel of [Resize] and [Preprocess]. The zero
// value is Bilinear, torchvision's default.
type Filter int

const (
	// Bilinear is PIL's BILINEAR: a triangle kernel of support 1 input pixel,
	// widened by the downscale factor when shrinking (antialiased).
	Bilinear Filter = iota
	// Bicubic is PIL's BICUBIC: the Keys cubic kernel with a = -0.5, support 2,
	// widened by the downscale factor when shrinking.
	Bicubic
	// Nearest is PIL's NEAREST: each output pixel copies the input pixel under
	// its centre (no antialiasing).
	Nearest
)

// String returns "bilinear", "bicubic" or "nearest".
func (f Filter) String() string {
	switch f {
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	case Nearest:
		return "nearest"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

type kernel struct {
	fn      func(x float64) float64
	support float64
}

func bilinearKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// bicubicKernel is Pillow's bicubic_filter. The explicit float64 conversions stop
// the Go compiler from fusing multiply-adds, which the C build does not do either.
func bicubicKernel(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64(float64((a+2)*x)-(a+3))*x)*x + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(x-5)*x)+8)*x-4) * a
	}
	return 0
}

const precisionBits = 32 - 8 - 2 // Pillow's PRECISION_BITS

// coeffs are the fixed-point filter taps of one resampling pass: output pixel i
// reads input pixels start[i] .. start[i]+n[i]-1 with weights k[i*ksize : ...].
type coeffs struct {
	ksize    int
	start, n []int
	k        []int32
}

// precomputeCoeffs is Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc, for the full input range [0, inSize).
func precomputeCoeffs(inSize, outSize int, kern kernel) coeffs {
	in0, in1 := float32(0), float32(inSize) // Pillow's box is float
	scale := float64(in1-in0) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := kern.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, start: make([]int, outSize), n: make([]int, outSize), k: make([]int32, outSize*ksize)}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(in0) + float64((float64(xx)+0.5)*scale)
		xmin := int(center - support + 0.5) // C's (int) truncates toward zero
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		if xmax > ksize { // cannot happen with Pillow's arithmetic; guards the slice below
			xmax = ksize
		}
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := kern.fn(float64(float64(x+xmin)-center+0.5) * ss)
			w[x] = v
			ww += v
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				k[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		c.start[xx], c.n[xx] = xmin, xmax
	}
	return c
}

// clip8 is Pillow's clip8: drop the fraction bits and clamp to [0,255].
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Resize returns src scaled to w×h pixels with the algorithm of Pillow's
// Image.resize(size, filter) on an RGB image, which is what torchvision's
// transforms.Resize does on PIL images. Bilinear and Bicubic antialias when
// downscaling (the kernel support grows with the scale factor) and round to uint8
// after each of the two separable passes, as Pillow does. src's alpha channel is
// ignored (convert translucent images with [ToRGB] first); the result is opaque
// with bounds (0,0)-(w,h). Resizing to the same size returns a copy.
//
// The result and the intermediate pass (w × src height pixels) must each stay
// within [MaxWorkPixels]; a larger request is an error, checked before any
// allocation.
func Resize(src *image.RGBA, w, h int, f Filter) (*image.RGBA, error) {
	if src == nil {
		return nil, fmt.Errorf("imageio: Resize: nil image")
	}
	sb := src.Bounds()
	if sb.Empty() {
		return nil, fmt.Errorf("imageio: cannot resize an empty %dx%d image", sb.Dx(), sb.Dy())
	}
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("imageio: resize target %dx%d must be positive", w, h)
	}
	if err := checkWork(fmt.Sprintf("resizing the %dx%d image: the result", sb.Dx(), sb.Dy()), w, h); err != nil {
		return nil, err
	}
	if w != sb.Dx() && h != sb.Dy() && f != Nearest {
		if err := checkWork(fmt.Sprintf("resizing the %dx%d image to %dx%d: the intermediate horizontal pass", sb.Dx(), sb.Dy(), w, h), w, sb.Dy()); err != nil {
			return nil, err
		}
	}
	var kern kernel
	switch f {
	case Bilinear:
		kern = kernel{bilinearKernel, 1}
	case Bicubic:
		kern = kernel{bicubicKernel, 2}
	case Nearest:
		return resizeNearest(src, w, h), nil
	default:
		return nil, fmt.Errorf("imageio: unknown resampling filter %v", f)
	}
	in := compact(src)
	inW, inH := sb.Dx(), sb.Dy()
	needH, needV := w != inW, h != inH
	ch := precomputeCoeffs(inW, w, kern)
	cv := precomputeCoeffs(inH, h, kern)

	cur := in
	if needH {
		// Only the rows the vertical pass reads are resampled, as in Pillow.
		first, last := 0, inH
		if needV {
			first = cv.start[0]
			last = cv.start[h-1] + cv.n[h-1]
			for i := range cv.start {
				cv.start[i] -= first
			}
		}
		tmp := image.NewRGBA(image.Rect(0, 0, w, last-first))
		for y := 0; y < last-first; y++ {
			srow := in.Pix[(y+first)*in.Stride:]
			drow := tmp.Pix[y*tmp.Stride:]
			for xx := 0; xx < w; xx++ {
				k := ch.k[xx*ch.ksize:]
				x0 := ch.start[xx]
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for x := 0; x < ch.n[xx]; x++ {
					p := srow[(x0+x)*4:]
					s0 += int32(p[0]) * k[x]
					s1 += int32(p[1]) * k[x]
					s2 += int32(p[2]) * k[x]
				}
				d := drow[xx*4:]
				d[0], d[1], d[2], d[3] = clip8(s0), clip8(s1), clip8(s2), 255
			}
		}
		cur = tmp
	}
	if needV {
		cw := cur.Rect.Dx()
		out := image.NewRGBA(image.Rect(0, 0, cw, h))
		for yy := 0; yy < h; yy++ {
			k := cv.k[yy*cv.ksize:]
			y0 := cv.start[yy]
			drow := out.Pix[yy*out.Stride:]
			for xx := 0; xx < cw; xx++ {
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for y := 0; y < cv.n[yy]; y++ {
					p := cur.Pix[(y0+y)*cur.Stride+xx*4:]
					s0 += int32(p[0]) * k[y]
					s1 += int32(p[1]) * k[y]
					s2 += int32(p[2]) * k[y]
				}
				d := drow[xx*4:]
				d[0], d[1], d[2], d[3] = clip8(s0), clip8(s1), clip8(s2), 255
			}
		}
		cur = out
	}
	if cur == in { // same size: neither pass ran
		cur = opaqueCopy(in)
	}
	return cur, nil
}

// resizeNearest is Pillow's NEAREST resize (ImagingScaleAffine): the source
// coordinate of output pixel x is floor((x+0.5)·in/out), accumulated in float64
// step by step exactly as Pillow does.
func resizeNearest(src *image.RGBA, w, h int) *image.RGBA {
	in := compact(src)
	inW, inH := in.Rect.Dx(), in.Rect.Dy()
	tab := func(inSize, outSize int) []int {
		a := float64(float32(inSize)) / float64(outSize)
		t := make([]int, outSize)
		o := a * 0.5
		for i := range t {
			v := 0
			if o >= 0 {
				v = int(o)
			}
			t[i] = min(v, inSize-1)
			o += a
		}
		return t
	}
	xs, ys := tab(inW, w), tab(inH, h)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y, sy := range ys {
		srow := in.Pix[sy*in.Stride:]
		drow := out.Pix[y*out.Stride:]
		for x, sx := range xs {
			copy(drow[x*4:x*4+3], srow[sx*4:sx*4+3])
			drow[x*4+3] = 255
		}
	}
	return out
}

// compact returns src itself when its pixels start at the origin of Pix with a
// tight stride, else a copy that does.
func compact(src *image.RGBA) *image.RGBA {
	b := src.Bounds()
	if b.Min == (image.Point{}) && src.Stride == 4*b.Dx() {
		return src
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		i := src.PixOffset(b.Min.X, b.Min.Y+y)
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], src.Pix[i:i+4*b.Dx()])
	}
	return out
}

// opaqueCopy copies src (compacted) with alpha forced to 255.
func opaqueCopy(src *image.RGBA) *image.RGBA {
	c := compact(src)
	out := &image.RGBA{Pix: append([]uint8(nil), c.Pix...), Stride: c.Stride, Rect: c.Rect}
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255
	}
	return out
}

// CenterCrop returns the h×w window at the centre of img, exactly as
// torchvision's CenterCrop places it: top = round((H-h)/2), left = round((W-w)/2)
// with Python's round-half-to-even. Where the crop is larger than the image, the
// image is first padded with black (zero) pixels, (h-H)/2 rows above and the rest
// below (columns likewise), as torchvision does; after normalisation those pixels
// become -mean/std. The result has bounds (0,0)-(w,h) and does not share memory
// with img.
//
// The crop must stay within [MaxWorkPixels].
func CenterCrop(img *image.RGBA, h, w int) (*image.RGBA, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("imageio: center crop %dx%d (HxW) must be positive", h, w)
	}
	if img == nil {
		return nil, fmt.Errorf("imageio: CenterCrop: nil image")
	}
	if err := checkWork("the center crop", w, h); err != nil {
		return nil, err
	}
	b := img.Bounds()
	ih, iw := b.Dy(), b.Dx()
	// Offsets of the crop window in image coordinates (negative = padding).
	top, left := cropOffset(ih, h), cropOffset(iw, w)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255 // padding is opaque black
	}
	for y := 0; y < h; y++ {
		sy := top + y
		if sy < 0 || sy >= ih {
			continue
		}
		x0, x1 := max(0, -left), min(w, iw-left)
		if x0 >= x1 {
			continue
		}
		si := img.PixOffset(b.Min.X+left+x0, b.Min.Y+sy)
		di := out.PixOffset(x0, y)
		copy(out.Pix[di:di+4*(x1-x0)], img.Pix[si:si+4*(x1-x0)])
	}
	return out, nil
}

// cropOffset is torchvision's center_crop offset along one axis of length n for a
// crop of length c: negative when padding, -((c-n)//2).
func cropOffset(n, c int) int {
	if c > n {
		return -((c - n) / 2)
	}
	d := n - c
	off := d / 2
	if d%2 == 1 && off%2 == 1 { // round(x.5) to even
		off++
	}
	return off
}
