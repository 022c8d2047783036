package actmax

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
	"github.com/gomlx/gomlx/core/graph"
)

// Parameterisations and optimisers of ActMax.
const (
	// ParamPixel optimises the normalised input pixels directly (FlashTorch).
	ParamPixel = "pixel"
	// ParamFFT optimises Lucid's decorrelated Fourier parameterisation. Its
	// colour decorrelation (Lucid's ImageNet colour correlation) is defined
	// for 3-channel RGB inputs; for any other channel count the channels are
	// left uncorrelated (an identity colour basis), so each channel is its
	// own Fourier image.
	ParamFFT = "fft"
	// OptimizerNormalized is FlashTorch's step θ += LR · g / (RMS(g) + 1e-5).
	OptimizerNormalized = "normalized"
	// OptimizerAdam is Adam (β 0.9, 0.999, ε 1e-8) as ascent, Lucid's optimiser.
	OptimizerAdam = "adam"
)

// Options configures Run and Filters. The zero value is FlashTorch's
// GradientAscent (pixel parameterisation, normalised-gradient steps of LR 1,
// no regularisation) on 128×128 inputs for 30 steps.
type Options struct {
	// Size is the optimised image's (height, width); default (128, 128).
	Size [2]int
	// Steps is the number of gradient steps; default 30.
	Steps int
	// LR is the step size; default 1 for OptimizerNormalized, 0.05 for
	// OptimizerAdam (Lucid's).
	LR float64
	// Optimizer is OptimizerNormalized (default) or OptimizerAdam.
	Optimizer string
	// Param is ParamPixel (default) or ParamFFT.
	Param string
	// DecayPower is the Fourier spectrum's 1/f^decay scaling (ParamFFT); default 1.
	DecayPower float64
	// Seed seeds the initial image and the random transforms.
	Seed uint64
	// Init, if set, is the initial normalised input (1,C,H,W) or (N,C,H,W)
	// (ParamPixel only); default: FlashTorch's uniform noise, pixels drawn
	// uniformly in [150,180)/255 and truncated to whole levels as np.uint8.
	Init *engine.Array

	// Jitter is the largest random translation in pixels per step (each axis
	// uniform in [−Jitter, Jitter]); 0: none.
	Jitter int
	// Scales and Rotations (degrees) are the choices of random scale and
	// rotation per step (e.g. Lucid's 1+(i−5)/50 for i in 0..10 and −10..10);
	// empty: none. Transformed images are sampled bilinearly, with grey (0.5)
	// outside the image.
	Scales, Rotations []float64
	// TV and L2 weight the total variation Σ|∇img| and the squared distance
	// Σ(img − 0.5)² of the image in pixel space. They are added to the
	// objective's gradient after that is divided by its RMS, so the weights do
	// not depend on the layer's scale: 0.05–0.5 are moderate.
	TV, L2 float64
	// BlurEvery blurs the image with a Gaussian of BlurSigma pixels (default 0.5)
	// every BlurEvery steps (ParamPixel only); 0: never.
	BlurEvery int
	BlurSigma float64
	// Norm is the input normalisation; zero: the default for the network's
	// input channel count C (models.InputChannels): ImageNet's for 3, none
	// otherwise. See engine.Normalization.
	Norm engine.Normalization
	// BatchSize is the number of images optimised together per engine
	// execution; default engine.DefaultBatchSize. Memory grows linearly with it.
	BatchSize int
	// Progress, if set, is called after every step with Done and Total in
	// steps over all batches (Steps × number of batches).
	Progress func(engine.Progress)
}

// Result holds the optimised images.
type Result struct {
	// Targets are the maximised targets, one per image.
	Targets []engine.Target
	// Param and Optimizer as used.
	Param, Optimizer string
	// Input is the optimised network input, normalised, (N,C,H,W) with C the
	// network's input channel count.
	Input *engine.Array
	// Pixels is Input in pixel space, clipped to [0,1], (N,C,H,W).
	Pixels *engine.Array
	// InitialScores and Scores are the objective values on the initial and the
	// final image (untransformed), per image.
	InitialScores, Scores []float32
	// History holds the objective value per step (on the transformed input) and
	// image: History[step][image].
	History [][]float32
	// Norm is the input normalisation (resolved: C values each).
	Norm engine.Normalization
}

// Display returns the images to show, (N,C,H,W) in [0,1]: FlashTorch's
// standardize_and_clip(saturation 0.2, brightness 0.7) of Input for the pixel
// parameterisation (whose values leave the valid range without
// regularisation), Pixels for the Fourier one.
func (r *Result) Display() *engine.Array {
	if r.Param == ParamFFT {
		return r.Pixels.Clone()
	}
	return engine.StandardizeAndClip(r.Input, 0.2, 0.7)
}

