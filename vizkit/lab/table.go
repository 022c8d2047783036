package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// TableOptions configures MetricsTable. Zero values take the defaults.
type TableOptions struct {
	// Methods restricts the table to these method names (default: all of
	// Methods()).
	Methods []string
	// PerturbImages is how many of the batch's images (the first ones) the
	// perturbation metrics use — deletion, insertion, confidence change and
	// ROAD cost 2·Steps+2 + 2·9 network evaluations per image (default: all).
	PerturbImages int
	// Steps is the number of deletion/insertion steps (default 32, i.e. 128
	// pixels per step at 64×64).
	Steps int
	// Tolerance is the pointing game's tolerance in pixels for the second
	// pointing column (default 4: Zhang et al.'s 15 px at 224×224, scaled).
	Tolerance int
	// MapBatch is the number of images per method call (default 50).
	MapBatch int
	// Progress, if set, is called before each method and stage.
	Progress func(TableProgress)
}

// TableProgress reports MetricsTable's progress.
type TableProgress struct {
	// Method is the method's name, Index its position (0-based) of Total.
	Method       string
	Index, Total int
	// Stage is "maps", "localisation", "deletion/insertion", "confidence" or "ROAD".
	Stage string
}

// Row holds one method's scores, averaged over the images. Fractions are in
// [0,1]; AUCs and score changes are in softmax-probability units.
type Row struct {
	Name, Title, Family, Note string
	// Pointing is the pointing-game hit rate inside the true box (tolerance
	// 0); PointingTol with TableOptions.Tolerance pixels.
	Pointing, PointingTol float64
	// Energy is the fraction of the map's positive mass inside the true box;
	// EnergyMask inside the object's pixel mask.
	Energy, EnergyMask float64
	// Deletion and Insertion are the mean RISE AUCs (zero and blur baselines).
	Deletion, Insertion float64
	// ConfidenceChange is the mean CamMultImageConfidenceChange (maps min–max
	// scaled to [0,1]); ConfidenceIncrease the fraction of images whose score rose.
	ConfidenceChange, ConfidenceIncrease float64
	// ROADMoRF, ROADLeRF and ROADCombined are the mean ROAD score changes
	// averaged over percentiles 10…90 (maps min–max scaled).
	ROADMoRF, ROADLeRF, ROADCombined float64
	// ROADAllImputed counts (image, percentile) cases where ties made ROAD
	// impute every pixel (see metrics.ROADResult.AllImputed).
	ROADAllImputed int
	// MillisPerImage is the time to compute the maps, per image.
	MillisPerImage float64
	// Err is set (and the scores are NaN) when the method failed.
	Err string
}

// Table is the comparison of attribution methods on a labelled batch.
type Table struct {
	Rows []Row
	// Images is the number of images for the localisation metrics,
	// PerturbImages for the perturbation metrics.
	Images, PerturbImages int
	// Accuracy is the model's accuracy on the batch.
	Accuracy float64
	// BoxArea and MaskArea are the mean fractions of the image covered by the
	// true boxes and masks (what a random map scores on Energy and EnergyMask).
	BoxArea, MaskArea float64
	// Options are the options used, defaults filled in.
	Options TableOptions
	// Model describes the network and its weights.
	Model string
	// Duration is the wall time of the whole computation.
	Duration time.Duration
}

