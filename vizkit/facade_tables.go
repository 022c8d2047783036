package vizkit

// Façade results that the tutorial notebooks once built by hand in their
// cells: kernel norms against the initialisation rule, receptive fields,
// activation sparsity, Grad-CAM's intermediate steps, and side-by-side CAMs.

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// TableResult is a titled table with notes; it displays with nb.Show.
type TableResult struct {
	Title   string
	Headers []string
	Rows    [][]string
	Notes   []string
	// Figure, when set, is shown under the table.
	Figure      []render.FigureItem
	FigureTitle string
}

// HTML renders the table (vizkit.HTMLer).
func (t *TableResult) HTML() (string, error) {
	if t == nil {
		return "", errors.New("vizkit: nil TableResult")
	}
	h := render.NewHTML()
	if t.Title != "" {
		h.Heading(3, t.Title)
	}
	h.Table(t.Headers, t.Rows)
	for _, n := range t.Notes {
		h.Paragraph(n)
	}
	if len(t.Figure) > 0 {
		h.Figure(t.Figure, render.FigureOptions{Title: t.FigureTitle})
	}
	return h.String(), h.Err()
}

// KernelNorms tabulates, for every convolution of m, the L2 norms of its
// kernels (one [I,kh,kw] block per output channel) against the value that
// torchvision's initialisation predicts for VGG (kaiming_normal_, fan_out:
// E‖k‖ ≈ √(2·I/O) for I·kh·kw ≫ 1, with kh·kw = 9).
func KernelNorms(m *Model) (*TableResult, error) {
	if m == nil {
		return nil, errors.New("vizkit.KernelNorms: nil model")
	}
	t := &TableResult{Title: "Kernel L2 norms per convolution",
		Headers: []string{"layer", "weights (O×I×kh×kw)", "predicted at init √(2·I·kh·kw/(9·O))", "measured mean", "min – max", "mean vs prediction"}}
	for _, l := range m.Net.Layers() {
		if l.Kind != models.Conv2d {
			continue
		}
		k, err := KernelsOf(m.Net, l.Name, KernelOptions{})
		if err != nil {
			return nil, err
		}
		s := k.Weights.Shape
		o, i, kk := s[0], s[1], s[2]*s[3]
		mean, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		for _, n := range k.Norms {
			mean += float64(n) / float64(o)
			lo, hi = math.Min(lo, float64(n)), math.Max(hi, float64(n))
		}
		pred := math.Sqrt(2 * float64(i*kk) / (9 * float64(o)))
		t.Rows = append(t.Rows, []string{l.Name, fmt.Sprintf("%d×%d×%d×%d", o, i, s[2], s[3]),
			fmt.Sprintf("%.3f", pred), fmt.Sprintf("%.3f", mean), fmt.Sprintf("%.3f – %.3f", lo, hi),
			fmt.Sprintf("%+.1f%%", 100*(mean/pred-1))})
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("vizkit.KernelNorms: %s has no convolution", m.Net.Arch())
	}
	t.Notes = []string{"weights: " + m.Info.Source}
	return t, nil
}

