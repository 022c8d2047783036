package vizkit

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// ChannelSelection says which channels of a layer a feature-map grid shows.
type ChannelSelection int

const (
	// SelectFirst shows channels 0..N-1 (the default).
	SelectFirst ChannelSelection = iota
	// SelectTopMean shows the N channels with the largest mean activation over
	// H×W, largest first (ties: lower index first).
	SelectTopMean
	// SelectTopEnergy shows the N channels with the largest energy, the L2 norm
	// sqrt(Σ a²) over H×W, largest first (ties: lower index first).
	SelectTopEnergy
	// SelectList shows FeatureOptions.Channels, in that order.
	SelectList
)

// String names the selection for captions.
func (s ChannelSelection) String() string {
	switch s {
	case SelectTopMean:
		return "top by mean activation"
	case SelectTopEnergy:
		return "top by energy (L2 norm)"
	case SelectList:
		return "chosen channels"
	default:
		return "first channels"
	}
}

// Defaults of FeatureOptions and FeatureStyle.
const (
	// DefaultFeatureChannels is how many channels a grid shows by default.
	DefaultFeatureChannels = 16
	// DefaultFeatureTilePx is the size small maps are enlarged towards by
	// default (nearest neighbour, integer factor): a 14×14 map becomes 56×56,
	// 7×7 becomes 63×63; maps of 32 pixels or more are not enlarged.
	DefaultFeatureTilePx = 64
	// DefaultFeaturePad is the default gap in pixels between maps.
	DefaultFeaturePad = 2
	// DefaultOverlayAlpha is the heat-map weight of overlays (pytorch-grad-cam's
	// image_weight = 1 − alpha = 0.5).
	DefaultOverlayAlpha = 0.5
)

// FeatureOptions says which feature maps FeatureMaps selects: the channels
// and the example of the batch. They change which numbers a result holds
// (LayerFeatures.Channels); how they are drawn is FeatureStyle. The zero
// value selects the first 16 channels of example 0.
type FeatureOptions struct {
	// Select chooses the channels (default SelectFirst). A non-empty Channels
	// list implies SelectList (Select must then be SelectFirst or SelectList).
	Select ChannelSelection
	// N is how many channels to show; 0 means DefaultFeatureChannels. Clamped
	// to the layer's channel count. Ignored by SelectList.
	N int
	// Channels are the channels shown by SelectList, validated against every
	// requested layer; repeats are an error.
	Channels []int
	// Example is the batch index whose maps are selected and drawn (default 0).
	Example int
}

// FeatureStyle says how a FeatureMapsResult is drawn (Grid, SummaryImage,
// Overlay, HTML): it changes pixels only, never which maps are selected
// (that is FeatureOptions). The zero value draws each map scaled to its own
// min–max in viridis, small maps enlarged towards DefaultFeatureTilePx,
// captioned with channel indices, overlays with weight DefaultOverlayAlpha.
type FeatureStyle struct {
	// Norm is NormPerMap (each map its own min–max, the default) or NormShared
	// (one range over the maps shown of a layer).
	Norm Norm
	// Colormap colours the maps; the zero value means render.Viridis.
	Colormap render.Colormap
	// Scale enlarges small maps by pixel replication; 0 means the largest
	// integer factor keeping a map ≤ DefaultFeatureTilePx (at least 1).
	Scale int
	// Pad is the gap between maps in pixels; 0 means DefaultFeaturePad and a
	// negative value means none.
	Pad int
	// Cols is the number of grid columns; 0 means ceil(√maps).
	Cols int
	// NoCaptions drops the channel-index captions.
	NoCaptions bool
	// Alpha is the heat-map weight of overlays in (0, 1]; 0 means
	// DefaultOverlayAlpha.
	Alpha float64
}

// check reports a style field out of range.
func (s FeatureStyle) check() error {
	if s.Scale < 0 || s.Cols < 0 {
		return fmt.Errorf("FeatureStyle: Scale (%d) and Cols (%d) must not be negative", s.Scale, s.Cols)
	}
	if !(s.Alpha >= 0 && s.Alpha <= 1) {
		return fmt.Errorf("FeatureStyle: Alpha %v must be in [0, 1] (0 means %v)", s.Alpha, DefaultOverlayAlpha)
	}
	return s.Norm.valid()
}

