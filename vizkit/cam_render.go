package vizkit

import (
	"fmt"
	"image"
	"strings"

	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// CAMStyle configures CAM pictures. The zero value is pytorch-grad-cam's
// look: JET colormap, heat map and image weighted 0.5 each.
type CAMStyle struct {
	// Colormap of the heat map; the zero value means render.Jet (OpenCV's
	// COLORMAP_JET, show_cam_on_image's default). render.Viridis is a
	// perceptually uniform alternative.
	Colormap render.Colormap
	// HeatWeight is the heat map's weight in the overlay, in (0,1]; 0 means
	// 0.5 (show_cam_on_image's image_weight = 1 − HeatWeight).
	HeatWeight float64
	// WidthPx is the displayed width of each picture in HTML; 0 means 224.
	WidthPx int
	// Cols is the number of columns of CompareCAMs; 0 means 4.
	Cols int
	// TilePx, if > 0, makes CompareCAMs draw every tile TilePx pixels wide
	// (the input is resampled like PIL's BILINEAR, aspect ratio kept, and the
	// maps are resized to it); 0 keeps the input's size.
	TilePx int
}

func (s CAMStyle) resolve() (render.Colormap, float64, int, error) {
	cm := s.Colormap
	if !cm.Valid() {
		cm = render.Jet
	}
	hw := s.HeatWeight
	if hw == 0 {
		hw = 0.5
	}
	if !(hw > 0 && hw <= 1) {
		return cm, 0, 0, fmt.Errorf("CAMStyle.HeatWeight must be in (0,1], got %v", s.HeatWeight)
	}
	width := s.WidthPx
	if width <= 0 {
		width = 224
	}
	return cm, hw, width, nil
}

// CAMResult is a class activation map (a cam.Result) ready to display: with
// the input pictures HTML overlays the maps on.
type CAMResult struct {
	*cam.Result
	// Images are the input pictures that HTML overlays the maps on (one per
	// example, or one for all; nil draws the maps alone). The façade
	// (GradCAM, CAM, …) sets them.
	Images []image.Image
}

// MapOf returns example i's final map (H,W) as a render.Map sharing r.Map's data.
func (r *CAMResult) MapOf(i int) (render.Map, error) {
	if r == nil || r.Map == nil || len(r.Map.Shape) != 3 {
		return render.Map{}, fmt.Errorf("CAM result has no (N,H,W) map")
	}
	if i < 0 || i >= r.Map.Shape[0] {
		return render.Map{}, fmt.Errorf("example %d is out of range for a CAM of %d examples", i, r.Map.Shape[0])
	}
	return heatmap.NewMap(r.Map.Shape[1], r.Map.Shape[2], r.Map.Index(i).Data)
}

// Overlay draws example i's map over base (the input picture, any size: the
// map is resized to it) like pytorch-grad-cam's show_cam_on_image.
func (r *CAMResult) Overlay(i int, base image.Image, style CAMStyle) (*image.RGBA, error) {
	cm, hw, _, err := style.resolve()
	if err != nil {
		return nil, err
	}
	m, err := r.MapOf(i)
	if err != nil {
		return nil, err
	}
	return render.Overlay(base, m, cm, hw)
}

// Heatmap colours example i's map (values in [0,1]) with the style's colormap.
func (r *CAMResult) Heatmap(i int, style CAMStyle) (*image.RGBA, error) {
	cm, _, _, err := style.resolve()
	if err != nil {
		return nil, err
	}
	m, err := r.MapOf(i)
	if err != nil {
		return nil, err
	}
	c, err := render.Colorize(m, cm, render.Range{Min: 0, Max: 1})
	if err != nil {
		return nil, err
	}
	return c.Image, nil
}

// LayerText describes the target layers, e.g. "layer features.20 (chosen
// automatically)", "layers features.19 + features.20".
func (r *CAMResult) LayerText() string {
	if r.LayerTag != strings.Join(r.Layers, "+") {
		return fmt.Sprintf("%s (%d layers)", r.LayerTag, len(r.Layers))
	}
	s := "layer "
	if len(r.Layers) > 1 {
		s = "layers "
	}
	s += strings.Join(r.Layers, " + ")
	if r.AutoLayer {
		s += " (chosen automatically)"
	}
	return s
}

// Caption is a one-line description: method, layers, options.
func (r *CAMResult) Caption() string {
	s := r.Title + " · " + r.LayerText()
	if r.EigenSmooth {
		s += " · eigen-smooth"
	}
	if r.AugSmooth {
		s += " · aug-smooth"
	}
	return s
}

// HTML renders the result with the default CAMStyle as a self-contained HTML
// fragment, overlaying the maps on r.Images when set (nb.Show(res) in a GoNB
// cell); see View for another style or other pictures.
func (r *CAMResult) HTML() (string, error) { return r.View(CAMStyle{}).HTML() }

// CAMView is a CAMResult drawn with a style on base pictures; it displays
// with nb.Show like every result (vizkit.HTMLer).
type CAMView struct {
	Result *CAMResult
	Style  CAMStyle
	// Bases are the pictures the maps are overlaid on: one per example, or one
	// for all; none draws the maps alone.
	Bases []image.Image
}

// View returns r drawn with style on bases (default: r.Images).
func (r *CAMResult) View(style CAMStyle, bases ...image.Image) *CAMView {
	if len(bases) == 0 && r != nil {
		bases = r.Images
	}
	return &CAMView{Result: r, Style: style, Bases: bases}
}

// HTML renders the view as a self-contained HTML fragment: a heading, the
// target, notes, a warning for flat maps, and per example the overlay on
// Bases[i] (or Bases[0] when only one is given; no overlay without bases),
// the map and a colour bar. An invalid style is an error.
func (v *CAMView) HTML() (string, error) {
	r, style, bases := v.Result, v.Style, v.Bases
	if r == nil {
		return "", fmt.Errorf("vizkit: empty CAM result")
	}
	h := render.NewHTML()
	cm, _, width, err := style.resolve()
	if err != nil {
		return "", err
	}
	h.Heading(3, strings.Replace(r.Caption(), " · ", " — ", 1))
	for _, n := range r.Notes {
		h.Paragraph(n)
	}
	bar, barErr := render.Colorbar(cm, render.Range{Min: 0, Max: 1}, width, 44, "relevance (scaled)")
	for i := 0; r.Map != nil && i < r.Map.Shape[0]; i++ {
		target := r.Target.String()
		if i < len(r.Classes) && r.Classes[i] >= 0 {
			target = fmt.Sprintf("class %d", r.Classes[i])
			if r.Target.Kind == engine.TargetSoftmax {
				target = "softmax of " + target
			}
		}
		if i < len(r.Scores) {
			target += fmt.Sprintf(", score %.4g", r.Scores[i])
		}
		if r.Flat[i] {
			h.Warning(fmt.Sprintf("Example %d: the map is constant (all zero): no positive evidence for %s at this layer (common with random weights, dead ReLUs or a 1×1 layer).", i, target))
		}
		var items []render.FigureItem
		if len(bases) > 0 {
			base := bases[0]
			if i < len(bases) {
				base = bases[i]
			}
			ov, err := r.Overlay(i, base, style)
			if err != nil {
				h.Warning(err.Error())
			} else {
				items = append(items, render.FigureItem{Image: ov, Caption: "overlay", WidthPx: width})
			}
		}
		hm, err := r.Heatmap(i, style)
		if err != nil {
			h.Warning(err.Error())
		} else {
			items = append(items, render.FigureItem{Image: hm, Caption: "map", WidthPx: width})
		}
		if barErr == nil {
			items = append(items, render.FigureItem{Image: bar})
		}
		h.Figure(items, render.FigureOptions{Title: fmt.Sprintf("example %d: %s", i, target)})
	}
	return h.String(), h.Err()
}

// CompareCAMs lays out example i of several CAM results side by side for one
// input picture: the input first, then each method's overlay, captioned with
// the method's title (and "eig"/"aug" for smoothed maps), in a grid of
// style.Cols columns. results must all come from the same input.
func CompareCAMs(base image.Image, results []*CAMResult, i int, style CAMStyle) (*image.RGBA, error) {
	if base == nil {
		return nil, fmt.Errorf("CompareCAMs: nil base image")
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("CompareCAMs: no results")
	}
	if style.TilePx > 0 {
		b := base.Bounds()
		h := max(1, (b.Dy()*style.TilePx+b.Dx()/2)/b.Dx())
		small, err := imageio.Resize(imageio.ToRGB(base), style.TilePx, h, imageio.Bilinear)
		if err != nil {
			return nil, fmt.Errorf("CompareCAMs: %w", err)
		}
		base = small
	}
	tiles := []image.Image{base}
	captions := []string{"input"}
	for _, r := range results {
		ov, err := r.Overlay(i, base, style)
		if err != nil {
			return nil, fmt.Errorf("CompareCAMs: %s: %w", r.Title, err)
		}
		c := r.Title
		if r.EigenSmooth {
			c += " eig"
		}
		if r.AugSmooth {
			c += " aug"
		}
		tiles = append(tiles, ov)
		captions = append(captions, c)
	}
	cols := style.Cols
	if cols <= 0 {
		cols = 4
	}
	title := ""
	if r := results[0]; i < len(r.Classes) && r.Classes[i] >= 0 {
		title = fmt.Sprintf("target: class %d", r.Classes[i])
		if len(r.Layers) > 0 && r.LayerTag == strings.Join(r.Layers, "+") {
			title += ", layer " + strings.Join(r.Layers, "+")
		}
	}
	return render.Grid(tiles, render.GridOptions{Cols: min(cols, len(tiles)), Pad: 6, Captions: captions, MaxCaptionChars: 24, Title: title})
}
