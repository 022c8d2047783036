package engine

import (
	"fmt"
	"math"
	"slices"

	"github.com/cnnviz/cnnviz/vizkit/imageio"
)

// Normalization is the per-channel input normalisation the network expects:
// x = (pixel − Mean[c]) / Std[c] with pixel values in [0, 1], one entry per
// input channel (R, G, B for RGB models; one for grayscale; any number for
// multi-channel inputs).
//
// The zero value (both slices empty) is the default for the input's channel
// count C: ImageNet's (imageio.ImageNetMean, imageio.ImageNetStd, which
// torchvision's weights use) when C = 3, none (mean 0, std 1) otherwise.
// Otherwise every non-empty slice must have exactly C values (a different
// length is an error naming both); an empty Mean means 0 and an empty Std 1
// for every channel. Std values must be positive and finite.
type Normalization struct {
	Mean, Std []float32
}

// ImageNetNormalization is torchvision's ImageNet normalisation (3 channels).
func ImageNetNormalization() Normalization {
	return Normalization{Mean: slices.Clone(imageio.ImageNetMean[:]), Std: slices.Clone(imageio.ImageNetStd[:])}
}

// NoNormalization is the identity normalisation of c channels (mean 0,
// std 1): inputs are pixel values in [0, 1] (or whatever the data holds).
func NoNormalization(c int) Normalization {
	n := Normalization{Mean: make([]float32, max(c, 0)), Std: make([]float32, max(c, 0))}
	for i := range n.Std {
		n.Std[i] = 1
	}
	return n
}

// IsZero reports whether n is the zero value (the default normalisation).
func (n Normalization) IsZero() bool { return len(n.Mean) == 0 && len(n.Std) == 0 }

// For returns n resolved for an input of c channels (see Normalization: the
// default for c, or n with empty slices filled in) and checks it: each slice
// of length c, every Std positive and finite, every Mean finite.
func (n Normalization) For(c int) (Normalization, error) {
	if c < 1 {
		return Normalization{}, fmt.Errorf("normalization: the input has %d channels", c)
	}
	if n.IsZero() {
		if c == 3 {
			return ImageNetNormalization(), nil
		}
		return NoNormalization(c), nil
	}
	out := NoNormalization(c)
	for _, f := range []struct {
		name     string
		src, dst []float32
	}{{"Mean", n.Mean, out.Mean}, {"Std", n.Std, out.Std}} {
		if len(f.src) == 0 {
			continue
		}
		if len(f.src) != c {
			return Normalization{}, fmt.Errorf("normalization: %s has %d values but the input has %d channels (give one per channel, or none)", f.name, len(f.src), c)
		}
		copy(f.dst, f.src)
	}
	for ch := 0; ch < c; ch++ {
		m, s := float64(out.Mean[ch]), float64(out.Std[ch])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(s > 0) || math.IsInf(s, 0) {
			return Normalization{}, fmt.Errorf("normalization channel %d: mean %v, std %v (std must be positive and finite)", ch, out.Mean[ch], out.Std[ch])
		}
	}
	return out, nil
}

// Black returns the normalised value of a black pixel (pixel 0) per channel:
// −Mean/Std, e.g. (−2.118, −2.036, −1.804) for ImageNet. The zero value is
// taken as ImageNet's; an empty Mean gives 0 (and an empty Std 1) per
// channel of the other slice.
func (n Normalization) Black() []float32 {
	if n.IsZero() {
		n = ImageNetNormalization()
	}
	c := max(len(n.Mean), len(n.Std))
	out := make([]float32, c)
	for i := range out {
		m, s := float32(0), float32(1)
		if i < len(n.Mean) {
			m = n.Mean[i]
		}
		if i < len(n.Std) {
			s = n.Std[i]
		}
		out[i] = -m / s
	}
	return out
}
