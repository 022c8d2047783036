package vizkit

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// KernelView selects what each tile of a kernel grid shows.
type KernelView int

const (
	// KernelViewAuto is KernelViewRGB for layers with 3 input channels (the
	// first convolution) and KernelViewPairs otherwise.
	KernelViewAuto KernelView = iota
	// KernelViewRGB shows each output channel's [3,kh,kw] kernel as one colour
	// tile (input channel 0 = red, 1 = green, 2 = blue). Needs I = 3.
	KernelViewRGB
	// KernelViewPairs shows one grayscale tile per (output, input) pair: one
	// grid row per output channel, one column per input channel.
	KernelViewPairs
	// KernelViewInput shows, per output channel, the kernel slice of input
	// channel KernelOptions.Input.
	KernelViewInput
	// KernelViewMean shows, per output channel, the mean over input channels of
	// the kernel (kh×kw).
	KernelViewMean
	// KernelViewL2 shows, per output channel, the L2 norm over input channels at
	// each kernel position: sqrt(Σ_i w[o,i,y,x]²) (non-negative).
	KernelViewL2
)

// String names the view.
func (v KernelView) String() string {
	switch v {
	case KernelViewRGB:
		return "RGB"
	case KernelViewPairs:
		return "(output, input) pairs"
	case KernelViewInput:
		return "one input channel"
	case KernelViewMean:
		return "mean over inputs"
	case KernelViewL2:
		return "L2 over inputs"
	default:
		return "auto"
	}
}

// Defaults of KernelOptions and KernelStyle.
const (
	// DefaultKernelMaxOut is the number of output channels shown per-output views
	// (RGB, input, mean, L2) show by default.
	DefaultKernelMaxOut = 64
	// DefaultKernelPairsMaxOut is the number of output channels (grid rows) the
	// pairs view shows by default.
	DefaultKernelPairsMaxOut = 16
	// DefaultKernelMaxIn is the number of input channels (grid columns) the pairs
	// view shows by default.
	DefaultKernelMaxIn = 8
	// DefaultKernelTilePx is the size a tile is enlarged to (nearest neighbour,
	// integer factor) by default: a 3×3 kernel becomes 24×24 pixels.
	DefaultKernelTilePx = 24
	// DefaultKernelPad is the default gap in pixels between tiles.
	DefaultKernelPad = 4
)

// KernelOptions says which kernels a KernelsResult shows and what each tile
// holds: they change the numbers behind the grid (Tiles); how the tiles are
// drawn is KernelStyle. The zero value shows, in the auto view, the first
// DefaultKernelMaxOut output channels (DefaultKernelPairsMaxOut by
// DefaultKernelMaxIn in the pairs view), in index order.
type KernelOptions struct {
	// View selects what a tile holds (default KernelViewAuto): a whole RGB
	// kernel, one (output, input) slice, or an aggregate over inputs.
	View KernelView
	// MaxOut is how many output channels are shown: the first MaxOut (or the
	// MaxOut largest by L2 norm with SortByNorm). 0 means DefaultKernelMaxOut, or
	// DefaultKernelPairsMaxOut in the pairs view. Clamped to O.
	MaxOut int
	// MaxIn is how many input channels (the first MaxIn) the pairs view shows;
	// 0 means DefaultKernelMaxIn. Clamped to I.
	MaxIn int
	// Input is the input channel shown by KernelViewInput (0..I-1).
	Input int
	// SortByNorm orders output channels by the L2 norm of their whole filter
	// (over I,kh,kw), largest first (ties: lower index first), before MaxOut is
	// applied. Default: index order.
	SortByNorm bool
}