// ReceptiveFields tabulates, for each ReLU output of the network's
// convolutional part, its map size, channels, stride (input pixels between
// neighbouring positions) and theoretical receptive field, and draws the
// receptive field of one central position on the preprocessed picture.
// Convolutions are taken as stride 1 unless their output is smaller, with
// the kernel size read from the weights; a module that shrinks the map by s
// otherwise is taken as an s×s pooling with stride s (VGG's max-pools). Only
// chains are modelled (VGG, the lab's CNN): side branches such as ResNet's
// downsample convolutions are not.
func ReceptiveFields(m *Model, img *Image) (*TableResult, error) {
	if m == nil {
		return nil, errors.New("vizkit.ReceptiveFields: nil model")
	}
	_, crop, err := m.Input(img)
	if err != nil {
		return nil, err
	}
	b := crop.Bounds()
	table, err := LayerTable(m.Net, b.Dy(), b.Dx())
	if err != nil {
		return nil, err
	}
	t := &TableResult{Title: "Resolution and receptive field of each ReLU output",
		Headers:     []string{"layer", "map size", "channels", "stride (px between positions)", "receptive field", "share of the picture"},
		FigureTitle: "receptive field of one central position (red box)"}
	rf, jump, prevH := 1, 1, b.Dy()
	for _, r := range table.Rows {
		if len(r.Shape) != 3 {
			continue
		}
		if r.Kind == models.AdaptiveAvgPool2d || r.Kind == models.GlobalAvgPool {
			break
		}
		h := r.Shape[1]
		stride := 1
		if h > 0 && h < prevH {
			stride = int(math.Round(float64(prevH) / float64(h)))
		}
		switch r.Kind {
		case models.Conv2d:
			w, _, err := m.Net.Weight(r.Name)
			if err != nil {
				return nil, err
			}
			rf += (w.Shape[2] - 1) * jump
			jump *= stride
		case models.MaxPool2d, models.AvgPool2d:
			if stride > 1 {
				rf += (stride - 1) * jump
				jump *= stride
			}
		}
		prevH = h
		if r.Kind != models.ReLU && r.Kind != models.ReLU6 {
			continue
		}
		area := float64(min(rf, b.Dy())*min(rf, b.Dx())) / float64(b.Dx()*b.Dy())
		t.Rows = append(t.Rows, []string{r.Name, fmt.Sprintf("%d×%d", r.Shape[1], r.Shape[2]), fmt.Sprint(r.Shape[0]),
			fmt.Sprintf("%d px", jump), fmt.Sprintf("%d×%d px", rf, rf), fmt.Sprintf("%.1f%%", 100*area)})
		cx, cy := b.Dx()/2, b.Dy()/2
		box := image.Rect(max(0, cx-rf/2), max(0, cy-rf/2), min(b.Dx(), cx-rf/2+rf), min(b.Dy(), cy-rf/2+rf))
		pic, err := render.DrawBox(crop, box, color.RGBA{R: 255, G: 40, B: 40, A: 255}, 2)
		if err != nil {
			return nil, err
		}
		t.Figure = append(t.Figure, render.FigureItem{Image: pic, Caption: fmt.Sprintf("%s: %d px", r.Name, rf), WidthPx: 150})
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("vizkit.ReceptiveFields: %s has no spatial ReLU", m.Net.Arch())
	}
	t.Notes = []string{"The receptive field is the theoretical extent: in practice its centre counts far more than its border."}
	return t, nil
}

// Sparsity tabulates how much of each layer's output is exactly zero for img
// (default layers: every spatial ReLU output): the share of zero values, the
// channels that are zero everywhere, and the mean activation.
func Sparsity(m *Model, img *Image, layers ...string) (*TableResult, error) {
	if m == nil {
		return nil, errors.New("vizkit.Sparsity: nil model")
	}
	if len(layers) == 0 {
		for _, l := range m.Net.Layers() {
			if l.Spatial && (l.Kind == models.ReLU || l.Kind == models.ReLU6) {
				layers = append(layers, l.Name)
			}
		}
	}
	x, _, err := m.Input(img)
	if err != nil {
		return nil, err
	}
	res, err := m.Ex.Run(x, engine.Request{Taps: layers})
	if err != nil {
		return nil, err
	}
	t := &TableResult{Title: "How much of each layer is exactly zero",
		Headers: []string{"layer", "shape (C×H×W)", "values = 0", "channels all zero", "mean activation"}}
	for _, name := range layers {
		a := res.Acts[name].Index(0)
		if a.Rank() != 3 {
			return nil, fmt.Errorf("vizkit.Sparsity: %s is not spatial (shape %v)", name, a.Shape)
		}
		c, hw := a.Shape[0], a.Shape[1]*a.Shape[2]
		zeros, dead, sum := 0, 0, 0.0
		for ch := 0; ch < c; ch++ {
			z := 0
			for _, v := range a.Data[ch*hw : (ch+1)*hw] {
				if v == 0 {
					z++
				}
				sum += float64(v)
			}
			zeros += z
			if z == hw {
				dead++
			}
		}
		t.Rows = append(t.Rows, []string{name, fmt.Sprintf("%d×%d×%d", c, a.Shape[1], a.Shape[2]),
			fmt.Sprintf("%.1f%%", 100*float64(zeros)/float64(c*hw)), fmt.Sprintf("%d of %d", dead, c),
			fmt.Sprintf("%.3g", sum/float64(c*hw))})
	}
	return t, nil
}

