package main

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Activation maximisation (FlashTorch / Lucid) and DeepDream.
func init() {
	register(&method{Name: "actmax",
		Help: "activation maximisation of the first 16 filters of a layer (--layer; default the last conv of the third block): Lucid's decorrelated Fourier image, jitter/scale/rotation, 64 Adam steps at 128x128 (slow: 2-5 min for full-size VGG11 on the Go backend)",
		Run:  runActMax})
	register(&method{Name: "deepdream",
		Help: "DeepDream on the input: amplify the mean squared activation of a layer (--layer; default as actmax), 3 octaves x 10 steps",
		Run:  runDeepDream})
}

// actMaxCLI is the CLI's activation maximisation setting (tests lower it).
var actMaxCLI = struct{ Filters, Size, Steps int }{16, 128, 64}

// defaultActMaxLayer is the last convolution before the third max-pool
// (features.8 in VGG11): filters there respond to textures, which read well.
func defaultActMaxLayer(net models.Network) (string, error) {
	pools, last := 0, ""
	for _, l := range net.Layers() {
		switch l.Kind {
		case models.Conv2d:
			last = l.Name
		case models.MaxPool2d:
			pools++
			if pools == 3 && last != "" {
				return last, nil
			}
		}
	}
	if last == "" {
		return "", fmt.Errorf("model %s has no convolution layer", net.Arch())
	}
	return last, nil
}

func actMaxLayers(c *runCtx) ([]string, error) {
	if len(c.Layers) > 0 {
		return c.Layers, nil
	}
	l, err := defaultActMaxLayer(c.Net)
	if err != nil {
		return nil, err
	}
	return []string{l}, nil
}

func runActMax(c *runCtx) error {
	layers, err := actMaxLayers(c)
	if err != nil {
		return err
	}
	for _, name := range layers {
		l, err := c.Ex.Layer(name)
		if err != nil {
			return err
		}
		n := min(actMaxCLI.Filters, l.Out)
		opts := actmax.Options{Param: actmax.ParamFFT, Optimizer: actmax.OptimizerAdam, Steps: actMaxCLI.Steps,
			Size:   [2]int{actMaxCLI.Size, actMaxCLI.Size},
			Jitter: 4, Scales: []float64{0.95, 1, 1.05}, Rotations: []float64{-5, 0, 5}, Seed: 0,
			Norm: c.norm()}
		opts.Progress = func(p engine.Progress) {
			if p.Done%actMaxCLI.Steps == 0 {
				done := p.Done / actMaxCLI.Steps * engine.DefaultBatchSize
				fmt.Fprintf(c.Log, "vizkit: actmax %s: %d/%d filters\n", name, min(done, n), n)
			}
		}
		res, err := actmax.Filters(c.Ctx, c.Ex, name, n, opts)
		if err != nil {
			return err
		}
		r := &vizkit.ActMaxResult{Result: res, DisplayChannels: c.Display}
		grid, err := r.Grid(0)
		if err != nil {
			return err
		}
		if err := c.SavePNG("actmax_"+name, grid); err != nil {
			return err
		}
		if err := c.SaveNPY("actmax_"+name, r.Input); err != nil {
			return err
		}
		c.Report.Heading(2, "Activation maximisation — "+name)
		if err := r.AppendHTML(c.Report); err != nil {
			return err
		}
	}
	return nil
}

func runDeepDream(c *runCtx) error {
	layers, err := actMaxLayers(c)
	if err != nil {
		return err
	}
	for _, name := range layers {
		res, err := actmax.DeepDream(c.Ctx, c.Ex, c.Input, actmax.DreamOptions{Layer: name, Octaves: 3, Jitter: 8,
			Norm: c.norm()})
		if err != nil {
			return err
		}
		r := &vizkit.DeepDreamResult{DreamResult: res, DisplayChannels: c.Display}
		panel, err := r.Panel(c.Input)
		if err != nil {
			return err
		}
		if err := c.SavePNG("deepdream_"+name, panel); err != nil {
			return err
		}
		if err := c.SaveNPY("deepdream_"+name, r.Input.Index(0)); err != nil {
			return err
		}
		c.Report.Heading(2, "DeepDream — "+name)
		c.Report.Paragraph(fmt.Sprintf("Gradient ascent on the %s of %s's activations, starting from the input (3 octaves of 10 steps): %.4g → %.4g.",
			map[string]string{"l2": "mean square", "mean": "mean"}[r.Objective], name, r.InitialScore, r.Score))
		c.Report.Image(panel, "", 0)
	}
	return nil
}