// MetricsTable computes every method's maps on the batch (explaining each
// image's predicted class) and scores them: pointing game and energy against
// the true boxes and masks, RISE deletion/insertion AUC, pytorch-grad-cam's
// confidence change and ROAD. A method that fails gets a row with Err set;
// only a cancelled ctx or bad options stop the table.
func (l *Lab) MetricsTable(ctx context.Context, b *shapes.Batch, opts TableOptions) (*Table, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	t0 := time.Now()
	if b == nil || b.N < 1 {
		return nil, errors.New("lab.MetricsTable: empty batch")
	}
	if opts.PerturbImages <= 0 || opts.PerturbImages > b.N {
		opts.PerturbImages = b.N
	}
	if opts.Steps == 0 {
		opts.Steps = 32
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = 4
	}
	if opts.MapBatch <= 0 {
		opts.MapBatch = 50
	}
	methods := Methods()
	if len(opts.Methods) > 0 {
		var sel []Method
		for _, name := range opts.Methods {
			m, err := LookupMethod(name)
			if err != nil {
				return nil, err
			}
			sel = append(sel, m)
		}
		methods = sel
	}
	x, err := Input(b)
	if err != nil {
		return nil, err
	}
	acc, err := l.Accuracy(b)
	if err != nil {
		return nil, err
	}
	tab := &Table{Images: b.N, PerturbImages: opts.PerturbImages, Accuracy: acc, Options: opts,
		Model: fmt.Sprintf("%s (%d parameters; %s)", l.Model.Arch(), l.Model.NumParams(), l.Source)}
	boxes := make([]metrics.Region, b.N)
	masks := make([]metrics.Region, b.N)
	for i, s := range b.Samples {
		if boxes[i], err = metrics.BoxRegion(s.Size, s.Size, s.Box); err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		if masks[i], err = metrics.MaskRegion(s.Size, s.Size, s.Mask); err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		tab.BoxArea += boxes[i].Area() / float64(b.N)
		tab.MaskArea += masks[i].Area() / float64(b.N)
	}
	np := opts.PerturbImages
	xp, _ := engine.ArrayFrom(x.Data[:np*3*b.Size*b.Size], np, 3, b.Size, b.Size)
	for mi, m := range methods {
		progress := func(stage string) {
			if opts.Progress != nil {
				opts.Progress(TableProgress{Method: m.Name, Index: mi, Total: len(methods), Stage: stage})
			}
		}
		row, err := l.scoreMethod(ctx, m, b, x, xp, boxes, masks, opts, progress)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			row = Row{Name: m.Name, Title: m.Title, Family: m.Family, Note: m.Note, Err: err.Error()}
			nan := math.NaN()
			row.Pointing, row.PointingTol, row.Energy, row.EnergyMask = nan, nan, nan, nan
			row.Deletion, row.Insertion, row.ConfidenceChange, row.ConfidenceIncrease = nan, nan, nan, nan
			row.ROADMoRF, row.ROADLeRF, row.ROADCombined, row.MillisPerImage = nan, nan, nan, nan
		}
		tab.Rows = append(tab.Rows, row)
	}
	tab.Duration = time.Since(t0)
	return tab, nil
}