// LayerFeatures holds one layer's activations and the selection drawn from them.
type LayerFeatures struct {
	// Layer describes the layer (name, kind, channels).
	Layer models.Layer
	// Acts are the layer's outputs for the whole batch (N,C,H,W).
	Acts *Array
	// Channels are the selected channels of the chosen example, in display order.
	Channels []int
	// Means and Energies are, per channel of the chosen example, the mean over
	// H×W and the L2 norm sqrt(Σ a²) over H×W (C).
	Means, Energies []float32
	// Summary is the mean over all C channels of the chosen example (H,W).
	Summary *Array
}

// FeatureMapsResult holds the feature maps of one or several layers for an
// input batch, computed by one engine execution, and how they are drawn.
type FeatureMapsResult struct {
	// Layers are the requested layers, in request order.
	Layers []*LayerFeatures
	// Classes are the top-1 classes per example (N); Logits the outputs (N,K).
	Classes []int
	Logits  *Array
	// Options are the selection used; Example is the example selected and drawn.
	Options FeatureOptions
	// Style is how Grid, SummaryImage, Overlay and HTML draw the maps (the
	// façade sets it from a FeatureStyle option); change it freely between
	// calls, or draw with another one through WithStyle.
	Style FeatureStyle
	// Image is the input picture (as shown to a person, e.g. imageio's
	// Input.Image) that Overlay and HTML draw overlays on; nil means no
	// overlays in HTML. The façade sets it to the preprocessed picture.
	Image image.Image
}

// WithStyle returns r drawn with style: a copy sharing r's maps and
// selection, e.g. nb.Show(res.WithStyle(vizkit.FeatureStyle{Norm:
// vizkit.NormShared})).
func (r *FeatureMapsResult) WithStyle(style FeatureStyle) *FeatureMapsResult {
	out := *r
	out.Style = style
	return &out
}

// FeatureMapsOf runs x (N,C,H,W) once through the network, tapping every
// layer of layers (spatial layers only: features.N, avgpool), and selects
// channels of example opts.Example per opts. Errors name the layer, channel or
// example that is out of range.
func FeatureMapsOf(e *engine.Explainer, x *Array, layers []string, opts FeatureOptions) (*FeatureMapsResult, error) {
	if len(layers) == 0 {
		return nil, errors.New("FeatureMaps: no layers given")
	}
	if err := checkFeatureOptions(opts); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	descs := make([]models.Layer, len(layers))
	for i, name := range layers {
		if seen[name] {
			return nil, fmt.Errorf("FeatureMaps: layer %q is listed twice", name)
		}
		seen[name] = true
		l, err := e.Layer(name)
		if err != nil {
			return nil, err
		}
		if !l.Spatial {
			return nil, fmt.Errorf("feature maps need a layer with spatial extent (N,C,H,W); %q is a %s with output (N,%d); spatial layers: %s",
				name, l.Kind, l.Out, joinNames(spatialLayers(e.Layers())))
		}
		if err := checkChannelList(opts.Channels, name, l.Out); err != nil {
			return nil, err
		}
		descs[i] = l
	}
	if x != nil && len(x.Shape) == 4 && (opts.Example < 0 || opts.Example >= x.Shape[0]) {
		return nil, fmt.Errorf("example %d is out of range for a batch of %d (valid: 0..%d)", opts.Example, x.Shape[0], x.Shape[0]-1)
	}
	res, err := e.Run(x, engine.Request{Taps: layers, Target: engine.Predicted()})
	if err != nil {
		return nil, err
	}
	out := &FeatureMapsResult{Classes: res.Classes, Logits: res.Logits, Options: opts}
	for i, name := range layers {
		acts := res.Acts[name]
		if err := acts.CheckFinite("activations of " + name); err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, &LayerFeatures{Layer: descs[i], Acts: acts})
	}
	if err := out.selectAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// NewFeatureMapsResult wraps activations computed elsewhere (e.g. Result.Acts):
