package nb

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/render"
	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/dom"
	"github.com/janpfeifer/gonb/gonbui/widgets"
)

// IdleTimeout ends an explorer that nobody touched for this long (the cell,
// and so the kernel, is busy while an explorer runs).
var IdleTimeout = 10 * time.Minute

// CAMExplorer shows Grad-CAM of img with a class selector (the 10 most
// probable classes), a layer selector (the last module at each resolution
// of the network, and the default CAM layer) and a heat-map opacity slider.
// The cell keeps running until Done is clicked (or IdleTimeout), then leaves
// its last view in the notebook. Without a live browser (see Interactive) it
// shows a static view instead: the top-4 classes at the default layer, and
// the top-1 class at each layer. opts go to vizkit.GradCAM (e.g. a
// cam.Options value with another Method).
func CAMExplorer(m *vizkit.Model, img *vizkit.Image, opts ...vizkit.Option) error {
	if m == nil || img == nil {
		return errors.New("nb.CAMExplorer: nil model or image")
	}
	top, err := vizkit.TopK(m, img, min(10, m.Net.NumClasses()))
	if err != nil {
		return err
	}
	layers, def, err := camLayers(m.Net)
	if err != nil {
		return err
	}
	type key struct {
		class int
		layer string
	}
	cams := map[key]*vizkit.CAMResult{}
	cam := func(class int, layer string) (*vizkit.CAMResult, error) {
		k := key{class, layer}
		if r := cams[k]; r != nil {
			return r, nil
		}
		r, err := vizkit.GradCAM(m, img, append(slices.Clone(opts), vizkit.ForClass(class), vizkit.AtLayer(layer))...)
		if err == nil {
			cams[k] = r
		}
		return r, err
	}
	caption := func(i int) string {
		c := top.Classes[i]
		return fmt.Sprintf("%s (p = %.2f%%)", c.Label, 100*c.Prob)
	}

	if !Interactive() {
		h := render.NewHTML()
		h.Paragraph("Static view (no live browser): open the notebook in Jupyter for the class and layer selectors and the opacity slider.")
		var items []render.FigureItem
		title := ""
		for i := range min(4, len(top.Classes)) {
			r, err := cam(top.Classes[i].Class, def)
			if err != nil {
				return err
			}
			ov, err := r.Overlay(0, r.Images[0], vizkit.CAMStyle{})
			if err != nil {
				return err
			}
			title = r.Title
			items = append(items, render.FigureItem{Image: ov, Caption: caption(i), WidthPx: 224})
		}
		h.Figure(items, render.FigureOptions{Title: fmt.Sprintf("%s of the most probable classes at %s", title, def)})
		items = nil
		for _, l := range layers {
			r, err := cam(top.Classes[0].Class, l)
			if err != nil {
				return err
			}
			ov, err := r.Overlay(0, r.Images[0], vizkit.CAMStyle{})
			if err != nil {
				return err
			}
			items = append(items, render.FigureItem{Image: ov, Caption: l, WidthPx: 224})
		}
		h.Figure(items, render.FigureOptions{Title: fmt.Sprintf("%s of %s at each layer", title, top.Classes[0].Label)})
		if err := h.Err(); err != nil {
			return err
		}
		displayHTML(h.String())
		return nil
	}

	view := func(ci, li, opacity int) string {
		r, err := cam(top.Classes[ci].Class, layers[li])
		if err != nil {
			return render.NewHTML().Warning(err.Error()).String()
		}
		style := vizkit.CAMStyle{HeatWeight: float64(opacity) / 100, WidthPx: 320}
		ov, err1 := r.Overlay(0, r.Images[0], style)
		hm, err2 := r.Heatmap(0, style)
		if err := errors.Join(err1, err2); err != nil {
			return render.NewHTML().Warning(err.Error()).String()
		}
		h := render.NewHTML()
		h.Figure([]render.FigureItem{
			{Image: ov, Caption: fmt.Sprintf("overlay, heat weight %.2f", style.HeatWeight), WidthPx: 320},
			{Image: hm, Caption: r.Title + " at " + layers[li], WidthPx: 320},
		}, render.FigureOptions{Title: caption(ci)})
		return h.String()
	}
	labels := make([]string, len(top.Classes))
	for i := range labels {
		labels[i] = caption(i)
	}
	ci, li, opacity := 0, slices.Index(layers, def), 50
	root := dom.CreateTransientDiv() // the controls are not saved with the notebook
	dom.Append(root, "<b>Class:</b> ")
	sel := widgets.Select(labels).AppendTo(root).Done()
	dom.Append(root, " &nbsp; <b>Layer:</b> ")
	lsel := widgets.Select(layers).SetDefault(li).AppendTo(root).Done()
	dom.Append(root, " &nbsp; <b>Heat-map opacity:</b> ")
	slider := widgets.Slider(5, 100, opacity).AppendTo(root).Done()
	done := widgets.Button("Done").AppendTo(root).Done()
	out := "cnnviz_cam_explorer_" + gonbui.UniqueId()
	updateHTML(out, view(ci, li, opacity))
	classCh, layerCh, opacityCh, clicks := sel.Listen().LatestOnly(), lsel.Listen().LatestOnly(), slider.Listen().LatestOnly(), done.Listen()
loop:
	for {
		select {
		case v := <-classCh.C:
			if v >= 0 && v < len(labels) {
				ci = v
			}
		case v := <-layerCh.C:
			if v >= 0 && v < len(layers) {
				li = v
			}
		case v := <-opacityCh.C:
			opacity = min(max(v, 5), 100)
		case <-clicks.C:
			break loop
		case <-time.After(IdleTimeout):
			break loop
		}
		updateHTML(out, view(ci, li, opacity))
	}
	// Remove the controls and keep the last view in the saved notebook.
	dom.Remove(root)
	updateHTML(out, "")
	displayHTML(view(ci, li, opacity))
	return nil
}

