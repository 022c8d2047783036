package engine

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Progress reports how far a long computation has come: Done of Total units
// (network evaluations, samples, steps, masked copies) of Task. It is the one
// progress type of every package; callbacks receive it from the calling
// goroutine after every engine batch.
type Progress struct {
	// Task names the work ("scorecam at features.20", "smoothgrad samples").
	Task        string
	Done, Total int
	// Elapsed is the time since the call started (zero when the reporter does
	// not measure it).
	Elapsed time.Duration
}

// Attribution is what every attribution method returns for a batch: one
// importance map per example, whatever the method.
type Attribution struct {
	// Method is the registered name of the method ("gradcam", "saliency"),
	// Title its display title ("Grad-CAM").
	Method, Title string
	// Maps are the per-example maps, (N,H,W) at the input's resolution,
	// finite; larger means more important. Every method documents its
	// reduction (e.g. saliency: max over channels of |gradient|; CAMs: the
	// min-max scaled map in [0,1]).
	Maps *Array
	// Signed is true when Maps may be negative (e.g. occlusion's score drop).
	Signed bool
	// Target is the explained target; Classes and Scores its resolved class
	// per example (-1 for function targets) and its value on the input.
	Target  Target
	Classes []int
	Scores  []float32
	// Layers are the layers the maps come from (CAM methods), empty for
	// input-space methods.
	Layers []string
	// Detail is the method's own full result, for drawing and for the files
	// it writes: *cam.Result, *attr.SaliencyResult, *attr.GradXInputResult,
	// *attr.SmoothGradResult, *attr.IGResult, *attr.OcclusionResult,
	// *attr.GuidedGradCAMResult … (the CLI picks its writer by this type; any
	// other type, or nil, is drawn from Maps).
	Detail any
}

// Method is the one contract of every attribution method, like Captum's
// attribute: the model (an Explainer), a batch x (N,C,H,W) normalised as the
// network expects, and a target in; an Attribution with Maps (N,H,W) out.
// A Method value carries its configuration (layers, samples, steps, …) and
// must be safe for concurrent use. A zero-value Target means each example's
// top-1 class logit.
type Method interface {
	Attribute(ctx context.Context, ex *Explainer, x *Array, t Target) (*Attribution, error)
}

// Settings are the options a registered method may take when built by name
// (the CLI's flags, the lab's table). A method ignores the settings that do
// not apply to it (e.g. Samples for Grad-CAM) and documents the ones it uses
// in its Help text; zero values mean the method's defaults. The defaults
// below are those of the methods registered by packages cam and attr (the
// lab uses them; the CLI sets its own: SmoothGrad 50 samples, Integrated
// Gradients 50 steps from a black baseline, occlusion 32×32 windows with
// stride 16).
type Settings struct {
	// Layers are target layers (CAM methods, guidedgradcam); empty means the
	// network's default CAM layer (cam.DefaultLayer).
	Layers []string
	// EigenSmooth and AugSmooth are pytorch-grad-cam's smoothing switches
	// (CAM methods); default off.
	EigenSmooth, AugSmooth bool
	// Samples is the number of noisy samples (smoothgrad; default 25), Steps
	// the number of integration steps (integratedgradients; default 32).
	Samples, Steps int
	// NoiseLevel is SmoothGrad's noise σ as a fraction of each example's
	// input range, max − min (smoothgrad); 0 means 0.15.
	NoiseLevel float64
	// Baseline names the reference input of integratedgradients: "black"
	// (pixel value 0, through Norm), "zeros" (0 after normalisation) or "blur"
	// (the input blurred with σ 10 px); empty means "blur".
	Baseline string
	// Norm is the input normalisation the network expects, used to build the
	// "black" baseline (integratedgradients); the zero value is the default
	// for the input's channel count (see Normalization).
	Norm Normalization
	// Window is the occluded patch (height, width) and Stride its step in
	// pixels (occlusion); a zero entry means the registered default, a 12×12
	// window with stride 4.
	Window, Stride [2]int
	// BatchSize is the number of inputs per engine execution for methods that
	// run many (Score-CAM's masked copies, SmoothGrad's samples, occlusion's
	// windows); memory grows linearly with it. 0: each method's default.
	BatchSize int
	// Seed seeds the methods that draw random numbers (smoothgrad).
	Seed uint64
	// Progress, if set, is called after every engine batch of the methods
	// that run many (CAM methods with extra executions: Task "scorecam at
	// LAYER"; smoothgrad, integratedgradients and occlusion: Task their
	// lower-case title, "smoothgrad", "integrated gradients", "occlusion").
	Progress func(Progress)
}

// MethodInfo describes a registered attribution method.
type MethodInfo struct {
	// Name is the lower-case identifier ("gradcam"), Title the display name.
	Name, Title string
	// Family is "CAM", "gradient" or "perturbation".
	Family string
	// Help is one line for `vizkit methods`: what the map is and which
	// Settings the method uses.
	Help string
	// New builds the method with the given settings; it rejects invalid ones
	// (e.g. negative Samples) with an error naming the setting.
	New func(Settings) (Method, error)
}

var (
	methodsMu sync.RWMutex
	methods   = map[string]MethodInfo{}
)

