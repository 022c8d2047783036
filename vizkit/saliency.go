package vizkit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
)

// Gradient visualisations (FlashTorch's Backprop and beyond): the gradient of a
// target with respect to the input image, under PyTorch's backward rule or a
// modified ReLU rule, and the usual ways to turn it into a picture. One engine
// execution per call; see attribution.go for the sampling methods (SmoothGrad,
// Integrated Gradients, Occlusion) and actmax.go for activation maximisation.

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

// DefaultDisplayChannels returns the input channels drawn by default for an
// input of c channels: the first three as red, green and blue when c ≥ 3,
// else channel 0 in gray.
func DefaultDisplayChannels(c int) []int {
	if c >= 3 {
		return []int{0, 1, 2}
	}
	return []int{0}
}

// CheckDisplayChannels resolves a choice of input channels to draw for an
// input of c channels: empty means DefaultDisplayChannels(c); otherwise it
// must name 1 channel (drawn in gray) or 3 (drawn as red, green, blue), each
// in 0..c−1 (repeats allowed). Errors name the channel and the count.
func CheckDisplayChannels(sel []int, c int) ([]int, error) {
	if len(sel) == 0 {
		return DefaultDisplayChannels(c), nil
	}
	if len(sel) != 1 && len(sel) != 3 {
		return nil, fmt.Errorf("display channels %v: give 1 channel (gray) or 3 (red, green, blue), not %d", sel, len(sel))
	}
	for _, ch := range sel {
		if ch < 0 || ch >= c {
			return nil, fmt.Errorf("display channel %d is out of range for an input with %d channel(s) (valid: 0..%d)", ch, c, c-1)
		}
	}
	return slices.Clone(sel), nil
}

// SaliencyOptions configures Saliency.
type SaliencyOptions struct {
	// Target is the explained score; default (zero value): each example's top-1
	// class logit. A requested class is honoured (FlashTorch ignores it and warns).
	Target Target
	// ReLU is the backward rule of every ReLU, features and classifier alike:
	// models.ReLUStandard (vanilla gradient, default), models.ReLUGuided (guided
	// backpropagation) or models.ReLUDeconv (deconvnet).
	ReLU models.ReLURule
	// Norm is the input normalisation, used only to draw the input; zero: the
	// default for the input's channel count (ImageNet's for 3 channels, none
	// otherwise). A Mean or Std whose length is not the channel count is an error.
	Norm Normalization
	// DisplayChannels are the input channels drawn (as red, green, blue; one:
	// gray) for the input and the per-channel gradient pictures; empty: the
	// first three (channel 0 in gray for 1- and 2-channel inputs). See
	// CheckDisplayChannels.
	DisplayChannels []int
}

// Saliency is the gradient of a target with respect to the input, for a batch.
// All arrays are NCHW (N,C,H,W), C the input's channel count, or (N,H,W) for
// per-pixel maps.
type SaliencyResult struct {
	// Method is "gradient", "guided" or "deconv"; Title its display name.
	Method, Title string
	// ReLU is the backward rule used.
	ReLU models.ReLURule
	// Target is what was explained; Classes the resolved class per example (−1
	// for function targets) and Scores the target value per example.
	Target  Target
	Classes []int
	Scores  []float32
	// Input is a copy of the explained (normalised) input (N,C,H,W).
	Input *Array
	// Grad is the raw gradient d score / d input (N,C,H,W).
	Grad *Array
	// Norm is the input normalisation (for drawing the input), resolved: C
	// values each.
	Norm Normalization
	// DisplayChannels are the channels drawn (1 or 3 of them), resolved.
	DisplayChannels []int
}

var reluMethods = map[models.ReLURule][2]string{
	models.ReLUStandard: {"gradient", "Vanilla gradient"},
	models.ReLUGuided:   {"guided", "Guided backpropagation"},
	models.ReLUDeconv:   {"deconv", "Deconvnet"},
}

// Saliency computes the gradient of opts.Target with respect to the input x
// (N,C,H,W, normalised; C the network's input channel count) in one engine
// execution. With models.ReLUGuided every
// ReLU (classifier included, as pytorch-grad-cam's GuidedBackpropReLUModel)
// passes a gradient only where its input and the incoming gradient are both
// positive; with models.ReLUDeconv only where the incoming gradient is positive.
// (FlashTorch's own guided rule multiplies by the ReLU's output value instead of
// its indicator; cnnviz follows Springenberg et al. and pytorch-grad-cam.)
func (e *Explainer) Saliency(x *Array, opts SaliencyOptions) (*SaliencyResult, error) {
	names, ok := reluMethods[opts.ReLU]
	if !ok {
		return nil, fmt.Errorf("unknown ReLU rule %d (want models.ReLUStandard, ReLUGuided or ReLUDeconv)", opts.ReLU)
	}
	if err := checkImageBatch(x); err != nil {
		return nil, err
	}
	norm, err := opts.Norm.For(x.Shape[1])
	if err != nil {
		return nil, err
	}
	disp, err := CheckDisplayChannels(opts.DisplayChannels, x.Shape[1])
	if err != nil {
		return nil, err
	}
	res, err := e.Run(x, engine.Request{GradInput: true, Target: opts.Target, ReLU: opts.ReLU})
	if err != nil {
		return nil, err
	}
	if err := res.InputGrad.CheckFinite(names[1]); err != nil {
		return nil, err
	}
	return &SaliencyResult{Method: names[0], Title: names[1], ReLU: opts.ReLU, Target: opts.Target,
		Classes: res.Classes, Scores: res.Scores, Input: x.Clone(), Grad: res.InputGrad, Norm: norm, DisplayChannels: disp}, nil
}