// acts[i] (N,C,H,W) are the outputs of layers[i] (whose Out must equal C).
// Channels are selected for opts.Example as FeatureMaps does.
func NewFeatureMapsResult(layers []models.Layer, acts []*Array, opts FeatureOptions) (*FeatureMapsResult, error) {
	if len(layers) == 0 || len(layers) != len(acts) {
		return nil, fmt.Errorf("NewFeatureMapsResult: %d layers for %d activation arrays (want the same, at least 1)", len(layers), len(acts))
	}
	if err := checkFeatureOptions(opts); err != nil {
		return nil, err
	}
	out := &FeatureMapsResult{Options: opts}
	for i, l := range layers {
		a := acts[i]
		if a == nil || len(a.Shape) != 4 || a.Shape[1] != l.Out || a.Size() != a.Shape[0]*a.Shape[1]*a.Shape[2]*a.Shape[3] || a.Size() == 0 {
			var shape any = "nil"
			if a != nil {
				shape = a.Shape
			}
			return nil, fmt.Errorf("NewFeatureMapsResult: activations of %s must be (N,%d,H,W) with data, got shape %v", l.Name, l.Out, shape)
		}
		if err := checkChannelList(opts.Channels, l.Name, l.Out); err != nil {
			return nil, err
		}
		if err := a.CheckFinite("activations of " + l.Name); err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, &LayerFeatures{Layer: l, Acts: a})
	}
	if err := out.selectAll(); err != nil {
		return nil, err
	}
	return out, nil
}

// ForExample returns a view of r with example i of the batch selected (the
// activations are shared, not copied; selection and summaries are redone).
func (r *FeatureMapsResult) ForExample(i int) (*FeatureMapsResult, error) {
	out := &FeatureMapsResult{Classes: r.Classes, Logits: r.Logits, Options: r.Options, Style: r.Style, Image: r.Image}
	out.Options.Example = i
	for _, lf := range r.Layers {
		out.Layers = append(out.Layers, &LayerFeatures{Layer: lf.Layer, Acts: lf.Acts})
	}
	if err := out.selectAll(); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *FeatureMapsResult) selectAll() error {
	if err := checkFeatureOptions(r.Options); err != nil {
		return err
	}
	for _, lf := range r.Layers {
		if lf.Acts == nil || len(lf.Acts.Shape) != 4 {
			return fmt.Errorf("feature maps of %s: activations must be (N,C,H,W)", lf.Layer.Name)
		}
		n := lf.Acts.Shape[0]
		if r.Options.Example < 0 || r.Options.Example >= n {
			return fmt.Errorf("example %d is out of range for a batch of %d (valid: 0..%d)", r.Options.Example, n, n-1)
		}
		ex := lf.Acts.Index(r.Options.Example)
		c, h, w := ex.Shape[0], ex.Shape[1], ex.Shape[2]
		lf.Means, lf.Energies = channelStats(ex)
		sel, err := SelectChannels(ex, lf.Layer.Name, r.Options)
		if err != nil {
			return err
		}
		lf.Channels = sel
		sum := make([]float64, h*w)
		for ci := 0; ci < c; ci++ {
			for j, v := range ex.Data[ci*h*w : (ci+1)*h*w] {
				sum[j] += float64(v)
			}
		}
		lf.Summary = engine.NewArray(h, w)
		for j, s := range sum {
			lf.Summary.Data[j] = float32(s / float64(c))
		}
	}
	return nil
}

func checkFeatureOptions(o FeatureOptions) error {
	if o.Select < SelectFirst || o.Select > SelectList {
		return fmt.Errorf("unknown channel selection %d", int(o.Select))
	}
	if len(o.Channels) > 0 && o.Select != SelectFirst && o.Select != SelectList {
		return fmt.Errorf("FeatureOptions: Channels %v given with selection %q; use SelectList (or leave Select unset)", o.Channels, o.Select)
	}
	if o.Select == SelectList && len(o.Channels) == 0 {
		return errors.New("FeatureOptions: SelectList needs a non-empty Channels list")
	}
	if o.N < 0 {
		return fmt.Errorf("FeatureOptions: N (%d) must not be negative", o.N)
	}
	return nil
}

