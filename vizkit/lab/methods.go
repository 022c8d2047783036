package lab

import (
	"context"
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
)

// Method is an attribution method compared by the metrics table: it maps a
// batch (N,3,H,W) to one map per example (N,H,W) at input resolution,
// explaining each example's predicted class. Larger values mean "more
// important"; the scale is free (metrics that need [0,1] min–max scale it).
type Method struct {
	// Name is the identifier ("gradcam", "saliency", …); Title the display name.
	Name, Title string
	// Family is "CAM", "gradient", "perturbation" or "baseline".
	Family string
	// Note says how the map is formed (shown under the table).
	Note string
	// Maps computes the maps.
	Maps func(ctx context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error)
}

// Methods lists the methods the table compares, built at call time: every
// CAM method registered in vizkit (cam.Names, so methods added to
// the registry appear automatically, each on its default layer), then the
// gradient methods, occlusion, and a uniformly random map as the chance
// baseline.
func Methods() []Method {
	var out []Method
	for _, name := range cam.Names() {
		title := name
		if m, err := cam.Lookup(name); err == nil {
			title = m.Title
		}
		out = append(out, Method{Name: name, Title: title, Family: "CAM",
			Note: "vizkit.Explainer.CAM with Method " + name + " on its default layer; map in [0,1]",
			Maps: func(ctx context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				r, err := cam.Compute(ctx, ex.Explainer, x, cam.Options{Method: name})
				if err != nil {
					return nil, err
				}
				return r.Map, nil
			}})
	}
	saliency := func(relu models.ReLURule, reduce func(s *vizkit.SaliencyResult) (*vizkit.Array, error)) func(context.Context, *vizkit.Explainer, *vizkit.Array) (*vizkit.Array, error) {
		return func(_ context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
			s, err := ex.Saliency(x, vizkit.SaliencyOptions{ReLU: relu})
			if err != nil {
				return nil, err
			}
			return reduce(s)
		}
	}
	out = append(out,
		Method{Name: "saliency", Title: "Saliency (vanilla gradient)", Family: "gradient",
			Note: "max over RGB of |∂logit/∂x| (Simonyan et al. 2014), Explainer.Run with GradInput",
			Maps: saliency(models.ReLUStandard, (*vizkit.SaliencyResult).AbsMax)},
		Method{Name: "gradxinput", Title: "Gradient × input", Family: "gradient",
			Note: "|Σ_RGB x·∂logit/∂x| on the normalised input",
			Maps: saliency(models.ReLUStandard, func(s *vizkit.SaliencyResult) (*vizkit.Array, error) {
				gx, err := s.GradTimesInput()
				if err != nil {
					return nil, err
				}
				return absChannelSum(gx)
			})},
		Method{Name: "guidedbackprop", Title: "Guided backpropagation", Family: "gradient",
			Note: "max over RGB of |guided gradient|",
			Maps: saliency(models.ReLUGuided, (*vizkit.SaliencyResult).AbsMax)},
		Method{Name: "smoothgrad", Title: "SmoothGrad", Family: "gradient",
			Note: "max over RGB of |mean gradient| over 25 noisy copies (σ 15 % of the input range), seed 1",
			Maps: func(ctx context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				r, err := ex.SmoothGrad(ctx, x, vizkit.SmoothGradOptions{Samples: 25, Seed: 1, Batch: vizkit.BatchOptions{Chunk: 64}})
				if err != nil {
					return nil, err
				}
				return vizkit.ChannelAbsMax(r.Mean)
			}},
		Method{Name: "integratedgradients", Title: "Integrated Gradients", Family: "gradient",
			Note: "|Σ_RGB attribution|, 32 Gauss–Legendre steps from the blurred input (σ 10 px)",
			Maps: func(ctx context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				r, err := ex.IntegratedGradients(ctx, x, vizkit.IGOptions{Steps: 32, Baseline: vizkit.IGBaselineBlur, Batch: vizkit.BatchOptions{Chunk: 64}})
				if err != nil {
					return nil, err
				}
				return absChannelSum(r.Attr)
			}},
		Method{Name: "guidedgradcam", Title: "Guided Grad-CAM", Family: "gradient",
			Note: "max over RGB of |guided gradient · Grad-CAM|",
			Maps: func(_ context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				r, err := ex.GuidedGradCAM(x, vizkit.GuidedGradCAMOptions{})
				if err != nil {
					return nil, err
				}
				return vizkit.ChannelAbsMax(r.Map)
			}},
		Method{Name: "occlusion", Title: "Occlusion", Family: "perturbation",
			Note: "mean score drop over 12×12 windows (stride 4) set to 0 (Zeiler & Fergus; Captum semantics)",
			Maps: func(ctx context.Context, ex *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				r, err := ex.Occlusion(ctx, x, vizkit.OcclusionOptions{Window: [2]int{12, 12}, Stride: [2]int{4, 4}, Batch: vizkit.BatchOptions{Chunk: 128}})
				if err != nil {
					return nil, err
				}
				return r.Map, nil
			}},
		Method{Name: "random", Title: "Random map (chance)", Family: "baseline",
			Note: "independent uniform [0,1) values (vizkit.RandomMaps, seed 1): what any metric gives by chance",
			Maps: func(_ context.Context, _ *vizkit.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
				return vizkit.RandomMaps(x.Shape[0], x.Shape[2], x.Shape[3], 1), nil
			}},
	)
	return out
}

// LookupMethod returns a method of Methods by name, or an error listing them.
func LookupMethod(name string) (Method, error) {
	ms := Methods()
	names := make([]string, len(ms))
	for i, m := range ms {
		if m.Name == name {
			return m, nil
		}
		names[i] = m.Name
	}
	return Method{}, fmt.Errorf("lab: unknown method %q; known: %v", name, names)
}

// absChannelSum is |Σ_c a[n,c]|, (N,H,W).
func absChannelSum(a *vizkit.Array) (*vizkit.Array, error) {
	s, err := vizkit.ChannelSum(a)
	if err != nil {
		return nil, err
	}
	for i, v := range s.Data {
		s.Data[i] = float32(math.Abs(float64(v)))
	}
	return s, nil
}

func exp32(v float32) float32 { return float32(math.Exp(float64(v))) }