// camLayers returns the explorer's layers: the last module at each spatial
// resolution (where the next module's height differs, for a 224×224 input)
// and the default CAM layer, in network order, at most the last five; and the
// default.
func camLayers(net models.Network) ([]string, string, error) {
	def, err := cam.DefaultLayer(net)
	if err != nil {
		return nil, "", err
	}
	table, err := vizkit.LayerTable(net, 224, 224)
	if err != nil {
		return []string{def}, def, nil // shapes unknown: the default alone
	}
	rows := table.Rows
	var out []string
	for i, r := range rows {
		if r.Name == def {
			out = append(out, r.Name)
			break // nothing after the default (the classifier's side)
		}
		if len(r.Shape) != 3 || i+1 >= len(rows) || rows[i+1].Name == def {
			continue // flat, last, or nearly the default's map
		}
		if next := rows[i+1].Shape; len(next) == 3 && next[1] != r.Shape[1] {
			out = append(out, r.Name)
		}
	}
	if !slices.Contains(out, def) {
		out = append(out, def)
	}
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	return out, def, nil
}

// LayerBrowser shows the feature maps of img at a selectable layer (default:
// every spatial ReLU output): the 16 most active channels, their mean and
// overlays on the picture. Without a live browser (see Interactive) it shows
// the mean activation of every layer over the picture instead. Like
// CAMExplorer, the cell runs until Done is clicked (or IdleTimeout).
func LayerBrowser(m *vizkit.Model, img *vizkit.Image, layers ...string) error {
	if m == nil || img == nil {
		return errors.New("nb.LayerBrowser: nil model or image")
	}
	if len(layers) == 0 {
		for _, l := range m.Net.Layers() {
			if l.Spatial && (l.Kind == models.ReLU || l.Kind == models.ReLU6) {
				layers = append(layers, l.Name)
			}
		}
		if len(layers) == 0 {
			return fmt.Errorf("nb.LayerBrowser: %s has no spatial ReLU layer; name the layers", m.Net.Arch())
		}
	}
	x, crop, err := m.Input(img)
	if err != nil {
		return err
	}
	all, err := vizkit.FeatureMapsOf(m.Ex, x, layers, vizkit.FeatureOptions{})
	if err != nil {
		return err
	}
	if !Interactive() {
		var items []render.FigureItem
		for _, lf := range all.Layers {
			ov, err := all.Overlay(lf.Layer.Name, -1, crop)
			if err != nil {
				return err
			}
			items = append(items, render.FigureItem{Image: ov, WidthPx: 210,
				Caption: fmt.Sprintf("%s · %d×%d×%d", lf.Layer.Name, lf.Acts.Shape[1], lf.Acts.Shape[2], lf.Acts.Shape[3])})
		}
		h := render.NewHTML()
		h.Paragraph("Static view (no live browser): the mean over all channels of each layer, over the picture (JET: red = high). " +
			"Open the notebook in Jupyter for the layer selector.")
		h.Figure(items, render.FigureOptions{})
		if err := h.Err(); err != nil {
			return err
		}
		displayHTML(h.String())
		return nil
	}
	// One page per layer, rendered on first use; the selector swaps them.
	pages := make([]string, len(layers))
	labels := make([]string, len(layers))
	for i, lf := range all.Layers {
		labels[i] = fmt.Sprintf("%s (%d×%d×%d)", lf.Layer.Name, lf.Acts.Shape[1], lf.Acts.Shape[2], lf.Acts.Shape[3])
	}
	page := func(i int) string {
		if pages[i] == "" {
			lf := all.Layers[i]
			one, err := vizkit.NewFeatureMapsResult([]models.Layer{lf.Layer}, []*vizkit.Array{lf.Acts},
				vizkit.FeatureOptions{Select: vizkit.SelectTopMean, N: 16})
			if err == nil {
				one.Image = crop
				pages[i], err = one.HTML()
			}
			if err != nil {
				return render.NewHTML().Warning(err.Error()).String()
			}
		}
		return pages[i]
	}
	current := len(layers) / 2
	root := dom.CreateTransientDiv()
	dom.Append(root, "<b>Layer:</b> ")
	sel := widgets.Select(labels).SetDefault(current).AppendTo(root).Done()
	done := widgets.Button("Done").AppendTo(root).Done()
	view := "cnnviz_layer_browser_" + gonbui.UniqueId()
	updateHTML(view, page(current))
	changes, clicks := sel.Listen().LatestOnly(), done.Listen()
loop:
	for {
		select {
		case v := <-changes.C:
			if v >= 0 && v < len(pages) {
				current = v
				updateHTML(view, page(v))
			}
		case <-clicks.C:
			break loop
		case <-time.After(IdleTimeout):
			break loop
		}
	}
	dom.Remove(root)
	updateHTML(view, "")
	displayHTML(page(current))
	return nil
}
