package vizkit

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
)

// Option configures a façade call (Open, GradCAM, Saliency, …). Build one with
// the functions below (AtLayer, ForClass, Guided, WithContext, …) or pass a
// whole options or style value (KernelOptions and KernelStyle, FeatureOptions
// and FeatureStyle; WithSmoothGradOptions, WithIGOptions, WithActMax,
// WithDeepDream). Each
// function documents the options it takes; any other is an error naming
// the ones that apply.
type Option interface {
	applyOption(s *settings)
}

type optionFunc struct {
	name string
	f    func(*settings)
}

func (o optionFunc) applyOption(s *settings) {
	s.names = append(s.names, o.name)
	o.f(s)
}

func opt(name string, f func(*settings)) Option { return optionFunc{name, f} }

// settings collects the options of one call.
type settings struct {
	names []string // the options given, for validation

	ctx      context.Context
	progress func(Progress)

	// Open
	arch, backend string
	seed          uint64
	offline       bool
	quiet         bool
	preprocess    *imageio.Preprocess
	labels        []string

	// methods
	layers     []string
	target     *Target
	relu       models.ReLURule
	reluSet    bool
	eigen, aug bool
	n          int // TopChannels, Samples, Steps
	size       int
	batch      int
	display    []int
	kernel     KernelOptions
	kstyle     KernelStyle
	feature    FeatureOptions
	fstyle     FeatureStyle
	smooth     attr.SmoothGradOptions
	ig         attr.IGOptions
	actmax     actmax.Options
	dream      actmax.DreamOptions
}

func (s *settings) has(name string) bool { return slices.Contains(s.names, name) }

