package main

import (
	"fmt"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Sampling attributions: SmoothGrad, Integrated Gradients, Occlusion. Each
// batches its perturbed inputs through the engine (engine.DefaultBatchSize
// per execution) and logs its progress.
func init() {
	register(&method{Name: "smoothgrad", Help: "SmoothGrad, SmoothGrad^2 and VarGrad: gradients averaged over 50 noisy copies (noise 15% of the input range, seed 0; ~1 min for full-size VGG11 on the Go backend)",
		Run: runSmoothGrad})
	register(&method{Name: "ig", Help: "Integrated Gradients from a black baseline (50 Gauss-Legendre steps, as Captum), with the completeness check (~1 min for full-size VGG11)",
		Run: runIG})
	register(&method{Name: "occlusion", Help: "occlusion: score drop when a 32x32 window (stride 16; a quarter of the shorter side, stride half of it, for inputs under 64 px) is set to 0 (the mean colour after normalisation) over each region (Captum semantics)",
		Run: runOcclusion})
}

// batchProgress returns a progress callback that logs every ~10%.
func batchProgress(c *runCtx, what string) func(engine.Progress) {
	last := -1
	return func(p engine.Progress) {
		pct := 100 * p.Done / max(p.Total, 1)
		if pct/10 != last/10 || p.Done == p.Total {
			last = pct
			fmt.Fprintf(c.Log, "vizkit: %s: %d/%d network evaluations (%d%%)\n", what, p.Done, p.Total, pct)
		}
	}
}

func runSmoothGrad(c *runCtx) error {
	sg, err := attr.SmoothGrad(c.Ctx, c.Ex, c.Input, attr.SmoothGradOptions{Target: c.Target, Progress: batchProgress(c, "smoothgrad")})
	if err != nil {
		return err
	}
	r := &vizkit.SmoothGradResult{SmoothGradResult: sg, Norm: c.norm(), DisplayChannels: c.Display}
	panel, err := r.Panel(0)
	if err != nil {
		return err
	}
	if err := c.SavePNG("smoothgrad", panel); err != nil {
		return err
	}
	for name, a := range map[string]*vizkit.Array{"smoothgrad": r.Mean, "smoothgrad_sq": r.MeanSquare, "vargrad": r.Var} {
		if err := c.SaveNPY(name, a.Index(0)); err != nil {
			return err
		}
	}
	c.Report.Heading(2, "SmoothGrad")
	return r.AppendHTML(c.Report)
}

func runIG(c *runCtx) error {
	ig, err := attr.IntegratedGradients(c.Ctx, c.Ex, c.Input, attr.IGOptions{Target: c.Target, Norm: c.norm(),
		Progress: batchProgress(c, "integrated gradients")})
	if err != nil {
		return err
	}
	r := &vizkit.IGResult{IGResult: ig, Norm: c.norm(), DisplayChannels: c.Display}
	panel, err := r.Panel(0)
	if err != nil {
		return err
	}
	if err := c.SavePNG("ig", panel); err != nil {
		return err
	}
	if err := c.SaveNPY("ig", r.Attr.Index(0)); err != nil {
		return err
	}
	if err := c.SaveNPY("ig_baseline", r.Baseline.Index(0)); err != nil {
		return err
	}
	fmt.Fprintf(c.Log, "vizkit: integrated gradients completeness error %.3g (%.2f%% of f(x) - f(baseline))\n", r.Delta[0], 100*r.RelativeDelta()[0])
	c.Report.Heading(2, "Integrated Gradients")
	return r.AppendHTML(c.Report)
}

func runOcclusion(c *runCtx) error {
	// A 32×32 window, stride 16; inputs under 64 pixels a side (small ONNX
	// graphs: 28×28 digits) get a window of a quarter of their shorter side
	// (at least 2 pixels), stride half of it.
	win := 32
	if side := min(c.Input.Shape[2], c.Input.Shape[3]); side < 64 {
		win = min(max(2, side/4), side)
	}
	stride := max(1, win/2)
	oc, err := attr.Occlusion(c.Ctx, c.Ex, c.Input, attr.OcclusionOptions{Target: c.Target, Progress: batchProgress(c, "occlusion"),
		Window: [2]int{win, win}, Stride: [2]int{stride, stride}})
	if err != nil {
		return err
	}
	r := &vizkit.OcclusionResult{OcclusionResult: oc, Norm: c.norm(), DisplayChannels: c.Display}
	panel, err := r.Panel(0)
	if err != nil {
		return err
	}
	if err := c.SavePNG("occlusion", panel); err != nil {
		return err
	}
	if err := c.SaveNPY("occlusion", r.Map.Index(0)); err != nil {
		return err
	}
	c.Report.Heading(2, "Occlusion")
	return r.AppendHTML(c.Report)
}