func checkChannelList(chs []int, layer string, c int) error {
	seen := map[int]bool{}
	for _, ch := range chs {
		if ch < 0 || ch >= c {
			return fmt.Errorf("channel %d is out of range for %s with %d channels (valid: 0..%d)", ch, layer, c, c-1)
		}
		if seen[ch] {
			return fmt.Errorf("channel %d is listed twice for %s", ch, layer)
		}
		seen[ch] = true
	}
	return nil
}

// channelStats returns per-channel mean and L2 norm of a (C,H,W) array.
func channelStats(a *Array) (means, energies []float32) {
	c := a.Shape[0]
	hw := a.Size() / c
	means = make([]float32, c)
	energies = make([]float32, c)
	for ci := 0; ci < c; ci++ {
		s, ss := 0.0, 0.0
		for _, v := range a.Data[ci*hw : (ci+1)*hw] {
			s += float64(v)
			ss += float64(v) * float64(v)
		}
		means[ci] = float32(s / float64(hw))
		energies[ci] = float32(math.Sqrt(ss))
	}
	return means, energies
}

// SelectChannels picks the channels of one example's activations acts
// (C,H,W) that opts asks for (see ChannelSelection); layer names the layer in
// errors. The result is in display order.
func SelectChannels(acts *Array, layer string, opts FeatureOptions) ([]int, error) {
	if acts == nil || len(acts.Shape) != 3 || acts.Shape[0] < 1 {
		var shape any = "nil"
		if acts != nil {
			shape = acts.Shape
		}
		return nil, fmt.Errorf("SelectChannels: activations of %s must be (C,H,W), got %v", layer, shape)
	}
	if err := checkFeatureOptions(opts); err != nil {
		return nil, err
	}
	c := acts.Shape[0]
	if len(opts.Channels) > 0 {
		if err := checkChannelList(opts.Channels, layer, c); err != nil {
			return nil, err
		}
		return append([]int(nil), opts.Channels...), nil
	}
	n := opts.N
	if n == 0 {
		n = DefaultFeatureChannels
	}
	n = min(n, c)
	order := make([]int, c)
	for i := range order {
		order[i] = i
	}
	if opts.Select == SelectTopMean || opts.Select == SelectTopEnergy {
		means, energies := channelStats(acts)
		key := means
		if opts.Select == SelectTopEnergy {
			key = energies
		}
		sort.SliceStable(order, func(a, b int) bool { return key[order[a]] > key[order[b]] })
	}
	return order[:n], nil
}

// Layer returns the features of one of the result's layers.
func (r *FeatureMapsResult) Layer(name string) (*LayerFeatures, error) {
	var names []string
	for _, lf := range r.Layers {
		if lf.Layer.Name == name {
			return lf, nil
		}
		names = append(names, lf.Layer.Name)
	}
	return nil, fmt.Errorf("the feature maps hold no layer %q; they hold %s", name, joinNames(names))
}

// channelMap returns channel ch (or the summary for ch = -1) of the chosen example.
func (r *FeatureMapsResult) channelMap(lf *LayerFeatures, ch int) (render.Map, error) {
	ex := lf.Acts.Index(r.Options.Example)
	c, h, w := ex.Shape[0], ex.Shape[1], ex.Shape[2]
	if ch == -1 {
		return heatmap.NewMap(h, w, lf.Summary.Data)
	}
	if ch < 0 || ch >= c {
		return render.Map{}, fmt.Errorf("channel %d is out of range for %s with %d channels (valid: 0..%d, or -1 for the mean over channels)", ch, lf.Layer.Name, c, c-1)
	}
	return heatmap.NewMap(h, w, ex.Data[ch*h*w:(ch+1)*h*w])
}

func (r *FeatureMapsResult) colormap() render.Colormap {
	if r.Style.Colormap.Valid() {
		return r.Style.Colormap
	}
	return render.Viridis
}

// featurePicture is a drawn grid plus what its legend needs.
type featurePicture struct {
	img    *image.RGBA
	shared *render.Range
	flat   []string // "channel (value)" of constant maps
	scale  int
}

