package attr

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
// modified ReLU rule. One engine execution per call; see sampling.go for the
// sampling methods (SmoothGrad, Integrated Gradients, Occlusion).

// begin checks what every function of the package is given.
func begin(ctx context.Context, ex *engine.Explainer, x *engine.Array) (context.Context, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if ex == nil {
		return ctx, errors.New("attr: nil Explainer")
	}
	if err := engine.CheckImages(x); err != nil {
		return ctx, err
	}
	return ctx, ctx.Err()
}

// SaliencyOptions configures Saliency.
type SaliencyOptions struct {
	// Target is the explained score; default (zero value): each example's top-1
	// class logit. A requested class is honoured (FlashTorch ignores it and warns).
	Target engine.Target
	// ReLU is the backward rule of every ReLU, features and classifier alike:
	// models.ReLUStandard (vanilla gradient, default), models.ReLUGuided (guided
	// backpropagation) or models.ReLUDeconv (deconvnet).
	ReLU models.ReLURule
}

// SaliencyResult is the gradient of a target with respect to the input, for
// a batch. Arrays are (N,C,H,W), C the input's channel count.
type SaliencyResult struct {
	// Method is "gradient", "guided" or "deconv"; Title its display name.
	Method, Title string
	// ReLU is the backward rule used.
	ReLU models.ReLURule
	// Target is what was explained; Classes the resolved class per example (−1
	// for function targets) and Scores the target value per example.
	Target  engine.Target
	Classes []int
	Scores  []float32
	// Input is a copy of the explained (normalised) input.
	Input *engine.Array
	// Grad is the raw gradient d score / d input.
	Grad *engine.Array
}

var reluMethods = map[models.ReLURule][2]string{
	models.ReLUStandard: {"gradient", "Vanilla gradient"},
	models.ReLUGuided:   {"guided", "Guided backpropagation"},
	models.ReLUDeconv:   {"deconv", "Deconvnet"},
}

// Saliency computes the gradient of opts.Target with respect to the input x
// in one engine execution. With models.ReLUGuided every ReLU (classifier
// included, as pytorch-grad-cam's GuidedBackpropReLUModel) passes a gradient
// only where its input and the incoming gradient are both positive; with
// models.ReLUDeconv only where the incoming gradient is positive.
// (FlashTorch's own guided rule multiplies by the ReLU's output value instead
// of its indicator; cnnviz follows Springenberg et al. and pytorch-grad-cam.)
func Saliency(ctx context.Context, ex *engine.Explainer, x *engine.Array, opts SaliencyOptions) (*SaliencyResult, error) {
	names, ok := reluMethods[opts.ReLU]
	if !ok {
		return nil, fmt.Errorf("unknown ReLU rule %d (want models.ReLUStandard, ReLUGuided or ReLUDeconv)", opts.ReLU)
	}
	if _, err := begin(ctx, ex, x); err != nil {
		return nil, err
	}
	res, err := ex.Run(x, engine.Request{GradInput: true, Target: opts.Target, ReLU: opts.ReLU})
	if err != nil {
		return nil, err
	}
	if err := res.InputGrad.CheckFinite(names[1]); err != nil {
		return nil, err
	}
	return &SaliencyResult{Method: names[0], Title: names[1], ReLU: opts.ReLU, Target: opts.Target,
		Classes: res.Classes, Scores: res.Scores, Input: x.Clone(), Grad: res.InputGrad}, nil
}

// AbsMax is Simonyan et al.'s saliency map: max over the channels of
// |gradient|, (N,H,W).
func (s *SaliencyResult) AbsMax() (*engine.Array, error) { return engine.ChannelAbsMax(s.Grad) }

// Max is FlashTorch's max gradient (calculate_gradients(take_max=True)): the
// signed maximum over the channels, (N,H,W). Draw it through
// engine.StandardizeAndClip as FlashTorch does.
func (s *SaliencyResult) Max() (*engine.Array, error) { return engine.ChannelMax(s.Grad) }

// GradTimesInput is gradient × input (Captum's InputXGradient) on the
// normalised input, (N,C,H,W).
func (s *SaliencyResult) GradTimesInput() (*engine.Array, error) {
	if s.Grad == nil || s.Input == nil || !slices.Equal(s.Grad.Shape, s.Input.Shape) || len(s.Grad.Data) != len(s.Input.Data) {
		return nil, errors.New("GradTimesInput: SaliencyResult.Grad and Input must both be set with the same shape")
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
	Target engine.Target
	// Layers are the CAM target layers; default cam.DefaultLayer.
	Layers []string
	// Method is the CAM method; default "gradcam".
	Method string
}

// GuidedGradCAMResult is guided backpropagation multiplied by a class
// activation map (Selvaraju et al.; pytorch-grad-cam's example:
// cam_mask · guided gradients).
type GuidedGradCAMResult struct {
	// Guided is the guided backprop gradient; CAM the class activation map.
	Guided *SaliencyResult
	CAM    *cam.Result
	// Map is Guided.Grad · CAM.Map, the map broadcast over the channels, (N,C,H,W).
	Map *engine.Array
}

// GuidedGradCAM runs cam.Compute and guided backpropagation for the same
// target (the CAM's resolved classes are passed on, so both explain the same
// class) and multiplies them.
func GuidedGradCAM(ctx context.Context, ex *engine.Explainer, x *engine.Array, opts GuidedGradCAMOptions) (*GuidedGradCAMResult, error) {
	ctx, err := begin(ctx, ex, x)
	if err != nil {
		return nil, err
	}
	cm, err := cam.Compute(ctx, ex, x, cam.Options{Method: opts.Method, Layers: opts.Layers, Target: opts.Target})
	if err != nil {
		return nil, err
	}
	target := opts.Target
	if target.Kind != engine.TargetFunc && target.Classes == nil {
		target.Classes = append([]int(nil), cm.Classes...)
	}
	g, err := Saliency(ctx, ex, x, SaliencyOptions{Target: target, ReLU: models.ReLUGuided})
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
