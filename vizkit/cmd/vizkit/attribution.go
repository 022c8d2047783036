package main

// Attribution methods in the CLI: every method registered with package
// engine (the CAM family of package cam, the gradient and perturbation
// methods of package attr, and any registered by other code) is a CLI method.
// Running one is engine.NewMethod(name, settings) then Attribute; the result
// is written by a writer chosen by the type of Attribution.Detail
// (writeAttribution), never by the method's name. A single image and a data
// set (dataset.go: one Attribute call per batch and method) use the same
// settings and the same writers.

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// attributionAliases are the CLI's names for engine methods registered under
// another name. Both names are CLI methods and run the same method.
var attributionAliases = map[string]string{
	"guided": "guidedbackprop",
	"ig":     "integratedgradients",
}

// attributionHelp is the `vizkit methods` line of the engine methods whose
// CLI settings or files differ from what the registry's Help describes (the
// registry's defaults are the lab's), keyed by the engine's name; an alias
// shows the same line. Other methods (CAMs, methods registered by other
// code) show the registry's Help.
var attributionHelp = map[string]string{
	"saliency":            "vanilla gradient of the target w.r.t. the input: RGB, FlashTorch's max over RGB, Simonyan's max |grad|, gradient x input",
	"guidedbackprop":      "guided backpropagation (guided ReLU rule in every ReLU, classifier included)",
	"deconv":              "deconvnet (Zeiler & Fergus ReLU rule)",
	"gradxinput":          "gradient x input: |sum over input channels of x * gradient| on the normalised input, drawn over the input (attr_gradxinput.png, .npy (H,W))",
	"guidedgradcam":       "Guided Grad-CAM: guided backprop x Grad-CAM (--layer: CAM layer(s), default the last conv block)",
	"smoothgrad":          "SmoothGrad, SmoothGrad^2 and VarGrad: gradients averaged over 50 noisy copies (noise 15% of the input range, seed 0; ~1 min for full-size VGG11 on the Go backend)",
	"integratedgradients": "Integrated Gradients from a black baseline (50 Gauss-Legendre steps, as Captum), with the completeness check (~1 min for full-size VGG11)",
	"occlusion":           "occlusion: score drop when a 32x32 window (stride 16; a quarter of the shorter side, stride half of it, for inputs under 64 px) is set to 0 (the mean colour after normalisation) over each region (Captum semantics)",
}

// The CLI's settings of the sampling methods (the registry's defaults are
// smaller, for the lab's small network).
const (
	cliSmoothGradSamples = 50
	cliSmoothGradNoise   = 0.15
	cliIGSteps           = 50
	cliIGBaseline        = attr.IGBaselineBlack
)

// attributionMethods returns a CLI method for every registered engine method
// (under its engine name) and for every alias whose engine method is
// registered (unless an engine method has the alias's name). taken are the
// names already in use (the views: features, kernels, …); an engine method
// of the same name is not offered.
func attributionMethods(taken map[string]*method) map[string]*method {
	out := map[string]*method{}
	add := func(name string, info engine.MethodInfo, help string) {
		if _, dup := taken[name]; dup {
			return
		}
		engineName := info.Name
		out[name] = &method{Name: name, Help: help, Engine: engineName,
			Run: func(c *runCtx) error { return runAttribution(c, engineName) }}
	}
	registered := engine.Methods()
	engineNames := map[string]bool{}
	for _, info := range registered {
		engineNames[info.Name] = true
	}
	aliasOf := map[string]string{}
	for alias, name := range attributionAliases {
		if !engineNames[alias] { // an engine method of that name keeps it
			aliasOf[name] = alias
		}
	}
	for _, info := range registered {
		help, ok := attributionHelp[info.Name]
		if !ok {
			help = info.Help
		}
		if alias, ok := aliasOf[info.Name]; ok {
			add(alias, info, help)
			help += " (the engine's name for " + alias + ")"
		}
		add(info.Name, info, help)
	}
	return out
}