func (r *FeatureMapsResult) drawGrid(lf *LayerFeatures) (*featurePicture, error) {
	if err := r.Style.check(); err != nil {
		return nil, err
	}
	ex := lf.Acts.Index(r.Options.Example)
	h, w := ex.Shape[1], ex.Shape[2]
	pic := &featurePicture{scale: r.Style.Scale}
	if pic.scale == 0 {
		pic.scale = autoScale(h, w, DefaultFeatureTilePx)
	}
	maps := make([]render.Map, len(lf.Channels))
	var shown []float32
	for i, ch := range lf.Channels {
		m, err := r.channelMap(lf, ch)
		if err != nil {
			return nil, err
		}
		maps[i] = m
		shown = append(shown, m.Data...)
	}
	if r.Style.Norm == NormShared {
		lo, hi, _ := valueRange(shown)
		pic.shared = &render.Range{Min: lo, Max: hi}
	}
	cmap := r.colormap()
	tiles := make([]image.Image, len(maps))
	captions := make([]string, len(maps))
	for i, m := range maps {
		var rg render.Range
		if pic.shared != nil {
			rg = *pic.shared
		}
		col, err := render.Colorize(m, cmap, rg)
		if err != nil {
			return nil, fmt.Errorf("feature map %s channel %d: %w", lf.Layer.Name, lf.Channels[i], err)
		}
		if lo, hi, _ := valueRange(m.Data); lo == hi {
			pic.flat = append(pic.flat, fmt.Sprintf("%d (%s)", lf.Channels[i], heatmap.FormatValue(lo)))
		}
		tiles[i] = col.Image
		captions[i] = fmt.Sprint(lf.Channels[i])
	}
	if r.Style.NoCaptions {
		captions = nil
	}
	pad := DefaultFeaturePad
	if r.Style.Pad > 0 {
		pad = r.Style.Pad
	} else if r.Style.Pad < 0 {
		pad = 0
	}
	img, err := render.Grid(tiles, render.GridOptions{Cols: r.Style.Cols, Pad: pad, Captions: captions, Scale: pic.scale, MaxCaptionChars: 6})
	if err != nil {
		return nil, fmt.Errorf("feature maps of %s: %w", lf.Layer.Name, err)
	}
	pic.img = img
	return pic, nil
}

// Grid draws the selected channels of a layer for the chosen example as a
// grid of colourised maps (captioned with channel indices), in r.Style. Constant maps are drawn in the colormap's low colour.
func (r *FeatureMapsResult) Grid(layer string) (*image.RGBA, error) {
	lf, err := r.Layer(layer)
	if err != nil {
		return nil, err
	}
	pic, err := r.drawGrid(lf)
	if err != nil {
		return nil, err
	}
	return pic.img, nil
}

// SummaryImage colourises the layer's summary map (mean over all channels of
// the chosen example), min–max scaled, at the layer's resolution.
func (r *FeatureMapsResult) SummaryImage(layer string) (render.Colorized, error) {
	lf, err := r.Layer(layer)
	if err != nil {
		return render.Colorized{}, err
	}
	m, err := r.channelMap(lf, -1)
	if err != nil {
		return render.Colorized{}, err
	}
	return render.Colorize(m, r.colormap(), render.Range{})
}

// Overlay blends channel ch of a layer (or the summary map for ch = -1), for
// the chosen example, over base (nil means r.Image): the map is scaled to
// [0, 1) as pytorch-grad-cam's scale_cam_image does, resized bilinearly to
// base's size and drawn with render.Overlay (JET, weight r.Style.Alpha). A
// constant map scales to all zeros (uniform dark blue tint).
func (r *FeatureMapsResult) Overlay(layer string, ch int, base image.Image) (*image.RGBA, error) {
	if err := r.Style.check(); err != nil {
		return nil, err
	}
	lf, err := r.Layer(layer)
	if err != nil {
		return nil, err
	}
	if base == nil {
		base = r.Image
	}
	if base == nil {
		return nil, fmt.Errorf("overlay of %s: no input image (pass one, or set FeatureMapsResult.Image)", layer)
	}
	m, err := r.channelMap(lf, ch)
	if err != nil {
		return nil, err
	}
	scaled, err := heatmap.ScaleCAM(m)
	if err != nil {
		return nil, err
	}
	alpha := r.Style.Alpha
	if alpha == 0 {
		alpha = DefaultOverlayAlpha
	}
	return render.Overlay(base, scaled, render.Jet, alpha)
}