type config struct {
	c, h, w, steps   int
	lr               float64
	optimizer, param string
	decay            float64
	norm             engine.Normalization
	blurSigma        float64
	batch            int
}

func newConfig(e *engine.Explainer, opts Options) (config, error) {
	c := config{c: models.InputChannels(e.Net()), h: opts.Size[0], w: opts.Size[1], steps: opts.Steps, lr: opts.LR, optimizer: opts.Optimizer,
		param: opts.Param, decay: opts.DecayPower, blurSigma: opts.BlurSigma, batch: opts.BatchSize}
	var err error
	if c.norm, err = opts.Norm.For(c.c); err != nil {
		return c, fmt.Errorf("activation maximisation: %w", err)
	}
	if opts.Size == ([2]int{}) {
		c.h, c.w = 128, 128
	}
	if opts.Init != nil && len(opts.Init.Shape) == 4 && opts.Size == ([2]int{}) {
		c.h, c.w = opts.Init.Shape[2], opts.Init.Shape[3]
	}
	if err := e.Net().CheckInput([]int{1, c.c, c.h, c.w}); err != nil {
		return c, fmt.Errorf("activation maximisation image size %dx%d: %w", c.h, c.w, err)
	}
	if c.steps == 0 {
		c.steps = 30
	}
	if c.steps < 0 {
		return c, fmt.Errorf("activation maximisation Steps %d must be ≥ 0", opts.Steps)
	}
	switch c.optimizer {
	case "":
		c.optimizer = OptimizerNormalized
	case OptimizerNormalized, OptimizerAdam:
	default:
		return c, fmt.Errorf("unknown optimizer %q (want %q or %q)", opts.Optimizer, OptimizerNormalized, OptimizerAdam)
	}
	if c.lr == 0 {
		c.lr = 1
		if c.optimizer == OptimizerAdam {
			c.lr = 0.05
		}
	}
	if !(c.lr > 0) || math.IsInf(c.lr, 0) {
		return c, fmt.Errorf("activation maximisation LR %v must be positive and finite", opts.LR)
	}
	switch c.param {
	case "":
		c.param = ParamPixel
	case ParamPixel, ParamFFT:
	default:
		return c, fmt.Errorf("unknown parameterisation %q (want %q or %q)", opts.Param, ParamPixel, ParamFFT)
	}
	if c.decay == 0 {
		c.decay = 1
	}
	if c.blurSigma == 0 {
		c.blurSigma = 0.5
	}
	if opts.BlurEvery < 0 || c.blurSigma < 0 || math.IsNaN(c.blurSigma) {
		return c, fmt.Errorf("BlurEvery %d and BlurSigma %v must not be negative", opts.BlurEvery, opts.BlurSigma)
	}
	if c.param == ParamFFT && opts.BlurEvery > 0 {
		return c, errors.New("BlurEvery applies to the pixel parameterisation only (the Fourier one already favours smooth images)")
	}
	if c.param == ParamFFT && opts.Init != nil {
		return c, errors.New("Init applies to the pixel parameterisation only")
	}
	if opts.Jitter < 0 || opts.TV < 0 || opts.L2 < 0 || math.IsNaN(opts.TV) || math.IsNaN(opts.L2) || math.IsInf(opts.TV, 0) || math.IsInf(opts.L2, 0) {
		return c, fmt.Errorf("Jitter (%d), TV (%v) and L2 (%v) must be finite and ≥ 0", opts.Jitter, opts.TV, opts.L2)
	}
	for _, s := range opts.Scales {
		if !(s > 0) || math.IsInf(s, 0) {
			return c, fmt.Errorf("random scales must be positive and finite, got %v", opts.Scales)
		}
	}
	for _, r := range opts.Rotations {
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return c, fmt.Errorf("random rotations must be finite, got %v", opts.Rotations)
		}
	}
	if c.batch == 0 {
		c.batch = engine.DefaultBatchSize
	}
	if c.batch < 0 {
		return c, fmt.Errorf("activation maximisation BatchSize %d must be ≥ 0 (0 means %d)", opts.BatchSize, engine.DefaultBatchSize)
	}
	return c, nil
}

// objective is a target as Run reads it: a class logit or a layer unit.
type objective struct {
	class bool
	cls   int
	unit  engine.Unit
}