// KernelStyle says how a KernelsResult's tiles are drawn (Image, HTML): it
// changes pixels only, never which tiles are shown (that is KernelOptions).
// The zero value draws each tile stretched to its own min–max in grayscale,
// 3×3 kernels enlarged to 24×24 (more when the captions need it), captioned
// with channel indices.
type KernelStyle struct {
	// Norm is NormPerMap (each tile's own min–max, the default) or NormShared
	// (one range for all tiles shown).
	Norm Norm
	// Diverging uses a symmetric range [-a, a] (a = max |w| of the tile, or of all
	// tiles with NormShared) so that the sign shows: grayscale tiles use
	// render.RdBuR (blue < 0 < red, white at 0); RGB tiles map 0 to mid-grey.
	Diverging bool
	// Colormap colours grayscale tiles when not Diverging; the zero value means
	// render.Gray (black = low, white = high).
	Colormap render.Colormap
	// Scale enlarges each tile by pixel replication (nearest neighbour); 0 means
	// the largest factor keeping a tile ≤ DefaultKernelTilePx (8 for 3×3), or
	// more when needed for the captions to fit under the tiles (11 for 3×3
	// tiles captioned "15,7").
	Scale int
	// Pad is the gap between tiles in pixels; 0 means DefaultKernelPad and a
	// negative value means none.
	Pad int
	// Cols is the number of grid columns; 0 means the number of input channels
	// shown in the pairs view, else ceil(√tiles).
	Cols int
	// NoCaptions drops the channel-index captions under the tiles (captions are
	// "o" for per-output views and "o,i" in the pairs view).
	NoCaptions bool
	// Title, if set, is drawn above the grid in Image (not used by HTML, which
	// has its own heading).
	Title string
}

// KernelsResult holds a convolution layer's weights, which of them to show
// and how to draw them.
type KernelsResult struct {
	// Layer is the convolution's name ("features.0").
	Layer string
	// Weights are the kernels in PyTorch layout (O,I,kh,kw).
	Weights *Array
	// Bias is the per-output bias (O); nil if unknown.
	Bias []float32
	// Norms are the L2 norms of each output channel's filter over (I,kh,kw) (O).
	Norms []float32
	// Options select the tiles of Tiles, Image and HTML; Style is how Image
	// and HTML draw them (the façade sets it from a KernelStyle option).
	// Change them freely between calls, or draw with another style through
	// WithStyle.
	Options KernelOptions
	Style   KernelStyle
}

// WithStyle returns k drawn with style: a copy sharing k's weights and
// options, e.g. nb.Show(res.WithStyle(vizkit.KernelStyle{Diverging: true})).
func (k *KernelsResult) WithStyle(style KernelStyle) *KernelsResult {
	out := *k
	out.Style = style
	return &out
}

// KernelsOf returns the weights of the convolution layer named layer, with
// opts selecting the tiles shown (drawn in the default KernelStyle; set the
// result's Style for another). A layer that is not a Conv2d gives an error listing
// the network's convolution layers.
func KernelsOf(net models.Network, layer string, opts KernelOptions) (*KernelsResult, error) {
	if net == nil {
		return nil, errors.New("vizkit.Kernels: network is nil")
	}
	layers := net.Layers()
	l, _, err := models.FindLayer(net.Arch(), layers, layer)
	if err != nil {
		return nil, err
	}
	if l.Kind != models.Conv2d {
		return nil, fmt.Errorf("layer %q is a %s, not a convolution; kernels exist for the conv layers of %s: %s",
			layer, l.Kind, net.Arch(), joinNames(convLayers(layers)))
	}
	w, bias, err := net.Weight(layer)
	if err != nil {
		return nil, err
	}
	if len(w.Shape) != 4 || w.Shape[0] != l.Out || w.Shape[1] != l.In {
		return nil, fmt.Errorf("layer %q: weight has shape %v, want (%d,%d,kh,kw)", layer, w.Shape, l.Out, l.In)
	}
	arr, err := engine.ArrayFrom(w.Data, w.Shape...)
	if err != nil {
		return nil, fmt.Errorf("layer %q: %w", layer, err)
	}
	res, err := NewKernelsResult(layer, arr, bias)
	if err != nil {
		return nil, err
	}
	res.Options = opts
	if _, err := res.plan(); err != nil {
		return nil, err
	}
	return res, nil
}