// Register makes an attribution method known by name. It fails if the name
// is empty, not lower case, has spaces, is taken, or New is nil.
func Register(info MethodInfo) error {
	if info.Name == "" || info.Name != strings.ToLower(info.Name) || strings.ContainsAny(info.Name, " \t,/") {
		return fmt.Errorf("engine.Register: a method needs a lower-case Name without spaces, commas or slashes, got %q", info.Name)
	}
	if info.New == nil {
		return fmt.Errorf("engine.Register: method %q has no New function", info.Name)
	}
	if info.Title == "" {
		info.Title = info.Name
	}
	methodsMu.Lock()
	defer methodsMu.Unlock()
	if _, dup := methods[info.Name]; dup {
		return fmt.Errorf("engine.Register: method %q is already registered", info.Name)
	}
	methods[info.Name] = info
	return nil
}

// MustRegister is Register for a package's built-in methods, at init: it
// panics on a programming error (a duplicate or malformed name).
func MustRegister(info MethodInfo) {
	if err := Register(info); err != nil {
		panic(err)
	}
}

// Methods lists the registered methods sorted by name. A package's methods
// are registered when it is imported (cam, attr).
func Methods() []MethodInfo {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	out := make([]MethodInfo, 0, len(methods))
	for _, name := range slices.Sorted(maps.Keys(methods)) {
		out = append(out, methods[name])
	}
	return out
}

// MethodNames lists the registered methods' names, sorted.
func MethodNames() []string {
	methodsMu.RLock()
	defer methodsMu.RUnlock()
	return slices.Sorted(maps.Keys(methods))
}

// LookupMethod returns the registered method name (case and surrounding
// space ignored), or an error listing the registered ones.
func LookupMethod(name string) (MethodInfo, error) {
	methodsMu.RLock()
	info, ok := methods[strings.ToLower(strings.TrimSpace(name))]
	methodsMu.RUnlock()
	if !ok {
		return MethodInfo{}, fmt.Errorf("unknown attribution method %q; known: %s", name, strings.Join(MethodNames(), ", "))
	}
	return info, nil
}

// NewMethod builds the registered method name with settings s.
func NewMethod(name string, s Settings) (Method, MethodInfo, error) {
	info, err := LookupMethod(name)
	if err != nil {
		return nil, info, err
	}
	if s.Samples < 0 || s.Steps < 0 || s.BatchSize < 0 {
		return nil, info, fmt.Errorf("method %s: Samples (%d), Steps (%d) and BatchSize (%d) must be ≥ 0 (0 means the method's default)", name, s.Samples, s.Steps, s.BatchSize)
	}
	if s.Window[0] < 0 || s.Window[1] < 0 || s.Stride[0] < 0 || s.Stride[1] < 0 {
		return nil, info, fmt.Errorf("method %s: Window %v and Stride %v must be ≥ 0 (0 means the method's default)", name, s.Window, s.Stride)
	}
	if !(s.NoiseLevel >= 0) || math.IsInf(s.NoiseLevel, 0) {
		return nil, info, fmt.Errorf("method %s: NoiseLevel %v must be finite and ≥ 0 (0 means the method's default)", name, s.NoiseLevel)
	}
	s.Layers = slices.Clone(s.Layers)
	m, err := info.New(s)
	if err != nil {
		return nil, info, fmt.Errorf("method %s: %w", name, err)
	}
	if m == nil {
		return nil, info, fmt.Errorf("method %s: New returned no method", name)
	}
	return titled{m, info}, info, nil
}

// titled fills in an Attribution's Method and Title from the registry and
// checks it (CheckAttribution), so every registered method keeps the contract.
type titled struct {
	m    Method
	info MethodInfo
}

func (t titled) Attribute(ctx context.Context, ex *Explainer, x *Array, tg Target) (*Attribution, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", t.info.Name, err)
	}
	a, err := t.m.Attribute(ctx, ex, x, tg)
	if err != nil {
		return nil, err
	}
	if a != nil {
		if a.Method == "" {
			a.Method = t.info.Name
		}
		if a.Title == "" {
			a.Title = t.info.Title
		}
	}
	if err := CheckAttribution(a, x); err != nil {
		return nil, fmt.Errorf("%s: %w (please report: the method broke its contract)", t.info.Name, err)
	}
	return a, nil
}

// CheckAttribution validates what a Method returned for a batch x: Maps
// (N,H,W) with x's N, H and W, every value finite, Classes and Scores of
// length N. Callers that accept third-party methods (the CLI, the lab) use
// it so a broken method fails with a clear error instead of drawing garbage.
func CheckAttribution(a *Attribution, x *Array) error {
	if x == nil {
		return fmt.Errorf("attribution input is nil")
	}
	if a == nil || a.Maps == nil {
		return fmt.Errorf("attribution method returned no maps")
	}
	if len(x.Shape) != 4 {
		return fmt.Errorf("attribution input must be (N,C,H,W), got %v", x.Shape)
	}
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	if !slices.Equal(a.Maps.Shape, []int{n, h, w}) || len(a.Maps.Data) != n*h*w {
		return fmt.Errorf("attribution %s: maps have shape %v (%d values), want (N,H,W) = %v", a.Method, a.Maps.Shape, len(a.Maps.Data), []int{n, h, w})
	}
	if err := a.Maps.CheckFinite("attribution " + a.Method + " maps"); err != nil {
		return err
	}
	if len(a.Classes) != n || len(a.Scores) != n {
		return fmt.Errorf("attribution %s: %d classes and %d scores for a batch of %d", a.Method, len(a.Classes), len(a.Scores), n)
	}
	return nil
}