// attributionSettings are the CLI's settings for every attribution method
// (each ignores those that do not apply to it): --layer, --eigen-smooth and
// --aug-smooth; SmoothGrad 50 samples with noise 15 % of the input range
// (seed 0); Integrated Gradients 50 steps from a black baseline (through the
// input normalisation); occlusion windows of occlusionWindow for an input of
// x's size; each method's default batch size. progress, if true, logs the
// progress of the methods that run many batches on c.Log.
func attributionSettings(c *runCtx, x *engine.Array, progress bool) engine.Settings {
	win, stride := occlusionWindow(x.Shape[2], x.Shape[3])
	s := engine.Settings{Layers: c.Layers, EigenSmooth: c.EigenSmooth, AugSmooth: c.AugSmooth,
		Samples: cliSmoothGradSamples, NoiseLevel: cliSmoothGradNoise, Steps: cliIGSteps, Baseline: cliIGBaseline,
		Norm: c.norm(), Window: win, Stride: stride}
	if progress {
		s.Progress = progressLog(c)
	}
	return s
}

// occlusionWindow is the CLI's occlusion window for an h×w input: 32×32,
// stride 16; inputs under 64 pixels a side (small ONNX graphs: 28×28 digits)
// get a window of a quarter of their shorter side (at least 2 pixels), stride
// half of it.
func occlusionWindow(h, w int) (win, stride [2]int) {
	n := 32
	if side := min(h, w); side < 64 {
		n = min(max(2, side/4), side)
	}
	s := max(1, n/2)
	return [2]int{n, n}, [2]int{s, s}
}

// progressLog returns a progress callback that logs every ~10 % as
// "vizkit: TASK: DONE/TOTAL network evaluations (PCT%)".
func progressLog(c *runCtx) func(engine.Progress) {
	last := -1
	return func(p engine.Progress) {
		pct := 100 * p.Done / max(p.Total, 1)
		if pct/10 != last/10 || p.Done == p.Total {
			last = pct
			fmt.Fprintf(c.Log, "vizkit: %s: %d/%d network evaluations (%d%%)\n", p.Task, p.Done, p.Total, pct)
		}
	}
}

// runAttribution runs the engine method name on the single input and writes
// its files and report section.
func runAttribution(c *runCtx, name string) error {
	m, _, err := engine.NewMethod(name, attributionSettings(c, c.Input, true))
	if err != nil {
		return err
	}
	a, err := m.Attribute(c.Ctx, c.Ex, c.Input, c.Target)
	if err != nil {
		return err
	}
	return writeAttribution(c, a, 0)
}

// writeAttribution writes example i of a (a batch's result; c describes
// that example): its PNG(s), its .npy files with --npy, its report section
// and log lines. The writer is chosen by the type of a.Detail:
//
//	*cam.Result                cam_<method>_<layers>.png/.npy, camlow_<method>_<layer>.npy
//	*attr.SaliencyResult       by its ReLU rule: saliency.png + saliency_grad/absmax/max/gradxinput.npy,
//	                           guided_backprop.png/.npy or deconv.png/.npy
//	*attr.GuidedGradCAMResult  guided_gradcam_<layers>.png/.npy
//	*attr.SmoothGradResult     smoothgrad.png + smoothgrad/smoothgrad_sq/vargrad.npy
//	*attr.IGResult             ig.png + ig/ig_baseline.npy (and the completeness log line)
//	*attr.OcclusionResult      occlusion.png/.npy
//
// Anything else (another Detail type, none, or a nil one) gets writeGeneric.
func writeAttribution(c *runCtx, a *engine.Attribution, i int) error {
	switch d := a.Detail.(type) {
	case *cam.Result:
		if d != nil {
			return writeCAM(c, camInfo(d), &vizkit.CAMResult{Result: d}, i)
		}
	case *attr.SaliencyResult:
		if d != nil {
			return writeSaliency(c, exampleSaliency(d, i))
		}
	case *attr.GuidedGradCAMResult:
		if d != nil {
			return writeGuidedGradCAM(c, exampleGuidedGradCAM(d, i))
		}
	case *attr.SmoothGradResult:
		if d != nil {
			return writeSmoothGrad(c, exampleSmoothGrad(d, i))
		}
	case *attr.IGResult:
		if d != nil {
			return writeIG(c, exampleIG(d, i))
		}
	case *attr.OcclusionResult:
		if d != nil {
			return writeOcclusion(c, exampleOcclusion(d, i))
		}
	}
	return writeGeneric(c, a, i)
}

