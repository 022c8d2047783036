package lab

import (
	"context"
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
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
	Maps func(ctx context.Context, ex *engine.Explainer, x *vizkit.Array) (*vizkit.Array, error)
}

// Methods lists the methods the table compares, built at call time from the
// one attribution registry (engine.Methods: every CAM method of package cam,
// each on its default layer, then the gradient and perturbation methods of
// package vizkit, in registry order within each family), then a uniformly
// random map as the chance baseline. A method registered anywhere appears
// here without any change to this package.
func Methods() []Method {
	var out []Method
	for _, fam := range []string{"CAM", "gradient", "perturbation"} {
		for _, info := range engine.Methods() {
			if info.Family != fam {
				continue
			}
			name := info.Name
			out = append(out, Method{Name: name, Title: info.Title, Family: info.Family, Note: info.Help,
				Maps: func(ctx context.Context, ex *engine.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
					m, _, err := engine.NewMethod(name, engine.Settings{Seed: 1, BatchSize: 64})
					if err != nil {
						return nil, err
					}
					a, err := m.Attribute(ctx, ex, x, engine.Predicted())
					if err != nil {
						return nil, err
					}
					return a.Maps, nil
				}})
		}
	}
	out = append(out, Method{Name: "random", Title: "Random map (chance)", Family: "baseline",
		Note: "independent uniform [0,1) values (metrics.RandomMaps, seed 1): what any metric gives by chance",
		Maps: func(_ context.Context, _ *engine.Explainer, x *vizkit.Array) (*vizkit.Array, error) {
			return metrics.RandomMaps(x.Shape[0], x.Shape[2], x.Shape[3], 1), nil
		}})
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

func exp32(v float32) float32 { return float32(math.Exp(float64(v))) }
