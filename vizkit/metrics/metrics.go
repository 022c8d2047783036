package metrics

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Region is a set of pixels of an H×W image (e.g. an object's mask or its
// bounding box), row-major.
type Region struct {
	H, W int
	// Mask holds H·W values, true inside the region.
	Mask []bool
}

// BoxRegion is the rectangle r (pixel coordinates, Max exclusive, clipped to
// the image) of an h×w image. An empty rectangle is an error.
func BoxRegion(h, w int, r image.Rectangle) (Region, error) {
	if h < 1 || w < 1 {
		return Region{}, fmt.Errorf("BoxRegion: image size %d×%d must be positive", h, w)
	}
	c := r.Intersect(image.Rect(0, 0, w, h))
	if c.Empty() {
		return Region{}, fmt.Errorf("BoxRegion: box %v does not overlap the %d×%d image", r, w, h)
	}
	m := make([]bool, h*w)
	for y := c.Min.Y; y < c.Max.Y; y++ {
		for x := c.Min.X; x < c.Max.X; x++ {
			m[y*w+x] = true
		}
	}
	return Region{H: h, W: w, Mask: m}, nil
}

// MaskRegion wraps an h·w mask (not copied). It must hold at least one pixel.
func MaskRegion(h, w int, mask []bool) (Region, error) {
	if h < 1 || w < 1 || len(mask) != h*w {
		return Region{}, fmt.Errorf("MaskRegion: mask of %d values for a %d×%d image", len(mask), h, w)
	}
	for _, v := range mask {
		if v {
			return Region{H: h, W: w, Mask: mask}, nil
		}
	}
	return Region{}, errors.New("MaskRegion: the mask is empty")
}

// Area is the region's fraction of the image, in [0,1] (the expected
// EnergyInRegion of a uniformly random map).
func (r Region) Area() float64 {
	n := 0
	for _, v := range r.Mask {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(r.Mask))
}

func checkMapRegion(what string, m *engine.Array, r Region) error {
	if m == nil || len(m.Shape) != 2 {
		return fmt.Errorf("%s: the map must have shape (H,W), got %v", what, shapeOf(m))
	}
	if m.Shape[0] != r.H || m.Shape[1] != r.W || len(r.Mask) != r.H*r.W {
		return fmt.Errorf("%s: map of shape %v but region of %d×%d (%d mask values)", what, m.Shape, r.H, r.W, len(r.Mask))
	}
	return m.CheckFinite(what + " map")
}

// PointingResult is the outcome of the pointing game on one map.
type PointingResult struct {
	// Hit is true when the map's maximum lies in the region (see PointingGame).
	Hit bool
	// X, Y locate the first maximum (row-major order).
	X, Y int
	// Ties is the number of pixels attaining the maximum; InRegion how many of
	// them lie in the (dilated) region.
	Ties, InRegion int
	// Flat is true when the map is constant: it points nowhere and counts as a miss.
	Flat bool
}

// PointingGame plays Zhang et al.'s pointing game (2016): the map "hits" when
// its maximum lies inside the region, dilated by tolerance pixels (Chebyshev
// distance; Zhang et al. use 15 px at 224×224; 0 = exactly inside). When
// several pixels share the maximum, it hits if at least half of them are
// inside; a constant map is Flat and misses.
func PointingGame(m *engine.Array, r Region, tolerance int) (PointingResult, error) {
	if err := checkMapRegion("PointingGame", m, r); err != nil {
		return PointingResult{}, err
	}
	if tolerance < 0 {
		return PointingResult{}, fmt.Errorf("PointingGame: tolerance must be ≥ 0 pixels, got %d", tolerance)
	}
	mx := m.Data[0]
	for _, v := range m.Data {
		mx = max(mx, v)
	}
	res := PointingResult{X: -1}
	for p, v := range m.Data {
		if v != mx {
			continue
		}
		y, x := p/r.W, p%r.W
		if res.X < 0 {
			res.X, res.Y = x, y
		}
		res.Ties++
		if nearRegion(r, x, y, tolerance) {
			res.InRegion++
		}
	}
	res.Flat = res.Ties == len(m.Data)
	res.Hit = !res.Flat && 2*res.InRegion >= res.Ties
	return res, nil
}

func nearRegion(r Region, x, y, tol int) bool {
	for yy := max(y-tol, 0); yy <= min(y+tol, r.H-1); yy++ {
		for xx := max(x-tol, 0); xx <= min(x+tol, r.W-1); xx++ {
			if r.Mask[yy*r.W+xx] {
				return true
			}
		}
	}
	return false
}

// EnergyInRegion is the fraction of the map's positive mass inside the
// region: Σ_{p∈R} max(m_p,0) / Σ_p max(m_p,0), in [0,1] (Score-CAM's
// energy-based pointing game, Wang et al. 2020). A map with no positive mass
// gives 0. A uniformly random map scores about Region.Area().
func EnergyInRegion(m *engine.Array, r Region) (float64, error) {
	if err := checkMapRegion("EnergyInRegion", m, r); err != nil {
		return 0, err
	}
	var in, all float64
	for p, v := range m.Data {
		if v <= 0 {
			continue
		}
		all += float64(v)
		if r.Mask[p] {
			in += float64(v)
		}
	}
	if all == 0 {
		return 0, nil
	}
	return in / all, nil
}

// RandomMaps returns n maps of h×w independent uniform [0,1) values (PCG,
// seeded): the chance-level reference for every metric here.
func RandomMaps(n, h, w int, seed uint64) *engine.Array {
	rng := rand.New(rand.NewPCG(seed, 0x72616e646f6d))
	a := engine.NewArray(n, h, w)
	for i := range a.Data {
		a.Data[i] = rng.Float32()
	}
	return a
}

// ---------------------------------------------------------------------------
// Perturbation metrics through the model.

// ScoreKind selects the score perturbation metrics track.
type ScoreKind int

const (
	// ScoreProbability is the softmax probability of the class (RISE;
	// pytorch-grad-cam's ClassifierOutputSoftmaxTarget). The default.
	ScoreProbability ScoreKind = iota
	// ScoreLogit is the class logit (ClassifierOutputTarget).
	ScoreLogit
)

func (s ScoreKind) String() string {
	if s == ScoreLogit {
		return "logit"
	}
	return "softmax probability"
}

// Options are the options shared by the perturbation metrics.
type Options struct {
	// Classes are the explained classes: nil means each example's top-1 class
	// on the unperturbed input; one value applies to all; N give one each.
	Classes []int
	// Score is the tracked score (default ScoreProbability).
	Score ScoreKind
	// BatchSize is the number of perturbed inputs per engine execution;
	// default engine.DefaultBatchSize. Memory grows linearly with it.
	BatchSize int
	// Progress, if set, is called after every engine execution with Done and
	// Total in perturbed inputs.
	Progress func(engine.Progress)
}

func (o Options) target() (engine.Target, error) {
	switch o.Score {
	case ScoreProbability:
		return engine.SoftmaxOf(o.Classes...), nil
	case ScoreLogit:
		return engine.Class(o.Classes...), nil
	}
	return engine.Target{}, fmt.Errorf("unknown ScoreKind %d (want ScoreProbability or ScoreLogit)", o.Score)
}

// checkMaps validates maps (N,H,W) against x (N,C,H,W).
func checkMaps(what string, x, maps *engine.Array) error {
	if err := engine.CheckImages(x); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if maps == nil || len(maps.Shape) != 3 || maps.Shape[0] != x.Shape[0] || maps.Shape[1] != x.Shape[2] || maps.Shape[2] != x.Shape[3] {
		return fmt.Errorf("%s: maps must have shape (N,H,W) = (%d,%d,%d) to match the input %v, got %v", what, x.Shape[0], x.Shape[2], x.Shape[3], x.Shape, shapeOf(maps))
	}
	return maps.CheckFinite(what + " maps")
}

// prepareMetric resolves the target's classes on the clean input and
// returns the clean scores.
func prepare(e *engine.Explainer, x *engine.Array, o Options) (engine.Target, []float32, error) {
	if e == nil {
		return engine.Target{}, nil, errors.New("nil Explainer")
	}
	t, err := o.target()
	if err != nil {
		return t, nil, err
	}
	t, res, err := e.ResolveTarget(x, t)
	if err != nil {
		return t, nil, err
	}
	return t, res.Scores, nil
}

// scoreRows evaluates rows perturbed inputs of c channels, row r of example
// exampleOf(r), filled by fill, and returns their target scores.
func scoreRows(ctx context.Context, e *engine.Explainer, task string, t engine.Target, rows, c, h, w int, o Options, exampleOf func(int) int,
	fill func(dst *engine.Array, r0, r1 int)) ([]float32, error) {
	out := make([]float32, rows)
	err := e.RunRows(ctx, rows, c, h, w, o.BatchSize, task, o.Progress,
		func(r0, r1 int) engine.Request { return engine.Request{Target: engine.RowTarget(t, r0, r1, exampleOf)} },
		fill,
		func(res *engine.Result, r0, r1 int) error { copy(out[r0:r1], res.Scores); return nil })
	return out, err
}

// pixelOrder returns the pixel indices (row-major, y·W+x) of an (H,W) map
// from most to least important: by decreasing value, ties by increasing index.
func pixelOrder(m []float32) []int {
	idx := make([]int, len(m))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return m[idx[a]] > m[idx[b]] })
	return idx
}