func (o objective) String() string {
	if o.class {
		return fmt.Sprintf("logit of class %d", o.cls)
	}
	if o.unit.Neuron {
		return fmt.Sprintf("%s channel %d at (%d,%d)", o.unit.Layer, o.unit.Channel, o.unit.Y, o.unit.X)
	}
	return fmt.Sprintf("%s channel %d", o.unit.Layer, o.unit.Channel)
}

// objectiveOf reads a target Run can maximise.
func objectiveOf(t engine.Target) (objective, error) {
	if u, ok := t.Unit(); ok {
		return objective{unit: u}, nil
	}
	if t.Kind == engine.TargetLogit && len(t.Classes) == 1 {
		return objective{class: true, cls: t.Classes[0]}, nil
	}
	return objective{}, fmt.Errorf("activation maximisation maximises engine.Class(c) (one class), engine.ChannelMean(layer, ch) or engine.Neuron(layer, ch, y, x), not %q", t)
}

// request builds the engine request for a batch of objectives, which must
// share kind and layer (and neuron position). Channel and neuron objectives
// mask the layer's output with a per-example one-hot channel scale
// (engine.Request.ScaleLayer) and sum: one compiled graph serves every channel.
func request(e *engine.Explainer, objs []objective) (engine.Request, engine.RunOptions, error) {
	o := objs[0]
	if o.class {
		cls := make([]int, len(objs))
		for i, ob := range objs {
			cls[i] = ob.cls
		}
		return engine.Request{GradInput: true, Target: engine.Class(cls...)}, engine.RunOptions{}, nil
	}
	name := o.unit.Layer
	layer, err := e.Layer(name)
	if err != nil {
		return engine.Request{}, engine.RunOptions{}, fmt.Errorf("activation maximisation: %w", err)
	}
	scale := engine.NewArray(len(objs), layer.Out)
	for i, ob := range objs {
		scale.Data[i*layer.Out+ob.unit.Channel] = 1
	}
	var t engine.Target
	if o.unit.Neuron && layer.Spatial {
		y, x := o.unit.Y, o.unit.X
		t = engine.NamedFunc(name, fmt.Sprintf("actmax: masked neuron (%d,%d) of %s", y, x, name), func(act *graph.Node) *graph.Node {
			d := act.Shape().Dimensions
			v := graph.Slice(act, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(y, y+1), graph.AxisRange(x, x+1))
			return graph.ReduceSum(graph.Reshape(v, d[0], d[1]), 1)
		})
	} else {
		t = engine.NamedFunc(name, "actmax: masked channel mean of "+name, func(act *graph.Node) *graph.Node {
			if act.Rank() == 4 {
				return graph.ReduceSum(graph.ReduceMean(act, 2, 3), 1)
			}
			return graph.ReduceSum(act, 1)
		})
	}
	return engine.Request{GradInput: true, Target: t, ScaleLayer: name}, engine.RunOptions{Scale: scale}, nil
}

// objectivesOf validates targets against the network; all must share kind
// and layer (and position for neurons).
func objectivesOf(e *engine.Explainer, targets []engine.Target, c, h, w int) ([]objective, error) {
	if len(targets) == 0 {
		return nil, errors.New("activation maximisation needs at least one target")
	}
	objs := make([]objective, len(targets))
	for i, t := range targets {
		ob, err := objectiveOf(t)
		if err != nil {
			return nil, fmt.Errorf("target #%d: %w", i, err)
		}
		objs[i] = ob
	}
	o := objs[0]
	for i, ob := range objs {
		if ob.class != o.class || ob.unit.Neuron != o.unit.Neuron || ob.unit.Layer != o.unit.Layer || (ob.unit.Neuron && (ob.unit.Y != o.unit.Y || ob.unit.X != o.unit.X)) {
			return nil, fmt.Errorf("targets optimised together must share kind, layer and neuron position: #0 is %s, #%d is %s", o, i, ob)
		}
		if ob.class {
			if k := e.Net().NumClasses(); ob.cls < 0 || ob.cls >= k {
				return nil, fmt.Errorf("class index %d is out of range for model %s with %d classes (valid: 0..%d)", ob.cls, e.Net().Arch(), k, k-1)
			}
			continue
		}
		l, err := e.Layer(ob.unit.Layer)
		if err != nil {
			return nil, fmt.Errorf("activation maximisation: %w", err)
		}
		if ob.unit.Channel < 0 || ob.unit.Channel >= l.Out {
			return nil, fmt.Errorf("channel %d is out of range for layer %q with %d channels (valid: 0..%d)", ob.unit.Channel, ob.unit.Layer, l.Out, l.Out-1)
		}
	}
	if o.unit.Neuron {
		l, _ := e.Layer(o.unit.Layer)
		if l.Spatial {
			res, err := e.Run(engine.NewArray(1, c, h, w), engine.Request{Taps: []string{o.unit.Layer}, Target: engine.ChannelMean(o.unit.Layer, 0)})
			if err != nil {
				return nil, err
			}
			s := res.Acts[o.unit.Layer].Shape
			if o.unit.Y < 0 || o.unit.Y >= s[2] || o.unit.X < 0 || o.unit.X >= s[3] {
				return nil, fmt.Errorf("neuron (%d,%d) is outside layer %q's %dx%d output grid for %dx%d inputs", o.unit.Y, o.unit.X, o.unit.Layer, s[2], s[3], h, w)
			}
		}
	}
	return objs, nil
}

