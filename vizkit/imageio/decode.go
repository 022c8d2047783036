// Package imageio loads photos and turns them into the normalised float32 tensors
// that ImageNet classifiers (VGG and friends) expect, matching torchvision's
// PIL-based evaluation transform.
//
// Decoding: [Load] and [Decode] read PNG, JPEG, GIF (first frame), WebP and BMP,
// apply the EXIF orientation of JPEG files, and always return an opaque
// *image.RGBA whose bounds start at (0,0). Grayscale, paletted, CMYK, 16-bit and
// translucent images are converted to 8-bit RGB; transparency is composited over
// a white background (torchvision users usually call PIL's convert("RGB"), which
// instead drops the alpha channel and keeps whatever colour the transparent pixels
// store, often black). 16-bit samples keep their high byte, as PIL does when it
// opens 16-bit RGB PNGs.
//
// Preprocessing: [Preprocess] (see [DefaultImageNet]) resizes with PIL's
// antialiased convolution resampling, center-crops with torchvision's rounding,
// and normalises into CHW float32 data, the layout of a PyTorch NCHW tensor
// without the batch axis. [Batch] stacks several inputs into NCHW; [ToImage]
// undoes the normalisation for display.
//
// Class names: [ImageNetClasses], [ClassName], [Label] and [CheckClass] give the
// 1000 ImageNet-1k labels in torchvision's order.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"os"
	"strings"

	// Registered decoders: the formats Decode and Load accept.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// MaxPixels is the largest width×height Decode and Load accept. The limit is
// checked on the header before any pixel memory is allocated, so a small
// malicious file cannot make the decoder allocate gigabytes. The default,
// 2^27 ≈ 134 million pixels, is far above any camera photo; the decoded image
// takes 4 bytes per pixel.
var MaxPixels int64 = 1 << 27

// Load reads and decodes the image file at path; see [Decode] for formats and
// conversions. Errors name the file and the problem (missing, empty, unknown
// format, truncated, corrupt, zero or oversized dimensions).
func Load(path string) (*image.RGBA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imageio: %w", err) // *PathError already names the file
	}
	img, err := decodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("imageio: %s: %w", path, err)
	}
	return img, nil
}

// Decode reads an image from r until EOF and decodes it. Accepted formats: PNG,
// JPEG, GIF (first frame only), WebP and BMP. For JPEG the EXIF Orientation tag
// (values 1–8) is applied, so the result is upright as a photo viewer shows it
// (PIL's ImageOps.exif_transpose); other formats are returned as stored.
//
// The result is always an opaque 8-bit *image.RGBA with Bounds().Min == (0,0):
// gray, paletted, CMYK and 16-bit images are converted (16-bit samples keep their
// high byte) and any alpha is composited over white.
func Decode(r io.Reader) (*image.RGBA, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("imageio: reading image data: %w", err)
	}
	img, err := decodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("imageio: %w", err)
	}
	return img, nil
}

// decodeBytes decodes data; its errors carry no file name or package prefix.
func decodeBytes(data []byte) (*image.RGBA, error) {
	if len(data) == 0 {
		return nil, errors.New("empty input (0 bytes), not an image")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, describeDecodeError("", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%s image has zero size (%dx%d)", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image is %dx%d, more than imageio.MaxPixels=%d pixels", format, cfg.Width, cfg.Height, MaxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, describeDecodeError(format, err)
	}
	if img.Bounds().Empty() {
		return nil, fmt.Errorf("%s image has zero size (%dx%d)", format, img.Bounds().Dx(), img.Bounds().Dy())
	}
	rgb := ToRGB(img)
	if format == "jpeg" {
		rgb = Orient(rgb, jpegOrientation(data))
	}
	return rgb, nil
}

// describeDecodeError turns the standard decoders' errors into messages that say
// what is wrong. format is "" when it is not known yet.
func describeDecodeError(format string, err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return errors.New("unknown image format (supported: PNG, JPEG, GIF, WebP, BMP)")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		// Some decoders format the EOF with %v; image/png reports a cut IDAT this way.
		strings.Contains(err.Error(), "unexpected EOF"), strings.Contains(err.Error(), "not enough pixel data"):
		if format == "" {
			return errors.New("truncated image data (the header is incomplete)")
		}
		return fmt.Errorf("truncated %s image (the data ends early): %w", format, err)
	case format == "":
		return fmt.Errorf("corrupt image header: %w", err)
	default:
		return fmt.Errorf("corrupt %s image: %w", format, err)
	}
}

// ToRGB converts any image to an opaque 8-bit *image.RGBA with bounds
// (0,0)-(Dx,Dy). Translucent pixels are composited over white; 16-bit samples
// keep their high byte. An already opaque *image.RGBA at the origin is copied,
// never returned as is.
func ToRGB(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
		return dst
	}
	draw.Draw(dst, dst.Rect, image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst
}

// Orient returns img transformed for the EXIF Orientation value o, so that a
// photo stored rotated or mirrored comes out upright:
//
//	1 unchanged             2 mirrored left-right   3 rotated 180°
//	4 mirrored top-bottom   5 transposed            6 rotated 90° clockwise
//	7 transversed           8 rotated 90° counter-clockwise
//
// (the transforms PIL's ImageOps.exif_transpose applies). Values 5–8 swap width
// and height. Any other value returns img unchanged. The result has bounds
// starting at (0,0); img must be an *image.RGBA (for example from [ToRGB]).
func Orient(img *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var sx, sy int // source pixel for output (x, y)
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			si := img.PixOffset(b.Min.X+sx, b.Min.Y+sy)
			di := out.PixOffset(x, y)
			copy(out.Pix[di:di+4], img.Pix[si:si+4])
		}
	}
	return out
}