// Causal metric modes (CausalResult.Mode).
const (
	deletion  = "deletion"
	insertion = "insertion"
)

// CausalOptions configures Deletion and Insertion (Petsiuk et al. 2018, RISE).
type CausalOptions struct {
	Options
	// Steps is the number of perturbation steps; ceil(H·W/Steps) pixels
	// change per step (default 32; RISE uses 224 steps of 224 pixels at 224²).
	Steps int
	// Baseline names what removed pixels become: "zero" (zeros of the
	// normalised input, i.e. the data set's mean colour; RISE's deletion
	// substrate and the default for Deletion) or "blur" (the input blurred with
	// a Gaussian of BlurSigma pixels; RISE's insertion substrate and the
	// default for Insertion).
	Baseline string
	// BaselineArray, if set, is an explicit normalised baseline (N,C,H,W) or
	// (1,C,H,W); it overrides Baseline.
	BaselineArray *engine.Array
	// BlurSigma is the "blur" σ in pixels; default max(H,W)/16 (4 px at 64²).
	// (RISE blurs 224² images with σ = 1 px, which leaves small objects
	// recognisable; σ of a few pixels removes the shapes' corners.)
	BlurSigma float64
}

// CausalResult is a deletion or insertion curve per example.
type CausalResult struct {
	// Mode is "deletion" or "insertion"; Baseline the baseline's name; Score
	// the tracked score.
	Mode, Baseline string
	Score          ScoreKind
	// Classes are the explained classes per example.
	Classes []int
	// Fractions are the fractions of pixels changed at each point (T values,
	// 0 … 1).
	Fractions []float64
	// Curves are the scores (N,T): column 0 is the unperturbed input (deletion)
	// or the baseline (insertion).
	Curves *engine.Array
	// AUC is the trapezoid-rule area under each curve over Fractions (N values).
	AUC []float64
}

