package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// "camcompare" runs every CAM method side by side (the CAM methods
// themselves are attribution methods: attribution.go).
func init() {
	register(&method{Name: "camcompare", Help: "every CAM method side by side in one grid (slow: includes Score-CAM and Ablation-CAM)",
		Run: runCAMCompare})
}

// camOptions are camcompare's CAM options for method name: the --layer
// values, the target, progress lines on the log for methods that run many
// batches.
func camOptions(c *runCtx, name string) cam.Options {
	return cam.Options{Method: name, Layers: c.Layers, Target: c.Target,
		EigenSmooth: c.EigenSmooth, AugSmooth: c.AugSmooth, Progress: progressLog(c)}
}

// writeCAM writes example i of res (a batch's result; c describes that
// example), for a single image or a data set: cam_<method>_<layers>.png, the
// .npy files with --npy and a report section.
func writeCAM(c *runCtx, m cam.Info, res *vizkit.CAMResult, i int) error {
	style := vizkit.CAMStyle{}
	overlay, err := res.Overlay(i, c.Image, style)
	if err != nil {
		return err
	}
	colored, err := res.Heatmap(i, style)
	if err != nil {
		return err
	}
	stem := fmt.Sprintf("cam_%s_%s", m.Name, res.LayerTag)
	if err := c.SavePNG(stem, overlay); err != nil {
		return err
	}
	if err := c.SaveNPY(stem, res.Map.Index(i)); err != nil {
		return err
	}
	for _, l := range slices.Sorted(maps.Keys(res.Low)) {
		if err := c.SaveNPY(fmt.Sprintf("camlow_%s_%s", m.Name, l), res.Low[l].Index(i)); err != nil {
			return err
		}
	}
	bar, err := render.Colorbar(render.Jet, render.Range{Min: 0, Max: 1}, 224, 44, "relevance (scaled)")
	if err != nil {
		return err
	}
	r := c.Report
	r.Heading(2, m.Title+" — "+res.LayerText())
	if res.AutoLayer {
		fmt.Fprintf(c.Log, "vizkit: %s: layer %s chosen automatically (the last conv block); use --layer to pick another\n", m.Name, strings.Join(res.Layers, ","))
	}
	for _, n := range res.Notes {
		r.Paragraph(n)
		fmt.Fprintf(c.Log, "vizkit: %s: %s\n", m.Name, n)
	}
	if res.Flat[i] {
		r.Warning(fmt.Sprintf("%s is constant (all zero) for this input and layer: no positive evidence for %s (common with random weights or dead ReLUs).", m.Title, c.Label(c.Class)))
	}
	r.Paragraph(fmt.Sprintf("Where the evidence for %s (score %.4g) lies, according to %s (%s).", c.Label(res.Classes[i]), res.Scores[i], m.Title, m.Reference))
	r.Figure([]render.FigureItem{
		{Image: overlay, Caption: "overlay (JET, α 0.5)", WidthPx: 224},
		{Image: colored, Caption: "map", WidthPx: 224},
		{Image: bar, Caption: ""},
	}, render.FigureOptions{})
	return nil
}

// runCAMCompare runs every registered CAM method on the input and shows them
// in one grid; methods that do not apply to the model (CAM on VGG) are listed
// with the reason instead.
func runCAMCompare(c *runCtx) error {
	var results []*vizkit.CAMResult
	var skipped []string
	for _, name := range camCompareOrder() {
		if err := c.Ctx.Err(); err != nil {
			return err
		}
		res, err := cam.Compute(c.Ctx, c.Ex, c.Input, camOptions(c, name))
		if err != nil {
			if c.Ctx.Err() != nil {
				return err
			}
			skipped = append(skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		results = append(results, &vizkit.CAMResult{Result: res})
	}
	if len(results) == 0 {
		return fmt.Errorf("no CAM method applies: %s", strings.Join(skipped, "; "))
	}
	grid, err := vizkit.CompareCAMs(c.Image, results, 0, vizkit.CAMStyle{Cols: 5})
	if err != nil {
		return err
	}
	if err := c.SavePNG("cam_compare", grid); err != nil {
		return err
	}
	r := c.Report
	r.Heading(2, "CAM methods compared — "+results[0].LayerText())
	r.Paragraph(fmt.Sprintf("Every class-activation-map method for %s, with pytorch-grad-cam's definitions and post-processing (FullGrad uses every bias layer).", c.Label(results[0].Classes[0])))
	for _, s := range skipped {
		r.Paragraph("Not shown — " + s)
	}
	var flat []string
	for _, res := range results {
		if res.Flat[0] {
			flat = append(flat, res.Title)
		}
	}
	if len(flat) > 0 {
		r.Warning("Constant (all-zero) maps: " + strings.Join(flat, ", ") + ".")
	}
	r.Image(grid, "", 0)
	return nil
}

// camCompareOrder lists the registered CAM methods gradient-based first, in
// the order of pytorch-grad-cam's README, then any others alphabetically.
func camCompareOrder() []string {
	order := []string{"gradcam", "hirescam", "gradcamelementwise", "gradcampp", "xgradcam", "layercam",
		"eigencam", "eigengradcam", "scorecam", "ablationcam", "fullgrad", "cam"}
	seen := map[string]bool{}
	var out []string
	for _, n := range order {
		if _, err := cam.Lookup(n); err == nil {
			out = append(out, n)
			seen[n] = true
		}
	}
	for _, n := range cam.Names() {
		if !seen[n] {
			out = append(out, n)
		}
	}
	return out
}
