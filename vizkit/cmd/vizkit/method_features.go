package main

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
)

func init() {
	register(&method{Name: "features",
		Help: "feature maps: the 16 most active channels (by mean) per layer, their mean and overlays, in one forward pass (--layer: spatial layers; default: the outputs of an early, a middle and the last stage, e.g. VGG11's features.1, features.9, features.19 or ResNet's relu, layer2, layer4)",
		Run:  runFeatures})
}

// defaultFeatureLayers returns the output of an early, a middle and the last
// stage of the feature extractor for an input of shape in: modules are
// grouped by output resolution, and each group's last block (a container
// module) — or, in flat networks, its last module that is not a pool —
// stands for its stage (VGG11: features.1, features.9, features.19; ResNet:
// the stem's relu, layer2, layer4; DenseNet: denseblock outputs). The container named "features"
// (torchvision's whole feature extractor) is skipped.
func defaultFeatureLayers(net models.Network, in []int) ([]string, error) {
	calls, err := models.Trace(net, append([]int{1}, in[1:]...))
	if err != nil {
		return nil, err
	}
	last := map[string]int{}
	for i, c := range calls {
		last[c.Path] = i
	}
	container := map[string]bool{}
	for _, c := range calls {
		for p := c.Path; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			container[p] = true
		}
	}
	var stages []string // per resolution: its last block (container), else its last non-pool module
	res := -1
	cur, curBlock := "", ""
	flush := func() {
		if curBlock != "" {
			stages = append(stages, curBlock)
		} else if cur != "" {
			stages = append(stages, cur)
		}
	}
	valueNames := false // ONNX graphs: value names ("/stem/Conv_output_0") only when no module path exists.
	for _, c := range calls {
		valueNames = valueNames || strings.Contains(c.Path, "/")
	}
	onlyValues := true
	for _, c := range calls {
		if !strings.Contains(c.Path, "/") {
			onlyValues = false
		}
	}
	for i, c := range calls {
		if last[c.Path] != i || (valueNames && !onlyValues && strings.Contains(c.Path, "/")) {
			continue
		}
		if len(c.Dims) != 4 || c.Kind == models.AdaptiveAvgPool2d || c.Kind == models.GlobalAvgPool {
			break
		}
		if h := c.Dims[1]; h != res {
			flush()
			res, cur, curBlock = h, "", ""
		}
		if c.Kind == models.MaxPool2d || c.Kind == models.AvgPool2d || c.Path == "features" {
			continue
		}
		cur = c.Path
		// The shallowest block ending at this resolution (the last of equals).
		if container[c.Path] && (curBlock == "" || strings.Count(c.Path, ".") <= strings.Count(curBlock, ".")) {
			curBlock = c.Path
		}
	}
	flush()
	if len(stages) == 0 {
		return nil, fmt.Errorf("model %s has no spatial module in its feature extractor; pass --layer", net.Arch())
	}
	picks := []int{0, (len(stages) - 1) / 2, len(stages) - 1}
	var out []string
	seen := map[string]bool{}
	for _, i := range picks {
		if !seen[stages[i]] {
			seen[stages[i]] = true
			out = append(out, stages[i])
		}
	}
	return out, nil
}

func runFeatures(c *runCtx) error {
	layers := c.Layers
	if len(layers) == 0 {
		var err error
		if layers, err = defaultFeatureLayers(c.Net, c.Input.Shape); err != nil {
			return err
		}
	}
	res, err := vizkit.FeatureMapsOf(c.Ex, c.Input, layers, vizkit.FeatureOptions{Select: vizkit.SelectTopMean})
	if err != nil {
		return err
	}
	res.Image = c.Image
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