// NewKernelsResult wraps kernels given directly: weights (O,I,kh,kw) in
// PyTorch layout (not copied) and an optional bias (O). It fails on other
// shapes or non-finite values.
func NewKernelsResult(layer string, weights *Array, bias []float32) (*KernelsResult, error) {
	if weights == nil || len(weights.Shape) != 4 {
		var shape any = "nil"
		if weights != nil {
			shape = weights.Shape
		}
		return nil, fmt.Errorf("kernels of %q must have shape (O,I,kh,kw), got %v", layer, shape)
	}
	for _, d := range weights.Shape {
		if d < 1 {
			return nil, fmt.Errorf("kernels of %q: empty shape %v", layer, weights.Shape)
		}
	}
	if weights.Size() != weights.Shape[0]*weights.Shape[1]*weights.Shape[2]*weights.Shape[3] {
		return nil, fmt.Errorf("kernels of %q: shape %v needs %d values, got %d", layer, weights.Shape,
			weights.Shape[0]*weights.Shape[1]*weights.Shape[2]*weights.Shape[3], weights.Size())
	}
	if err := weights.CheckFinite("kernels of " + layer); err != nil {
		return nil, err
	}
	if bias != nil && len(bias) != weights.Shape[0] {
		return nil, fmt.Errorf("kernels of %q: bias has %d values for %d output channels", layer, len(bias), weights.Shape[0])
	}
	o := weights.Shape[0]
	per := weights.Size() / o
	norms := make([]float32, o)
	for i := range norms {
		s := 0.0
		for _, v := range weights.Data[i*per : (i+1)*per] {
			s += float64(v) * float64(v)
		}
		norms[i] = float32(math.Sqrt(s))
	}
	return &KernelsResult{Layer: layer, Weights: weights, Bias: bias, Norms: norms}, nil
}

// KernelTile is the numbers of one tile of a kernel grid.
type KernelTile struct {
	// Out is the output channel; In the input channel, or -1 for RGB and
	// aggregated (mean, L2) tiles.
	Out, In int
	// C is 3 for RGB tiles (channels R,G,B = inputs 0,1,2) and 1 otherwise;
	// H and W are the kernel size.
	C, H, W int
	// Data holds the values (C,H,W) row-major.
	Data []float32
}

// kernelPlan is KernelOptions and KernelStyle resolved against a weight shape.
type kernelPlan struct {
	view             KernelView
	outs             []int // output channels shown, in display order
	ins              int   // input channels shown (pairs view)
	cols, scale, pad int
	cmap             render.Colormap
	o, i, kh, kw     int
}

