package vizkit

import (
	"errors"
	"fmt"
	"image"

	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// ActMaxResult is activation maximisation's images (an actmax.Result) ready
// to display.
type ActMaxResult struct {
	*actmax.Result
	// DisplayChannels are the input channels drawn (1: gray; 3: red, green,
	// blue; empty: DefaultDisplayChannels(C)).
	DisplayChannels []int
}

// DeepDreamResult is a dreamed image (an actmax.DreamResult) ready to display.
type DeepDreamResult struct {
	*actmax.DreamResult
	// DisplayChannels are the input channels drawn (see ActMaxResult).
	DisplayChannels []int
}

// Grid draws the optimised images (Display) in a grid of cols columns (0: up
// to 4), captioned with the target and its final value.
func (r *ActMaxResult) Grid(cols int) (*image.RGBA, error) {
	if r == nil || r.Result == nil || r.Input == nil || len(r.Targets) == 0 {
		return nil, errors.New("vizkit: empty ActMaxResult")
	}
	disp := r.Display()
	h, w := disp.Shape[2], disp.Shape[3]
	tiles := make([]image.Image, len(r.Targets))
	caps := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		shown, err := pickExample(disp, i, r.DisplayChannels)
		if err != nil {
			return nil, err
		}
		img, err := rgbTile(shown.Data, h, w)
		if err != nil {
			return nil, err
		}
		tiles[i] = img
		u, unit := t.Unit()
		switch {
		case !unit && len(t.Classes) == 1:
			caps[i] = fmt.Sprintf("class %d: %.3g", t.Classes[0], r.Scores[i])
		case u.Neuron:
			caps[i] = fmt.Sprintf("ch %d (%d,%d): %.3g", u.Channel, u.Y, u.X, r.Scores[i])
		case unit:
			caps[i] = fmt.Sprintf("filter %d: %.3g", u.Channel, r.Scores[i])
		default:
			caps[i] = fmt.Sprintf("%s: %.3g", t, r.Scores[i])
		}
	}
	if cols == 0 {
		cols = min(len(tiles), 4)
	}
	title := "Activation maximisation"
	if u, ok := r.Targets[0].Unit(); ok {
		title += " of " + u.Layer
	}
	return render.Grid(tiles, render.GridOptions{Cols: cols, Pad: 4, Captions: caps, Scale: autoScaleTo(h, w, 128), Title: title})
}

// AppendHTML adds the grid and a table of target values to h.
func (r *ActMaxResult) AppendHTML(h *render.HTML) error {
	g, err := r.Grid(0)
	if err != nil {
		return err
	}
	h.Heading(3, fmt.Sprintf("Activation maximisation (%s parameterisation, %s steps)", r.Param, r.Optimizer))
	h.Paragraph(fmt.Sprintf("%d images of %dx%d optimised for %d steps each; under each image, the objective on the final image.",
		len(r.Targets), r.Input.Shape[3], r.Input.Shape[2], len(r.History)))
	h.Image(g, "", 0)
	rows := make([][]string, len(r.Targets))
	for i, t := range r.Targets {
		rows[i] = []string{t.String(), fmt.Sprintf("%.4g", r.InitialScores[i]), fmt.Sprintf("%.4g", r.Scores[i]),
			fmt.Sprintf("%+.4g", r.Scores[i]-r.InitialScores[i])}
	}
	h.Table([]string{"objective", "on the start image", "optimised", "increase"}, rows)
	return h.Err()
}

// HTML renders the result as a self-contained fragment.
func (r *ActMaxResult) HTML() (string, error) { return fragmentOf(r.AppendHTML) }

// Panel draws the original (1,C,H,W, normalised; nil: the dream alone) and
// the dreamed image side by side.
func (r *DeepDreamResult) Panel(original *Array) (*image.RGBA, error) {
	if r == nil || r.DreamResult == nil || r.Pixels == nil {
		return nil, errors.New("vizkit: empty DeepDreamResult")
	}
	h, w := r.Pixels.Shape[2], r.Pixels.Shape[3]
	shown, err := pickExample(r.Pixels, 0, r.DisplayChannels)
	if err != nil {
		return nil, err
	}
	dream, err := rgbTile(shown.Data, h, w)
	if err != nil {
		return nil, err
	}
	ts := []gradTile{{dream, fmt.Sprintf("dreamed: %.3g", r.Score)}}
	if original != nil {
		o, err := drawInput(original, 0, r.Norm, r.DisplayChannels)
		if err != nil {
			return nil, err
		}
		ts = append([]gradTile{{o, fmt.Sprintf("input: %.3g", r.InitialScore)}}, ts...)
	}
	return gradTilesPanel(fmt.Sprintf("DeepDream on %s (%s)", r.Layer, r.Objective), ts)
}

// HTML shows the original image and the dream side by side (vizkit.HTMLer).
func (r *DeepDreamResult) HTML() (string, error) {
	if r == nil || r.DreamResult == nil {
		return "", errors.New("vizkit: empty DeepDreamResult")
	}
	p, err := r.Panel(r.Original)
	if err != nil {
		return "", err
	}
	h := render.NewHTML().Image(p, "", 0)
	return h.String(), h.Err()
}
