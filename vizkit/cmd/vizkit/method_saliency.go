package main

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
)

// Gradient visualisations: vanilla saliency (FlashTorch / Simonyan), guided
// backpropagation, deconvnet and Guided Grad-CAM.
func init() {
	register(&method{Name: "saliency",
		Help: "vanilla gradient of the target w.r.t. the input: RGB, FlashTorch's max over RGB, Simonyan's max |grad|, gradient x input",
		Run:  func(c *runCtx) error { return runGradient(c, models.ReLUStandard) }})
	register(&method{Name: "guided", Help: "guided backpropagation (guided ReLU rule in every ReLU, classifier included)",
		Run: func(c *runCtx) error { return runGradient(c, models.ReLUGuided) }})
	register(&method{Name: "deconv", Help: "deconvnet (Zeiler & Fergus ReLU rule)",
		Run: func(c *runCtx) error { return runGradient(c, models.ReLUDeconv) }})
	register(&method{Name: "guidedgradcam", Help: "Guided Grad-CAM: guided backprop x Grad-CAM (--layer: CAM layer(s), default the last conv block)",
		Run: runGuidedGradCAM})
}

func runGradient(c *runCtx, rule models.ReLURule) error {
	r, err := attr.Saliency(c.Ctx, c.Ex, c.Input, attr.SaliencyOptions{Target: c.Target, ReLU: rule})
	if err != nil {
		return err
	}
	s := &vizkit.SaliencyResult{SaliencyResult: r, Norm: c.norm(), DisplayChannels: c.Display}
	panel, err := s.Panel(0)
	if err != nil {
		return err
	}
	switch rule {
	case models.ReLUStandard:
		if err := c.SavePNG("saliency", panel); err != nil {
			return err
		}
		am, err := s.AbsMax()
		if err != nil {
			return err
		}
		mx, err := s.Max()
		if err != nil {
			return err
		}
		gx, err := s.GradTimesInput()
		if err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			a    *vizkit.Array
		}{{"saliency_grad", s.Grad}, {"saliency_absmax", am}, {"saliency_max", mx}, {"saliency_gradxinput", gx}} {
			if err := c.SaveNPY(f.name, f.a.Index(0)); err != nil {
				return err
			}
		}
	case models.ReLUGuided:
		if err := c.SavePNG("guided_backprop", panel); err != nil {
			return err
		}
		if err := c.SaveNPY("guided_backprop", s.Grad.Index(0)); err != nil {
			return err
		}
	case models.ReLUDeconv:
		if err := c.SavePNG("deconv", panel); err != nil {
			return err
		}
		if err := c.SaveNPY("deconv", s.Grad.Index(0)); err != nil {
			return err
		}
	}
	c.Report.Heading(2, s.Title)
	return s.AppendHTML(c.Report)
}

func runGuidedGradCAM(c *runCtx) error {
	r, err := attr.GuidedGradCAM(c.Ctx, c.Ex, c.Input, attr.GuidedGradCAMOptions{Target: c.Target, Layers: c.Layers})
	if err != nil {
		return err
	}
	g := &vizkit.GuidedGradCAMResult{GuidedGradCAMResult: r, Norm: c.norm(), DisplayChannels: c.Display}
	layers := strings.Join(g.CAM.Layers, "+")
	panel, err := g.Panel(0)
	if err != nil {
		return err
	}
	if err := c.SavePNG("guided_gradcam_"+layers, panel); err != nil {
		return err
	}
	if err := c.SaveNPY("guided_gradcam_"+layers, g.Map.Index(0)); err != nil {
		return err
	}
	c.Report.Heading(2, fmt.Sprintf("Guided Grad-CAM — layer %s", layers))
	return g.AppendHTML(c.Report)
}