func (k *KernelsResult) plan() (*kernelPlan, error) {
	if k == nil || k.Weights == nil || len(k.Weights.Shape) != 4 {
		return nil, errors.New("vizkit: KernelsResult has no (O,I,kh,kw) weights")
	}
	opts, style := k.Options, k.Style
	p := &kernelPlan{view: opts.View, o: k.Weights.Shape[0], i: k.Weights.Shape[1], kh: k.Weights.Shape[2], kw: k.Weights.Shape[3]}
	if p.view == KernelViewAuto {
		p.view = KernelViewPairs
		if p.i == 3 {
			p.view = KernelViewRGB
		}
	}
	if p.view < KernelViewAuto || p.view > KernelViewL2 {
		return nil, fmt.Errorf("kernels of %s: unknown view %d", k.Layer, int(p.view))
	}
	if p.view == KernelViewRGB && p.i != 3 {
		return nil, fmt.Errorf("kernels of %s: the RGB view needs 3 input channels, the layer has %d (use the pairs, input, mean or L2 view)", k.Layer, p.i)
	}
	if p.view == KernelViewInput && (opts.Input < 0 || opts.Input >= p.i) {
		return nil, fmt.Errorf("input channel %d is out of range for %s with %d input channels (valid: 0..%d)", opts.Input, k.Layer, p.i, p.i-1)
	}
	if opts.MaxOut < 0 || opts.MaxIn < 0 {
		return nil, fmt.Errorf("kernels of %s: MaxOut (%d) and MaxIn (%d) must not be negative", k.Layer, opts.MaxOut, opts.MaxIn)
	}
	if style.Scale < 0 || style.Cols < 0 {
		return nil, fmt.Errorf("kernels of %s: KernelStyle Scale (%d) and Cols (%d) must not be negative", k.Layer, style.Scale, style.Cols)
	}
	if err := style.Norm.valid(); err != nil {
		return nil, fmt.Errorf("kernels of %s: %w", k.Layer, err)
	}
	maxOut := opts.MaxOut
	if maxOut == 0 {
		maxOut = DefaultKernelMaxOut
		if p.view == KernelViewPairs {
			maxOut = DefaultKernelPairsMaxOut
		}
	}
	order := make([]int, p.o)
	for j := range order {
		order[j] = j
	}
	if opts.SortByNorm {
		sort.SliceStable(order, func(a, b int) bool { return k.Norms[order[a]] > k.Norms[order[b]] })
	}
	p.outs = order[:min(maxOut, p.o)]
	p.ins = 1
	if p.view == KernelViewPairs {
		p.ins = opts.MaxIn
		if p.ins == 0 {
			p.ins = DefaultKernelMaxIn
		}
		p.ins = min(p.ins, p.i)
	}
	p.cols = style.Cols
	if p.cols == 0 && p.view == KernelViewPairs {
		p.cols = p.ins
	}
	p.scale = style.Scale
	if p.scale == 0 {
		p.scale = autoScale(p.kh, p.kw, DefaultKernelTilePx)
		if !style.NoCaptions {
			// Widen tiles so that the longest caption fits under its tile with a
			// gap (captions are drawn 7 px per character).
			longest := 0
			for _, o := range p.outs {
				c := len(fmt.Sprint(o))
				if p.view == KernelViewPairs {
					c += 1 + len(fmt.Sprint(p.ins-1))
				}
				longest = max(longest, c)
			}
			p.scale = max(p.scale, (7*longest+4+p.kw-1)/p.kw)
		}
	}
	switch {
	case style.Pad == 0:
		p.pad = DefaultKernelPad
	case style.Pad > 0:
		p.pad = style.Pad
	}
	p.cmap = style.Colormap
	if !p.cmap.Valid() {
		p.cmap = render.Gray
	}
	if style.Diverging {
		p.cmap = render.RdBuR
	}
	return p, nil
}

// Tiles returns the numbers behind the grid for the current Options, in
// display order (row-major: in the pairs view all shown inputs of one output,
// then the next output).
func (k *KernelsResult) Tiles() ([]KernelTile, error) {
	p, err := k.plan()
	if err != nil {
		return nil, err
	}
	return k.tiles(p), nil
}

func (k *KernelsResult) tiles(p *kernelPlan) []KernelTile {
	hw := p.kh * p.kw
	w := k.Weights.Data
	slice := func(o, i int) []float32 { return w[(o*p.i+i)*hw : (o*p.i+i+1)*hw] }
	var out []KernelTile
	for _, o := range p.outs {
		switch p.view {
		case KernelViewRGB:
			out = append(out, KernelTile{Out: o, In: -1, C: 3, H: p.kh, W: p.kw, Data: append([]float32(nil), w[o*3*hw:(o+1)*3*hw]...)})
		case KernelViewPairs:
			for i := 0; i < p.ins; i++ {
				out = append(out, KernelTile{Out: o, In: i, C: 1, H: p.kh, W: p.kw, Data: append([]float32(nil), slice(o, i)...)})
			}
		case KernelViewInput:
			out = append(out, KernelTile{Out: o, In: k.Options.Input, C: 1, H: p.kh, W: p.kw, Data: append([]float32(nil), slice(o, k.Options.Input)...)})
		case KernelViewMean, KernelViewL2:
			acc := make([]float64, hw)
			for i := 0; i < p.i; i++ {
				for j, v := range slice(o, i) {
					if p.view == KernelViewMean {
						acc[j] += float64(v)
					} else {
						acc[j] += float64(v) * float64(v)
					}
				}
			}
			d := make([]float32, hw)
			for j, s := range acc {
				if p.view == KernelViewMean {
					d[j] = float32(s / float64(p.i))
				} else {
					d[j] = float32(math.Sqrt(s))
				}
			}
			out = append(out, KernelTile{Out: o, In: -1, C: 1, H: p.kh, W: p.kw, Data: d})
		}
	}
	return out
}