// GradCAMSteps opens up Grad-CAM of img at the default layer (or AtLayer):
// how many channel weights w_c (mean gradients) are positive, the six
// largest with their activation maps A_c, and the low-resolution map
// ReLU(Σ w_c A_c) before upsampling. Options: AtLayer, ForClass / ForTarget.
func GradCAMSteps(m *Model, img *Image, opts ...Option) (*TableResult, error) {
	s, err := collect("vizkit.GradCAMSteps", opts, "AtLayer", "ForClass", "ForTarget")
	if err != nil {
		return nil, err
	}
	if len(s.layers) > 1 {
		return nil, errors.New("vizkit.GradCAMSteps: one layer at a time")
	}
	res, err := GradCAM(m, img, opts...)
	if err != nil {
		return nil, err
	}
	layer := res.Layers[0]
	w := res.Weights[layer].Index(0).Data // (C)
	order := make([]int, len(w))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return w[order[a]] > w[order[b]] })
	top := order[:min(6, len(order))]
	x, _, err := m.Input(img)
	if err != nil {
		return nil, err
	}
	fm, err := FeatureMapsOf(m.Ex, x, []string{layer}, FeatureOptions{Channels: top})
	if err != nil {
		return nil, err
	}
	grid, err := fm.WithStyle(FeatureStyle{Scale: 16}).Grid(layer)
	if err != nil {
		return nil, err
	}
	low := res.Low[layer].Index(0) // (h,w) in [0,1]
	lm, err := heatmap.NewMap(low.Shape[0], low.Shape[1], low.Data)
	if err != nil {
		return nil, err
	}
	lc, err := render.Colorize(lm, render.Jet, render.Range{Min: 0, Max: 1})
	if err != nil {
		return nil, err
	}
	lowBig, err := render.UpscaleNearest(lc.Image, max(1, 224/max(low.Shape[0], 1)))
	if err != nil {
		return nil, err
	}
	pos := 0
	for _, v := range w {
		if v > 0 {
			pos++
		}
	}
	t := &TableResult{Title: fmt.Sprintf("Grad-CAM at %s for %s, step by step", layer, m.Label(res.Classes[0])),
		Headers: []string{"channel", "weight w_c (mean gradient)"},
		Notes:   []string{fmt.Sprintf("%d of %d channel weights are positive; the table lists the largest.", pos, len(w))},
		Figure: []render.FigureItem{
			{Image: grid, Caption: "their activations A_c (each map its own range)"},
			{Image: lowBig, Caption: fmt.Sprintf("the %d×%d map: ReLU(Σ w_c A_c), scaled", low.Shape[0], low.Shape[1]), WidthPx: 224},
		}}
	for _, c := range top {
		t.Rows = append(t.Rows, []string{fmt.Sprint(c), fmt.Sprintf("%.3g", w[c])})
	}
	return t, nil
}

// CAMVariant is one CAM in a CompareCAM: a method (default "gradcam") and
// its options.
type CAMVariant struct {
	Method  string
	Options []Option
	// Label captions the tile; default: what distinguishes it (method,
	// layer, class, smoothing).
	Label string
}

// Methods returns one variant per method name.
func Methods(names ...string) []CAMVariant {
	out := make([]CAMVariant, len(names))
	for i, n := range names {
		out[i] = CAMVariant{Method: n}
	}
	return out
}

// AtLayers returns Grad-CAM variants, one per layer; "a,b" averages layers a and b.
func AtLayers(layers ...string) []CAMVariant {
	out := make([]CAMVariant, len(layers))
	for i, l := range layers {
		out[i] = CAMVariant{Method: "gradcam", Options: []Option{AtLayer(splitNames(l)...)}, Label: strings.ReplaceAll(l, ",", "+")}
	}
	return out
}

// ForClasses returns Grad-CAM variants, one per class.
func ForClasses(classes ...int) []CAMVariant {
	out := make([]CAMVariant, len(classes))
	for i, c := range classes {
		out[i] = CAMVariant{Method: "gradcam", Options: []Option{ForClass(c)}}
	}
	return out
}

// Smoothings returns Grad-CAM plain, with EigenSmooth, with AugSmooth and
// with both.
func Smoothings() []CAMVariant {
	return []CAMVariant{
		{Method: "gradcam", Label: "Grad-CAM plain"},
		{Method: "gradcam", Options: []Option{EigenSmooth()}, Label: "EigenSmooth"},
		{Method: "gradcam", Options: []Option{AugSmooth()}, Label: "AugSmooth"},
		{Method: "gradcam", Options: []Option{EigenSmooth(), AugSmooth()}, Label: "both"},
	}
}

// With adds opts to every variant.
func With(variants []CAMVariant, opts ...Option) []CAMVariant {
	out := make([]CAMVariant, len(variants))
	for i, v := range variants {
		v.Options = append(append([]Option(nil), v.Options...), opts...)
		out[i] = v
	}
	return out
}

// CAMComparison is several CAMs of one picture side by side.
type CAMComparison struct {
	Results []*CAMResult
	Labels  []string
	// Failed lists the variants that do not apply, with the reason (e.g.
	// plain CAM on a network without global average pooling).
	Failed []string
	Style  CAMStyle
}

