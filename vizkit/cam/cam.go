package cam

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// Method is one member of the class-activation-map family. Like
// pytorch-grad-cam's BaseCAM subclasses, a method only says how a layer's
// activations A and gradients G become a raw map; the shared pipeline
// ([Compute]) does the rest. A method is one of five adapters, by what it
// computes (acts and grads are one example's (C,h,w), row-major; c, h, w its
// sizes):
//
//   - [ChannelWeights]: channel weights w (C); raw = Σ_c w_c·A_c, or with
//     Options.EigenSmooth the first principal component of (w_c·A_c).
//   - [Elementwise]: per-element contributions E (C·h·w); raw = Σ_c E_c, or
//     its first principal component with EigenSmooth or Project.
//   - [WholeMap]: the raw map (h·w) directly (EigenSmooth does not apply).
//   - [BatchWeights]: the (N,C) channel weights of the whole batch, used like
//     ChannelWeights; for methods that run further engine executions
//     (Score-CAM, Ablation-CAM) or read the model's parameters (CAM).
//   - [Custom]: the whole result, with its own engine executions (FullGrad).
type Method interface {
	// Describe returns the method's name, title and requirements.
	Describe() Info
	spec() *spec
}

// Info describes a CAM method.
type Info struct {
	// Name is the CLI/display name ("gradcam", "hirescam", …), lower case.
	Name string
	// Title is the display title ("Grad-CAM").
	Title string
	// Reference cites the definition followed.
	Reference string
	// Help is one line for `vizkit methods` (default: Title + " class
	// activation map at --layer").
	Help string
	// NeedsGrads is false for gradient-free methods (EigenCAM, ScoreCAM, …):
	// the shared engine execution then computes no gradients.
	NeedsGrads bool
	// DefaultBatchSize is the engine batch for methods that run extra
	// executions (used when Options.BatchSize is 0).
	DefaultBatchSize int
	// Check, if set, validates the network, resolved layers and options before
	// anything runs (e.g. CAM's "global average pooling + one linear layer").
	Check func(e *engine.Explainer, layers []string, opts Options) error
}

// ChannelWeights is a method given by per-example channel weights (C) of a
// layer (Grad-CAM, Grad-CAM++, XGrad-CAM); grads is nil unless NeedsGrads.
type ChannelWeights struct {
	Info
	Weights func(acts, grads []float32, c, h, w int) []float32
}

// Elementwise is a method given by per-element contributions (C·h·w)
// (HiResCAM, LayerCAM); with Project the raw map is their first principal
// component (EigenCAM, EigenGrad-CAM).
type Elementwise struct {
	Info
	Project bool
	Elems   func(acts, grads []float32, c, h, w int) []float32
}

// WholeMap is a method that computes the raw map (h·w) of one example itself.
type WholeMap struct {
	Info
	Map func(acts, grads []float32, c, h, w int) []float32
}

// BatchWeights is a method that computes the (N,C) channel weights of
// r.Layer for the whole batch; it may run further engine executions through
// r.Ex (calling r.Step after each batch for progress and cancellation).
type BatchWeights struct {
	Info
	Weights func(r *Run) (*engine.Array, error)
}

// Custom is a method that computes the whole result itself: Map (N,H,W)
// before the final ReLU and scaling, Raw/Low/Layers as it sees fit. It does
// not use target layers; LayerTag names what its maps come from in captions
// and file names (FullGrad: "biases").
type Custom struct {
	Info
	LayerTag string
	Compute  func(r *Run) (*Result, error)
}

func (m *ChannelWeights) Describe() Info { return m.Info }
func (m *Elementwise) Describe() Info    { return m.Info }
func (m *WholeMap) Describe() Info       { return m.Info }
func (m *BatchWeights) Describe() Info   { return m.Info }
func (m *Custom) Describe() Info         { return m.Info }

func (m *ChannelWeights) spec() *spec {
	return &spec{Info: m.Info, Weights: m.Weights}
}
func (m *Elementwise) spec() *spec {
	return &spec{Info: m.Info, Elementwise: m.Elems, Project: m.Project}
}
func (m *WholeMap) spec() *spec     { return &spec{Info: m.Info, Raw: m.Map} }
func (m *BatchWeights) spec() *spec { return &spec{Info: m.Info, BatchWeights: m.Weights} }
func (m *Custom) spec() *spec {
	return &spec{Info: m.Info, Full: m.Compute, LayerTag: m.LayerTag}
}