// collect applies opts and checks that each is one fn takes.
func collect(fn string, opts []Option, allowed ...string) (*settings, error) {
	s := &settings{}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%s: nil option", fn)
		}
		o.applyOption(s)
	}
	seen := map[string]bool{}
	for _, n := range s.names {
		if !slices.Contains(allowed, n) {
			return nil, fmt.Errorf("%s does not take the option %s (it takes: %s)", fn, n, strings.Join(allowed, ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("%s: option %s given twice", fn, n)
		}
		seen[n] = true
	}
	if s.has("Guided") && s.has("Deconv") {
		return nil, fmt.Errorf("%s: Guided and Deconv exclude each other", fn)
	}
	if s.has("ForClass") && s.has("ForTarget") {
		return nil, fmt.Errorf("%s: ForClass and ForTarget exclude each other", fn)
	}
	return s, nil
}

func (s *settings) context() context.Context { return contextOr(s.ctx) }

// progressFor returns the callback for a long call: the user's, or a
// notebook progress bar (created lazily on the first report), or nil.
func (s *settings) progressFor(task string) func(Progress) {
	t0 := time.Now()
	user := s.progress
	if user == nil && notebook == nil {
		return nil
	}
	var bar func(Progress)
	return func(p Progress) {
		if p.Task == "" {
			p.Task = task
		}
		p.Elapsed = time.Since(t0)
		if user != nil {
			user(p)
			return
		}
		if bar == nil {
			bar = notebook.Progress(task)
		}
		bar(p)
	}
}

// WithContext makes a long call cancellable (Open's download, Score-CAM,
// SmoothGrad, activation maximisation, …). Default: context.Background().
func WithContext(ctx context.Context) Option {
	return opt("WithContext", func(s *settings) { s.ctx = ctx })
}

// WithProgress receives the progress of a long call instead of the
// notebook's progress bar.
func WithProgress(f func(Progress)) Option {
	return opt("WithProgress", func(s *settings) { s.progress = f })
}

// Arch names the architecture for Open("random") or checks a weight file's.
func Arch(name string) Option { return opt("Arch", func(s *settings) { s.arch = name }) }

// Seed seeds random weights (Open, when no pretrained ones are used).
func Seed(seed uint64) Option { return opt("Seed", func(s *settings) { s.seed = seed }) }

// Offline makes Open use cached weights only (no download).
func Offline() Option { return opt("Offline", func(s *settings) { s.offline = true }) }

// Backend chooses the GoMLX backend ("go", "xla:cpu", "xla:cuda"); default
// $GOMLX_BACKEND, else "go".
func Backend(name string) Option { return opt("Backend", func(s *settings) { s.backend = name }) }

// Quiet stops Open from showing the random-weights banner in a notebook.
func Quiet() Option { return opt("Quiet", func(s *settings) { s.quiet = true }) }

// Preprocessing sets how pictures become the network's input (default
// imageio.DefaultImageNet()).
func Preprocessing(p imageio.Preprocess) Option {
	return opt("Preprocessing", func(s *settings) { s.preprocess = &p })
}

// ClassNames names the model's classes (one per output).
func ClassNames(names []string) Option {
	return opt("ClassNames", func(s *settings) { s.labels = slices.Clone(names) })
}

// AtLayer picks the layer(s) of a CAM or Guided Grad-CAM, by module name
// ("features.20", "layer4"); with several, their maps are averaged.
func AtLayer(names ...string) Option {
	return opt("AtLayer", func(s *settings) { s.layers = slices.Clone(names) })
}

// ForClass explains the logit of class c (one value for all examples).
func ForClass(c int) Option {
	return opt("ForClass", func(s *settings) { t := engine.Class(c); s.target = &t })
}

// ForTarget explains any Target (engine.Class, engine.SoftmaxOf, engine.ChannelMean, a function).
func ForTarget(t Target) Option {
	return opt("ForTarget", func(s *settings) { s.target = &t })
}

// Guided makes gradients use guided backpropagation's ReLU rule.
func Guided() Option {
	return opt("Guided", func(s *settings) { s.relu, s.reluSet = models.ReLUGuided, true })
}

// Deconv makes gradients use the deconvnet ReLU rule.
func Deconv() Option {
	return opt("Deconv", func(s *settings) { s.relu, s.reluSet = models.ReLUDeconv, true })
}

// EigenSmooth replaces a CAM's weighted sum by its first principal component.
func EigenSmooth() Option { return opt("EigenSmooth", func(s *settings) { s.eigen = true }) }

// AugSmooth averages a CAM over 6 flipped and brightness-scaled copies.
func AugSmooth() Option { return opt("AugSmooth", func(s *settings) { s.aug = true }) }

// TopChannels shows the n channels with the largest mean activation (FeatureMaps).
func TopChannels(n int) Option { return opt("TopChannels", func(s *settings) { s.n = n }) }

// Samples sets SmoothGrad's number of noisy copies.
func Samples(n int) Option { return opt("Samples", func(s *settings) { s.n = n }) }

// Steps sets the iterations of Integrated Gradients (path points),
// activation maximisation and DeepDream (steps per octave).
func Steps(n int) Option { return opt("Steps", func(s *settings) { s.n = n }) }

// BatchSize sets how many inputs go through the network per execution in
// methods that run many (Score-CAM's masked copies, Ablation-CAM's ablated
// channels); memory grows linearly with it. Default: the method's.
func BatchSize(n int) Option { return opt("BatchSize", func(s *settings) { s.batch = n }) }

// DisplayChannels picks the input channels drawn for a multi-channel model
// (Saliency, GuidedGradCAM, SmoothGrad, IntegratedGradients, ActMaxOf,
// DeepDream; LoadArray and ImageFromArray: the picture overlays are drawn
// on): one channel (drawn in gray) or three (drawn as red, green,
// blue), e.g. DisplayChannels(3, 2, 1) for a 4-channel input's channels 3, 2,
// 1. Default: the first three (channel 0 in gray for 1- and 2-channel
// inputs). A channel outside the input is an error naming it and the count.
func DisplayChannels(channels ...int) Option {
	return opt("DisplayChannels", func(s *settings) { s.display = slices.Clone(channels) })
}

// Size sets the side of activation maximisation's pictures, in pixels.
func Size(px int) Option { return opt("Size", func(s *settings) { s.size = px }) }

func (o KernelOptions) applyOption(s *settings) {
	s.names = append(s.names, "KernelOptions")
	s.kernel = o
}

func (o KernelStyle) applyOption(s *settings) {
	s.names = append(s.names, "KernelStyle")
	s.kstyle = o
}

func (o FeatureOptions) applyOption(s *settings) {
	s.names = append(s.names, "FeatureOptions")
	s.feature = o
}

func (o FeatureStyle) applyOption(s *settings) {
	s.names = append(s.names, "FeatureStyle")
	s.fstyle = o
}

// WithSmoothGradOptions gives SmoothGrad a whole attr.SmoothGradOptions
// (noise level, seed, batch size, …); Samples, Guided, ForClass and
// WithProgress given alongside override its fields.
func WithSmoothGradOptions(o attr.SmoothGradOptions) Option {
	return opt("WithSmoothGradOptions", func(s *settings) { s.smooth = o })
}

// WithIGOptions gives IntegratedGradients a whole attr.IGOptions (baseline,
// integration rule, batch size, …); Steps, ForClass and WithProgress given
// alongside override its fields.
func WithIGOptions(o attr.IGOptions) Option {
	return opt("WithIGOptions", func(s *settings) { s.ig = o })
}

// WithActMax passes a whole actmax.Options value to ActMaxOf (its zero
// fields take the façade's defaults).
func WithActMax(o actmax.Options) Option {
	return opt("WithActMax", func(s *settings) { s.actmax = o })
}

// WithDeepDream passes a whole actmax.DreamOptions value to DeepDream (its
// zero fields take the façade's defaults; Layer is DeepDream's argument).
func WithDeepDream(o actmax.DreamOptions) Option {
	return opt("WithDeepDream", func(s *settings) { s.dream = o })
}

// Notebook is how the façade shows things while it works (the random-weights
// banner, download and progress bars). Package vizkit/nb installs one when
// the program runs in a GoNB kernel; elsewhere there is none and nothing is
// shown.
type Notebook interface {
	// Display shows an HTML fragment in the running cell.
	Display(html string)
	// Progress starts a progress bar for task and returns its update function.
	Progress(task string) func(Progress)
	// Download returns a callback for download progress in bytes.
	Download(task string) func(done, total int64)
}

var notebook Notebook

// SetNotebook installs the notebook display (nil removes it). Package
// vizkit/nb calls it; tests may too.
func SetNotebook(n Notebook) { notebook = n }

// PrintProgress reports progress as text lines on w (for scripts and tests):
// WithProgress(PrintProgress(os.Stderr)).
func PrintProgress(w io.Writer) func(Progress) {
	return func(p Progress) {
		fmt.Fprintf(w, "%s: %d/%d (%.1f s)\n", p.Task, p.Done, p.Total, p.Elapsed.Seconds())
	}
}
