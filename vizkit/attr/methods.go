package vizkit

import (
	"context"
	"errors"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// The gradient and perturbation methods as engine attribution methods (the
// CAM family registers itself in package cam). Each Maps is (N,H,W), larger
// meaning more important; the reduction over input channels is in Help.
func init() {
	sal := func(relu models.ReLURule, reduce func(*SaliencyResult) (*Array, error)) func(engine.Settings) (engine.Method, error) {
		return func(engine.Settings) (engine.Method, error) {
			return attributionFunc(func(_ context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error) {
				s, err := e.Saliency(x, SaliencyOptions{ReLU: relu, Target: t})
				if err != nil {
					return nil, nil, nil, nil, err
				}
				m, err := reduce(s)
				return m, s, s.Classes, s.Scores, err
			}), nil
		}
	}
	for _, info := range []engine.MethodInfo{
		{Name: "saliency", Title: "Saliency (vanilla gradient)", Family: "gradient",
			Help: "max over input channels of |∂target/∂x| (Simonyan et al. 2014)",
			New:  sal(models.ReLUStandard, (*SaliencyResult).AbsMax)},
		{Name: "guidedbackprop", Title: "Guided backpropagation", Family: "gradient",
			Help: "max over input channels of |guided gradient| (Springenberg et al. 2015)",
			New:  sal(models.ReLUGuided, (*SaliencyResult).AbsMax)},
		{Name: "gradxinput", Title: "Gradient × input", Family: "gradient",
			Help: "|Σ over input channels of x·∂target/∂x| on the normalised input",
			New: sal(models.ReLUStandard, func(s *SaliencyResult) (*Array, error) {
				gx, err := s.GradTimesInput()
				if err != nil {
					return nil, err
				}
				return absChannelSum(gx)
			})},
		{Name: "smoothgrad", Title: "SmoothGrad", Family: "gradient",
			Help: "max over input channels of |mean gradient| over Samples noisy copies (default 25, σ 15 % of the input range; Seed, BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := SmoothGradOptions{Samples: s.Samples, Seed: s.Seed, Batch: BatchOptions{Chunk: s.BatchSize, Progress: countOf(s.Progress, "smoothgrad samples")}}
				if o.Samples == 0 {
					o.Samples = 25
				}
				return attributionFunc(func(ctx context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := e.SmoothGrad(ctx, x, o)
					if err != nil {
						return nil, nil, nil, nil, err
					}
					m, err := engine.ChannelAbsMax(r.Mean)
					return m, r, r.Classes, r.Scores, err
				}), nil
			}},
		{Name: "integratedgradients", Title: "Integrated Gradients", Family: "gradient",
			Help: "|Σ over input channels of the attribution|, Steps Gauss–Legendre points (default 32) from the input blurred with σ 10 px (BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := IGOptions{Steps: s.Steps, Baseline: IGBaselineBlur, Batch: BatchOptions{Chunk: s.BatchSize, Progress: countOf(s.Progress, "integrated gradients steps")}}
				if o.Steps == 0 {
					o.Steps = 32
				}
				return attributionFunc(func(ctx context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := e.IntegratedGradients(ctx, x, o)
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
				return attributionFunc(func(_ context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error) {
					r, err := e.GuidedGradCAM(x, GuidedGradCAMOptions{Target: t, Layers: layers})
					if err != nil {
						return nil, nil, nil, nil, err
					}
					m, err := engine.ChannelAbsMax(r.Map)
					return m, r, r.CAM.Classes, r.CAM.Scores, err
				}), nil
			}},
		{Name: "occlusion", Title: "Occlusion", Family: "perturbation",
			Help: "mean score drop over 12×12 windows (stride 4) set to 0 (Zeiler & Fergus; Captum's semantics; BatchSize)",
			New: func(s engine.Settings) (engine.Method, error) {
				o := OcclusionOptions{Window: [2]int{12, 12}, Stride: [2]int{4, 4}, Batch: BatchOptions{Chunk: s.BatchSize, Progress: countOf(s.Progress, "occluded copies")}}
				return attributionFunc(func(ctx context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error) {
					o := o
					o.Target = t
					r, err := e.Occlusion(ctx, x, o)
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

// attributionFunc adapts a vizkit method to engine.Method: it returns the
// maps (N,H,W), the method's own result, and the resolved classes and scores.
type attributionFunc func(ctx context.Context, e *Explainer, x *Array, t Target) (*Array, any, []int, []float32, error)

func (f attributionFunc) Attribute(ctx context.Context, ex *engine.Explainer, x *Array, t Target) (*engine.Attribution, error) {
	if ex == nil {
		return nil, errors.New("attribution: nil Explainer")
	}
	maps, detail, classes, scores, err := f(ctx, &Explainer{ex}, x, t)
	if err != nil {
		return nil, err
	}
	return &engine.Attribution{Maps: maps, Target: t, Classes: classes, Scores: scores, Detail: detail}, nil
}

// countOf adapts a Progress callback to the (done, total) form, or nil.
func countOf(p func(engine.Progress), task string) func(done, total int) {
	if p == nil {
		return nil
	}
	return func(done, total int) { p(engine.Progress{Task: task, Done: done, Total: total}) }
}

// absChannelSum is |Σ_c a[n,c]|, (N,H,W).
func absChannelSum(a *Array) (*Array, error) {
	s, err := engine.ChannelSum(a)
	if err != nil {
		return nil, err
	}
	for i, v := range s.Data {
		s.Data[i] = float32(math.Abs(float64(v)))
	}
	return s, nil
}
