package vizkit

import (
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"sort"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// Pictures of the gradient visualisations, attributions and activation
// maximisation results: each result draws a captioned panel per example
// (Panel, a PNG-ready image) and renders itself as a self-contained HTML
// fragment (HTML, AppendHTML) for GoNB cells (vizkit/nb.Show) and reports.
//
// Conventions: signed maps use the diverging RdBu_r colormap centred on 0
// (blue negative, white 0, red positive, range ±t); magnitudes use gray (black 0
// → white t) or inferno (for squared values, range [0, t]). Gradient maps are
// heavy-tailed, so t is Captum's visualize_image_attr threshold (outlier_perc
// 2): the |value| at which the sorted |values| reach 98% of their total; the
// few values beyond it saturate. RGB gradients are shown through FlashTorch's
// standardize_and_clip (vanilla) or pytorch-grad-cam's deprocess_image (guided
// backprop, deconvnet, Guided Grad-CAM); overlays are pytorch-grad-cam's
// show_cam_on_image (JET, α 0.5) of the magnitude divided by t and clipped to 1.

// DefaultDisplayChannels returns the input channels drawn by default for an
// input of c channels: the first three as red, green and blue when c ≥ 3,
// else channel 0 in gray.
func DefaultDisplayChannels(c int) []int {
	if c >= 3 {
		return []int{0, 1, 2}
	}
	return []int{0}
}

// CheckDisplayChannels resolves a choice of input channels to draw for an
// input of c channels: empty means DefaultDisplayChannels(c); otherwise it
// must name 1 channel (drawn in gray) or 3 (drawn as red, green, blue), each
// in 0..c−1 (repeats allowed). Errors name the channel and the count.
func CheckDisplayChannels(sel []int, c int) ([]int, error) {
	if len(sel) == 0 {
		return DefaultDisplayChannels(c), nil
	}
	if len(sel) != 1 && len(sel) != 3 {
		return nil, fmt.Errorf("display channels %v: give 1 channel (gray) or 3 (red, green, blue), not %d", sel, len(sel))
	}
	for _, ch := range sel {
		if ch < 0 || ch >= c {
			return nil, fmt.Errorf("display channel %d is out of range for an input with %d channel(s) (valid: 0..%d)", ch, c, c-1)
		}
	}
	return slices.Clone(sel), nil
}

// The attribution results of package attr ready to display: each wraps the
// computed result with how its input is drawn. Norm is the input
// normalisation (to map the normalised input back to pixels; the zero value
// is the default for the input's channel count, see engine.Normalization)
// and DisplayChannels the input channels drawn (1: gray, 3: red, green,
// blue; empty: DefaultDisplayChannels). The façade (Saliency, SmoothGrad, …)
// sets both from the model; both are checked when drawing.

// SaliencyResult is an attr.SaliencyResult ready to display.
type SaliencyResult struct {
	*attr.SaliencyResult
	Norm            engine.Normalization
	DisplayChannels []int
}

// GuidedGradCAMResult is an attr.GuidedGradCAMResult ready to display.
type GuidedGradCAMResult struct {
	*attr.GuidedGradCAMResult
	Norm            engine.Normalization
	DisplayChannels []int
}

// SmoothGradResult is an attr.SmoothGradResult ready to display.
type SmoothGradResult struct {
	*attr.SmoothGradResult
	Norm            engine.Normalization
	DisplayChannels []int
}

// IGResult is an attr.IGResult ready to display.
type IGResult struct {
	*attr.IGResult
	Norm            engine.Normalization
	DisplayChannels []int
}

// OcclusionResult is an attr.OcclusionResult ready to display.
type OcclusionResult struct {
	*attr.OcclusionResult
	Norm            engine.Normalization
	DisplayChannels []int
}

// drawInput draws example i of a normalised (N,C,H,W) input: the channels
// sel (1: gray, 3: red, green, blue; empty: DefaultDisplayChannels), each
// mapped back to pixels with norm (resolved for C channels).
func drawInput(x *Array, i int, norm engine.Normalization, sel []int) (*image.RGBA, error) {
	if x == nil || len(x.Shape) != 4 || i < 0 || i >= x.Shape[0] {
		return nil, fmt.Errorf("no example %d in the input", i)
	}
	c, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	n, err := norm.For(c)
	if err != nil {
		return nil, err
	}
	sel, err = CheckDisplayChannels(sel, c)
	if err != nil {
		return nil, err
	}
	chw, err := pickChannels(x.Index(i).Data, c, h, w, sel)
	if err != nil {
		return nil, err
	}
	var mean, std [3]float32
	for k, ch := range sel {
		mean[k], std[k] = n.Mean[ch], n.Std[ch]
	}
	return imageio.ToImage(chw, len(sel), h, w, mean, std)
}

// pickChannels returns the planes sel of a (C,H,W) array, in sel's order,
// as a (len(sel),H,W) array (a sub-slice of chw when sel is 0..len−1).
func pickChannels(chw []float32, c, h, w int, sel []int) ([]float32, error) {
	if len(chw) != c*h*w {
		return nil, fmt.Errorf("%d values for a (%d,%d,%d) array", len(chw), c, h, w)
	}
	hw := h * w
	prefix := true
	for k, ch := range sel {
		if ch < 0 || ch >= c {
			return nil, fmt.Errorf("display channel %d is out of range for an input with %d channel(s) (valid: 0..%d)", ch, c, c-1)
		}
		prefix = prefix && ch == k
	}
	if prefix {
		return chw[:len(sel)*hw], nil
	}
	out := make([]float32, len(sel)*hw)
	for k, ch := range sel {
		copy(out[k*hw:(k+1)*hw], chw[ch*hw:(ch+1)*hw])
	}
	return out, nil
}

// pickExample returns example i of an (N,C,H,W) array restricted to the
// channels sel (resolved with CheckDisplayChannels), as (1,len(sel),H,W).
func pickExample(a *Array, i int, sel []int) (*Array, error) {
	if a == nil || len(a.Shape) != 4 || i < 0 || i >= a.Shape[0] {
		return nil, fmt.Errorf("no example %d in the array", i)
	}
	c, h, w := a.Shape[1], a.Shape[2], a.Shape[3]
	sel, err := CheckDisplayChannels(sel, c)
	if err != nil {
		return nil, err
	}
	d, err := pickChannels(a.Index(i).Data, c, h, w, sel)
	if err != nil {
		return nil, err
	}
	return &Array{Shape: []int{1, len(sel), h, w}, Data: d}, nil
}

// shownWord names the channels drawn of a c-channel array in captions:
// "RGB" for the default three of an RGB input, else "channel 0" or
// "channels 3,2,1".
func shownWord(c int, sel []int) string {
	sel, err := CheckDisplayChannels(sel, c)
	if err != nil {
		return "channels ?"
	}
	if c == 3 && slices.Equal(sel, []int{0, 1, 2}) {
		return "RGB"
	}
	if len(sel) == 1 {
		return fmt.Sprintf("channel %d", sel[0])
	}
	return fmt.Sprintf("channels %d,%d,%d", sel[0], sel[1], sel[2])
}

// channelWord names what a channel reduction runs over in captions: "RGB"
// for 3-channel inputs, "channels" otherwise.
func channelWord(c int) string {
	if c == 3 {
		return "RGB"
	}
	return "channels"
}

// OutlierThreshold is Captum's _cumulative_sum_threshold(|v|, 98): the
// smallest |value| at which the ascending cumulative sum of the |values|
// reaches 98% of their total (the scale of visualize_image_attr with
// outlier_perc 2). Non-finite values are ignored; it is 0 for an all-zero map.
func OutlierThreshold(values []float32) float64 {
	abs := make([]float64, 0, len(values))
	total := 0.0
	for _, v := range values {
		f := math.Abs(float64(v))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		abs = append(abs, f)
		total += f
	}
	if total == 0 {
		return 0
	}
	sort.Float64s(abs)
	cum := 0.0
	for _, v := range abs {
		cum += v
		if cum >= 0.98*total {
			return v
		}
	}
	return abs[len(abs)-1]
}

// magnitudeTile colours a non-negative map with range [0, t] (OutlierThreshold).
func magnitudeTile(m []float32, h, w int, cmap render.Colormap) (image.Image, render.Range, error) {
	mp, err := heatmap.NewMap(h, w, m)
	if err != nil {
		return nil, render.Range{}, err
	}
	r := render.Range{Min: 0, Max: 1}
	if t := OutlierThreshold(m); t > 0 {
		r.Max = t
	}
	c, err := render.Colorize(mp, cmap, r)
	if err != nil {
		return nil, r, err
	}
	return c.Image, r, nil
}

// signedTile colours a signed map with RdBu_r on ±t (OutlierThreshold).
func signedTile(m []float32, h, w int) (image.Image, render.Range, error) {
	mp, err := heatmap.NewMap(h, w, m)
	if err != nil {
		return nil, render.Range{}, err
	}
	r := render.Range{Min: -1, Max: 1}
	if t := OutlierThreshold(m); t > 0 {
		r = render.Range{Min: -t, Max: t}
	}
	c, err := render.Colorize(mp, render.RdBuR, r)
	if err != nil {
		return nil, r, err
	}
	return c.Image, r, nil
}

// rgbTile draws a (3,H,W) array whose values are already in [0,1]; a (1,H,W)
// array is drawn in gray.
func rgbTile(chw []float32, h, w int) (image.Image, error) {
	if len(chw) == h*w {
		g := make([]float32, 3*h*w)
		for k := 0; k < 3; k++ {
			copy(g[k*h*w:], chw)
		}
		chw = g
	}
	return render.RGBFromCHW(chw, h, w, render.Range{Min: 0, Max: 1})
}

// heatOverlay blends the positive part of a map, divided by OutlierThreshold
// and clipped to 1, over base.
func heatOverlay(base image.Image, m []float32, h, w int) (image.Image, error) {
	pos := make([]float32, len(m))
	for i, v := range m {
		pos[i] = max(v, 0)
	}
	s := make([]float32, len(m))
	if t := OutlierThreshold(pos); t > 0 {
		for i, v := range pos {
			s[i] = float32(min(float64(v)/t, 1))
		}
	}
	mp, err := heatmap.NewMap(h, w, s)
	if err != nil {
		return nil, err
	}
	return render.Overlay(base, mp, render.Jet, 0.5)
}

func absOf(a []float32) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		out[i] = float32(math.Abs(float64(v)))
	}
	return out
}