// Run optimises one image per target and returns them. Targets are
// engine.ChannelMean(layer, ch) (FlashTorch's filter objective),
// engine.Neuron(layer, ch, y, x) or engine.Class(c) (one class each); all
// must share kind and layer (run layers separately). Images are optimised
// together, BatchSize per engine execution; each image's objective depends
// only on itself. Runs are deterministic for a given Seed and BatchSize.
//
// Each step: img = P(θ) in pixel space; a random transform T (Jitter, Scales,
// Rotations) is drawn per image; x = (T(img) − mean)/std goes through the
// engine, which returns the objective J and ∂J/∂x; the gradient is carried back
// g = Tᵀ(∂J/∂x / std), and if TV or L2 is set it is divided by its RMS and the
// penalty gradients are subtracted; then ∂/∂θ = Pᵀ g and θ takes a step
// (normalised: θ += LR·∂/∂θ / (RMS + 1e-5); or Adam). Without transforms or
// penalties the pixel parameterisation is exactly FlashTorch's GradientAscent.
func Run(ctx context.Context, e *engine.Explainer, targets []engine.Target, opts Options) (*Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if e == nil {
		return nil, errors.New("activation maximisation: nil Explainer")
	}
	cfg, err := newConfig(e, opts)
	if err != nil {
		return nil, err
	}
	objs, err := objectivesOf(e, targets, cfg.c, cfg.h, cfg.w)
	if err != nil {
		return nil, err
	}
	n, nc := len(objs), cfg.c
	if opts.Init != nil {
		in := opts.Init
		if len(in.Shape) != 4 || (in.Shape[0] != 1 && in.Shape[0] != n) || in.Shape[1] != nc || in.Shape[2] != cfg.h || in.Shape[3] != cfg.w || len(in.Data) != in.Shape[0]*nc*cfg.h*cfg.w {
			return nil, fmt.Errorf("activation maximisation Init must have shape (1,%d,%d,%d) or (%d,%d,%d,%d), got %v", nc, cfg.h, cfg.w, n, nc, cfg.h, cfg.w, in.Shape)
		}
		if err := in.CheckFinite("activation maximisation Init"); err != nil {
			return nil, err
		}
	}
	per := nc * cfg.h * cfg.w
	res := &Result{Targets: append([]engine.Target(nil), targets...), Param: cfg.param, Optimizer: cfg.optimizer,
		Input: engine.NewArray(n, nc, cfg.h, cfg.w), Pixels: engine.NewArray(n, nc, cfg.h, cfg.w),
		InitialScores: make([]float32, n), Scores: make([]float32, n), History: make([][]float32, cfg.steps), Norm: cfg.norm}
	for s := range res.History {
		res.History[s] = make([]float32, n)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6163746d6178))
	batches := (n + cfg.batch - 1) / cfg.batch
	for c0 := 0; c0 < n; c0 += cfg.batch {
		c1 := min(c0+cfg.batch, n)
		pr := progress{report: opts.Progress, task: fmt.Sprintf("activation maximisation of %d target(s): steps", n),
			done: c0 / cfg.batch * cfg.steps, total: batches * cfg.steps}
		if err := runBatch(ctx, e, objs[c0:c1], c0, cfg, opts, rng, res, pr); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		px := res.Pixels.Data[i*per : (i+1)*per]
		for j, v := range res.Input.Data[i*per : (i+1)*per] {
			c := j / (cfg.h * cfg.w)
			px[j] = float32(min(max(float64(v)*float64(cfg.norm.Std[c])+float64(cfg.norm.Mean[c]), 0), 1))
		}
	}
	return res, nil
}

// progress reports steps of one batch on top of those of earlier batches.
type progress struct {
	report      func(engine.Progress)
	task        string
	done, total int
}

func (p progress) step(s int) {
	if p.report != nil {
		p.report(engine.Progress{Task: p.task, Done: p.done + s, Total: p.total})
	}
}

