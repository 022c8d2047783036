package attr

import (
	"context"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// The gradient and perturbation methods as engine attribution methods (the
// CAM family registers itself in package cam). Each Maps is (N,H,W), larger
// meaning more important; the reduction over input channels is in Help.
// Detail is the function's own result: *SaliencyResult (saliency,
// guidedbackprop, deconv; its ReLU field says which rule),
// *GradXInputResult, *SmoothGradResult, *IGResult, *GuidedGradCAMResult or
// *OcclusionResult. The engine.Settings each method uses, with their
// defaults, are in its Help; the sampling methods report Progress with Task
// their lower-case title ("smoothgrad", "integrated gradients", "occlusion").
func init() {
	sal := func(relu models.ReLURule, reduce func(*SaliencyResult) (*engine.Array, any, error)) func(engine.Settings) (engine.Method, error) {
		return func(engine.Settings) (engine.Method, error) {
			return method(func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error) {
				s, err := Saliency(ctx, ex, x, SaliencyOptions{ReLU: relu, Target: t})
				if err != nil {
					return nil, nil, nil, nil, err
				}
				m, detail, err := reduce(s)
				return m, detail, s.Classes, s.Scores, err
			}), nil
		}
	}
	absMax := func(s *SaliencyResult) (*engine.Array, any, error) {
		m, err := s.AbsMax()
		return m, s, err
	}
	for _, info := range []engine.MethodInfo{
		{Name: "saliency", Title: "Saliency (vanilla gradient)", Family: "gradient",
			Help: "max over input channels of |∂target/∂x| (Simonyan et al. 2014)",
			New:  sal(models.ReLUStandard, absMax)},
		{Name: "guidedbackprop", Title: "Guided backpropagation", Family: "gradient",
			Help: "max over input channels of |guided gradient| (Springenberg et al. 2015)",
			New:  sal(models.ReLUGuided, absMax)},
		{Name: "deconv", Title: "Deconvnet", Family: "gradient",
			Help: "max over input channels of |deconvnet gradient| (Zeiler & Fergus 2014: the ReLU passes positive gradients back)",
			New:  sal(models.ReLUDeconv, absMax)},
		{Name: "gradxinput", Title: "Gradient × input", Family: "gradient",
			Help: "|Σ over input channels of x·∂target/∂x| on the normalised input",
			New: sal(models.ReLUStandard, func(s *SaliencyResult) (*engine.Array, any, error) {
				gx, err := s.GradTimesInput()
				if err != nil {
					return nil, nil, err
				}
				m, err := absChannelSum(gx)
				return m, &GradXInputResult{Saliency: s, Attr: gx}, err
			})},
		{Name: "smoothgrad", Title: "SmoothGrad", Family: "gradient",
			Help: "max over input channels of |mean gradient| over Samples noisy copies (default 25, σ NoiseLevel = 15 % of the input range; Seed, BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := SmoothGradOptions{Samples: s.Samples, NoiseLevel: s.NoiseLevel, Seed: s.Seed, BatchSize: s.BatchSize,
					Progress: progressAs("smoothgrad", s.Progress)}
				if o.Samples == 0 {
					o.Samples = 25
				}
				return method(func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := SmoothGrad(ctx, ex, x, o)
					if err != nil {
						return nil, nil, nil, nil, err
					}
					m, err := engine.ChannelAbsMax(r.Mean)
					return m, r, r.Classes, r.Scores, err
				}), nil
			}},
		{Name: "integratedgradients", Title: "Integrated Gradients", Family: "gradient",
			Help: "|Σ over input channels of the attribution|, Steps Gauss–Legendre points (default 32) from Baseline (default blur: the input blurred with σ 10 px; black uses Norm) (BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := IGOptions{Steps: s.Steps, Baseline: s.Baseline, Norm: s.Norm, BatchSize: s.BatchSize,
					Progress: progressAs("integrated gradients", s.Progress)}
				if o.Steps == 0 {
					o.Steps = 32
				}
				if o.Baseline == "" {
					o.Baseline = IGBaselineBlur
				}
				return method(func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := IntegratedGradients(ctx, ex, x, o)
					if err != nil {
						return nil, nil, nil, nil, err
					}
					m, err := absChannelSum(r.Attr)
					return m, r, r.Classes, r.Scores, err
				}), nil
			}},
		{Name: "guidedgradcam", Title: "Guided Grad-CAM", Family: "gradient",
			Help: "max over input channels of |guided gradient · Grad-CAM| (Layers: the CAM layer)",
			New: func(s engine.Settings) (engine.Method, error) {
				layers := s.Layers
				return method(func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error) {
					r, err := GuidedGradCAM(ctx, ex, x, GuidedGradCAMOptions{Target: t, Layers: layers})
					if err != nil {
						return nil, nil, nil, nil, err
					}
					m, err := engine.ChannelAbsMax(r.Map)
					return m, r, r.CAM.Classes, r.CAM.Scores, err
				}), nil
			}},
		{Name: "occlusion", Title: "Occlusion", Family: "perturbation",
			Help: "mean score drop over Window-sized windows (default 12×12, Stride 4) set to 0 (Zeiler & Fergus; Captum's semantics; BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := OcclusionOptions{Window: [2]int{12, 12}, Stride: [2]int{4, 4}, BatchSize: s.BatchSize,
					Progress: progressAs("occlusion", s.Progress)}
				for k := range 2 {
					if s.Window[k] > 0 {
						o.Window[k] = s.Window[k]
					}
					if s.Stride[k] > 0 {
						o.Stride[k] = s.Stride[k]
					}
				}
				return method(func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := Occlusion(ctx, ex, x, o)
					if err != nil {
						return nil, nil, nil, nil, err
					}
					return r.Map, r, r.Classes, r.Scores, nil
				}), nil
			}},
	} {
		engine.MustRegister(info)
	}
}

// GradXInputResult is the Detail of the registered gradxinput method:
// gradient × input (Captum's InputXGradient) and the gradient it comes from.
type GradXInputResult struct {
	// Saliency is the vanilla gradient (standard ReLU rule).
	Saliency *SaliencyResult
	// Attr is Saliency.Grad × Saliency.Input, (N,C,H,W).
	Attr *engine.Array
}

// progressAs reports fn's progress under task (nil stays nil).
func progressAs(task string, fn func(engine.Progress)) func(engine.Progress) {
	if fn == nil {
		return nil
	}
	return func(p engine.Progress) {
		p.Task = task
		fn(p)
	}
}

// method adapts a function of this package to engine.Method: it returns the
// maps (N,H,W), the function's own result, and the resolved classes and scores.
type method func(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Array, any, []int, []float32, error)

func (f method) Attribute(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Attribution, error) {
	maps, detail, classes, scores, err := f(ctx, ex, x, t)
	if err != nil {
		return nil, err
	}
	return &engine.Attribution{Maps: maps, Target: t, Classes: classes, Scores: scores, Detail: detail}, nil
}

// absChannelSum is |Σ_c a[n,c]|, (N,H,W).
func absChannelSum(a *engine.Array) (*engine.Array, error) {
	s, err := engine.ChannelSum(a)
	if err != nil {
		return nil, err
	}
	for i, v := range s.Data {
		s.Data[i] = float32(math.Abs(float64(v)))
	}
	return s, nil
}
