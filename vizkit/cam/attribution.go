package cam

import (
	"context"

	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// attribution is a CAM method as an [engine.Method]: Maps is the final map
// (N,H,W) in [0,1], Detail the *Result.
type attribution struct{ opts Options }

func (a attribution) Attribute(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Attribution, error) {
	o := a.opts
	o.Target = t
	r, err := Compute(ctx, ex, x, o)
	if err != nil {
		return nil, err
	}
	return &engine.Attribution{Method: r.Method, Title: r.Title, Maps: r.Map, Target: r.Target,
		Classes: r.Classes, Scores: r.Scores, Layers: r.Layers, Detail: r}, nil
}

// attributionInfo registers a CAM method with package engine. It uses the
// Settings Layers, EigenSmooth, AugSmooth, BatchSize and Progress.
func attributionInfo(sp *spec) engine.MethodInfo {
	name := sp.Name
	return engine.MethodInfo{Name: name, Title: sp.Title, Family: "CAM", Help: sp.Help,
		New: func(s engine.Settings) (engine.Method, error) {
			return attribution{Options{Method: name, Layers: s.Layers, EigenSmooth: s.EigenSmooth,
				AugSmooth: s.AugSmooth, BatchSize: s.BatchSize, Progress: s.Progress}}, nil
		}}
}