// spec is the pipeline's view of a method: exactly one function is set.
type spec struct {
	Info
	Project      bool
	LayerTag     string
	Weights      func(acts, grads []float32, c, h, w int) []float32
	Elementwise  func(acts, grads []float32, c, h, w int) []float32
	Raw          func(acts, grads []float32, c, h, w int) []float32
	BatchWeights func(r *Run) (*engine.Array, error)
	Full         func(r *Run) (*Result, error)
}

var (
	camMu      sync.RWMutex
	camMethods = map[string]*spec{}
)

// Register adds a CAM method to the registry used by [Compute], and to the
// attribution registry of package engine under the same name (so the CLI,
// the lab and the method tests offer it). It fails if the name is empty, not
// lower case or already taken, or if the adapter's function is nil.
func Register(m Method) error {
	if m == nil {
		return fmt.Errorf("cam.Register: nil method")
	}
	sp := m.spec()
	if sp.Name == "" || sp.Name != strings.ToLower(sp.Name) {
		return fmt.Errorf("cam.Register: a CAM method needs a lower-case Name, got %q", sp.Name)
	}
	if sp.Weights == nil && sp.Elementwise == nil && sp.Raw == nil && sp.BatchWeights == nil && sp.Full == nil {
		return fmt.Errorf("cam.Register: CAM method %q has no function (%T)", sp.Name, m)
	}
	if sp.Title == "" {
		sp.Title = sp.Name
	}
	if sp.Help == "" {
		sp.Help = sp.Title + " class activation map, overlaid on the input (--layer: target layer(s), default the last conv block)"
	}
	camMu.Lock()
	defer camMu.Unlock()
	if _, dup := camMethods[sp.Name]; dup {
		return fmt.Errorf("cam.Register: CAM method %q is already registered", sp.Name)
	}
	if err := engine.Register(attributionInfo(sp)); err != nil {
		return err
	}
	camMethods[sp.Name] = sp
	return nil
}

func mustRegister(m Method) {
	if err := Register(m); err != nil {
		panic(err) // Only for the built-in methods, at init.
	}
}

// Names lists the registered CAM methods, sorted.
func Names() []string {
	camMu.RLock()
	defer camMu.RUnlock()
	return slices.Sorted(maps.Keys(camMethods))
}

// Lookup returns a registered method's description (case-insensitive), or
// an error listing them.
func Lookup(name string) (Info, error) {
	sp, err := lookup(name)
	if err != nil {
		return Info{}, err
	}
	return sp.Info, nil
}

