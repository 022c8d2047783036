package main

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
)

func init() {
	register(&method{Name: "kernels",
		Help: "convolution kernels as tile grids (--layer: conv layers, or for another layer the conv that feeds it; default: the first conv as RGB and the next conv)",
		Run:  runKernels})
}

// kernelLayers resolves --layer values to convolution layers: a conv is kept,
// any other spatial layer maps to the last conv at or before it (the one whose
// kernels made its input), with a note; empty means the first two convs.
func kernelLayers(net models.Network, requested []string) (convs, notes []string, err error) {
	layers := net.Layers()
	var all, values []string
	for _, l := range layers {
		if l.Kind == models.Conv2d {
			if strings.Contains(l.Name, "/") {
				values = append(values, l.Name) // An ONNX value name.
			} else {
				all = append(all, l.Name)
			}
		}
	}
	if len(all) == 0 {
		all = values // Only value names (an export without module paths).
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("model %s has no convolution layers", net.Arch())
	}
	if len(requested) == 0 {
		return all[:min(2, len(all))], nil, nil
	}
	seen := map[string]bool{}
	for _, name := range requested {
		l, i, err := models.FindLayer(net.Arch(), layers, name)
		if err != nil {
			return nil, nil, err
		}
		conv := ""
		if l.Spatial {
			for j := i; j >= 0 && conv == ""; j-- {
				if layers[j].Kind == models.Conv2d {
					conv = layers[j].Name
				}
			}
		}
		if conv == "" {
			return nil, nil, fmt.Errorf("--layer %s is a %s with no convolution at or before it in the feature extractor; conv layers: %s",
				name, l.Kind, strings.Join(all, ", "))
		}
		if conv != name {
			notes = append(notes, fmt.Sprintf("--layer %s is a %s: showing the kernels of %s, the convolution that feeds it.", name, l.Kind, conv))
		}
		if !seen[conv] {
			seen[conv] = true
			convs = append(convs, conv)
		}
	}
	return convs, notes, nil
}

func runKernels(c *runCtx) error {
	convs, notes, err := kernelLayers(c.Net, c.Layers)
	if err != nil {
		return err
	}
	r := c.Report
	r.Heading(2, "Kernels")
	for _, n := range notes {
		r.Paragraph(n)
	}
	for _, l := range convs {
		layer, err := c.Ex.Layer(l)
		if err != nil {
			return err
		}
		style := vizkit.KernelStyle{Title: l + " kernels"}
		if layer.In != 3 {
			// Deeper kernels: signed values matter, so show them on a diverging scale.
			style.Diverging = true
		}
		res, err := vizkit.KernelsOf(c.Net, l, vizkit.KernelOptions{})
		if err != nil {
			return err
		}
		res.Style = style
		img, err := res.Image()
		if err != nil {
			return err
		}
		if err := c.SavePNG("kernels_"+l, img); err != nil {
			return err
		}
		if err := c.SaveNPY("kernel_"+l+".weight", res.Weights); err != nil {
			return err
		}
		if err := res.AppendHTML(r); err != nil {
			return err
		}
	}
	return nil
}
