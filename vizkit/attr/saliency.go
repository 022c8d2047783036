package vizkit

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Gradient visualisations (FlashTorch's Backprop and beyond): the gradient of a
// target with respect to the input image, under PyTorch's backward rule or a
// modified ReLU rule, and the usual ways to turn it into a picture. One engine
// execution per call; see attribution.go for the sampling methods (SmoothGrad,
// Integrated Gradients, Occlusion) and actmax.go for activation maximisation.

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
	Norm engine.Normalization
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
	Norm engine.Normalization
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
	if err := engine.CheckImages(x); err != nil {
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
func (s *SaliencyResult) AbsMax() (*Array, error) { return engine.ChannelAbsMax(s.Grad) }

// Max is FlashTorch's max gradient (calculate_gradients(take_max=True)): the
// signed maximum over the channels (RGB), (N,H,W). Draw it through StandardizeAndClip as
// FlashTorch does.
func (s *SaliencyResult) Max() (*Array, error) { return engine.ChannelMax(s.Grad) }

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
	Norm engine.Normalization
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
	if err := engine.CheckImages(x); err != nil {
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