func (l *Lab) scoreMethod(ctx context.Context, m Method, b *shapes.Batch, x, xp *vizkit.Array, boxes, masks []metrics.Region,
	opts TableOptions, progress func(string)) (Row, error) {
	row := Row{Name: m.Name, Title: m.Title, Family: m.Family, Note: m.Note}
	progress("maps")
	n, hw := b.N, b.Size*b.Size
	maps := engine.NewArray(n, b.Size, b.Size)
	t0 := time.Now()
	for lo := 0; lo < n; lo += opts.MapBatch {
		hi := min(lo+opts.MapBatch, n)
		xs, _ := engine.ArrayFrom(x.Data[lo*3*hw:hi*3*hw], hi-lo, 3, b.Size, b.Size)
		got, err := m.Maps(ctx, l.Ex, xs)
		if err != nil {
			return row, err
		}
		if got == nil || len(got.Shape) != 3 || got.Shape[0] != hi-lo || got.Shape[1] != b.Size || got.Shape[2] != b.Size {
			var shape any = "nil"
			if got != nil {
				shape = got.Shape
			}
			return row, fmt.Errorf("method %s returned maps of shape %v, want (%d,%d,%d)", m.Name, shape, hi-lo, b.Size, b.Size)
		}
		copy(maps.Data[lo*hw:hi*hw], got.Data)
	}
	row.MillisPerImage = float64(time.Since(t0).Microseconds()) / 1000 / float64(n)
	if err := maps.CheckFinite(m.Name + " maps"); err != nil {
		return row, err
	}
	progress("localisation")
	for i := 0; i < n; i++ {
		mp := maps.Index(i)
		for _, c := range []struct {
			tol int
			dst *float64
		}{{0, &row.Pointing}, {opts.Tolerance, &row.PointingTol}} {
			pg, err := metrics.PointingGame(mp, boxes[i], c.tol)
			if err != nil {
				return row, err
			}
			if pg.Hit {
				*c.dst += 1 / float64(n)
			}
		}
		e, err := metrics.EnergyInRegion(mp, boxes[i])
		if err != nil {
			return row, err
		}
		row.Energy += e / float64(n)
		if e, err = metrics.EnergyInRegion(mp, masks[i]); err != nil {
			return row, err
		}
		row.EnergyMask += e / float64(n)
	}
	np := xp.Shape[0]
	mapsP, _ := engine.ArrayFrom(maps.Data[:np*hw], np, b.Size, b.Size)
	mo := metrics.Options{BatchSize: 128}
	progress("deletion/insertion")
	del, err := metrics.Deletion(ctx, l.Ex, xp, mapsP, metrics.CausalOptions{Steps: opts.Steps, Options: mo})
	if err != nil {
		return row, err
	}
	ins, err := metrics.Insertion(ctx, l.Ex, xp, mapsP, metrics.CausalOptions{Steps: opts.Steps, Options: mo})
	if err != nil {
		return row, err
	}
	row.Deletion, row.Insertion = del.MeanAUC(), ins.MeanAUC()
	scaled, err := metrics.ScaleMaps(mapsP)
	if err != nil {
		return row, err
	}
	progress("confidence")
	cc, err := metrics.ConfidenceChange(ctx, l.Ex, xp, scaled, mo)
	if err != nil {
		return row, err
	}
	row.ConfidenceChange, row.ConfidenceIncrease = cc.MeanChange(), cc.IncreaseInConfidence()
	progress("ROAD")
	road, err := metrics.ROAD(ctx, l.Ex, xp, scaled, metrics.ROADOptions{Options: mo, Seed: 1})
	if err != nil {
		return row, err
	}
	for i := 0; i < np; i++ {
		row.ROADMoRF += road.MoRFMean[i] / float64(np)
		row.ROADLeRF += road.LeRFMean[i] / float64(np)
		row.ROADCombined += road.Combined[i] / float64(np)
	}
	row.ROADAllImputed = road.AllImputed
	return row, nil
}

// Columns are the table's headers (arrows: which direction is better).
var Columns = []string{"Method", "Family", "Pointing ↑", "Pointing ±tol ↑", "Energy box ↑", "Energy mask ↑",
	"Deletion AUC ↓", "Insertion AUC ↑", "Conf. change ↑", "ROAD MoRF ↓", "ROAD LeRF ↑", "ROAD combined ↑", "ms/image"}

// Cells returns the rows as strings in Columns order (rows in Methods()
// order); failed methods are marked "(error)" with "–" for their scores.
func (t *Table) Cells() [][]string {
	f := func(v float64, digits int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.*f", digits, v)
	}
	var out [][]string
	for _, r := range t.Rows {
		title := r.Title
		if r.Err != "" {
			title += " (error)"
		}
		out = append(out, []string{title, r.Family, f(r.Pointing, 3), f(r.PointingTol, 3), f(r.Energy, 3), f(r.EnergyMask, 3),
			f(r.Deletion, 3), f(r.Insertion, 3), f(r.ConfidenceChange, 3), f(r.ROADMoRF, 3), f(r.ROADLeRF, 3), f(r.ROADCombined, 3),
			f(r.MillisPerImage, 1)})
	}
	return out
}