// kernelPicture is a drawn grid plus what its legend needs.
type kernelPicture struct {
	img    *image.RGBA
	shared *render.Range // the range used for all tiles, with NormShared
	flat   []string      // captions of constant tiles
	lo, hi float64       // range of the values shown
	plan   *kernelPlan
}

// kernelBackground is the light grey between kernel tiles, so that white
// tiles (zeros under RdBu_r, maxima under gray) stay visible.
var kernelBackground = color.RGBA{R: 225, G: 225, B: 225, A: 255}

func (k *KernelsResult) draw(title string) (*kernelPicture, error) {
	p, err := k.plan()
	if err != nil {
		return nil, err
	}
	tiles := k.tiles(p)
	pic := &kernelPicture{plan: p}
	var all []float32
	for _, t := range tiles {
		all = append(all, t.Data...)
	}
	pic.lo, pic.hi, _ = valueRange(all)
	if k.Style.Norm == NormShared {
		r := render.Range{Min: pic.lo, Max: pic.hi}
		if k.Style.Diverging {
			r = symmetric(pic.lo, pic.hi)
		}
		pic.shared = &r
	}
	imgs := make([]image.Image, len(tiles))
	captions := make([]string, len(tiles))
	for j, t := range tiles {
		if t.In >= 0 && p.view == KernelViewPairs {
			captions[j] = fmt.Sprintf("%d,%d", t.Out, t.In)
		} else {
			captions[j] = fmt.Sprint(t.Out)
		}
		lo, hi, _ := valueRange(t.Data)
		if lo == hi {
			pic.flat = append(pic.flat, captions[j])
		}
		var r render.Range // auto
		switch {
		case pic.shared != nil:
			r = *pic.shared
		case k.Style.Diverging:
			r = symmetric(lo, hi)
		}
		if t.C == 3 {
			if r.IsAuto() {
				r = render.Range{Min: lo, Max: hi}
			}
			img, err := render.RGBFromCHW(t.Data, t.H, t.W, r)
			if err != nil {
				return nil, fmt.Errorf("kernels of %s, output %d: %w", k.Layer, t.Out, err)
			}
			imgs[j] = img
			continue
		}
		m, err := heatmap.NewMap(t.H, t.W, t.Data)
		if err != nil {
			return nil, fmt.Errorf("kernels of %s, output %d: %w", k.Layer, t.Out, err)
		}
		c, err := render.Colorize(m, p.cmap, r)
		if err != nil {
			return nil, fmt.Errorf("kernels of %s, output %d: %w", k.Layer, t.Out, err)
		}
		imgs[j] = c.Image
	}
	if k.Style.NoCaptions {
		captions = nil
	}
	pic.img, err = render.Grid(imgs, render.GridOptions{Cols: p.cols, Pad: p.pad, Captions: captions, Scale: p.scale,
		MaxCaptionChars: 7, Title: title, Background: kernelBackground})
	if err != nil {
		return nil, fmt.Errorf("kernels of %s: %w", k.Layer, err)
	}
	return pic, nil
}

// Image draws the kernel grid for the current Options in k.Style: tiles enlarged by
// nearest neighbour, separated by light grey padding, captioned with channel
// indices. With NormPerMap a constant tile is drawn in the colormap's low
// colour (or mid-grey / the neutral middle when Diverging).
func (k *KernelsResult) Image() (*image.RGBA, error) {
	pic, err := k.draw(k.Style.Title)
	if err != nil {
		return nil, err
	}
	return pic.img, nil
}

