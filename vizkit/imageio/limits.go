package imageio

import "fmt"

// MaxWorkPixels bounds every image and tensor the preprocessing creates after
// decoding: the resized image, the intermediate (horizontal) pass of the
// resampler, the crop, and the C×H×W float32 tensor of [Preprocess.Apply]
// (3 floats per pixel). The default, 2^25 ≈ 33.5 million pixels (128 MiB as
// RGBA, 384 MiB as a float32 tensor), is far above what a CNN is run on;
// [MaxPixels] bounds the decoded image itself. Each check runs before the
// allocation, so a tiny image whose resize would be huge (a 1×20000 PNG whose
// short side Resize(256) scales up 256×) fails with an error instead of
// allocating gigabytes. Raise it (before use, not concurrently) only when
// larger working images are legitimate.
var MaxWorkPixels int64 = 1 << 25

// checkWork returns an error when a w×h image (what) exceeds MaxWorkPixels;
// w and h may be any ints (no overflow).
func checkWork(what string, w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("imageio: %s size %dx%d (WxH) must be positive", what, w, h)
	}
	if int64(w) > MaxWorkPixels || int64(h) > MaxWorkPixels/int64(w) {
		return fmt.Errorf("imageio: %s would be %dx%d (WxH) = %.4g pixels, more than imageio.MaxWorkPixels=%d; use a smaller size",
			what, w, h, float64(w)*float64(h), MaxWorkPixels)
	}
	return nil
}
