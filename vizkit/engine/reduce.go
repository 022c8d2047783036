package engine

import (
	"errors"
	"fmt"
	"math"
)

// CheckImages checks that x is a non-empty (N,C,H,W) batch with C ≥ 1
// (the network checks C against its own input when it runs).
func CheckImages(x *Array) error {
	if x == nil {
		return errors.New("input is nil")
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] < 1 || x.Shape[2] < 1 || x.Shape[3] < 1 {
		return fmt.Errorf("input must be an image batch of shape (N,C,H,W), got shape %v", x.Shape)
	}
	if want := x.Shape[0] * x.Shape[1] * x.Shape[2] * x.Shape[3]; len(x.Data) != want {
		return fmt.Errorf("input of shape %v holds %d values, want %d", x.Shape, len(x.Data), want)
	}
	return nil
}

// ChannelAbsMax reduces an (N,C,H,W) array to (N,H,W) with max_c |a|
// (Simonyan et al.'s saliency map of a gradient).
func ChannelAbsMax(a *Array) (*Array, error) { return channelReduce(a, true) }

// ChannelMax reduces an (N,C,H,W) array to (N,H,W) with the signed max_c a
// (FlashTorch's take_max).
func ChannelMax(a *Array) (*Array, error) { return channelReduce(a, false) }

func channelReduce(a *Array, abs bool) (*Array, error) {
	if err := a.Check("channel reduction input"); err != nil {
		return nil, err
	}
	if len(a.Shape) != 4 || a.Shape[1] < 1 {
		var shape any = "nil"
		if a != nil {
			shape = a.Shape
		}
		return nil, fmt.Errorf("channel reduction needs an (N,C,H,W) array, got shape %v", shape)
	}
	n, c, hw := a.Shape[0], a.Shape[1], a.Shape[2]*a.Shape[3]
	out := NewArray(n, a.Shape[2], a.Shape[3])
	for i := 0; i < n; i++ {
		src := a.Data[i*c*hw : (i+1)*c*hw]
		dst := out.Data[i*hw : (i+1)*hw]
		for p := 0; p < hw; p++ {
			best := src[p]
			if abs {
				best = float32(math.Abs(float64(best)))
			}
			for ch := 1; ch < c; ch++ {
				v := src[ch*hw+p]
				if abs {
					v = float32(math.Abs(float64(v)))
				}
				if v > best {
					best = v
				}
			}
			dst[p] = best
		}
	}
	return out, nil
}

// StandardizeAndClip is FlashTorch's display transform (flashtorch.utils
// standardize_and_clip), applied to each example (first axis) separately:
//
//	clamp((a − mean) / std · saturation + brightness, 0, 1)
//
// with std the sample standard deviation (torch.std, n−1 in the denominator;
// 1e-7 when it is 0, and for a single value). FlashTorch's defaults are
// saturation 0.1, brightness 0.5. The result has a's shape, values in [0,1].
func StandardizeAndClip(a *Array, saturation, brightness float64) *Array {
	return standardize(a, saturation, brightness, true, 0)
}

// DeprocessImage is pytorch-grad-cam's deprocess_image (used to show guided
// backprop and Guided Grad-CAM), applied to each example separately:
//
//	clamp((a − mean) / (std + 1e-5) · 0.1 + 0.5, 0, 1)
//
// with the population standard deviation (np.std). (pytorch-grad-cam then
// quantises to uint8; this returns the float values.)
func DeprocessImage(a *Array) *Array { return standardize(a, 0.1, 0.5, false, 1e-5) }

func standardize(a *Array, saturation, brightness float64, unbiased bool, eps float64) *Array {
	out := a.Clone()
	n := 1
	if len(a.Shape) > 0 && a.Shape[0] > 0 {
		n = a.Shape[0]
	}
	per := len(a.Data) / n
	for i := 0; i < n; i++ {
		d := out.Data[i*per : (i+1)*per]
		mean := 0.0
		for _, v := range d {
			mean += float64(v)
		}
		mean /= float64(len(d))
		ss := 0.0
		for _, v := range d {
			dv := float64(v) - mean
			ss += dv * dv
		}
		den := float64(len(d))
		if unbiased {
			den--
		}
		std := 0.0
		if den > 0 {
			std = math.Sqrt(ss / den)
		}
		if unbiased {
			if std == 0 || math.IsNaN(std) {
				std = 1e-7
			}
		} else {
			std += eps
		}
		for j, v := range d {
			t := (float64(v)-mean)/std*saturation + brightness
			d[j] = float32(min(max(t, 0), 1))
		}
	}
	return out
}

// ChannelSum reduces an (N,C,H,W) array to (N,H,W) by summing over channels
// (the usual per-pixel map of Integrated Gradients or gradient × input).
func ChannelSum(a *Array) (*Array, error) {
	if err := a.Check("ChannelSum input"); err != nil {
		return nil, err
	}
	if len(a.Shape) != 4 {
		return nil, fmt.Errorf("ChannelSum needs an (N,C,H,W) array, got shape %v", a.Shape)
	}
	n, c, hw := a.Shape[0], a.Shape[1], a.Shape[2]*a.Shape[3]
	out := NewArray(n, a.Shape[2], a.Shape[3])
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			src := a.Data[(i*c+ch)*hw : (i*c+ch+1)*hw]
			dst := out.Data[i*hw : (i+1)*hw]
			for p, v := range src {
				dst[p] += v
			}
		}
	}
	return out, nil
}