// Notes explain the columns and list errors and caveats.
func (t *Table) Notes() []string {
	o := t.Options
	notes := []string{
		fmt.Sprintf("Model: %s; accuracy on these images %.1f %%.", t.Model, 100*t.Accuracy),
		fmt.Sprintf("Localisation on %d held-out images: Pointing = the map's maximum lies in the true box (ties: majority); ±tol allows %d px; "+
			"Energy = share of the map's positive mass in the box / in the object's pixel mask (a random map scores the area: box %.3f, mask %.3f).",
			t.Images, o.Tolerance, t.BoxArea, t.MaskArea),
		fmt.Sprintf("Faithfulness on the first %d images, tracking the softmax probability of the predicted class: Deletion/Insertion = RISE AUCs over %d steps "+
			"(deletion to the normalised zero = the data mean colour, insertion from the input blurred with σ 4 px); "+
			"Conf. change = pytorch-grad-cam's CamMultImageConfidenceChange, p(x⊙map) − p(x), maps min–max scaled; "+
			"ROAD = score change after noisy linear imputation of the most (MoRF) / least (LeRF) relevant pixels, averaged over percentiles 10…90; combined = (LeRF − MoRF)/2.",
			t.PerturbImages, o.Steps),
		"ms/image = time to compute the maps on this machine (shared 2-core CPU, pure-Go backend); CAM methods that run extra network passes (Score-CAM, Ablation-CAM) cost more.",
	}
	var tied []string
	for _, r := range t.Rows {
		if r.Err != "" {
			notes = append(notes, fmt.Sprintf("%s failed: %s", r.Title, r.Err))
		}
		if r.ROADAllImputed > 0 {
			tied = append(tied, fmt.Sprintf("%s %d", r.Title, r.ROADAllImputed))
		}
	}
	if len(tied) > 0 {
		notes = append(notes, fmt.Sprintf("ROAD cases (of %d per method) in which every pixel was imputed because many equal map values (the zeros of a ReLU'd CAM) "+
			"fall at the percentile threshold: %s. pytorch-grad-cam's solver fails on that singular system; cnnviz imputes the data mean there, "+
			"which lowers MoRF.", 2*9*t.PerturbImages, strings.Join(tied, ", ")))
	}
	return notes
}

// Markdown renders the table and its notes as GitHub-flavoured Markdown.
func (t *Table) Markdown() string {
	var sb strings.Builder
	sb.WriteString("| " + strings.Join(Columns, " | ") + " |\n|")
	for i := range Columns {
		if i < 2 {
			sb.WriteString("---|")
		} else {
			sb.WriteString("---:|")
		}
	}
	sb.WriteString("\n")
	for _, c := range t.Cells() {
		sb.WriteString("| " + strings.Join(c, " | ") + " |\n")
	}
	sb.WriteString("\n")
	for _, n := range t.Notes() {
		sb.WriteString("- " + n + "\n")
	}
	return sb.String()
}

// Text renders the table with aligned plain-text columns, then the notes.
func (t *Table) Text() string {
	rows := append([][]string{Columns}, t.Cells()...)
	width := make([]int, len(Columns))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var sb strings.Builder
	for ri, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i < 2 {
				sb.WriteString(c + pad)
			} else {
				sb.WriteString(pad + c)
			}
			if i < len(r)-1 {
				sb.WriteString("  ")
			}
		}
		sb.WriteString("\n")
		if ri == 0 {
			total := len(width)*2 - 2
			for _, w := range width {
				total += w
			}
			sb.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	for _, n := range t.Notes() {
		sb.WriteString("* " + n + "\n")
	}
	return sb.String()
}

// HTML renders the table as a self-contained fragment (render.HTML).
func (t *Table) HTML() (string, error) {
	h := render.NewHTML()
	h.Heading(3, "Attribution methods on the shapes lab")
	h.Table(Columns, t.Cells())
	for _, n := range t.Notes() {
		h.Paragraph(n)
	}
	return h.String(), h.Err()
}