// panel lays captioned tiles out in one row; tiles of small inputs (under
// 56 pixels a side: 28×28 digits, 16×16 tests) are enlarged by an integer
// factor (nearest neighbour) to about 112 pixels, so that they stay visible.
func gradPanel(title string, tiles []image.Image, captions []string) (*image.RGBA, error) {
	scale := 1
	if len(tiles) > 0 && tiles[0] != nil {
		b := tiles[0].Bounds()
		scale = autoScaleTo(b.Dy(), b.Dx(), 112)
	}
	return render.Grid(tiles, render.GridOptions{Cols: len(tiles), Pad: 6, Captions: captions, MaxCaptionChars: 34, Title: title, Scale: scale})
}

type gradTile struct {
	img     image.Image
	caption string
}

func gradTilesPanel(title string, ts []gradTile) (*image.RGBA, error) {
	imgs := make([]image.Image, len(ts))
	caps := make([]string, len(ts))
	for i, t := range ts {
		imgs[i], caps[i] = t.img, t.caption
	}
	return gradPanel(title, imgs, caps)
}

// gradFigure lists the tiles for HTML.Figure; tiles narrower than 160 px are
// shown enlarged by an integer factor (the figures are drawn with
// image-rendering: pixelated) so that small inputs stay visible.
func gradFigure(ts []gradTile) []render.FigureItem {
	items := make([]render.FigureItem, len(ts))
	for i, t := range ts {
		items[i] = render.FigureItem{Image: t.img, Caption: t.caption}
		if t.img != nil {
			if w := t.img.Bounds().Dx(); w > 0 && w < 160 {
				items[i].WidthPx = w * ((160 + w - 1) / w)
			}
		}
	}
	return items
}

