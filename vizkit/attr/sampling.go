package attr

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Sampling attributions: SmoothGrad (and SmoothGrad², VarGrad), Integrated
// Gradients and Occlusion. Each runs many perturbed copies of the input through
// the engine, BatchSize copies per execution, so memory stays bounded whatever
// the number of samples, steps or windows. Results are deterministic: the batch
// size changes only float rounding.

// ---------------------------------------------------------------------------
// SmoothGrad

// SmoothGradOptions configures SmoothGrad.
type SmoothGradOptions struct {
	// Target is the explained score; default: each example's top-1 class on the
	// clean input (the same class is then used for every noisy sample).
	Target engine.Target
	// ReLU is the backward rule (models.ReLUGuided gives SmoothGrad of guided
	// backprop); default the standard gradient.
	ReLU models.ReLURule
	// Samples is the number of noisy copies per example; default 50 (PAIR's
	// saliency library; Captum's NoiseTunnel defaults to 5).
	Samples int
	// NoiseLevel is σ as a fraction of each example's input range
	// (max − min over its normalised values), as in Smilkov et al.; default 0.15.
	NoiseLevel float64
	// Sigma, if > 0, is an absolute noise σ (in normalised input units, as
	// Captum's stdevs) and overrides NoiseLevel.
	Sigma float64
	// Seed seeds the Gaussian noise (PCG). Each example's noise depends only
	// on Seed and the example's values, so runs with the same seed, input and
	// options are identical, and an image gets the same map alone or at any
	// position of any batch.
	Seed uint64
	// Noise, if set, gives the standard-normal draws Z explicitly (for tests and
	// comparisons): shape (S,N,C,H,W), or (S,C,H,W) when N is 1. Sample s of
	// example i is then x_i + σ_i·Z[s,i]; Samples and Seed are ignored.
	Noise *engine.Array
	// BatchSize is the number of perturbed inputs per engine execution; 0:
	// engine.DefaultBatchSize. Memory grows linearly with it.
	BatchSize int
	// Progress, if set, is called after every engine execution.
	Progress func(engine.Progress)
}

// SmoothGradResult holds SmoothGrad, SmoothGrad² and VarGrad of a batch, each
// (N,C,H,W), over the same noisy samples.
type SmoothGradResult struct {
	// Target, Classes and Scores (on the clean input) as in Saliency.
	Target  engine.Target
	Classes []int
	Scores  []float32
	// ReLU is the backward rule used.
	ReLU models.ReLURule
	// Samples is the number of noisy copies per example; Sigma the noise σ used
	// per example (normalised input units).
	Samples int
	Sigma   []float64
	// Mean is SmoothGrad: the mean gradient over the noisy copies.
	Mean *engine.Array
	// MeanSquare is SmoothGrad-squared: the mean of the squared gradients.
	MeanSquare *engine.Array
	// Var is VarGrad: MeanSquare − Mean² (population variance; Captum's vargrad).
	Var *engine.Array
	// Input is a copy of the explained input.
	Input *engine.Array
}