// runBatch optimises objectives objs (images off..off+len−1 of res).
func runBatch(ctx context.Context, e *engine.Explainer, objs []objective, off int, cfg config, opts Options,
	rng *rand.Rand, res *Result, pr progress) error {
	b, nc, h, w := len(objs), cfg.c, cfg.h, cfg.w
	hw := h * w
	per := nc * hw
	req, ro, err := request(e, objs)
	if err != nil {
		return err
	}
	norm := cfg.norm
	// Parameters and their map to pixel space.
	var fft *fftParam
	thetas := make([][]float64, b)
	for i := range thetas {
		switch {
		case cfg.param == ParamFFT:
			if fft == nil {
				fft = newFFTParam(nc, h, w, cfg.decay)
			}
			thetas[i] = fft.init(rng, 0.01)
		case opts.Init != nil:
			src := opts.Init.Data
			if opts.Init.Shape[0] > 1 {
				src = opts.Init.Index(off + i).Data
			}
			thetas[i] = make([]float64, per)
			for j, v := range src {
				thetas[i][j] = float64(v)
			}
		default:
			thetas[i] = make([]float64, per)
			for j := range thetas[i] {
				c := j / hw
				pix := math.Floor(150+30*rng.Float64()) / 255
				thetas[i][j] = (pix - float64(norm.Mean[c])) / float64(norm.Std[c])
			}
		}
	}
	// image returns the pixel-space image of θ (for the Fourier param, the sigmoid output).
	image := func(th []float64) []float64 {
		if fft != nil {
			return fft.image(th)
		}
		img := make([]float64, per)
		for j, v := range th {
			c := j / hw
			img[j] = v*float64(norm.Std[c]) + float64(norm.Mean[c])
		}
		return img
	}
	backward := func(th, img, g []float64) []float64 {
		if fft != nil {
			return fft.backward(img, g)
		}
		out := make([]float64, per)
		for j, v := range g {
			out[j] = v * float64(norm.Std[j/hw])
		}
		return out
	}
	toInput := func(img []float64, dst []float32) {
		for j, v := range img {
			c := j / hw
			dst[j] = float32((v - float64(norm.Mean[c])) / float64(norm.Std[c]))
		}
	}
	score := func() ([]float32, error) {
		x := engine.NewArray(b, nc, h, w)
		for i, th := range thetas {
			toInput(image(th), x.Index(i).Data)
		}
		r, err := e.RunWith(x, req, ro)
		if err != nil {
			return nil, err
		}
		return r.Scores, nil
	}
	initial, err := score()
	if err != nil {
		return err
	}
	copy(res.InitialScores[off:], initial)

	transforms := opts.Jitter > 0 || len(opts.Scales) > 0 || len(opts.Rotations) > 0
	penalties := opts.TV > 0 || opts.L2 > 0
	var adamM, adamV [][]float64
	if cfg.optimizer == OptimizerAdam {
		adamM, adamV = make([][]float64, b), make([][]float64, b)
		for i := range adamM {
			adamM[i], adamV[i] = make([]float64, len(thetas[i])), make([]float64, len(thetas[i]))
		}
	}
	imgs := make([][]float64, b)
	warps := make([]*warp, b)
	plane := make([]float64, hw)
	for step := 0; step < cfg.steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		x := engine.NewArray(b, nc, h, w)
		for i, th := range thetas {
			imgs[i] = image(th)
			warps[i] = nil
			if transforms {
				ty, tx := 0.0, 0.0
				if opts.Jitter > 0 {
					ty = float64(rng.IntN(2*opts.Jitter+1) - opts.Jitter)
					tx = float64(rng.IntN(2*opts.Jitter+1) - opts.Jitter)
				}
				s, deg := 1.0, 0.0
				if len(opts.Scales) > 0 {
					s = opts.Scales[rng.IntN(len(opts.Scales))]
				}
				if len(opts.Rotations) > 0 {
					deg = opts.Rotations[rng.IntN(len(opts.Rotations))]
				}
				warps[i] = newWarp(h, w, ty, tx, s, deg)
				moved := make([]float64, per)
				for c := 0; c < nc; c++ {
					warps[i].apply(moved[c*hw:(c+1)*hw], imgs[i][c*hw:(c+1)*hw], 0.5)
				}
				toInput(moved, x.Index(i).Data)
			} else {
				toInput(imgs[i], x.Index(i).Data)
			}
		}
		r, err := e.RunWith(x, req, ro)
		if err != nil {
			return err
		}
		if err := r.InputGrad.CheckFinite("activation maximisation gradient"); err != nil {
			return err
		}
		copy(res.History[step][off:], r.Scores)
		for i := range thetas {
			gx := r.InputGrad.Index(i).Data
			g := make([]float64, per)
			if warps[i] != nil {
				for c := 0; c < nc; c++ {
					for q := 0; q < hw; q++ {
						plane[q] = float64(gx[c*hw+q]) / float64(norm.Std[c])
					}
					warps[i].applyT(g[c*hw:(c+1)*hw], plane)
				}
			} else {
				for j, v := range gx {
					g[j] = float64(v) / float64(norm.Std[j/hw])
				}
			}
			if penalties {
				gs := rms64(g) + 1e-8
				for j := range g {
					g[j] /= gs
				}
				if opts.TV > 0 {
					// Ascent on J − TV·tv: subtract TV·∂tv.
					neg := make([]float64, per)
					totalVariation(imgs[i], nc, h, w, neg, opts.TV)
					for j := range g {
						g[j] -= neg[j]
					}
				}
				if opts.L2 > 0 {
					for j, v := range imgs[i] {
						g[j] -= opts.L2 * 2 * (v - 0.5)
					}
				}
			}
			gt := backward(thetas[i], imgs[i], g)
			th := thetas[i]
			if cfg.optimizer == OptimizerAdam {
				const b1, b2, eps = 0.9, 0.999, 1e-8
				t := float64(step + 1)
				c1, c2 := 1-math.Pow(b1, t), 1-math.Pow(b2, t)
				m, v := adamM[i], adamV[i]
				for j, gv := range gt {
					m[j] = b1*m[j] + (1-b1)*gv
					v[j] = b2*v[j] + (1-b2)*gv*gv
					th[j] += cfg.lr * (m[j] / c1) / (math.Sqrt(v[j]/c2) + eps)
				}
			} else {
				d := cfg.lr / (rms64(gt) + 1e-5)
				for j, gv := range gt {
					th[j] += d * gv
				}
			}
			if opts.BlurEvery > 0 && (step+1)%opts.BlurEvery == 0 {
				for c := 0; c < nc; c++ {
					src := make([]float32, hw)
					for q := range src {
						src[q] = float32(th[c*hw+q])
					}
					for q, v := range heatmap.GaussianBlur(src, h, w, cfg.blurSigma) {
						th[c*hw+q] = float64(v)
					}
				}
			}
		}
		pr.step(step + 1)
	}
	final, err := score()
	if err != nil {
		return err
	}
	copy(res.Scores[off:], final)
	for i, th := range thetas {
		toInput(image(th), res.Input.Index(off+i).Data)
	}
	if err := res.Input.CheckFinite("activation maximisation result"); err != nil {
		return fmt.Errorf("%w (lower LR)", err)
	}
	return nil
}