// AbsMax is Simonyan et al.'s saliency map: max over the channels (RGB) of
// |gradient|, (N,H,W).
func (s *SaliencyResult) AbsMax() (*Array, error) { return channelReduce(s.Grad, true) }

// Max is FlashTorch's max gradient (calculate_gradients(take_max=True)): the
// signed maximum over the channels (RGB), (N,H,W). Draw it through StandardizeAndClip as
// FlashTorch does.
func (s *SaliencyResult) Max() (*Array, error) { return channelReduce(s.Grad, false) }

// GradTimesInput is gradient × input (Captum's InputXGradient) on the
// normalised input, (N,C,H,W).
func (s *SaliencyResult) GradTimesInput() (*Array, error) {
	if s.Grad == nil || s.Input == nil || !slices.Equal(s.Grad.Shape, s.Input.Shape) || len(s.Grad.Data) != len(s.Input.Data) {
		return nil, errors.New("GradTimesInput: Saliency.Grad and Saliency.Input must both be set with the same shape")
	}
	out := s.Grad.Clone()
	for i, v := range s.Input.Data {
		out.Data[i] *= v
	}
	return out, nil
}

// checkImageBatch checks that x is a non-empty (N,C,H,W) batch with C ≥ 1
// (the network checks C against its own input when it runs).
func checkImageBatch(x *Array) error {
	if x == nil {
		return errors.New("vizkit: input is nil")
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
	out := engine.NewArray(n, a.Shape[2], a.Shape[3])
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

// GuidedGradCAMOptions configures GuidedGradCAM.
type GuidedGradCAMOptions struct {
	// Target is the explained score; default: each example's top-1 class logit.
	Target Target
	// Layers are the CAM target layers; default DefaultCAMLayer.
	Layers []string
	// Method is the CAM method; default "gradcam".
	Method string
	// Norm is the input normalisation (for drawing the input); zero: the
	// default for the input's channel count.
	Norm Normalization
	// DisplayChannels are the channels drawn; see SaliencyOptions.
	DisplayChannels []int
}

// GuidedGradCAMResult is guided backpropagation multiplied by a class
// activation map (Selvaraju et al.; pytorch-grad-cam's example:
// cam_mask · guided gradients).
type GuidedGradCAMResult struct {
	// Guided is the guided backprop gradient; CAM the class activation map.
	Guided *SaliencyResult
	CAM    *cam.Result
	// Map is Guided.Grad · CAM.Map, the map broadcast over the channels, (N,C,H,W).
	Map *Array
}

// GuidedGradCAM runs Explainer.CAM and guided backpropagation for the same
// target (the CAM's resolved classes are passed on, so both explain the same
// class) and multiplies them.
func (e *Explainer) GuidedGradCAM(x *Array, opts GuidedGradCAMOptions) (*GuidedGradCAMResult, error) {
	if err := checkImageBatch(x); err != nil {
		return nil, err
	}
	if _, err := opts.Norm.For(x.Shape[1]); err != nil {
		return nil, err
	}
	if _, err := CheckDisplayChannels(opts.DisplayChannels, x.Shape[1]); err != nil {
		return nil, err
	}
	cm, err := cam.Compute(context.Background(), e.Explainer, x, cam.Options{Method: opts.Method, Layers: opts.Layers, Target: opts.Target})
	if err != nil {
		return nil, err
	}
	target := opts.Target
	if target.Kind != engine.TargetFunc && target.Classes == nil {
		target.Classes = append([]int(nil), cm.Classes...)
	}
	g, err := e.Saliency(x, SaliencyOptions{Target: target, ReLU: models.ReLUGuided, Norm: opts.Norm, DisplayChannels: opts.DisplayChannels})
	if err != nil {
		return nil, err
	}
	g.Target = opts.Target
	n, nc, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := g.Grad.Clone()
	for i := 0; i < n; i++ {
		m := cm.Map.Index(i).Data
		d := out.Index(i).Data
		for c := 0; c < nc; c++ {
			for p := 0; p < h*w; p++ {
				d[c*h*w+p] *= m[p]
			}
		}
	}
	return &GuidedGradCAMResult{Guided: g, CAM: cm, Map: out}, nil
}