// CompareCAM computes one CAM of img per variant and shows them side by side
// after the input; with a progress bar in a notebook. A variant that fails
// is reported in Failed (and in the display) instead of failing the call;
// CompareCAM fails only when none succeeds.
func CompareCAM(m *Model, img *Image, variants ...CAMVariant) (*CAMComparison, error) {
	if len(variants) == 0 {
		return nil, errors.New("vizkit.CompareCAM: no variants")
	}
	out := &CAMComparison{}
	sameMethod := true
	for _, v := range variants {
		sameMethod = sameMethod && v.Method == variants[0].Method
	}
	s := &settings{}
	prog := s.progressFor(fmt.Sprintf("%d class activation maps", len(variants)))
	for i, v := range variants {
		method := v.Method
		if method == "" {
			method = "gradcam"
		}
		r, err := CAM(m, img, method, v.Options...)
		if prog != nil {
			prog(Progress{Done: i + 1, Total: len(variants)})
		}
		if err != nil {
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %v", method, err))
			continue
		}
		label := v.Label
		if label == "" {
			label = r.Title // methods side by side
			if sameMethod && len(variants) > 1 && r.Classes[0] >= 0 {
				label = m.Label(r.Classes[0]) // one method: the variants differ by target
			}
		}
		out.Results = append(out.Results, r)
		out.Labels = append(out.Labels, label)
	}
	if len(out.Results) == 0 {
		return nil, fmt.Errorf("vizkit.CompareCAM: every variant failed: %s", strings.Join(out.Failed, "; "))
	}
	return out, nil
}

// HTML draws the input and each overlay in a grid (6 columns), with the
// low-resolution maps under them when one method runs at several layers
// (then one row), then the notes and the
// variants that failed (vizkit.HTMLer).
func (c *CAMComparison) HTML() (string, error) {
	if c == nil || len(c.Results) == 0 {
		return "", errors.New("vizkit: empty CAMComparison")
	}
	base := c.Results[0].Images
	if len(base) == 0 {
		return "", errors.New("vizkit: CAMComparison without the input picture")
	}
	tiles := []image.Image{base[0]}
	captions := []string{"input"}
	layersDiffer, sameMethod := false, true
	for i, r := range c.Results {
		ov, err := r.Overlay(0, base[0], c.Style)
		if err != nil {
			return "", err
		}
		tiles = append(tiles, ov)
		captions = append(captions, c.Labels[i])
		layersDiffer = layersDiffer || strings.Join(r.Layers, ",") != strings.Join(c.Results[0].Layers, ",")
		sameMethod = sameMethod && r.Method == c.Results[0].Method
	}
	// One method at several layers: each layer's own low-resolution map under
	// its overlay.
	layersDiffer = layersDiffer && sameMethod
	cols := min(len(tiles), 6)
	if layersDiffer {
		cols = len(tiles)
		tiles = append(tiles, nil)
		captions = append(captions, "")
		for _, r := range c.Results {
			if len(r.Layers) != 1 {
				tiles, captions = append(tiles, nil), append(captions, "")
				continue
			}
			low := r.Low[r.Layers[0]].Index(0)
			lm, err := heatmap.NewMap(low.Shape[0], low.Shape[1], low.Data)
			if err != nil {
				return "", err
			}
			lc, err := render.Colorize(lm, render.Jet, render.Range{Min: 0, Max: 1})
			if err != nil {
				return "", err
			}
			up, err := render.UpscaleNearest(lc.Image, max(1, base[0].Bounds().Dx()/max(low.Shape[1], 1)))
			if err != nil {
				return "", err
			}
			tiles = append(tiles, up)
			captions = append(captions, fmt.Sprintf("%d×%d at the layer", low.Shape[0], low.Shape[1]))
		}
	}
	title := fmt.Sprintf("target: class %d", c.Results[0].Classes[0])
	for _, r := range c.Results {
		if r.Classes[0] != c.Results[0].Classes[0] || r.Classes[0] < 0 {
			title = ""
		}
	}
	grid, err := render.Grid(tiles, render.GridOptions{Cols: cols, Pad: 6, Captions: captions, MaxCaptionChars: 26, Title: title})
	if err != nil {
		return "", err
	}
	h := render.NewHTML().Image(grid, "", 0)
	for _, r := range c.Results {
		for _, n := range r.Notes {
			if !strings.HasPrefix(n, r.Title+":") {
				n = r.Title + ": " + n
			}
			h.Paragraph(n)
		}
	}
	for _, f := range c.Failed {
		h.Paragraph("Not shown — " + f)
	}
	return h.String(), h.Err()
}