func rms64(g []float64) float64 {
	s := 0.0
	for _, v := range g {
		s += v * v
	}
	return math.Sqrt(s / float64(len(g)))
}

// Filters visualises the first n filters of a layer (FlashTorch's visualize
// on a grid, with the filters in order rather than at random): Run of
// engine.ChannelMean(layer, ch) for ch = 0..n−1.
func Filters(ctx context.Context, e *engine.Explainer, layer string, n int, opts Options) (*Result, error) {
	if e == nil {
		return nil, errors.New("activation maximisation: nil Explainer")
	}
	l, err := e.Layer(layer)
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("actmax.Filters needs n ≥ 1, got %d", n)
	}
	if n > l.Out {
		return nil, fmt.Errorf("layer %q has %d channels, cannot visualise the first %d", layer, l.Out, n)
	}
	targets := make([]engine.Target, n)
	for i := range targets {
		targets[i] = engine.ChannelMean(layer, i)
	}
	return Run(ctx, e, targets, opts)
}

// TotalVariation returns, per image of an (N,C,H,W) array, Σ |a[y+1,x]−a[y,x]| +
// |a[y,x+1]−a[y,x]| over channels and positions (tf.image.total_variation).
func TotalVariation(a *engine.Array) ([]float64, error) {
	if err := a.Check("TotalVariation input"); err != nil {
		return nil, err
	}
	if len(a.Shape) != 4 {
		return nil, fmt.Errorf("TotalVariation needs an (N,C,H,W) array, got shape %v", a.Shape)
	}
	n, c, h, w := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	out := make([]float64, n)
	for i := range out {
		d := a.Index(i).Data
		f := make([]float64, len(d))
		for j, v := range d {
			f[j] = float64(v)
		}
		out[i] = totalVariation(f, c, h, w, nil, 0)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// DeepDream

// DreamOptions configures DeepDream.
type DreamOptions struct {
	// Layer is the layer whose activations are amplified (required).
	Layer string
	// Objective is "l2" (default: the mean of the squared activations, the
	// original DeepDream's L2 objective) or "mean" (their mean).
	Objective string
	// Steps per octave; default 10.
	Steps int
	// LR is the step in normalised input units, applied as
	// x += LR · g / mean|g| (the original's normalisation); default 0.02.
	LR float64
	// Octaves is the number of scales (default 1: the input size only); each
	// smaller one is OctaveScale (default 1.4) times smaller, processed first,
	// and its added detail is carried up (the original's octave scheme).
	Octaves     int
	OctaveScale float64
	// Jitter is the largest random circular shift in pixels per step; default 0.
	Jitter int
	// Seed seeds the jitter.
	Seed uint64
	// Norm is the input normalisation (pixels are kept in [0,1]); zero: the
	// default for the input's channel count (see engine.Normalization).
	Norm engine.Normalization
	// Progress, if set, is called after every step with Done and Total in
	// steps over all octaves.
	Progress func(engine.Progress)
}

// DreamResult is a dreamed image.
type DreamResult struct {
	Layer, Objective string
	// Input is the dreamed image, normalised, (1,C,H,W); Pixels in [0,1].
	Input, Pixels *engine.Array
	// InitialScore and Score are the objective on the original and dreamed image.
	InitialScore, Score float32
	// Norm is the input normalisation (resolved: C values each).
	Norm engine.Normalization
	// Original is the image the dream started from (1,C,H,W, normalised).
	Original *engine.Array
}

// DeepDream amplifies what a layer sees in an image (Mordvintsev et al.):
// gradient ascent on the layer's mean squared (or mean) activation, starting
// from the image x (1,C,H,W, normalised), optionally over octaves.
func DeepDream(ctx context.Context, e *engine.Explainer, x *engine.Array, opts DreamOptions) (*DreamResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if e == nil {
		return nil, errors.New("DeepDream: nil Explainer")
	}
	if err := engine.CheckImages(x); err != nil {
		return nil, err
	}
	if x.Shape[0] != 1 {
		return nil, fmt.Errorf("DeepDream takes one image (1,C,H,W), got shape %v", x.Shape)
	}
	if err := x.CheckFinite("input"); err != nil {
		return nil, err
	}
	if _, err := e.Layer(opts.Layer); err != nil {
		return nil, fmt.Errorf("DeepDream: %w", err)
	}
	obj := opts.Objective
	if obj == "" {
		obj = "l2"
	}
	var t engine.Target
	switch obj {
	case "l2":
		t = engine.NamedFunc(opts.Layer, "deepdream l2 of "+opts.Layer, func(a *graph.Node) *graph.Node {
			axes := []int{1, 2, 3}[:a.Rank()-1]
			return graph.ReduceMean(graph.Square(a), axes...)
		})
	case "mean":
		t = engine.NamedFunc(opts.Layer, "deepdream mean of "+opts.Layer, func(a *graph.Node) *graph.Node {
			axes := []int{1, 2, 3}[:a.Rank()-1]
			return graph.ReduceMean(a, axes...)
		})
	default:
		return nil, fmt.Errorf("unknown DeepDream objective %q (want \"l2\" or \"mean\")", opts.Objective)
	}
	steps, lr, octaves, oscale := opts.Steps, opts.LR, opts.Octaves, opts.OctaveScale
	if steps == 0 {
		steps = 10
	}
	if lr == 0 {
		lr = 0.02
	}
	if octaves == 0 {
		octaves = 1
	}
	if oscale == 0 {
		oscale = 1.4
	}
	if steps < 0 || octaves < 1 || !(lr > 0) || math.IsInf(lr, 0) || !(oscale > 1) || math.IsInf(oscale, 0) || opts.Jitter < 0 {
		return nil, fmt.Errorf("DeepDream: Steps (%d) ≥ 0, Octaves (%d) ≥ 1, LR (%v) > 0, OctaveScale (%v) > 1 and Jitter (%d) ≥ 0 required",
			opts.Steps, opts.Octaves, opts.LR, opts.OctaveScale, opts.Jitter)
	}
	norm, err := opts.Norm.For(x.Shape[1])
	if err != nil {
		return nil, err
	}
	H, W := x.Shape[2], x.Shape[3]
	sizes := make([][2]int, octaves)
	for k := range sizes {
		f := math.Pow(oscale, float64(octaves-1-k))
		sizes[k] = [2]int{int(math.Round(float64(H) / f)), int(math.Round(float64(W) / f))}
		if err := e.Net().CheckInput([]int{1, x.Shape[1], sizes[k][0], sizes[k][1]}); err != nil {
			return nil, fmt.Errorf("DeepDream octave %d (%dx%d): %w; use fewer octaves", k, sizes[k][0], sizes[k][1], err)
		}
	}
	req := engine.Request{GradInput: true, Target: t}
	first, err := e.Run(x, engine.Request{Target: t})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x647265616d))
	var detail *engine.Array // Accumulated change, at the previous octave's size.
	var cur *engine.Array
	total := steps * octaves
	done := 0
	for _, sz := range sizes {
		base, err := resizeCHW(x, sz[0], sz[1])
		if err != nil {
			return nil, err
		}
		cur = base.Clone()
		if detail != nil {
			up, err := resizeCHW(detail, sz[0], sz[1])
			if err != nil {
				return nil, err
			}
			for j := range cur.Data {
				cur.Data[j] += up.Data[j]
			}
		}
		for s := 0; s < steps; s++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			dy, dx := 0, 0
			if opts.Jitter > 0 {
				dy, dx = rng.IntN(2*opts.Jitter+1)-opts.Jitter, rng.IntN(2*opts.Jitter+1)-opts.Jitter
			}
			shifted := rollPlanes(cur, dy, dx)
			r, err := e.Run(shifted, req)
			if err != nil {
				return nil, err
			}
			g := rollPlanes(r.InputGrad, -dy, -dx)
			if err := g.CheckFinite("DeepDream gradient"); err != nil {
				return nil, err
			}
			ma := 0.0
			for _, v := range g.Data {
				ma += math.Abs(float64(v))
			}
			ma /= float64(len(g.Data))
			if ma > 0 {
				hw := sz[0] * sz[1]
				for j, v := range g.Data {
					c := j / hw
					nv := float64(cur.Data[j]) + lr*float64(v)/ma
					lo := -float64(norm.Mean[c]) / float64(norm.Std[c])
					hi := (1 - float64(norm.Mean[c])) / float64(norm.Std[c])
					cur.Data[j] = float32(min(max(nv, lo), hi))
				}
			}
			done++
			if opts.Progress != nil {
				opts.Progress(engine.Progress{Task: fmt.Sprintf("DeepDream on %s: steps", opts.Layer), Done: done, Total: total})
			}
		}
		detail = cur.Clone()
		for j := range detail.Data {
			detail.Data[j] -= base.Data[j]
		}
	}
	last, err := e.Run(cur, engine.Request{Target: t})
	if err != nil {
		return nil, err
	}
	out := &DreamResult{Layer: opts.Layer, Objective: obj, Input: cur, Original: x, Pixels: engine.NewArray(cur.Shape...),
		InitialScore: first.Scores[0], Score: last.Scores[0], Norm: norm}
	hw := H * W
	for j, v := range cur.Data {
		c := j / hw
		out.Pixels.Data[j] = float32(min(max(float64(v)*float64(norm.Std[c])+float64(norm.Mean[c]), 0), 1))
	}
	return out, nil
}