// camInfo describes the CAM method that made r (its registered Info, for
// the title and reference).
func camInfo(r *cam.Result) cam.Info {
	if info, err := cam.Lookup(r.Method); err == nil {
		return info
	}
	return cam.Info{Name: r.Method, Title: r.Title}
}

func writeSaliency(c *runCtx, r *attr.SaliencyResult) error {
	s := &vizkit.SaliencyResult{SaliencyResult: r, Norm: c.norm(), DisplayChannels: c.Display}
	panel, err := s.Panel(0)
	if err != nil {
		return err
	}
	switch s.ReLU {
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
	default:
		return fmt.Errorf("gradient with an unknown ReLU rule %v", s.ReLU)
	}
	c.Report.Heading(2, s.Title)
	return s.AppendHTML(c.Report)
}

func writeGuidedGradCAM(c *runCtx, r *attr.GuidedGradCAMResult) error {
	g := &vizkit.GuidedGradCAMResult{GuidedGradCAMResult: r, Norm: c.norm(), DisplayChannels: c.Display}
	if g.CAM == nil || g.Map == nil {
		return fmt.Errorf("empty Guided Grad-CAM result")
	}
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

func writeSmoothGrad(c *runCtx, sg *attr.SmoothGradResult) error {
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

func writeIG(c *runCtx, ig *attr.IGResult) error {
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

func writeOcclusion(c *runCtx, oc *attr.OcclusionResult) error {
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

// writeGeneric writes an attribution whose Detail the CLI has no writer for
// (gradxinput, a method registered by other code): attr_<method>.png, the
// map of example i drawn as a JET heat map over the input (weight 0.5; the
// map min–max scaled to [0,1], or, when Signed, its positive part divided
// by its maximum so that zero and negative evidence stay blue);
// attr_<method>.npy with --npy, the map (H,W) as the method computed it;
// and a report section with the overlay, the scaled map and the method's
// Help. <method> is the registered name (Attribution.Method).
func writeGeneric(c *runCtx, a *engine.Attribution, i int) error {
	m := a.Maps.Index(i)
	h, w := m.Shape[0], m.Shape[1]
	scaled := displayScale(m.Data, a.Signed)
	hm, err := heatmap.NewMap(h, w, scaled)
	if err != nil {
		return err
	}
	overlay, err := render.Overlay(c.Image, hm, render.Jet, 0.5)
	if err != nil {
		return err
	}
	colored, err := render.Colorize(hm, render.Jet, render.Range{Min: 0, Max: 1})
	if err != nil {
		return err
	}
	stem := "attr_" + a.Method
	if err := c.SavePNG(stem, overlay); err != nil {
		return err
	}
	if err := c.SaveNPY(stem, m); err != nil {
		return err
	}
	title := a.Title
	if len(a.Layers) > 0 {
		title += " — layer " + strings.Join(a.Layers, "+")
	}
	r := c.Report
	r.Heading(2, title)
	target := a.Target.String()
	if i < len(a.Classes) && a.Classes[i] >= 0 {
		target = c.Label(a.Classes[i])
	}
	how := ""
	if info, err := engine.LookupMethod(a.Method); err == nil && info.Help != "" {
		how = " (" + info.Help + ")"
	}
	scale := "min–max scaled"
	if a.Signed {
		scale = "positive part, divided by its maximum"
	}
	r.Paragraph(fmt.Sprintf("Where the evidence for %s (score %.4g) lies, according to %s%s.", target, a.Scores[i], a.Title, how))
	r.Figure([]render.FigureItem{
		{Image: overlay, Caption: "overlay (JET, α 0.5)", WidthPx: 224},
		{Image: colored.Image, Caption: "map (" + scale + ")", WidthPx: 224},
	}, render.FigureOptions{})
	return nil
}

// displayScale maps a map's values to [0,1] for drawing: min–max scaled, or
// for signed maps the positive part divided by its maximum; constant maps
// (and signed maps without positive values) become 0.
func displayScale(m []float32, signed bool) []float32 {
	out := make([]float32, len(m))
	if len(m) == 0 {
		return out
	}
	lo, hi := m[0], m[0]
	for _, v := range m {
		lo, hi = min(lo, v), max(hi, v)
	}
	if signed {
		lo = 0
	}
	if !(hi > lo) {
		return out
	}
	for k, v := range m {
		out[k] = min(max((v-lo)/(hi-lo), 0), 1)
	}
	return out
}

// The example* functions return example i of a batch result as a result
// of one example (arrays (1,…) sharing the batch's data), so that the
// drawing code, which draws every example of a result, draws only that one.

func exampleArray(a *engine.Array, i int) *engine.Array {
	if a == nil || len(a.Shape) == 0 || i < 0 || i >= a.Shape[0] {
		return a
	}
	e := a.Index(i)
	return &engine.Array{Shape: append([]int{1}, e.Shape...), Data: e.Data}
}

func exampleSlice[T any](s []T, i int) []T {
	if i < 0 || i >= len(s) {
		return s
	}
	return s[i : i+1 : i+1]
}

// exampleTarget is t for example i: one class when t lists one per example.
func exampleTarget(t engine.Target, i int, n int) engine.Target {
	if len(t.Classes) == n && n > 1 {
		t.Classes = exampleSlice(t.Classes, i)
	}
	return t
}

func exampleSaliency(r *attr.SaliencyResult, i int) *attr.SaliencyResult {
	o := *r
	n := len(r.Classes)
	o.Target, o.Classes, o.Scores = exampleTarget(r.Target, i, n), exampleSlice(r.Classes, i), exampleSlice(r.Scores, i)
	o.Input, o.Grad = exampleArray(r.Input, i), exampleArray(r.Grad, i)
	return &o
}

func exampleCAM(r *cam.Result, i int) *cam.Result {
	o := *r
	n := len(r.Classes)
	o.Target, o.Classes, o.Scores, o.Flat = exampleTarget(r.Target, i, n), exampleSlice(r.Classes, i), exampleSlice(r.Scores, i), exampleSlice(r.Flat, i)
	o.Map = exampleArray(r.Map, i)
	for _, m := range []*map[string]*engine.Array{&o.Raw, &o.Low, &o.Weights} {
		if *m == nil {
			continue
		}
		one := make(map[string]*engine.Array, len(*m))
		for k, v := range *m {
			one[k] = exampleArray(v, i)
		}
		*m = one
	}
	return &o
}

func exampleGuidedGradCAM(r *attr.GuidedGradCAMResult, i int) *attr.GuidedGradCAMResult {
	o := *r
	if r.Guided != nil {
		o.Guided = exampleSaliency(r.Guided, i)
	}
	if r.CAM != nil {
		o.CAM = exampleCAM(r.CAM, i)
	}
	o.Map = exampleArray(r.Map, i)
	return &o
}

func exampleSmoothGrad(r *attr.SmoothGradResult, i int) *attr.SmoothGradResult {
	o := *r
	n := len(r.Classes)
	o.Target, o.Classes, o.Scores, o.Sigma = exampleTarget(r.Target, i, n), exampleSlice(r.Classes, i), exampleSlice(r.Scores, i), exampleSlice(r.Sigma, i)
	o.Mean, o.MeanSquare, o.Var, o.Input = exampleArray(r.Mean, i), exampleArray(r.MeanSquare, i), exampleArray(r.Var, i), exampleArray(r.Input, i)
	return &o
}

func exampleIG(r *attr.IGResult, i int) *attr.IGResult {
	o := *r
	n := len(r.Classes)
	o.Target, o.Classes, o.Scores = exampleTarget(r.Target, i, n), exampleSlice(r.Classes, i), exampleSlice(r.Scores, i)
	o.BaselineScores, o.Delta = exampleSlice(r.BaselineScores, i), exampleSlice(r.Delta, i)
	o.Attr, o.Baseline, o.Input = exampleArray(r.Attr, i), exampleArray(r.Baseline, i), exampleArray(r.Input, i)
	return &o
}

func exampleOcclusion(r *attr.OcclusionResult, i int) *attr.OcclusionResult {
	o := *r
	n := len(r.Classes)
	o.Target, o.Classes, o.Scores = exampleTarget(r.Target, i, n), exampleSlice(r.Classes, i), exampleSlice(r.Scores, i)
	o.Attr, o.Map, o.Input = exampleArray(r.Attr, i), exampleArray(r.Map, i), exampleArray(r.Input, i)
	return &o
}
