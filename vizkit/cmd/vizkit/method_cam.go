package main

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// Every CAM method registered in vizkit is a CLI method of the same name.
func init() {
	for _, name := range vizkit.CAMMethodNames() {
		m, _ := vizkit.LookupCAMMethod(name)
		register(&method{Name: name, Help: m.Title + " class activation map, overlaid on the input (--layer: target layer(s), default the last conv block)",
			Run: func(c *runCtx) error { return runCAM(c, m) }})
	}
}

func runCAM(c *runCtx, m *vizkit.CAMMethod) error {
	res, err := c.Ex.CAM(c.Input, vizkit.CAMOptions{Method: m.Name, Layers: c.Layers, Target: c.Target})
	if err != nil {
		return err
	}
	layers := strings.Join(res.Layers, "+")
	heat, err := render.NewMap(res.Map.Shape[1], res.Map.Shape[2], res.Map.Index(0).Data)
	if err != nil {
		return err
	}
	overlay, err := render.Overlay(c.Image, heat, render.Jet, 0.5)
	if err != nil {
		return err
	}
	colored, err := render.Colorize(heat, render.Jet, render.Range{Min: 0, Max: 1})
	if err != nil {
		return err
	}
	stem := fmt.Sprintf("cam_%s_%s", m.Name, layers)
	if err := c.SavePNG(stem, overlay); err != nil {
		return err
	}
	if err := c.SaveNPY(stem, res.Map.Index(0)); err != nil {
		return err
	}
	for _, l := range res.Layers {
		if err := c.SaveNPY(fmt.Sprintf("camlow_%s_%s", m.Name, l), res.Low[l].Index(0)); err != nil {
			return err
		}
	}
	bar, err := render.Colorbar(render.Jet, render.Range{Min: 0, Max: 1}, 224, 44, "relevance (scaled)")
	if err != nil {
		return err
	}
	r := c.Report
	r.Heading(2, fmt.Sprintf("%s — layer %s", m.Title, layers))
	if res.Flat[0] {
		r.Warning(fmt.Sprintf("%s is constant (all zero) for this input and layer: no positive evidence for %s (common with random weights or dead ReLUs).", m.Title, c.Label(c.Class)))
	}
	r.Paragraph(fmt.Sprintf("Where the evidence for %s (score %.4g) lies, according to %s on %s.", c.Label(res.Classes[0]), res.Scores[0], m.Title, layers))
	r.Figure([]render.FigureItem{
		{Image: overlay, Caption: "overlay (JET, α 0.5)", WidthPx: 224},
		{Image: colored.Image, Caption: "map", WidthPx: 224},
		{Image: bar, Caption: ""},
	}, render.FigureOptions{})
	return nil
}