func lookup(name string) (*spec, error) {
	camMu.RLock()
	m, ok := camMethods[strings.ToLower(strings.TrimSpace(name))]
	camMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown CAM method %q; known: %s", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Options configures [Compute]. The zero value is Grad-CAM of each
// example's top-1 class logit on DefaultLayer.
type Options struct {
	// Method is a registered method's name (see [Names]); default "gradcam".
	Method string
	// Layers are the target layers; default: DefaultLayer (reported in
	// Result.Layers with AutoLayer set). With several, their scaled
	// input-size maps are averaged, then scaled again (as pytorch-grad-cam).
	Layers []string
	// Target is what is explained: a class logit (Class), a softmax score
	// (SoftmaxOf), a function of the logits (engine.Target{Kind: engine.TargetFunc}); with
	// one class per example for batches. Default: each example's top-1 logit.
	Target engine.Target
	// EigenSmooth replaces the channel sum by the first principal component
	// of the weighted activations (pytorch-grad-cam's eigen_smooth; see
	// firstPrincipalProjection for the sign rule).
	EigenSmooth bool
	// AugSmooth averages the maps of 6 augmented inputs — horizontal flip
	// {off, on} × intensity factor {0.9, 1, 1.1} applied to the normalised
	// input, as pytorch-grad-cam's aug_smooth (ttach) — after undoing the flip.
	// The target class is resolved once on the un-augmented input.
	AugSmooth bool
	// BatchSize is the engine batch of methods that run extra executions
	// (ScoreCAM's masked inputs, default 16; AblationCAM's ablated copies,
	// default 32). The last batch is padded to this size so one executable
	// serves every batch.
	BatchSize int
	// Progress, if set, is called after every extra engine batch (ScoreCAM,
	// AblationCAM) from the calling goroutine.
	Progress func(engine.Progress)
}

// Result is a class activation map for a batch. Maps are (N,H,W) at the
// input's resolution, (N,h,w) at a layer's.
type Result struct {
	// Method is the method's name, Title its display title.
	Method, Title string
	// LayerTag names what the maps come from in captions and file names:
	// the layers joined by "+", or a Custom method's tag (FullGrad: "biases").
	LayerTag string
	// Layers are the target layers used. AutoLayer is true when they were
	// chosen by DefaultLayer because Options.Layers was empty.
	Layers    []string
	AutoLayer bool
	// Target is the explained target; Classes and Scores its resolved class
	// (-1 for engine.TargetFunc) and value per example.
	Target  engine.Target
	Classes []int
	Scores  []float32
	// EigenSmooth and AugSmooth echo the options used.
	EigenSmooth, AugSmooth bool
	// Raw maps, per layer, the raw map before ReLU (the weighted sum, or its
	// first principal component), (N,h,w).
	Raw map[string]*engine.Array
	// Low maps, per layer, the low-resolution map after ReLU and min-max
	// scaling (N,h,w), values in [0,1].
	Low map[string]*engine.Array
	// Weights maps, per layer, the channel weights (N,C) of weight-based
	// methods (absent for element-wise ones).
	Weights map[string]*engine.Array
	// Map is the final map at input resolution (N,H,W), values in [0,1].
	Map *engine.Array
	// Flat marks examples whose map is constant (e.g. dead ReLUs on random
	// weights, or a 1×1 layer): their map is all zeros, never NaN.
	Flat []bool
	// Notes are remarks for the user (ignored options, degenerate cases).
	Notes []string
}

// DefaultLayer returns the layer CAM methods use when none is given: the
// output of the last convolutional block (the last spatial layer before the
// global pooling), e.g. "features.20" (VGG11's last max-pool), as
// pytorch-grad-cam recommends (model.features[-1]).
//
// A network may name its own default (a DefaultCAMLayer() string method, as
// ONNX models do); otherwise the registry's default for the architecture
// (models/zoo: "layer4" for ResNet, "features.norm5" for DenseNet,
// "features.18" for MobileNet-V2, "features.12" for AlexNet) is used.
func DefaultLayer(net models.Network) (string, error) {
	if d, ok := net.(interface{ DefaultCAMLayer() string }); ok && d.DefaultCAMLayer() != "" {
		return d.DefaultCAMLayer(), nil
	}
	if l := models.CAMLayerOf(net.Arch()); l != "" {
		return l, nil
	}
	layers := net.Layers()
	last := ""
	for _, l := range layers {
		if !l.Spatial || l.Kind == models.AdaptiveAvgPool2d || l.Kind == models.GlobalAvgPool {
			break
		}
		last = l.Name
	}
	if last == "" {
		return "", fmt.Errorf("model %s has no spatial layer to compute a CAM on", net.Arch())
	}
	return last, nil
}

// Compute computes a class activation map of x (NCHW (N,3,H,W),
// normalised as the network expects) with one engine execution for the
// target layers' activations and gradients:
//
//	method → raw map (N,h,w) → ReLU → min-max scale ((x−min)/(1e-7+max), as
//	pytorch-grad-cam's scale_cam_image) → bilinear resize to (H,W)
//	(align_corners=False, as cv2.resize) → mean over layers → ReLU and scale again.
//
// Methods that run extra engine batches (ScoreCAM, AblationCAM) check ctx
// between batches and stop with ctx's error; opts.Progress reports progress.
//
// Definitions follow pytorch-grad-cam (see each method's Reference); the Go
// results match a float64 PyTorch reimplementation (scripts/gen_cam_golden.py)
// to ~1e-6. Where this package deliberately differs:
//
//   - Principal components (EigenCAM, EigenGradCAM, EigenSmooth) have a
//     deterministic sign (firstPrincipalProjection); the library keeps
//     LAPACK's arbitrary one.
//   - AblationCAM always sets the ablated channel to 0; the library uses
//     min(A) − 1e7 when the layer's minimum is not 0. If the target's value is
//     exactly 0 the weights are y − y_c (the library divides by 0).
//   - Grad-CAM++ and XGrad-CAM terms with an exactly zero denominator count as
//     0 (NumPy gives NaN or Inf); method arithmetic is float64, not float32.
//   - AugSmooth explains one class for all six augmentations (the top-1 of the
//     un-augmented input when none is given); the library re-resolves top-1
//     on every augmented input.
//   - CAM (Zhou et al.) is not in pytorch-grad-cam; it needs a network ending
//     in global average pooling + one linear layer and errors otherwise (VGG).
func Compute(ctx context.Context, e *engine.Explainer, x *engine.Array, opts Options) (*Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	name := opts.Method
	if name == "" {
		name = "gradcam"
	}
	method, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if x == nil {
		return nil, errors.New("CAM: input is nil")
	}
	if err := e.Net().CheckInput(x.Shape); err != nil {
		return nil, err
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("CAM: BatchSize must be ≥ 0 (0 = method default), got %d", opts.BatchSize)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = max(method.DefaultBatchSize, 1)
	}
	if opts.EigenSmooth && method.Raw != nil {
		return nil, fmt.Errorf("%s computes its map directly; EigenSmooth does not apply to it", method.Title)
	}
	var notes []string
	layers := append([]string(nil), opts.Layers...)
	auto := false
	if method.Full == nil {
		if len(layers) == 0 {
			l, err := DefaultLayer(e.Net())
			if err != nil {
				return nil, err
			}
			layers, auto = []string{l}, true
		}
		seen := map[string]bool{}
		for _, l := range layers {
			layer, err := e.Layer(l)
			if err != nil {
				return nil, err
			}
			if !layer.Spatial {
				return nil, fmt.Errorf("CAM needs a layer with spatial extent (N,C,H,W); %q is a %s with output (N,%d)", l, layer.Kind, layer.Out)
			}
			if seen[l] {
				return nil, fmt.Errorf("CAM: layer %q is listed twice", l)
			}
			seen[l] = true
		}
	} else if len(layers) > 0 {
		notes = append(notes, fmt.Sprintf("%s ignores the requested layers (%s): it always uses every layer with a bias.", method.Title, strings.Join(layers, ", ")))
		layers = nil
	}
	if method.Check != nil {
		if err := method.Check(e, layers, opts); err != nil {
			return nil, err
		}
	}
	prog := &camProgress{fn: opts.Progress, method: method.Name}
	if method.BatchWeights != nil {
		augs := 1
		if opts.AugSmooth {
			augs = len(camAugmentations)
		}
		for _, l := range layers {
			layer, _ := e.Layer(l)
			prog.total += augs * x.Shape[0] * layer.Out
		}
	}
	var out *Result
	if !opts.AugSmooth {
		out, err = camOnce(ctx, e, x, method, layers, opts, prog)
	} else {
		out, err = camAugmented(ctx, e, x, method, layers, opts, prog)
	}
	if err != nil {
		return nil, err
	}
	out.AutoLayer = auto
	out.LayerTag = strings.Join(out.Layers, "+")
	if method.Full != nil {
		out.LayerTag = method.LayerTag
	}
	out.EigenSmooth, out.AugSmooth = opts.EigenSmooth, opts.AugSmooth
	out.Notes = append(notes, out.Notes...)
	if err := out.Map.CheckFinite("CAM"); err != nil {
		return nil, fmt.Errorf("%s: %w (please report: this is a bug)", method.Name, err)
	}
	return out, nil
}

// Run is what a whole-batch method (CAMMethod.BatchWeights or Full) sees.
type Run struct {
	// Ctx is checked between extra engine batches (see Step).
	Ctx context.Context
	// Ex runs further requests on the same network and backend.
	Ex *engine.Explainer
	// Input is the batch (N,3,H,W) as given to the engine (augmented, with AugSmooth).
	Input *engine.Array
	// Target is the requested target; use ExampleTarget for one example's.
	Target engine.Target
	// Layers are the target layers; Layer the one BatchWeights is asked about.
	Layers []string
	Layer  string
	// Result is the shared engine execution (activations of Layers, gradients
	// when the method NeedsGrads, resolved Classes, Scores); nil for Full.
	Result *engine.Result
	// Options are the CAM options with BatchSize resolved.
	Options Options

	prog  *camProgress
	notes []string
}

// Note adds a remark for the user to the result (Result.Notes), once.
func (r *Run) Note(s string) {
	for _, n := range r.notes {
		if n == s {
			return
		}
	}
	r.notes = append(r.notes, s)
}

// ExampleTarget returns the target of example i alone: the resolved class of
// that example for class targets, the target itself for engine.TargetFunc.
func (r *Run) ExampleTarget(i int) engine.Target {
	t := r.Target
	if t.Kind == engine.TargetFunc {
		return t
	}
	if r.Result != nil && i < len(r.Result.Classes) {
		t.Classes = []int{r.Result.Classes[i]}
	} else if len(t.Classes) > 1 {
		t.Classes = []int{t.Classes[i]}
	}
	return t
}

// Step reports that done more network evaluations finished and returns
// Ctx's error if the computation was cancelled.
func (r *Run) Step(done int) error {
	if r.prog != nil {
		r.prog.done += done
		if r.prog.fn != nil {
			r.prog.fn(engine.Progress{Task: r.prog.method + " at " + r.Layer, Done: r.prog.done, Total: r.prog.total})
		}
	}
	return r.Cancelled()
}

// Cancelled returns a descriptive error if Ctx is done, else nil.
func (r *Run) Cancelled() error {
	if r.Ctx == nil {
		return nil
	}
	if err := r.Ctx.Err(); err != nil {
		if r.prog == nil {
			return fmt.Errorf("CAM cancelled: %w", err)
		}
		return fmt.Errorf("CAM %s cancelled after %d of %d network evaluations: %w", r.prog.method, r.prog.done, r.prog.total, err)
	}
	return nil
}

type camProgress struct {
	fn          func(engine.Progress)
	method      string
	done, total int
}

// camOnce is the pipeline on one (possibly augmented) input.
func camOnce(ctx context.Context, e *engine.Explainer, x *engine.Array, method *spec, layers []string, opts Options, prog *camProgress) (*Result, error) {
	n, H, W := x.Shape[0], x.Shape[2], x.Shape[3]
	run := &Run{Ctx: ctx, Ex: e, Input: x, Target: opts.Target, Layers: layers, Options: opts, prog: prog}
	if err := run.Cancelled(); err != nil {
		return nil, err
	}
	if method.Full != nil {
		out, err := method.Full(run)
		if err != nil {
			return nil, err
		}
		out.Method, out.Title, out.Target = method.Name, method.Title, opts.Target
		out.Notes = append(out.Notes, run.notes...)
		if err := finishCAM(out); err != nil {
			return nil, err
		}
		return out, nil
	}
	req := engine.Request{Taps: layers, Target: opts.Target}
	if method.NeedsGrads {
		req.GradTaps = layers
	}
	res, err := e.Run(x, req)
	if err != nil {
		return nil, err
	}
	run.Result = res
	out := &Result{Method: method.Name, Title: method.Title, Layers: layers, Target: opts.Target,
		Classes: res.Classes, Scores: res.Scores,
		Raw: map[string]*engine.Array{}, Low: map[string]*engine.Array{}, Weights: map[string]*engine.Array{},
		Map: engine.NewArray(n, H, W)}
	for _, l := range layers {
		acts := res.Acts[l]
		grads := res.Grads[l]
		c, h, w := acts.Shape[1], acts.Shape[2], acts.Shape[3]
		hw := h * w
		var wts *engine.Array
		if method.BatchWeights != nil {
			run.Layer = l
			if wts, err = method.BatchWeights(run); err != nil {
				return nil, err
			}
			if wts == nil || !slices.Equal(wts.Shape, []int{n, c}) {
				return nil, fmt.Errorf("%s: BatchWeights for layer %q must return (N,C)=(%d,%d) weights, got %v", method.Name, l, n, c, shapeOf(wts))
			}
		} else if method.Weights != nil {
			wts = engine.NewArray(n, c)
		}
		raw := engine.NewArray(n, h, w)
		for i := 0; i < n; i++ {
			a := acts.Index(i).Data
			var g []float32
			if grads != nil {
				g = grads.Index(i).Data
			}
			r := raw.Index(i).Data
			switch {
			case wts != nil:
				cw := wts.Index(i).Data
				if method.Weights != nil {
					got := method.Weights(a, g, c, h, w)
					if len(got) != c {
						return nil, fmt.Errorf("%s: Weights returned %d values for %d channels", method.Name, len(got), c)
					}
					copy(cw, got)
				}
				if opts.EigenSmooth {
					weighted := make([]float32, c*hw)
					for ci := 0; ci < c; ci++ {
						for p, v := range a[ci*hw : (ci+1)*hw] {
							weighted[ci*hw+p] = cw[ci] * v
						}
					}
					copy(r, firstPrincipalProjection(weighted, c, hw))
				} else {
					weightedSum(r, a, cw, c, hw)
				}
			case method.Elementwise != nil:
				el := method.Elementwise(a, g, c, h, w)
				if len(el) != c*hw {
					return nil, fmt.Errorf("%s: Elementwise returned %d values for (C,h,w)=(%d,%d,%d)", method.Name, len(el), c, h, w)
				}
				if method.Project || opts.EigenSmooth {
					copy(r, firstPrincipalProjection(el, c, hw))
				} else {
					channelSum(r, el, c, hw)
				}
			default:
				got := method.Raw(a, g, c, h, w)
				if len(got) != hw {
					return nil, fmt.Errorf("%s: Raw returned %d values for an %d×%d map", method.Name, len(got), h, w)
				}
				copy(r, got)
			}
		}
		if err := raw.CheckFinite(fmt.Sprintf("%s raw map of layer %q", method.Title, l)); err != nil {
			return nil, err
		}
		out.Raw[l] = raw
		if wts != nil {
			out.Weights[l] = wts
		}
		low, up, err := scaleAndResize(raw, H, W)
		if err != nil {
			return nil, err
		}
		out.Low[l] = low
		for j, v := range up.Data {
			out.Map.Data[j] += max(v, 0) / float32(len(layers))
		}
	}
	out.Notes = append(out.Notes, run.notes...)
	if err := finishCAM(out); err != nil {
		return nil, err
	}
	return out, nil
}

// scaleAndResize applies ReLU and min-max scaling to each (h,w) map of raw
// (N,h,w), returning the scaled maps and their bilinear resizes to (N,H,W).
func scaleAndResize(raw *engine.Array, H, W int) (low, up *engine.Array, err error) {
	n, h, w := raw.Shape[0], raw.Shape[1], raw.Shape[2]
	low = engine.NewArray(n, h, w)
	up = engine.NewArray(n, H, W)
	for i := 0; i < n; i++ {
		lo := low.Index(i).Data
		for j, v := range raw.Index(i).Data {
			lo[j] = max(v, 0)
		}
		scaled, err := heatmap.ScaleCAM(heatmap.Map{H: h, W: w, Data: lo})
		if err != nil {
			return nil, nil, err
		}
		copy(lo, scaled.Data)
		u, err := resizeMap(scaled, H, W)
		if err != nil {
			return nil, nil, err
		}
		copy(up.Index(i).Data, u.Data)
	}
	return low, up, nil
}

// resizeMap is cv2.resize(INTER_LINEAR): bilinear, align_corners=False; the
// identity when the size already matches.
func resizeMap(m heatmap.Map, H, W int) (heatmap.Map, error) {
	if m.H == H && m.W == W {
		return m.Clone(), nil
	}
	return heatmap.Resize(m, H, W, heatmap.Bilinear, false)
}

// finishCAM applies the final ReLU and min-max scaling to out.Map and sets Flat.
func finishCAM(out *Result) error {
	n, H, W := out.Map.Shape[0], out.Map.Shape[1], out.Map.Shape[2]
	out.Flat = make([]bool, n)
	for i := 0; i < n; i++ {
		m := out.Map.Index(i).Data
		for j, v := range m {
			m[j] = max(v, 0)
		}
		scaled, err := heatmap.ScaleCAM(heatmap.Map{H: H, W: W, Data: m})
		if err != nil {
			return err
		}
		copy(m, scaled.Data)
		out.Flat[i] = flatten(m)
	}
	return nil
}

// flatten zeroes a map that is constant, or whose scaled maximum is below
// 1e-3 — a raw map whose whole range was under ~1e-10, which min-max scaling
// with pytorch-grad-cam's 1e-7 guard leaves as a near-black picture of
// rounding noise — and reports whether it did.
func flatten(m []float32) bool {
	hi := float32(0)
	for _, v := range m {
		hi = max(hi, v)
	}
	if isConstant(m) || hi < 1e-3 {
		clear(m)
		return true
	}
	return false
}

func isConstant(m []float32) bool {
	for _, v := range m {
		if v != m[0] {
			return false
		}
	}
	return true
}

func shapeOf(a *engine.Array) any {
	if a == nil {
		return "nil"
	}
	return a.Shape
}

// camAugmentations are pytorch-grad-cam's aug_smooth transforms (ttach's
// HorizontalFlip × Multiply(0.9, 1, 1.1)), identity first.
var camAugmentations = []struct {
	flip   bool
	factor float32
}{{false, 1}, {false, 0.9}, {false, 1.1}, {true, 0.9}, {true, 1}, {true, 1.1}}

// camAugmented averages the de-augmented maps of the 6 augmentations. Raw,
// Low, Weights, Classes and Scores are those of the un-augmented input.
func camAugmented(ctx context.Context, e *engine.Explainer, x *engine.Array, method *spec, layers []string, opts Options, prog *camProgress) (*Result, error) {
	if t := opts.Target; t.Kind != engine.TargetFunc && len(t.Classes) == 0 {
		res, err := e.Run(x, engine.Request{Target: t})
		if err != nil {
			return nil, err
		}
		opts.Target.Classes = res.Classes
	}
	n, H, W := x.Shape[0], x.Shape[2], x.Shape[3]
	var out *Result
	sum := make([]float32, n*H*W)
	for _, aug := range camAugmentations {
		xa := x.Clone()
		for i := range xa.Data {
			xa.Data[i] *= aug.factor
		}
		if aug.flip {
			flipW(xa.Data, xa.Shape[0]*xa.Shape[1], H, W)
		}
		r, err := camOnce(ctx, e, xa, method, layers, opts, prog)
		if err != nil {
			return nil, err
		}
		if aug.flip {
			flipW(r.Map.Data, n, H, W)
		}
		for j, v := range r.Map.Data {
			sum[j] += v
		}
		if out == nil {
			out = r
		}
	}
	k := float32(len(camAugmentations))
	for j := range sum {
		out.Map.Data[j] = sum[j] / k
	}
	out.Target = opts.Target
	for i := range out.Flat {
		out.Flat[i] = flatten(out.Map.Index(i).Data)
	}
	return out, nil
}

// flipW mirrors planes (count, H, W) left–right in place.
func flipW(data []float32, count, h, w int) {
	for p := 0; p < count*h; p++ {
		row := data[p*w : (p+1)*w]
		for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
			row[i], row[j] = row[j], row[i]
		}
	}
}

// weightedSum sets dst (hw) = Σ_c w[c]·a[c] for a (C,hw).
func weightedSum(dst, a, w []float32, c, hw int) {
	acc := make([]float64, hw)
	for ci := 0; ci < c; ci++ {
		wc := float64(w[ci])
		if wc == 0 {
			continue
		}
		for j, v := range a[ci*hw : (ci+1)*hw] {
			acc[j] += wc * float64(v)
		}
	}
	for j := range dst {
		dst[j] = float32(acc[j])
	}
}

// channelSum sets dst (hw) = Σ_c e[c] for e (C,hw).
func channelSum(dst, e []float32, c, hw int) {
	acc := make([]float64, hw)
	for ci := 0; ci < c; ci++ {
		for j, v := range e[ci*hw : (ci+1)*hw] {
			acc[j] += float64(v)
		}
	}
	for j := range dst {
		dst[j] = float32(acc[j])
	}
}