// SmoothGrad averages the input gradient over noisy copies of the input
// (Smilkov et al. 2017): x + N(0, σ²) with σ = NoiseLevel·(max(x)−min(x)) per
// example. It returns the mean (SmoothGrad), the mean of squares
// (SmoothGrad², Captum's smoothgrad_sq) and their variance (VarGrad).
func SmoothGrad(ctx context.Context, ex *engine.Explainer, x *engine.Array, opts SmoothGradOptions) (*SmoothGradResult, error) {
	ctx, err := begin(ctx, ex, x)
	if err != nil {
		return nil, err
	}
	if err := x.CheckFinite("input"); err != nil {
		return nil, err
	}
	if _, ok := reluMethods[opts.ReLU]; !ok {
		return nil, fmt.Errorf("unknown ReLU rule %d", opts.ReLU)
	}
	n, nc, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	per := nc * h * w
	samples := opts.Samples
	if opts.Noise != nil {
		z := opts.Noise
		switch {
		case len(z.Shape) == 5 && z.Shape[1] == n && z.Shape[2] == nc && z.Shape[3] == h && z.Shape[4] == w:
		case n == 1 && len(z.Shape) == 4 && z.Shape[1] == nc && z.Shape[2] == h && z.Shape[3] == w:
		default:
			return nil, fmt.Errorf("SmoothGrad Noise must have shape (S,%d,%d,%d,%d) (or (S,%d,%d,%d) for one example), got %v", n, nc, h, w, nc, h, w, z.Shape)
		}
		if z.Shape[0] < 1 || len(z.Data) != z.Shape[0]*n*per {
			return nil, fmt.Errorf("SmoothGrad Noise of shape %v holds %d values", z.Shape, len(z.Data))
		}
		if err := z.CheckFinite("SmoothGrad noise"); err != nil {
			return nil, err
		}
		samples = z.Shape[0]
	} else if samples == 0 {
		samples = 50
	}
	if samples < 1 {
		return nil, fmt.Errorf("SmoothGrad needs at least 1 sample, got %d", samples)
	}
	level := opts.NoiseLevel
	if level == 0 {
		level = 0.15
	}
	if !(level > 0) || math.IsInf(level, 0) || math.IsNaN(opts.Sigma) || opts.Sigma < 0 || math.IsInf(opts.Sigma, 0) {
		return nil, fmt.Errorf("SmoothGrad noise must be positive and finite: NoiseLevel %v, Sigma %v", opts.NoiseLevel, opts.Sigma)
	}
	target, clean, err := ex.ResolveTarget(x, opts.Target)
	if err != nil {
		return nil, err
	}
	sigma := make([]float64, n)
	for i := range sigma {
		if opts.Sigma > 0 {
			sigma[i] = opts.Sigma
			continue
		}
		d := x.Index(i).Data
		lo, hi := d[0], d[0]
		for _, v := range d {
			lo, hi = min(lo, v), max(hi, v)
		}
		sigma[i] = level * (float64(hi) - float64(lo))
	}
	rngs := make([]*rand.Rand, n)
	for i := range rngs {
		h := fnv.New64a()
		for _, v := range x.Index(i).Data {
			b := math.Float32bits(v)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)})
		}
		rngs[i] = rand.New(rand.NewPCG(opts.Seed, h.Sum64()))
	}
	sum := make([]float64, n*per)
	sumSq := make([]float64, n*per)
	exampleOf := func(r int) int { return r / samples }
	err = ex.RunRows(ctx, n*samples, nc, h, w, opts.BatchSize, "smoothgrad samples", opts.Progress,
		func(r0, r1 int) engine.Request {
			return engine.Request{GradInput: true, ReLU: opts.ReLU, Target: engine.RowTarget(target, r0, r1, exampleOf)}
		},
		func(dst *engine.Array, r0, r1 int) {
			for r := r0; r < r1; r++ {
				i, s := r/samples, r%samples
				src := x.Index(i).Data
				row := dst.Index(r - r0).Data
				var z []float32
				if opts.Noise != nil {
					z = opts.Noise.Data[(s*n+i)*per : (s*n+i+1)*per]
				}
				for j, v := range src {
					var zz float64
					if z != nil {
						zz = float64(z[j])
					} else {
						zz = rngs[i].NormFloat64()
					}
					row[j] = float32(float64(v) + sigma[i]*zz)
				}
			}
		},
		func(res *engine.Result, r0, r1 int) error {
			if err := res.InputGrad.CheckFinite("SmoothGrad sample gradient"); err != nil {
				return err
			}
			for r := r0; r < r1; r++ {
				i := r / samples
				g := res.InputGrad.Index(r - r0).Data
				acc, acc2 := sum[i*per:(i+1)*per], sumSq[i*per:(i+1)*per]
				for j, v := range g {
					f := float64(v)
					acc[j] += f
					acc2[j] += f * f
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := &SmoothGradResult{Target: opts.Target, Classes: clean.Classes, Scores: clean.Scores, ReLU: opts.ReLU,
		Samples: samples, Sigma: sigma, Mean: engine.NewArray(x.Shape...), MeanSquare: engine.NewArray(x.Shape...), Var: engine.NewArray(x.Shape...), Input: x.Clone()}
	inv := 1 / float64(samples)
	for j := range sum {
		m, m2 := sum[j]*inv, sumSq[j]*inv
		out.Mean.Data[j] = float32(m)
		out.MeanSquare.Data[j] = float32(m2)
		out.Var.Data[j] = float32(max(m2-m*m, 0))
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Integrated Gradients

// Integration methods of IntegratedGradients (Captum's names).
const (
	IGGaussLegendre     = "gausslegendre"
	IGRiemannLeft       = "riemann_left"
	IGRiemannRight      = "riemann_right"
	IGRiemannMiddle     = "riemann_middle"
	IGRiemannTrapezoid  = "riemann_trapezoid"
	IGBaselineBlack     = "black"
	IGBaselineZeros     = "zeros"
	IGBaselineBlur      = "blur"
	defaultIGSteps      = 50
	defaultIGBlurSigma  = 10
	defaultIGBaseline   = IGBaselineBlack
	defaultIGIntegrator = IGGaussLegendre
)

// IGOptions configures IntegratedGradients.
type IGOptions struct {
	// Target is the explained score; default: each example's top-1 class on the
	// input (used for every point of the path).
	Target engine.Target
	// Baseline names the baseline: "black" (default: a black image, i.e. the
	// normalised value of pixel 0 per channel, −Mean/Std, as in Sundararajan et
	// al.), "zeros" (zeros of the normalised input — the mean colour for
	// ImageNet normalisation; Captum's default) or "blur" (the input blurred with
	// a Gaussian of BlurSigma pixels).
	Baseline string
	// BaselineArray, if set, is an explicit normalised baseline of shape
	// (N,C,H,W) or (1,C,H,W) (shared); it overrides Baseline.
	BaselineArray *engine.Array
	// BlurSigma is the Gaussian σ in pixels of the "blur" baseline; default 10.
	// The kernel has radius ceil(3σ) and edges repeat the border pixel.
	BlurSigma float64
	// Steps is the number of points on the path; default 50 (Captum).
	Steps int
	// Method is the integral approximation, as in Captum: "gausslegendre"
	// (default), "riemann_left", "riemann_right", "riemann_middle" or
	// "riemann_trapezoid". Captum's trapezoid uses alphas linspace(0,1,n) with
	// weights 1/n (halved at both ends), which sum to 1 − 1/n; this is kept for
	// comparability, so prefer gausslegendre or riemann_middle.
	Method string
	// Norm is the input normalisation, for the "black" baseline;
	// zero: the default for the input's channel count (ImageNet's for 3
	// channels, none — black is 0 — otherwise). See engine.Normalization.
	Norm engine.Normalization
	// BatchSize is the number of perturbed inputs per engine execution; 0:
	// engine.DefaultBatchSize. Memory grows linearly with it.
	BatchSize int
	// Progress, if set, is called after every engine execution.
	Progress func(engine.Progress)
}

// IGResult is an Integrated Gradients attribution for a batch.
type IGResult struct {
	// Target, Classes as in Saliency. Scores are f(x) and BaselineScores
	// f(baseline) for the target, per example.
	Target         engine.Target
	Classes        []int
	Scores         []float32
	BaselineScores []float32
	// Method, Steps and BaselineName describe the run.
	Method       string
	Steps        int
	BaselineName string
	// Attr is (x − baseline) · Σ_k w_k ∇f(baseline + α_k (x − baseline)), (N,C,H,W).
	Attr *engine.Array
	// Baseline is the baseline used (N,C,H,W); Input a copy of the input.
	Baseline, Input *engine.Array
	// Delta is the completeness error per example: Σ Attr − (f(x) − f(baseline)).
	Delta []float64
}

// RelativeDelta returns |Delta| / |f(x) − f(baseline)| per example (+Inf when
// the two scores are equal and Delta is not 0).
func (r *IGResult) RelativeDelta() []float64 {
	out := make([]float64, len(r.Delta))
	for i, d := range r.Delta {
		den := math.Abs(float64(r.Scores[i]) - float64(r.BaselineScores[i]))
		switch {
		case d == 0:
			out[i] = 0
		case den == 0:
			out[i] = math.Inf(1)
		default:
			out[i] = math.Abs(d) / den
		}
	}
	return out
}

// IGIntegration returns the path points α_k and weights w_k of a method for n
// steps, as Captum's approximation_parameters.
func IGIntegration(method string, n int) (alphas, weights []float64, err error) {
	if method == "" {
		method = defaultIGIntegrator
	}
	switch method {
	case IGGaussLegendre:
		if n < 1 {
			return nil, nil, fmt.Errorf("integrated gradients: %s needs at least 1 step, got %d", method, n)
		}
		x, w := gaussLegendre(n)
		alphas, weights = make([]float64, n), make([]float64, n)
		for i := range x {
			alphas[i] = 0.5 * (1 + x[i])
			weights[i] = 0.5 * w[i]
		}
		return alphas, weights, nil
	case IGRiemannLeft, IGRiemannRight, IGRiemannMiddle, IGRiemannTrapezoid:
		if n < 2 {
			return nil, nil, fmt.Errorf("integrated gradients: %s needs at least 2 steps (as Captum), got %d", method, n)
		}
		weights = make([]float64, n)
		for i := range weights {
			weights[i] = 1 / float64(n)
		}
		lo, hi := 0.0, 1.0
		switch method {
		case IGRiemannTrapezoid:
			weights[0] /= 2
			weights[n-1] /= 2
		case IGRiemannLeft:
			hi = 1 - 1/float64(n)
		case IGRiemannMiddle:
			lo, hi = 1/(2*float64(n)), 1-1/(2*float64(n))
		case IGRiemannRight:
			lo = 1 / float64(n)
		}
		alphas = make([]float64, n)
		for i := range alphas {
			alphas[i] = lo + (hi-lo)*float64(i)/float64(n-1)
		}
		return alphas, weights, nil
	}
	return nil, nil, fmt.Errorf("unknown integration method %q; known: %s", method,
		strings.Join([]string{IGGaussLegendre, IGRiemannLeft, IGRiemannRight, IGRiemannMiddle, IGRiemannTrapezoid}, ", "))
}

// gaussLegendre returns the n Gauss–Legendre nodes on [−1,1] (ascending, as
// numpy's leggauss) and weights, by Newton's method on P_n.
func gaussLegendre(n int) (x, w []float64) {
	x, w = make([]float64, n), make([]float64, n)
	for i := 0; i < (n+1)/2; i++ {
		z := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		var dp float64
		for it := 0; it < 100; it++ {
			p0, p1 := 1.0, z
			for k := 2; k <= n; k++ {
				p0, p1 = p1, ((2*float64(k)-1)*z*p1-(float64(k)-1)*p0)/float64(k)
			}
			if n == 1 {
				p0, p1 = 1, z
			}
			dp = float64(n) * (z*p1 - p0) / (z*z - 1)
			dz := p1 / dp
			z -= dz
			if math.Abs(dz) < 1e-15 {
				break
			}
		}
		// Recompute the derivative at the converged node.
		p0, p1 := 1.0, z
		for k := 2; k <= n; k++ {
			p0, p1 = p1, ((2*float64(k)-1)*z*p1-(float64(k)-1)*p0)/float64(k)
		}
		if n == 1 {
			p0 = 1
		}
		dp = float64(n) * (z*p1 - p0) / (z*z - 1)
		wi := 2 / ((1 - z*z) * dp * dp)
		x[i], x[n-1-i] = -z, z
		w[i], w[n-1-i] = wi, wi
	}
	return x, w
}

// IntegratedGradients attributes the target to input pixels by integrating the
// gradient along the straight path from a baseline to the input (Sundararajan
// et al. 2017, with Captum's integration rules): Attr = (x − b) · Σ_k w_k
// ∇f(b + α_k (x − b)). Completeness says Σ Attr ≈ f(x) − f(b); the error is
// reported in Delta. The path points go through the engine in chunks.
func IntegratedGradients(ctx context.Context, ex *engine.Explainer, x *engine.Array, opts IGOptions) (*IGResult, error) {
	ctx, err := begin(ctx, ex, x)
	if err != nil {
		return nil, err
	}
	if err := x.CheckFinite("input"); err != nil {
		return nil, err
	}
	steps := opts.Steps
	if steps == 0 {
		steps = defaultIGSteps
	}
	method := opts.Method
	if method == "" {
		method = defaultIGIntegrator
	}
	alphas, weights, err := IGIntegration(method, steps)
	if err != nil {
		return nil, err
	}
	norm, err := opts.Norm.For(x.Shape[1])
	if err != nil {
		return nil, err
	}
	baseline, name, err := igBaseline(x, opts, norm)
	if err != nil {
		return nil, err
	}
	n, nc, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	per := nc * h * w
	target, clean, err := ex.ResolveTarget(x, opts.Target)
	if err != nil {
		return nil, err
	}
	base, err := ex.Run(baseline, engine.Request{Target: target})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	total := make([]float64, n*per)
	exampleOf := func(r int) int { return r / steps }
	err = ex.RunRows(ctx, n*steps, nc, h, w, opts.BatchSize, "integrated gradients steps", opts.Progress,
		func(r0, r1 int) engine.Request {
			return engine.Request{GradInput: true, Target: engine.RowTarget(target, r0, r1, exampleOf)}
		},
		func(dst *engine.Array, r0, r1 int) {
			for r := r0; r < r1; r++ {
				i, k := r/steps, r%steps
				a := alphas[k]
				xs, bs := x.Index(i).Data, baseline.Index(i).Data
				row := dst.Index(r - r0).Data
				for j := range row {
					row[j] = float32(float64(bs[j]) + a*(float64(xs[j])-float64(bs[j])))
				}
			}
		},
		func(res *engine.Result, r0, r1 int) error {
			if err := res.InputGrad.CheckFinite("integrated gradients path gradient"); err != nil {
				return err
			}
			for r := r0; r < r1; r++ {
				i, k := r/steps, r%steps
				g := res.InputGrad.Index(r - r0).Data
				acc := total[i*per : (i+1)*per]
				for j, v := range g {
					acc[j] += weights[k] * float64(v)
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := &IGResult{Target: opts.Target, Classes: clean.Classes, Scores: clean.Scores, BaselineScores: base.Scores,
		Method: method, Steps: steps, BaselineName: name, Attr: engine.NewArray(x.Shape...), Baseline: baseline, Input: x.Clone(),
		Delta: make([]float64, n)}
	for i := 0; i < n; i++ {
		s := 0.0
		for j := i * per; j < (i+1)*per; j++ {
			a := total[j] * (float64(x.Data[j]) - float64(baseline.Data[j]))
			out.Attr.Data[j] = float32(a)
			s += a
		}
		out.Delta[i] = s - (float64(clean.Scores[i]) - float64(base.Scores[i]))
	}
	return out, nil
}

// igBaseline builds the (N,C,H,W) baseline of IntegratedGradients; norm is
// opts.Norm resolved for C channels.
func igBaseline(x *engine.Array, opts IGOptions, norm engine.Normalization) (*engine.Array, string, error) {
	n, nc, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	per := nc * h * w
	if b := opts.BaselineArray; b != nil {
		out := engine.NewArray(x.Shape...)
		switch {
		case slices.Equal(b.Shape, x.Shape) && len(b.Data) == len(x.Data):
			copy(out.Data, b.Data)
		case len(b.Shape) == 4 && b.Shape[0] == 1 && slices.Equal(b.Shape[1:], x.Shape[1:]) && len(b.Data) == per:
			for i := 0; i < n; i++ {
				copy(out.Index(i).Data, b.Data)
			}
		default:
			return nil, "", fmt.Errorf("IG BaselineArray must have the input's shape %v or (1,%d,%d,%d), got %v", x.Shape, nc, h, w, b.Shape)
		}
		if err := out.CheckFinite("IG baseline"); err != nil {
			return nil, "", err
		}
		return out, "custom", nil
	}
	name := opts.Baseline
	if name == "" {
		name = defaultIGBaseline
	}
	out := engine.NewArray(x.Shape...)
	switch name {
	case IGBaselineZeros:
	case IGBaselineBlack:
		black := norm.Black()
		for i := 0; i < n; i++ {
			d := out.Index(i).Data
			for c := 0; c < nc; c++ {
				for p := 0; p < h*w; p++ {
					d[c*h*w+p] = black[c]
				}
			}
		}
	case IGBaselineBlur:
		sigma := opts.BlurSigma
		if sigma == 0 {
			sigma = defaultIGBlurSigma
		}
		if !(sigma > 0) || math.IsInf(sigma, 0) {
			return nil, "", fmt.Errorf("IG BlurSigma must be positive and finite, got %v", opts.BlurSigma)
		}
		for p := 0; p < n*nc; p++ {
			src := x.Data[p*h*w : (p+1)*h*w]
			copy(out.Data[p*h*w:], heatmap.GaussianBlur(src, h, w, sigma))
		}
		name = fmt.Sprintf("blur (σ %g px)", sigma)
	default:
		return nil, "", fmt.Errorf("unknown IG baseline %q; known: %s, %s, %s (or set BaselineArray)", name, IGBaselineBlack, IGBaselineZeros, IGBaselineBlur)
	}
	return out, name, nil
}

// ---------------------------------------------------------------------------
// Occlusion

// OcclusionOptions configures Occlusion.
type OcclusionOptions struct {
	// Target is the explained score; default: each example's top-1 class on the
	// input.
	Target engine.Target
	// Window is the occluded patch (height, width) in pixels, covering all the
	// input's channels (Captum's sliding_window_shapes (C,h,w)); default (32,32).
	Window [2]int
	// Stride is the step (vertical, horizontal); default (16,16). A stride may
	// not exceed the window where the window is smaller than the input (Captum's
	// rule, so that every pixel is covered).
	Stride [2]int
	// Baseline is the value (normalised units) written into the window; default 0
	// (Captum's default).
	Baseline float32
	// BatchSize is the number of perturbed inputs per engine execution; 0:
	// engine.DefaultBatchSize. Memory grows linearly with it.
	BatchSize int
	// Progress, if set, is called after every engine execution.
	Progress func(engine.Progress)
}

// OcclusionResult is an occlusion attribution (Zeiler & Fergus; Captum's
// Occlusion semantics).
type OcclusionResult struct {
	// Target, Classes and Scores (on the unoccluded input) as in Saliency.
	Target  engine.Target
	Classes []int
	Scores  []float32
	// Window, Stride and Baseline as used; Positions the number of window
	// positions (rows × columns) per example.
	Window, Stride [2]int
	Baseline       float32
	Positions      [2]int
	// Attr is, per pixel, the mean over the windows covering it of
	// f(x) − f(x with the window occluded), (N,C,H,W) (equal across channels).
	Attr *engine.Array
	// Map is Attr's first channel, (N,H,W).
	Map *engine.Array
	// Input is a copy of the input.
	Input *engine.Array
}

// Occlusion slides a window over the input, replaces it with a baseline value
// and records the drop of the target score (Captum's Occlusion): the window
// starts at (0,0) and moves by Stride until the input is covered,
// ceil((H−h)/s)+1 positions per axis, the last one cut at the border; each
// pixel gets the mean drop over the windows that cover it. Occluded copies go
// through the engine (forward only) in chunks.
func Occlusion(ctx context.Context, ex *engine.Explainer, x *engine.Array, opts OcclusionOptions) (*OcclusionResult, error) {
	ctx, err := begin(ctx, ex, x)
	if err != nil {
		return nil, err
	}
	if err := x.CheckFinite("input"); err != nil {
		return nil, err
	}
	n, nc, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	win, stride := opts.Window, opts.Stride
	if win == ([2]int{}) {
		win = [2]int{32, 32}
	}
	if stride == ([2]int{}) {
		stride = [2]int{16, 16}
	}
	dims := [2]int{h, w}
	var pos [2]int
	for a := 0; a < 2; a++ {
		if win[a] < 1 || stride[a] < 1 {
			return nil, fmt.Errorf("occlusion window %v and stride %v must be positive", win, stride)
		}
		if win[a] > dims[a] {
			return nil, fmt.Errorf("occlusion window %dx%d does not fit the %dx%d input", win[0], win[1], h, w)
		}
		if dims[a] > win[a] && stride[a] > win[a] {
			return nil, fmt.Errorf("occlusion stride %v may not exceed the window %v (pixels would be skipped)", stride, win)
		}
		pos[a] = (dims[a]-win[a]+stride[a]-1)/stride[a] + 1
	}
	if f := float64(opts.Baseline); math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("occlusion baseline %v must be finite", opts.Baseline)
	}
	target, clean, err := ex.ResolveTarget(x, opts.Target)
	if err != nil {
		return nil, err
	}
	per := nc * h * w
	nw := pos[0] * pos[1]
	total := make([]float64, n*h*w)
	count := make([]float64, h*w)
	rect := func(k int) (y0, y1, x0, x1 int) {
		y0, x0 = (k/pos[1])*stride[0], (k%pos[1])*stride[1]
		return y0, min(y0+win[0], h), x0, min(x0+win[1], w)
	}
	for k := 0; k < nw; k++ {
		y0, y1, x0, x1 := rect(k)
		for y := y0; y < y1; y++ {
			for xx := x0; xx < x1; xx++ {
				count[y*w+xx]++
			}
		}
	}
	exampleOf := func(r int) int { return r / nw }
	err = ex.RunRows(ctx, n*nw, nc, h, w, opts.BatchSize, "occluded copies", opts.Progress,
		func(r0, r1 int) engine.Request {
			return engine.Request{Target: engine.RowTarget(target, r0, r1, exampleOf)}
		},
		func(dst *engine.Array, r0, r1 int) {
			for r := r0; r < r1; r++ {
				i, k := r/nw, r%nw
				row := dst.Index(r - r0).Data
				copy(row, x.Index(i).Data)
				y0, y1, x0, x1 := rect(k)
				for c := 0; c < nc; c++ {
					for y := y0; y < y1; y++ {
						for xx := x0; xx < x1; xx++ {
							row[(c*h+y)*w+xx] = opts.Baseline
						}
					}
				}
			}
		},
		func(res *engine.Result, r0, r1 int) error {
			for r := r0; r < r1; r++ {
				i, k := r/nw, r%nw
				diff := float64(clean.Scores[i]) - float64(res.Scores[r-r0])
				if math.IsNaN(diff) || math.IsInf(diff, 0) {
					return fmt.Errorf("occlusion: non-finite score %v for window %d", res.Scores[r-r0], k)
				}
				y0, y1, x0, x1 := rect(k)
				acc := total[i*h*w : (i+1)*h*w]
				for y := y0; y < y1; y++ {
					for xx := x0; xx < x1; xx++ {
						acc[y*w+xx] += diff
					}
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := &OcclusionResult{Target: opts.Target, Classes: clean.Classes, Scores: clean.Scores, Window: win, Stride: stride,
		Baseline: opts.Baseline, Positions: pos, Attr: engine.NewArray(x.Shape...), Map: engine.NewArray(n, h, w), Input: x.Clone()}
	for i := 0; i < n; i++ {
		m := out.Map.Index(i).Data
		for p := range m {
			m[p] = float32(total[i*h*w+p] / count[p])
		}
		a := out.Attr.Data[i*per : (i+1)*per]
		for c := 0; c < nc; c++ {
			copy(a[c*h*w:(c+1)*h*w], m)
		}
	}
	return out, nil
}
