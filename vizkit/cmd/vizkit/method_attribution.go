package main

import (
	"fmt"

	"github.com/cnnviz/cnnviz/vizkit"
)

// Sampling attributions: SmoothGrad, Integrated Gradients, Occlusion. Each
// batches its perturbed inputs through the engine (vizkit.DefaultChunk per
// execution) and logs its progress.
func init() {
	register(&method{Name: "smoothgrad", Help: "SmoothGrad, SmoothGrad^2 and VarGrad: gradients averaged over 50 noisy copies (noise 15% of the input range, seed 0; ~1 min for full-size VGG11 on the Go backend)",
		Run: runSmoothGrad})
	register(&method{Name: "ig", Help: "Integrated Gradients from a black baseline (50 Gauss-Legendre steps, as Captum), with the completeness check (~1 min for full-size VGG11)",
		Run: runIG})
	register(&method{Name: "occlusion", Help: "occlusion: score drop when a 32x32 window (stride 16) is set to 0 (the mean colour after normalisation) over each region (Captum semantics)",
		Run: runOcclusion})
}

// progress returns a BatchOptions that logs every ~10%.
func batchProgress(c *runCtx, what string) vizkit.BatchOptions {
	last := -1
	return vizkit.BatchOptions{Progress: func(done, total int) {
		pct := 100 * done / max(total, 1)
		if pct/10 != last/10 || done == total {
			last = pct
			fmt.Fprintf(c.Log, "vizkit: %s: %d/%d network evaluations (%d%%)\n", what, done, total, pct)
		}
	}}
}

func runSmoothGrad(c *runCtx) error {
	r, err := c.Ex.SmoothGrad(c.Ctx, c.Input, vizkit.SmoothGradOptions{Target: c.Target, Batch: batchProgress(c, "smoothgrad")})
	if err != nil {
		return err
	}
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
	r, err := c.Ex.IntegratedGradients(c.Ctx, c.Input, vizkit.IGOptions{Target: c.Target, Norm: vizkit.Normalization{Mean: c.Mean, Std: c.Std},
		Batch: batchProgress(c, "integrated gradients")})
	if err != nil {
		return err
	}
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
	r, err := c.Ex.Occlusion(c.Ctx, c.Input, vizkit.OcclusionOptions{Target: c.Target, Batch: batchProgress(c, "occlusion")})
	if err != nil {
		return err
	}
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