func checkExampleIndex(n, i int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("example %d out of range (the batch has %d)", i, n)
	}
	return nil
}

func targetText(t Target, classes []int, scores []float32, i int) string {
	if t.Kind == engine.TargetFunc {
		return fmt.Sprintf("%s = %.4g", t.Name, scores[i])
	}
	what := "logit"
	switch t.Kind {
	case engine.TargetSoftmax:
		what = "softmax"
	case engine.TargetLogSoftmax:
		what = "log-softmax"
	}
	return fmt.Sprintf("%s of class %d = %.4g", what, classes[i], scores[i])
}

func fragmentOf(appendHTML func(*render.HTML) error) (string, error) {
	h := render.NewHTML()
	if err := appendHTML(h); err != nil {
		return "", err
	}
	return h.String(), nil
}

func magnitudeBar(cmap render.Colormap, r render.Range, label string) image.Image {
	bar, err := render.Colorbar(cmap, r, 224, 44, label)
	if err != nil {
		return nil
	}
	return bar
}

// ---------------------------------------------------------------------------
// Saliency

func (s *SaliencyResult) tiles(i int) ([]gradTile, []image.Image, error) {
	if s == nil || s.SaliencyResult == nil || s.Grad == nil || s.Input == nil {
		return nil, nil, errors.New("vizkit: empty SaliencyResult")
	}
	if err := checkExampleIndex(s.Grad.Shape[0], i); err != nil {
		return nil, nil, err
	}
	nc, h, w := s.Grad.Shape[1], s.Grad.Shape[2], s.Grad.Shape[3]
	base, err := drawInput(s.Input, i, s.Norm, s.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	g := s.Grad.Index(i)
	one := &Array{Shape: append([]int{1}, g.Shape...), Data: g.Data}
	shown, err := pickExample(s.Grad, i, s.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	var rgb *Array
	rgbCap := "gradient, " + shownWord(nc, s.DisplayChannels) + " (standardized)"
	if s.ReLU == models.ReLUStandard {
		rgb = engine.StandardizeAndClip(shown, 0.1, 0.5)
	} else {
		rgb = engine.DeprocessImage(shown)
		rgbCap = s.Method + ", " + shownWord(nc, s.DisplayChannels) + " (deprocessed)"
	}
	rgbImg, err := rgbTile(rgb.Data, h, w)
	if err != nil {
		return nil, nil, err
	}
	mx, err := engine.ChannelMax(one)
	if err != nil {
		return nil, nil, err
	}
	mxDisp := engine.StandardizeAndClip(mx, 0.1, 0.5)
	mxC, err := render.Colorize(render.Map{H: h, W: w, Data: mxDisp.Data}, render.Viridis, render.Range{Min: 0, Max: 1})
	if err != nil {
		return nil, nil, err
	}
	am, err := engine.ChannelAbsMax(one)
	if err != nil {
		return nil, nil, err
	}
	amImg, amRange, err := magnitudeTile(am.Data, h, w, render.Gray)
	if err != nil {
		return nil, nil, err
	}
	gxi := make([]float32, h*w)
	in := s.Input.Index(i).Data
	for c := 0; c < nc; c++ {
		for p := 0; p < h*w; p++ {
			gxi[p] += g.Data[c*h*w+p] * in[c*h*w+p]
		}
	}
	gxiImg, gxiRange, err := signedTile(gxi, h, w)
	if err != nil {
		return nil, nil, err
	}
	ov, err := heatOverlay(base, am.Data, h, w)
	if err != nil {
		return nil, nil, err
	}
	ts := []gradTile{
		{base, "input"},
		{rgbImg, rgbCap},
		{mxC.Image, "max over " + channelWord(nc) + " (FlashTorch)"},
		{amImg, "max |gradient| (Simonyan)"},
		{gxiImg, "gradient x input, sum " + channelWord(nc)},
		{ov, "max |gradient| over input"},
	}
	bars := []image.Image{
		magnitudeBar(render.Gray, amRange, "max |gradient|"),
		magnitudeBar(render.RdBuR, gxiRange, "gradient x input"),
	}
	return ts, bars, nil
}

// Panel draws example i: the input, the RGB gradient, FlashTorch's max
// gradient, Simonyan's map, gradient × input and an overlay.
func (s *SaliencyResult) Panel(i int) (*image.RGBA, error) {
	ts, _, err := s.tiles(i)
	if err != nil {
		return nil, err
	}
	return gradTilesPanel(fmt.Sprintf("%s: %s", s.Title, targetText(s.Target, s.Classes, s.Scores, i)), ts)
}

// AppendHTML adds a section per example to h.
func (s *SaliencyResult) AppendHTML(h *render.HTML) error {
	if s == nil || s.SaliencyResult == nil || s.Grad == nil {
		return errors.New("vizkit: empty SaliencyResult")
	}
	for i := 0; i < s.Grad.Shape[0]; i++ {
		ts, bars, err := s.tiles(i)
		if err != nil {
			return err
		}
		h.Heading(3, fmt.Sprintf("%s — example %d", s.Title, i))
		h.Paragraph(fmt.Sprintf("Gradient of the %s with respect to the input pixels (%s ReLU backward rule).",
			targetText(s.Target, s.Classes, s.Scores, i), s.ReLU))
		h.Figure(append(gradFigure(ts), render.FigureItem{Image: bars[0]}, render.FigureItem{Image: bars[1]}), render.FigureOptions{Pixelated: true})
	}
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (s *SaliencyResult) HTML() (string, error) { return fragmentOf(s.AppendHTML) }

// ---------------------------------------------------------------------------
// Guided Grad-CAM

func (g *GuidedGradCAMResult) tiles(i int) ([]gradTile, error) {
	if g == nil || g.GuidedGradCAMResult == nil || g.Map == nil || g.Guided == nil || g.CAM == nil {
		return nil, errors.New("vizkit: empty GuidedGradCAMResult")
	}
	if err := checkExampleIndex(g.Map.Shape[0], i); err != nil {
		return nil, err
	}
	h, w := g.Map.Shape[2], g.Map.Shape[3]
	base, err := drawInput(g.Guided.Input, i, g.Norm, g.DisplayChannels)
	if err != nil {
		return nil, err
	}
	cm, err := heatmap.NewMap(h, w, g.CAM.Map.Index(i).Data)
	if err != nil {
		return nil, err
	}
	camImg, err := render.Overlay(base, cm, render.Jet, 0.5)
	if err != nil {
		return nil, err
	}
	gs, err := pickExample(g.Guided.Grad, i, g.DisplayChannels)
	if err != nil {
		return nil, err
	}
	ms, err := pickExample(g.Map, i, g.DisplayChannels)
	if err != nil {
		return nil, err
	}
	gb, err := rgbTile(engine.DeprocessImage(gs).Data, h, w)
	if err != nil {
		return nil, err
	}
	ggc, err := rgbTile(engine.DeprocessImage(ms).Data, h, w)
	if err != nil {
		return nil, err
	}
	return []gradTile{{base, "input"}, {camImg, g.CAM.Title + " " + joinLayers(g.CAM.Layers)}, {gb, "guided backprop"}, {ggc, "Guided " + g.CAM.Title}}, nil
}

func joinLayers(l []string) string {
	s := ""
	for i, v := range l {
		if i > 0 {
			s += "+"
		}
		s += v
	}
	return s
}

// Panel draws example i: input, CAM overlay, guided backprop, their product.
func (g *GuidedGradCAMResult) Panel(i int) (*image.RGBA, error) {
	ts, err := g.tiles(i)
	if err != nil {
		return nil, err
	}
	return gradTilesPanel("Guided "+g.CAM.Title+": "+targetText(g.Guided.Target, g.Guided.Classes, g.Guided.Scores, i), ts)
}

// AppendHTML adds a section per example to h.
func (g *GuidedGradCAMResult) AppendHTML(h *render.HTML) error {
	if g == nil || g.GuidedGradCAMResult == nil || g.Map == nil || g.Guided == nil || g.CAM == nil {
		return errors.New("vizkit: empty GuidedGradCAMResult")
	}
	for i := 0; i < g.Map.Shape[0]; i++ {
		ts, err := g.tiles(i)
		if err != nil {
			return err
		}
		h.Heading(3, fmt.Sprintf("Guided %s — example %d", g.CAM.Title, i))
		if g.CAM.Flat[i] {
			h.Warning("The class activation map is constant (all zero) for this example, so Guided Grad-CAM is all zero.")
		}
		h.Paragraph(fmt.Sprintf("Guided backpropagation of the %s, multiplied by the %s map (shown through pytorch-grad-cam's deprocess_image).",
			targetText(g.Guided.Target, g.Guided.Classes, g.Guided.Scores, i), g.CAM.Title))
		h.Figure(gradFigure(ts), render.FigureOptions{Pixelated: true})
	}
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (g *GuidedGradCAMResult) HTML() (string, error) { return fragmentOf(g.AppendHTML) }

// ---------------------------------------------------------------------------
// SmoothGrad

func (r *SmoothGradResult) tiles(i int) ([]gradTile, []image.Image, error) {
	if r == nil || r.SmoothGradResult == nil || r.Mean == nil || r.Input == nil {
		return nil, nil, errors.New("vizkit: empty SmoothGradResult")
	}
	if err := checkExampleIndex(r.Mean.Shape[0], i); err != nil {
		return nil, nil, err
	}
	nc, h, w := r.Mean.Shape[1], r.Mean.Shape[2], r.Mean.Shape[3]
	base, err := drawInput(r.Input, i, r.Norm, r.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	one := func(a *Array) *Array {
		e := a.Index(i)
		return &Array{Shape: append([]int{1}, e.Shape...), Data: e.Data}
	}
	shown, err := pickExample(r.Mean, i, r.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	rgb, err := rgbTile(engine.StandardizeAndClip(shown, 0.1, 0.5).Data, h, w)
	if err != nil {
		return nil, nil, err
	}
	am, err := engine.ChannelAbsMax(one(r.Mean))
	if err != nil {
		return nil, nil, err
	}
	amImg, amR, err := magnitudeTile(am.Data, h, w, render.Gray)
	if err != nil {
		return nil, nil, err
	}
	sq, err := engine.ChannelMax(one(r.MeanSquare))
	if err != nil {
		return nil, nil, err
	}
	sqImg, sqR, err := magnitudeTile(sq.Data, h, w, render.Inferno)
	if err != nil {
		return nil, nil, err
	}
	vr, err := engine.ChannelMax(one(r.Var))
	if err != nil {
		return nil, nil, err
	}
	vrImg, _, err := magnitudeTile(vr.Data, h, w, render.Inferno)
	if err != nil {
		return nil, nil, err
	}
	ov, err := heatOverlay(base, am.Data, h, w)
	if err != nil {
		return nil, nil, err
	}
	ts := []gradTile{{base, "input"}, {rgb, "SmoothGrad, " + shownWord(nc, r.DisplayChannels)}, {amImg, "SmoothGrad max |.|"}, {sqImg, "SmoothGrad^2, max " + channelWord(nc)},
		{vrImg, "VarGrad, max " + channelWord(nc)}, {ov, "SmoothGrad max |.| over input"}}
	return ts, []image.Image{magnitudeBar(render.Gray, amR, "SmoothGrad max |.|"), magnitudeBar(render.Inferno, sqR, "SmoothGrad^2")}, nil
}

// Panel draws example i: input, SmoothGrad (RGB and max |·|), SmoothGrad²,
// VarGrad and an overlay.
func (r *SmoothGradResult) Panel(i int) (*image.RGBA, error) {
	ts, _, err := r.tiles(i)
	if err != nil {
		return nil, err
	}
	return gradTilesPanel(fmt.Sprintf("SmoothGrad (%d samples, sigma %.3g): %s", r.Samples, r.Sigma[i], targetText(r.Target, r.Classes, r.Scores, i)), ts)
}

// AppendHTML adds a section per example to h.
func (r *SmoothGradResult) AppendHTML(h *render.HTML) error {
	if r == nil || r.SmoothGradResult == nil || r.Mean == nil {
		return errors.New("vizkit: empty SmoothGradResult")
	}
	for i := 0; i < r.Mean.Shape[0]; i++ {
		ts, bars, err := r.tiles(i)
		if err != nil {
			return err
		}
		h.Heading(3, fmt.Sprintf("SmoothGrad — example %d", i))
		h.Paragraph(fmt.Sprintf("Gradient of the %s averaged over %d noisy copies of the input (Gaussian noise, σ = %.3g in normalised units; %s ReLU rule). SmoothGrad² averages squared gradients, VarGrad is their variance.",
			targetText(r.Target, r.Classes, r.Scores, i), r.Samples, r.Sigma[i], r.ReLU))
		h.Figure(append(gradFigure(ts), render.FigureItem{Image: bars[0]}, render.FigureItem{Image: bars[1]}), render.FigureOptions{Pixelated: true})
	}
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (r *SmoothGradResult) HTML() (string, error) { return fragmentOf(r.AppendHTML) }

// ---------------------------------------------------------------------------
// Integrated Gradients

func (r *IGResult) tiles(i int) ([]gradTile, []image.Image, error) {
	if r == nil || r.IGResult == nil || r.Attr == nil || r.Input == nil || r.Baseline == nil {
		return nil, nil, errors.New("vizkit: empty IGResult")
	}
	if err := checkExampleIndex(r.Attr.Shape[0], i); err != nil {
		return nil, nil, err
	}
	nc, h, w := r.Attr.Shape[1], r.Attr.Shape[2], r.Attr.Shape[3]
	base, err := drawInput(r.Input, i, r.Norm, r.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	bimg, err := drawInput(r.Baseline, i, r.Norm, r.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	e := r.Attr.Index(i)
	sum, err := engine.ChannelSum(&Array{Shape: append([]int{1}, e.Shape...), Data: e.Data})
	if err != nil {
		return nil, nil, err
	}
	sImg, sR, err := signedTile(sum.Data, h, w)
	if err != nil {
		return nil, nil, err
	}
	abs := absOf(sum.Data)
	aImg, aR, err := magnitudeTile(abs, h, w, render.Gray)
	if err != nil {
		return nil, nil, err
	}
	ov, err := heatOverlay(base, abs, h, w)
	if err != nil {
		return nil, nil, err
	}
	ts := []gradTile{{base, "input"}, {bimg, "baseline: " + r.BaselineName}, {sImg, "attribution, sum " + channelWord(nc)}, {aImg, "|attribution|"}, {ov, "|attribution| over input"}}
	return ts, []image.Image{magnitudeBar(render.RdBuR, sR, "attribution"), magnitudeBar(render.Gray, aR, "|attribution|")}, nil
}

// Panel draws example i: input, baseline, the attribution (signed and
// absolute, summed over RGB) and an overlay.
func (r *IGResult) Panel(i int) (*image.RGBA, error) {
	ts, _, err := r.tiles(i)
	if err != nil {
		return nil, err
	}
	return gradTilesPanel(fmt.Sprintf("Integrated Gradients (%s, %d steps): %s", r.Method, r.Steps, targetText(r.Target, r.Classes, r.Scores, i)), ts)
}

// AppendHTML adds a section per example to h, with the completeness check.
func (r *IGResult) AppendHTML(h *render.HTML) error {
	if r == nil || r.IGResult == nil || r.Attr == nil {
		return errors.New("vizkit: empty IGResult")
	}
	rel := r.RelativeDelta()
	for i := 0; i < r.Attr.Shape[0]; i++ {
		ts, bars, err := r.tiles(i)
		if err != nil {
			return err
		}
		h.Heading(3, fmt.Sprintf("Integrated Gradients — example %d", i))
		h.Paragraph(fmt.Sprintf("Attribution of the %s along the straight path from the %s baseline (%d steps, %s). Completeness: Σ attribution = %.4g, f(x) − f(baseline) = %.4g − %.4g = %.4g, error %.3g (%.2f%%).",
			targetText(r.Target, r.Classes, r.Scores, i), r.BaselineName, r.Steps, r.Method,
			r.Delta[i]+float64(r.Scores[i])-float64(r.BaselineScores[i]), r.Scores[i], r.BaselineScores[i],
			float64(r.Scores[i])-float64(r.BaselineScores[i]), r.Delta[i], 100*rel[i]))
		if rel[i] > 0.05 {
			h.Warning(fmt.Sprintf("The completeness error is %.1f%% of f(x) − f(baseline): use more steps.", 100*rel[i]))
		}
		h.Figure(append(gradFigure(ts), render.FigureItem{Image: bars[0]}, render.FigureItem{Image: bars[1]}), render.FigureOptions{Pixelated: true})
	}
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (r *IGResult) HTML() (string, error) { return fragmentOf(r.AppendHTML) }

// ---------------------------------------------------------------------------
// Occlusion

func (r *OcclusionResult) tiles(i int) ([]gradTile, []image.Image, error) {
	if r == nil || r.OcclusionResult == nil || r.Map == nil || r.Input == nil {
		return nil, nil, errors.New("vizkit: empty OcclusionResult")
	}
	if err := checkExampleIndex(r.Map.Shape[0], i); err != nil {
		return nil, nil, err
	}
	h, w := r.Map.Shape[1], r.Map.Shape[2]
	base, err := drawInput(r.Input, i, r.Norm, r.DisplayChannels)
	if err != nil {
		return nil, nil, err
	}
	m := r.Map.Index(i).Data
	sImg, sR, err := signedTile(m, h, w)
	if err != nil {
		return nil, nil, err
	}
	ov, err := heatOverlay(base, m, h, w) // Positive part: where occlusion lowers the score.
	if err != nil {
		return nil, nil, err
	}
	return []gradTile{{base, "input"}, {sImg, "score drop when occluded"}, {ov, "positive drop over input"}},
		[]image.Image{magnitudeBar(render.RdBuR, sR, "f(x) - f(occluded)")}, nil
}

// Panel draws example i: input, the score drop map and an overlay of its
// positive part.
func (r *OcclusionResult) Panel(i int) (*image.RGBA, error) {
	ts, _, err := r.tiles(i)
	if err != nil {
		return nil, err
	}
	return gradTilesPanel(fmt.Sprintf("Occlusion %dx%d / %d: %s", r.Window[0], r.Window[1], r.Stride[0], targetText(r.Target, r.Classes, r.Scores, i)), ts)
}

// AppendHTML adds a section per example to h.
func (r *OcclusionResult) AppendHTML(h *render.HTML) error {
	if r == nil || r.OcclusionResult == nil || r.Map == nil {
		return errors.New("vizkit: empty OcclusionResult")
	}
	for i := 0; i < r.Map.Shape[0]; i++ {
		ts, bars, err := r.tiles(i)
		if err != nil {
			return err
		}
		h.Heading(3, fmt.Sprintf("Occlusion — example %d", i))
		h.Paragraph(fmt.Sprintf("Drop of the %s when a %d×%d window (stride %d×%d, %d×%d positions) is set to %g; each pixel shows the mean drop over the windows covering it.",
			targetText(r.Target, r.Classes, r.Scores, i), r.Window[0], r.Window[1], r.Stride[0], r.Stride[1], r.Positions[0], r.Positions[1], r.Baseline))
		h.Figure(append(gradFigure(ts), render.FigureItem{Image: bars[0]}), render.FigureOptions{Pixelated: true})
	}
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (r *OcclusionResult) HTML() (string, error) { return fragmentOf(r.AppendHTML) }

func autoScaleTo(h, w, target int) int { return max(1, target/max(h, w, 1)) }

// InputImage draws example i of a normalised (N,C,H,W) input as a picture:
// the channels chosen (1: gray; 3: red, green, blue; empty:
// DefaultDisplayChannels(C)), each mapped back to pixels with norm (resolved
// for C channels, see engine.Normalization) and clipped to [0,255]. A channel out of
// range or a normalisation of the wrong length is an error naming it.
func InputImage(x *Array, i int, norm engine.Normalization, channels []int) (*image.RGBA, error) {
	if err := engine.CheckImages(x); err != nil {
		return nil, err
	}
	return drawInput(x, i, norm, channels)
}