// AppendHTML appends one section per layer to h: a heading, what is shown,
// the value range, the grid with a colour bar, the summary map (and overlays
// on r.Image when set), and a note for constant maps, drawn in r.Style.
func (r *FeatureMapsResult) AppendHTML(h *render.HTML) error {
	if r == nil || len(r.Layers) == 0 {
		return errors.New("vizkit: FeatureMapsResult holds no layers")
	}
	if h == nil {
		return errors.New("vizkit: AppendHTML needs a *render.HTML builder, got nil")
	}
	cmap := r.colormap()
	for _, lf := range r.Layers {
		pic, err := r.drawGrid(lf)
		if err != nil {
			return err
		}
		ex := lf.Acts.Index(r.Options.Example)
		c, hh, ww := ex.Shape[0], ex.Shape[1], ex.Shape[2]
		title := fmt.Sprintf("Feature maps of %s (%s): %d channels, %d×%d", lf.Layer.Name, lf.Layer.Kind, c, hh, ww)
		if lf.Acts.Shape[0] > 1 {
			title += fmt.Sprintf(", example %d of %d", r.Options.Example, lf.Acts.Shape[0])
		}
		h.Heading(3, title)
		lo, hi, _ := valueRange(ex.Data)
		zeros := 0
		for _, v := range ex.Data {
			if v == 0 {
				zeros++
			}
		}
		sel := r.Options.Select
		if len(r.Options.Channels) > 0 {
			sel = SelectList
		}
		enlarged := ""
		if pic.scale > 1 {
			enlarged = fmt.Sprintf(", maps enlarged %d× (nearest)", pic.scale)
		}
		h.Paragraph(fmt.Sprintf("Showing %d of %d channels (%s)%s, %s. Layer values over [%s, %s], %.1f%% exactly zero.",
			len(lf.Channels), c, sel, enlarged, r.Style.Norm, heatmap.FormatValue(lo), heatmap.FormatValue(hi), 100*float64(zeros)/float64(len(ex.Data))))
		bar, err := colorbarFor(cmap, pic.shared, false, "activation")
		if err != nil {
			return err
		}
		sum, err := r.SummaryImage(lf.Layer.Name)
		if err != nil {
			return err
		}
		sumScale := autoScale(hh, ww, 224)
		sumImg, err := render.UpscaleNearest(sum.Image, sumScale)
		if err != nil {
			return err
		}
		sumCaption := fmt.Sprintf("mean over all %d channels, %s", c, sum.Range)
		if sum.Flat {
			sumCaption += " (" + sum.Note + ")"
		}
		items := []render.FigureItem{
			{Image: pic.img, Caption: "channels (index under each map)", WidthPx: displayWidth(pic.img)},
			{Image: bar, Caption: "colour scale of the grid"},
			{Image: sumImg, Caption: sumCaption},
		}
		if r.Image != nil {
			ov, err := r.Overlay(lf.Layer.Name, -1, nil)
			if err != nil {
				return err
			}
			items = append(items, render.FigureItem{Image: ov, Caption: "mean map over the input (JET)"})
			if len(lf.Channels) > 0 {
				ov, err := r.Overlay(lf.Layer.Name, lf.Channels[0], nil)
				if err != nil {
					return err
				}
				items = append(items, render.FigureItem{Image: ov, Caption: fmt.Sprintf("channel %d over the input (JET)", lf.Channels[0])})
			}
		}
		h.Figure(items, render.FigureOptions{Pixelated: true})
		if len(pic.flat) > 0 {
			h.Warning(fmt.Sprintf("%d of %d maps shown are constant (no activation pattern for this input; after a ReLU usually all zero, a dead channel): channel (value) %s.",
				len(pic.flat), len(lf.Channels), joinStrings(pic.flat, 12)))
		}
	}
	return h.Err()
}

// HTML renders the sections as a self-contained fragment (see AppendHTML).
func (r *FeatureMapsResult) HTML() (string, error) {
	h := render.NewHTML()
	if err := r.AppendHTML(h); err != nil {
		return "", err
	}
	return h.String(), nil
}

func spatialLayers(layers []models.Layer) []string {
	var out []string
	for _, l := range layers {
		if l.Spatial {
			out = append(out, l.Name)
		}
	}
	return out
}