// MeanAUC is the mean of AUC.
func (r *CausalResult) MeanAUC() float64 { return mean64(r.AUC) }

// Deletion computes RISE's deletion curve and its AUC for each example's
// map (lower is better): starting from the input, pixels are replaced by the
// baseline, most important first; a faithful map makes the score fall fast.
// See CausalOptions.
func Deletion(ctx context.Context, e *engine.Explainer, x, maps *engine.Array, opts CausalOptions) (*CausalResult, error) {
	return causal(ctx, e, deletion, x, maps, opts)
}

// Insertion computes RISE's insertion curve and its AUC for each example's
// map (higher is better): starting from the baseline, the input's pixels are
// restored, most important first; a faithful map makes the score rise fast.
// See CausalOptions.
func Insertion(ctx context.Context, e *engine.Explainer, x, maps *engine.Array, opts CausalOptions) (*CausalResult, error) {
	return causal(ctx, e, insertion, x, maps, opts)
}

func causal(ctx context.Context, e *engine.Explainer, mode string, x, maps *engine.Array, opts CausalOptions) (*CausalResult, error) {
	what := mode
	if err := checkMaps(what, x, maps); err != nil {
		return nil, err
	}
	n, H, W := x.Shape[0], x.Shape[2], x.Shape[3]
	hw := H * W
	steps := opts.Steps
	if steps == 0 {
		steps = 32
	}
	if steps < 1 {
		return nil, fmt.Errorf("%s: Steps must be ≥ 1, got %d", what, steps)
	}
	steps = min(steps, hw)
	per := (hw + steps - 1) / steps
	points := (hw+per-1)/per + 1
	name := opts.Baseline
	if name == "" {
		name = "zero"
		if mode == insertion {
			name = "blur"
		}
	}
	base, name, err := perturbBaseline(x, name, opts.BaselineArray, opts.BlurSigma, what)
	if err != nil {
		return nil, err
	}
	t, _, err := prepare(e, x, opts.Options)
	if err != nil {
		return nil, err
	}
	orders := make([][]int, n)
	for i := range orders {
		orders[i] = pixelOrder(maps.Index(i).Data)
	}
	fr := make([]float64, points)
	for k := range fr {
		fr[k] = float64(min(k*per, hw)) / float64(hw)
	}
	exampleOf := func(r int) int { return r / points }
	nc := x.Shape[1]
	scores, err := scoreRows(ctx, e, what+" perturbed inputs", t, n*points, nc, H, W, opts.Options, exampleOf, func(dst *engine.Array, r0, r1 int) {
		for r := r0; r < r1; r++ {
			i, k := r/points, r%points
			from, to := x.Index(i).Data, base.Index(i).Data // Deletion: x → baseline.
			if mode == insertion {
				from, to = to, from
			}
			d := dst.Index(r - r0).Data
			copy(d, from)
			for _, p := range orders[i][:min(k*per, hw)] {
				for ch := 0; ch < nc; ch++ {
					d[ch*hw+p] = to[ch*hw+p]
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	res := &CausalResult{Mode: mode, Baseline: name, Score: opts.Score, Classes: t.Classes, Fractions: fr,
		Curves: engine.NewArray(n, points), AUC: make([]float64, n)}
	for i := 0; i < n; i++ {
		row := res.Curves.Index(i).Data
		copy(row, scores[i*points:(i+1)*points])
		res.AUC[i] = trapezoid(fr, row)
	}
	return res, nil
}

// trapezoid integrates y over x with the trapezoid rule.
func trapezoid(x []float64, y []float32) float64 {
	s := 0.0
	for k := 1; k < len(x); k++ {
		s += (x[k] - x[k-1]) * (float64(y[k]) + float64(y[k-1])) / 2
	}
	return s
}

// perturbBaseline builds the (N,C,H,W) baseline for causal metrics.
func perturbBaseline(x *engine.Array, name string, explicit *engine.Array, sigma float64, what string) (*engine.Array, string, error) {
	n, nc, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if explicit != nil {
		ok := len(explicit.Shape) == 4 && (explicit.Shape[0] == n || explicit.Shape[0] == 1) && slices.Equal(explicit.Shape[1:], x.Shape[1:])
		if !ok {
			return nil, "", fmt.Errorf("%s: BaselineArray must have shape (%d,%d,%d,%d) or (1,%d,%d,%d), got %v", what, n, nc, H, W, nc, H, W, explicit.Shape)
		}
		if err := explicit.CheckFinite(what + " baseline"); err != nil {
			return nil, "", err
		}
		out := engine.NewArray(x.Shape...)
		for i := 0; i < n; i++ {
			copy(out.Index(i).Data, explicit.Index(min(i, explicit.Shape[0]-1)).Data)
		}
		return out, "explicit", nil
	}
	switch name {
	case "zero":
		return engine.NewArray(x.Shape...), "zero", nil
	case "blur":
		if sigma == 0 {
			sigma = float64(max(H, W)) / 16
		}
		if !(sigma > 0) || math.IsInf(sigma, 0) {
			return nil, "", fmt.Errorf("%s: BlurSigma must be > 0 pixels, got %g", what, sigma)
		}
		out := engine.NewArray(x.Shape...)
		for p := 0; p < n*nc; p++ {
			copy(out.Data[p*H*W:(p+1)*H*W], heatmap.GaussianBlur(x.Data[p*H*W:(p+1)*H*W], H, W, sigma))
		}
		return out, fmt.Sprintf("blur (σ %g px)", sigma), nil
	}
	return nil, "", fmt.Errorf("%s: unknown baseline %q (known: zero, blur; or set BaselineArray)", what, name)
}

// ConfidenceResult is pytorch-grad-cam's CamMultImageConfidenceChange.
type ConfidenceResult struct {
	// Classes are the explained classes; Score the tracked score.
	Classes []int
	Score   ScoreKind
	// Before are the scores on the input, After on input ⊙ map (N each).
	Before, After []float32
	// Change is After − Before per example (the library's return value).
	Change []float32
}

// MeanChange is the mean of Change.
func (r *ConfidenceResult) MeanChange() float64 { return mean32(r.Change) }

// DropInConfidence is the library's DropInConfidence per example:
// max(−Change, 0) (lower is better).
func (r *ConfidenceResult) DropInConfidence() []float64 {
	out := make([]float64, len(r.Change))
	for i, c := range r.Change {
		out[i] = max(-float64(c), 0)
	}
	return out
}

// IncreaseInConfidence is the library's IncreaseInConfidence: the fraction of
// examples whose score rose (Change > 0).
func (r *ConfidenceResult) IncreaseInConfidence() float64 {
	k := 0
	for _, c := range r.Change {
		if c > 0 {
			k++
		}
	}
	return float64(k) / float64(max(len(r.Change), 1))
}

// ConfidenceChange multiplies each (normalised) input by its map, broadcast
// over the channels, and reports the score change: pytorch-grad-cam's
// CamMultImageConfidenceChange (metrics/cam_mult_image.py), which keeps the
// input where the map is 1 and moves it to the normalised zero (the data
// mean) where the map is 0. Maps must hold values in [0,1] (CAMs are; scale
// other attributions first, e.g. with ScaleMaps); anything else is an error.
func ConfidenceChange(ctx context.Context, e *engine.Explainer, x, maps *engine.Array, opts Options) (*ConfidenceResult, error) {
	const what = "ConfidenceChange"
	if err := checkMaps(what, x, maps); err != nil {
		return nil, err
	}
	for i, v := range maps.Data {
		if v < 0 || v > 1 {
			return nil, fmt.Errorf("%s: map values must be in [0,1] (the library multiplies the input by a CAM); value %v at flat index %d — scale the maps first (ScaleMaps)", what, v, i)
		}
	}
	t, before, err := prepare(e, x, opts)
	if err != nil {
		return nil, err
	}
	n, nc, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hw := H * W
	after, err := scoreRows(ctx, e, what+" masked inputs", t, n, nc, H, W, opts, func(r int) int { return r }, func(dst *engine.Array, r0, r1 int) {
		for r := r0; r < r1; r++ {
			src, m, d := x.Index(r).Data, maps.Index(r).Data, dst.Index(r-r0).Data
			for ch := 0; ch < nc; ch++ {
				for p := 0; p < hw; p++ {
					d[ch*hw+p] = src[ch*hw+p] * m[p]
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	res := &ConfidenceResult{Classes: t.Classes, Score: opts.Score, Before: before, After: after, Change: make([]float32, n)}
	for i := range after {
		res.Change[i] = after[i] - before[i]
	}
	return res, nil
}

// ScaleMaps min–max scales each (H,W) map of maps (N,H,W) to [0,1]
// (pytorch-grad-cam's scale_cam_image without the resize: (m−min)/(1e-7+max−min)
// with the max taken after subtracting min); constant maps become 0.
func ScaleMaps(maps *engine.Array) (*engine.Array, error) {
	if maps == nil || len(maps.Shape) != 3 {
		return nil, fmt.Errorf("ScaleMaps: maps must have shape (N,H,W), got %v", shapeOf(maps))
	}
	if err := maps.CheckFinite("ScaleMaps maps"); err != nil {
		return nil, err
	}
	out := maps.Clone()
	for i := 0; i < out.Shape[0]; i++ {
		m := out.Index(i).Data
		lo, hi := m[0], m[0]
		for _, v := range m {
			lo, hi = min(lo, v), max(hi, v)
		}
		for j, v := range m {
			m[j] = (v - lo) / (1e-7 + hi - lo)
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// ROAD

// ROADOptions configures ROAD.
type ROADOptions struct {
	Options
	// Percentiles are the thresholds (default 10, 20, …, 90, the library's
	// ROAD*Average and ROADCombined defaults). At percentile p, MoRF imputes
	// the pixels whose map value is ≥ the p-th percentile (keeps m <
	// percentile(m, p)); LeRF imputes those whose 1−m is ≥ the p-th percentile
	// of 1−m, exactly as the library's RemoveMostRelevantFirst /
	// RemoveLeastRelevantFirst (numpy's linear percentile).
	Percentiles []float64
	// Noise is the standard deviation of the Gaussian noise added to imputed
	// values, in normalised input units (default 0.01, the library's; negative
	// means none).
	Noise float64
	// Seed seeds the noise (PCG; each perturbed image has its own stream, so
	// results do not depend on chunking or scheduling).
	Seed uint64
}

// ROADResult holds ROAD score changes (imputed − original score).
type ROADResult struct {
	// Classes are the explained classes; Score the tracked score.
	Classes []int
	Score   ScoreKind
	// Percentiles are the thresholds used.
	Percentiles []float64
	// MoRF and LeRF are the score changes (N,P) after imputing the most
	// relevant (MoRF) or least relevant (LeRF) pixels.
	MoRF, LeRF *engine.Array
	// MoRFMean and LeRFMean average them over the percentiles per example
	// (the library's ROADMostRelevantFirstAverage / LeastRelevantFirstAverage;
	// MoRF lower and LeRF higher is better).
	MoRFMean, LeRFMean []float64
	// Combined is (LeRFMean − MoRFMean)/2 per example (ROADCombined; higher is
	// better).
	Combined []float64
	// AllImputed counts (example, percentile, order) cases in which every
	// pixel was to be imputed (many tied map values): the library's linear
	// system is singular there; cnnviz fills the image with the normalised
	// zero (the data mean) plus noise.
	AllImputed int
}

// ROAD runs the ROAD evaluation (Rong et al. 2022, "A Consistent and
// Efficient Evaluation Strategy for Attribution Methods") as pytorch-grad-cam
// implements it (metrics/road.py): for every percentile, the most (MoRF) or
// least (LeRF) relevant pixels are replaced by noisy linear imputation from
// their neighbours (NoisyLinearImpute) and the change of the target score is
// recorded. It costs 2·P network evaluations and imputations per example.
//
// Differences from the library: the sparse system is solved by conjugate
// gradients to a relative residual of 1e-6 instead of a direct solver (the
// same solution to float precision); the noise comes from Go's PCG, not
// torch.randn; the singular all-imputed case is defined (see AllImputed).
func ROAD(ctx context.Context, e *engine.Explainer, x, maps *engine.Array, opts ROADOptions) (*ROADResult, error) {
	const what = "ROAD"
	if err := checkMaps(what, x, maps); err != nil {
		return nil, err
	}
	pcts := opts.Percentiles
	if pcts == nil {
		pcts = []float64{10, 20, 30, 40, 50, 60, 70, 80, 90}
	}
	for _, p := range pcts {
		if !(p >= 0 && p <= 100) {
			return nil, fmt.Errorf("%s: percentiles must be in [0,100], got %v", what, pcts)
		}
	}
	if len(pcts) == 0 {
		return nil, fmt.Errorf("%s: no percentiles", what)
	}
	noise := opts.Noise
	if noise == 0 {
		noise = 0.01
	} else if noise < 0 {
		noise = 0
	}
	t, before, err := prepare(e, x, opts.Options)
	if err != nil {
		return nil, err
	}
	n, nc, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hw := H * W
	np := len(pcts)
	rows := n * np * 2 // Row r: example r/(2P), percentile (r/2)%P, order r%2 (0 MoRF, 1 LeRF).
	res := &ROADResult{Classes: t.Classes, Score: opts.Score, Percentiles: append([]float64(nil), pcts...),
		MoRF: engine.NewArray(n, np), LeRF: engine.NewArray(n, np)}
	allImputed := make([]bool, rows)
	rowErr := make([]error, rows)
	// One imputation per row, in parallel; row r's noise comes from its own
	// generator (seed, r), so results do not depend on scheduling.
	impute := func(dst *engine.Array, r0, r int) {
		i, pi, lerf := r/(2*np), (r/2)%np, r%2 == 1
		m := maps.Index(i).Data
		vals := m
		if lerf {
			vals = make([]float32, hw)
			for j, v := range m {
				vals[j] = 1 - v
			}
		}
		thr := percentile(vals, pcts[pi])
		keep := make([]bool, hw)
		kept := false
		for j, v := range vals {
			keep[j] = float64(v) < thr
			kept = kept || keep[j]
		}
		allImputed[r] = !kept
		rng := rand.New(rand.NewPCG(opts.Seed, 0x524f414400000000^uint64(r)))
		img, err := NoisyLinearImpute(x.Index(i).Data, nc, H, W, keep, noise, rng)
		if err != nil {
			rowErr[r] = err
			return
		}
		copy(dst.Index(r-r0).Data, img)
	}
	scores, err := scoreRows(ctx, e, what+" imputed inputs", t, rows, nc, H, W, opts.Options, func(r int) int { return r / (2 * np) }, func(dst *engine.Array, r0, r1 int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < min(runtime.GOMAXPROCS(0), r1-r0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range next {
					impute(dst, r0, r)
				}
			}()
		}
		for r := r0; r < r1; r++ {
			next <- r
		}
		close(next)
		wg.Wait()
	})
	fillErr := errors.Join(rowErr...)
	for _, a := range allImputed {
		if a {
			res.AllImputed++
		}
	}
	if err == nil {
		err = fillErr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	res.MoRFMean, res.LeRFMean, res.Combined = make([]float64, n), make([]float64, n), make([]float64, n)
	for r, s := range scores {
		i, pi := r/(2*np), (r/2)%np
		d := s - before[i]
		if r%2 == 0 {
			res.MoRF.Data[i*np+pi] = d
			res.MoRFMean[i] += float64(d) / float64(np)
		} else {
			res.LeRF.Data[i*np+pi] = d
			res.LeRFMean[i] += float64(d) / float64(np)
		}
	}
	for i := range res.Combined {
		res.Combined[i] = (res.LeRFMean[i] - res.MoRFMean[i]) / 2
	}
	return res, nil
}

// percentile is numpy.percentile(v, p) with the default linear
// interpolation: the value at rank p/100·(n−1) of the sorted values.
func percentile(v []float32, p float64) float64 {
	s := make([]float64, len(v))
	for i, x := range v {
		s[i] = float64(x)
	}
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(s)-1)
	f := rank - float64(lo)
	return s[lo] + (s[hi]-s[lo])*f
}

// roadNeighbours are the library's neighbour weights (dy, dx, w): 1/6 for
// the 4 edge neighbours, 1/12 for the diagonals.
var roadNeighbours = [8]struct {
	dy, dx int
	w      float64
}{{1, 1, 1. / 12}, {0, 1, 1. / 6}, {-1, 1, 1. / 12}, {1, -1, 1. / 12}, {0, -1, 1. / 6}, {-1, -1, 1. / 12}, {1, 0, 1. / 6}, {-1, 0, 1. / 6}}

// NoisyLinearImpute is ROAD's noisy linear imputation (pytorch-grad-cam's
// NoisyLinearImputer): every pixel p with keep[p] false gets, in each of the c
// channels of img (C,H,W), the weighted mean of its in-image 8 neighbours
// (edge neighbours weight 1/6, diagonal 1/12), neighbours that are imputed
// themselves included — a sparse linear system solved here by conjugate
// gradients — plus N(0, noise²) noise. Kept pixels are unchanged. If no pixel
// is kept the system is singular; the result is then 0 plus noise
// everywhere. rng may be nil when noise is 0.
func NoisyLinearImpute(img []float32, c, h, w int, keep []bool, noise float64, rng *rand.Rand) ([]float32, error) {
	hw := h * w
	if c < 1 || h < 1 || w < 1 || len(img) != c*hw || len(keep) != hw {
		return nil, fmt.Errorf("NoisyLinearImpute: image of %d values and mask of %d for (C,H,W)=(%d,%d,%d)", len(img), len(keep), c, h, w)
	}
	if noise > 0 && rng == nil {
		return nil, errors.New("NoisyLinearImpute: noise > 0 needs a random generator")
	}
	out := append([]float32(nil), img...)
	// Unknowns: the imputed pixels, numbered in row-major order.
	id := make([]int, hw)
	var unk []int
	for p := range id {
		id[p] = -1
		if !keep[p] {
			id[p] = len(unk)
			unk = append(unk, p)
		}
	}
	m := len(unk)
	if m == 0 {
		return out, nil
	}
	addNoise := func(v float64) float32 {
		if noise > 0 {
			v += noise * rng.NormFloat64()
		}
		return float32(v)
	}
	if m == hw {
		for ch := 0; ch < c; ch++ {
			for _, p := range unk {
				out[ch*hw+p] = addNoise(0)
			}
		}
		return out, nil
	}
	// A x = b with A_ii = Σ_valid w, A_ij = −w (j imputed), b_i = Σ_known w·img_j.
	type nb struct {
		j int
		w float64
	}
	diag := make([]float64, m)
	adj := make([][]nb, m)
	b := make([]float64, c*m)
	for k, p := range unk {
		y, x := p/w, p%w
		for _, o := range roadNeighbours {
			yy, xx := y+o.dy, x+o.dx
			if yy < 0 || xx < 0 || yy >= h || xx >= w {
				continue
			}
			q := yy*w + xx
			diag[k] += o.w
			if id[q] >= 0 {
				adj[k] = append(adj[k], nb{id[q], o.w})
			} else {
				for ch := 0; ch < c; ch++ {
					b[ch*m+k] += o.w * float64(img[ch*hw+q])
				}
			}
		}
	}
	apply := func(dst, v []float64) {
		for k := range diag {
			s := diag[k] * v[k]
			for _, e := range adj[k] {
				s -= e.w * v[e.j]
			}
			dst[k] = s
		}
	}
	for ch := 0; ch < c; ch++ {
		sol, err := conjugateGradients(apply, b[ch*m:(ch+1)*m], 1e-6, 10*m+100)
		if err != nil {
			return nil, fmt.Errorf("NoisyLinearImpute: channel %d: %w", ch, err)
		}
		for k, p := range unk {
			out[ch*hw+p] = addNoise(sol[k])
		}
	}
	return out, nil
}

// conjugateGradients solves the symmetric positive definite system A x = b
// (A given by apply) to ‖r‖ ≤ tol·‖b‖, starting from x = 0.
func conjugateGradients(apply func(dst, v []float64), b []float64, tol float64, maxIter int) ([]float64, error) {
	n := len(b)
	x := make([]float64, n)
	r := append([]float64(nil), b...)
	p := append([]float64(nil), b...)
	ap := make([]float64, n)
	rr := dot(r, r)
	bb := rr
	if bb == 0 {
		return x, nil
	}
	for it := 0; it < maxIter; it++ {
		if rr <= tol*tol*bb {
			return x, nil
		}
		apply(ap, p)
		alpha := rr / dot(p, ap)
		for i := range x {
			x[i] += alpha * p[i]
			r[i] -= alpha * ap[i]
		}
		rr2 := dot(r, r)
		beta := rr2 / rr
		rr = rr2
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
	}
	if rr <= 1e-8*bb {
		return x, nil // Converged to a looser but still negligible residual.
	}
	return nil, fmt.Errorf("conjugate gradients did not converge in %d iterations (relative residual %.2g)", maxIter, math.Sqrt(rr/bb))
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func mean64(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func mean32(v []float32) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += float64(x)
	}
	return s / float64(len(v))
}

func shapeOf(a *engine.Array) any {
	if a == nil {
		return "nil"
	}
	return a.Shape
}
