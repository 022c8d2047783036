package main

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
)

func init() {
	register(&method{Name: "features",
		Help: "feature maps: the 16 most active channels (by mean) per layer, their mean and overlays, in one forward pass (--layer: spatial layers; default: the ReLUs ending an early, a middle and the last conv block)",
		Run:  runFeatures})
}

// defaultFeatureLayers returns the last ReLU of the first, the middle and the
// last conv block (blocks end at max-pools), e.g. VGG11's features.1,
// features.9 and features.19.
func defaultFeatureLayers(net models.Network) ([]string, error) {
	var blocks []string // last ReLU of each block
	last := ""
	for _, l := range net.Layers() {
		if !l.Spatial {
			break
		}
		switch l.Kind {
		case models.ReLU:
			last = l.Name
		case models.MaxPool2d, models.AdaptiveAvgPool2d:
			if last != "" {
				blocks = append(blocks, last)
				last = ""
			}
		}
	}
	if last != "" {
		blocks = append(blocks, last)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("model %s has no ReLU in its feature extractor; pass --layer", net.Arch())
	}
	picks := []int{0, (len(blocks) - 1) / 2, len(blocks) - 1}
	var out []string
	seen := map[string]bool{}
	for _, i := range picks {
		if !seen[blocks[i]] {
			seen[blocks[i]] = true
			out = append(out, blocks[i])
		}
	}
	return out, nil
}

func runFeatures(c *runCtx) error {
	layers := c.Layers
	if len(layers) == 0 {
		var err error
		if layers, err = defaultFeatureLayers(c.Net); err != nil {
			return err
		}
	}
	res, err := c.Ex.FeatureMaps(c.Input, layers, vizkit.FeatureOptions{Select: vizkit.SelectTopMean, Image: c.Image})
	if err != nil {
		return err
	}
	c.Report.Heading(2, "Feature maps")
	for _, lf := range res.Layers {
		l := lf.Layer.Name
		grid, err := res.Grid(l)
		if err != nil {
			return err
		}
		if err := c.SavePNG("features_"+l, grid); err != nil {
			return err
		}
		ov, err := res.Overlay(l, -1, nil)
		if err != nil {
			return err
		}
		if err := c.SavePNG("features_mean_"+l, ov); err != nil {
			return err
		}
		if err := c.SaveNPY("act_"+l, lf.Acts.Index(0)); err != nil {
			return err
		}
	}
	return res.AppendHTML(c.Report)
}