// describe returns a one-line description of what the grid shows.
func (k *KernelsResult) describe(p *kernelPlan) string {
	sel := fmt.Sprintf("the first %d", len(p.outs))
	if k.Options.SortByNorm {
		sel = fmt.Sprintf("the %d with the largest L2 norm (largest first)", len(p.outs))
	}
	if len(p.outs) == p.o && !k.Options.SortByNorm {
		sel = fmt.Sprintf("all %d", p.o)
	}
	s := fmt.Sprintf("Output channels: %s of %d. ", sel, p.o)
	switch p.view {
	case KernelViewRGB:
		s += "Each tile is one output channel's 3-channel kernel as colour (input 0 = red, 1 = green, 2 = blue)"
	case KernelViewPairs:
		s += fmt.Sprintf("One row per output channel, one tile per input channel (first %d of %d); captions are output,input", p.ins, p.i)
	case KernelViewInput:
		s += fmt.Sprintf("Each tile is the kernel slice of input channel %d", k.Options.Input)
	case KernelViewMean:
		s += fmt.Sprintf("Each tile is the kernel averaged over the %d input channels", p.i)
	case KernelViewL2:
		s += fmt.Sprintf("Each tile is the L2 norm over the %d input channels at each kernel position", p.i)
	}
	s += fmt.Sprintf(", enlarged %d×; %s", p.scale, k.Style.Norm)
	if k.Style.Diverging {
		if p.view == KernelViewRGB {
			s += ", symmetric around 0 (mid-grey = 0)"
		} else {
			s += ", symmetric around 0 (RdBu_r: blue < 0 < red, white = 0)"
		}
	}
	return s + "."
}

// AppendHTML appends this result's section to h: a heading, a description,
// the grid (pixelated), a colour bar for the value range and a note for
// constant tiles.
func (k *KernelsResult) AppendHTML(h *render.HTML) error {
	if h == nil {
		return errors.New("vizkit: AppendHTML needs a *render.HTML builder, got nil")
	}
	pic, err := k.draw("") // The section has its own heading.
	if err != nil {
		return err
	}
	p := pic.plan
	h.Heading(3, fmt.Sprintf("Kernels of %s (%d×%d×%d×%d)", k.Layer, p.o, p.i, p.kh, p.kw))
	h.Paragraph(k.describe(p) + fmt.Sprintf(" Values shown range over [%s, %s]; filter L2 norms over [%s, %s].",
		heatmap.FormatValue(pic.lo), heatmap.FormatValue(pic.hi), fmtMin(k.Norms), fmtMax(k.Norms)))
	items := []render.FigureItem{{Image: pic.img, Caption: k.Layer + " kernels", WidthPx: displayWidth(pic.img)}}
	if p.view == KernelViewRGB {
		if pic.shared != nil {
			h.Paragraph(fmt.Sprintf("One range for all tiles: %s maps to black (0), %s to full intensity (255), per colour channel.",
				heatmap.FormatValue(pic.shared.Min), heatmap.FormatValue(pic.shared.Max)))
		} else {
			h.Paragraph("Each tile maps its own min (over its three colours) to black and its max to full intensity.")
		}
	} else {
		bar, err := colorbarFor(p.cmap, pic.shared, k.Style.Diverging, "weight")
		if err != nil {
			return err
		}
		items = append(items, render.FigureItem{Image: bar, Caption: "colour scale"})
	}
	h.Figure(items, render.FigureOptions{Pixelated: true})
	if len(pic.flat) > 0 {
		h.Warning(fmt.Sprintf("%d of %d tiles are constant (no contrast to show): %s.", len(pic.flat), len(p.outs)*p.ins, joinStrings(pic.flat, 12)))
	}
	return h.Err()
}

// HTML renders the section as a self-contained fragment (see AppendHTML).
func (k *KernelsResult) HTML() (string, error) {
	h := render.NewHTML()
	if err := k.AppendHTML(h); err != nil {
		return "", err
	}
	return h.String(), nil
}

func convLayers(layers []models.Layer) []string {
	var out []string
	for _, l := range layers {
		if l.Kind == models.Conv2d {
			out = append(out, l.Name)
		}
	}
	return out
}

func joinNames(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return joinStrings(names, len(names))
}

func joinStrings(xs []string, limit int) string {
	s := ""
	for i, x := range xs {
		if i == limit {
			s += fmt.Sprintf(", … (%d more)", len(xs)-limit)
			break
		}
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

func fmtMin(xs []float32) string {
	lo, _, _ := valueRange(xs)
	return heatmap.FormatValue(lo)
}

func fmtMax(xs []float32) string {
	_, hi, _ := valueRange(xs)
	return heatmap.FormatValue(hi)
}