// resizeCHW resizes every (N,C) plane of an NCHW array bilinearly
// (align_corners=False, as torch's interpolate).
func resizeCHW(a *engine.Array, h, w int) (*engine.Array, error) {
	n, c, H, W := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	if H == h && W == w {
		return a.Clone(), nil
	}
	out := engine.NewArray(n, c, h, w)
	for p := 0; p < n*c; p++ {
		m, err := heatmap.NewMap(H, W, a.Data[p*H*W:(p+1)*H*W])
		if err != nil {
			return nil, err
		}
		r, err := heatmap.Resize(m, h, w, heatmap.Bilinear, false)
		if err != nil {
			return nil, err
		}
		copy(out.Data[p*h*w:], r.Data)
	}
	return out, nil
}

// roll shifts every plane of an NCHW array circularly by (dy, dx).
func rollPlanes(a *engine.Array, dy, dx int) *engine.Array {
	if dy == 0 && dx == 0 {
		return a.Clone()
	}
	n, c, h, w := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	out := engine.NewArray(a.Shape...)
	for p := 0; p < n*c; p++ {
		src := a.Data[p*h*w : (p+1)*h*w]
		dst := out.Data[p*h*w : (p+1)*h*w]
		for y := 0; y < h; y++ {
			yy := ((y+dy)%h + h) % h
			for x := 0; x < w; x++ {
				xx := ((x+dx)%w + w) % w
				dst[yy*w+xx] = src[y*w+x]
			}
		}
	}
	return out
}
