// Package zoo is the registry of every architecture cnnviz builds: names,
// where pretrained weights come from (the Hugging Face hub where timm
// republishes torchvision's weights, or torchvision's own checkpoint files,
// cached where PyTorch caches them), how to recognise a weight file's family,
// and each family's default CAM module. The CLI, the notebook façade and the
// data-set mode open models only through it.
package zoo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Family is one model family (VGG, ResNet, …): it recognises and loads
// weight sets of its architectures.
type Family struct {
	// Name of the family ("vgg", "resnet").
	Name string
	// Recognise reports whether a weight set (torchvision key names) belongs
	// to this family.
	Recognise func(w *weights.Set) bool
	// Load builds a network from a weight set of this family; the architecture
	// is read from the tensors. arch, if not empty, is the architecture the
	// user named: a weight set of another architecture is an error naming
	// what was found.
	Load func(w *weights.Set, arch string) (models.Network, error)
	// FromTimm converts timm-named weights of this family to torchvision's
	// names (nil when the names agree).
	FromTimm func(w *weights.Set) (*weights.Set, error)
}

// Arch is one named architecture.
type Arch struct {
	// Name as torchvision's constructor ("vgg11", "resnet50", "densenet121").
	Name string
	// Family name (see Family).
	Family string
	// Hub is the Hugging Face repository with torchvision's ImageNet weights
	// ("timm/resnet50.tv_in1k"), or "".
	Hub string
	// URL is torchvision's checkpoint URL, used when Hub is empty; the file
	// name ends in a prefix of the file's SHA-256.
	URL string
	// CAMLayer is the default target module of CAM methods ("layer4").
	CAMLayer string
	// Random builds the architecture with random weights (torchvision's
	// initialisation, seeded) and numClasses outputs.
	Random func(numClasses int, seed uint64) (models.Network, error)
}

var (
	mu       sync.Mutex
	families = map[string]*Family{}
	archs    = map[string]*Arch{}
)

// RegisterFamily adds a family (called from init functions).
func RegisterFamily(f *Family) {
	mu.Lock()
	defer mu.Unlock()
	families[f.Name] = f
}

// RegisterArch adds an architecture (called from init functions).
func RegisterArch(a *Arch) {
	mu.Lock()
	defer mu.Unlock()
	archs[a.Name] = a
	if a.CAMLayer != "" {
		models.RegisterCAMLayer(a.Name, a.CAMLayer)
	}
}

// Archs lists every registered architecture name, sorted.
func Archs() []string {
	mu.Lock()
	defer mu.Unlock()
	out := make([]string, 0, len(archs))
	for n := range archs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns a registered architecture, or an error listing them all.
func Lookup(name string) (*Arch, error) {
	mu.Lock()
	a, ok := archs[strings.ToLower(name)]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown architecture %q; known: %s", name, strings.Join(Archs(), ", "))
	}
	return a, nil
}

// FamilyOf returns the family that recognises w, or an error.
func FamilyOf(w *weights.Set) (*Family, error) {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if families[n].Recognise(w) {
			return families[n], nil
		}
	}
	ex := w.Names()
	if len(ex) > 6 {
		ex = append(ex[:6], "…")
	}
	return nil, fmt.Errorf("weights %s: the tensor names (%s) match none of the known families (%s)", w.Source, strings.Join(ex, ", "), strings.Join(names, ", "))
}

// LoadWeights builds a network from a weight set, recognising its family;
// arch, if not empty, is the architecture the user named and must match.
func LoadWeights(w *weights.Set, arch string) (models.Network, error) {
	if arch != "" {
		a, err := Lookup(arch)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		f := families[a.Family]
		mu.Unlock()
		if !f.Recognise(w) {
			if g, err := FamilyOf(w); err == nil {
				return nil, fmt.Errorf("--model %s but the weights in %s are of the %s family", arch, w.Source, g.Name)
			}
			return nil, fmt.Errorf("--model %s but the weights in %s are not of the %s family", arch, w.Source, a.Family)
		}
		return f.Load(w, a.Name)
	}
	f, err := FamilyOf(w)
	if err != nil {
		return nil, err
	}
	return f.Load(w, "")
}

// Options configures Open.
type Options struct {
	// Hub configures Hugging Face downloads and the cache.
	Hub weights.HubOptions
	// NumClasses for random weights (default 1000).
	NumClasses int
	// Seed for random weights.
	Seed uint64
}

// Pretrained loads arch's ImageNet weights: from the Hugging Face hub
// (cached in the shared hub cache) or torchvision's checkpoint (cached in
// PyTorch's hub checkpoint folder), downloading when missing and allowed.
func Pretrained(ctx context.Context, arch string, o Options) (models.Network, error) {
	a, err := Lookup(arch)
	if err != nil {
		return nil, err
	}
	var w *weights.Set
	switch {
	case a.Hub != "":
		// The cached .safetensors file is mapped, not read (see Open).
		w, err = weights.LoadMapped(ctx, "hub:"+a.Hub, o.Hub)
		if err == nil {
			defer w.Close()
			w, err = fromTimm(a.Family, w)
		}
	case a.URL != "":
		w, err = weights.LoadTorchHub(ctx, a.URL, weights.TorchHubOptions{Offline: o.Hub.Offline, Progress: o.Hub.Progress})
	default:
		err = fmt.Errorf("architecture %s has no published pretrained weights", arch)
	}
	if err != nil {
		return nil, err
	}
	return LoadWeights(w, a.Name)
}

func fromTimm(family string, w *weights.Set) (*weights.Set, error) {
	mu.Lock()
	f := families[family]
	mu.Unlock()
	if f == nil || f.FromTimm == nil {
		return w, nil
	}
	return f.FromTimm(w)
}

// Random builds arch with random weights (o.Seed, o.NumClasses).
func Random(arch string, o Options) (models.Network, error) {
	a, err := Lookup(arch)
	if err != nil {
		return nil, err
	}
	k := o.NumClasses
	if k == 0 {
		k = 1000
	}
	if k < 1 {
		return nil, fmt.Errorf("number of classes must be at least 1, got %d", k)
	}
	return a.Random(k, o.Seed)
}

// PretrainedOrRandom returns the pretrained arch when its weights are cached
// or downloadable, and otherwise a randomly initialised one (o.Seed), with
// random true and reason saying why.
func PretrainedOrRandom(ctx context.Context, arch string, o Options) (net models.Network, random bool, reason string, err error) {
	net, perr := Pretrained(ctx, arch, o)
	if perr == nil {
		return net, false, "", nil
	}
	if ctx.Err() != nil {
		return nil, false, "", ctx.Err()
	}
	if _, lerr := Lookup(arch); lerr != nil {
		return nil, false, "", lerr
	}
	net, err = Random(arch, o)
	if err != nil {
		return nil, false, "", err
	}
	return net, true, fmt.Sprintf("pretrained weights unavailable (%s)", firstLine(perr.Error())), nil
}

// CAMLayer returns the default CAM module of net's architecture, or "" when
// the registry does not know it (the caller then picks the last spatial module).
func CAMLayer(net models.Network) string {
	arch := net.Arch()
	mu.Lock()
	defer mu.Unlock()
	if a, ok := archs[arch]; ok {
		return a.CAMLayer
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// FileLoader opens a model file that is not a weight set (an ONNX graph).
type FileLoader func(path string) (models.Network, error)

var fileLoaders = map[string]FileLoader{}

// RegisterFileLoader makes Open hand files with this extension (".onnx") to load.
func RegisterFileLoader(ext string, load FileLoader) {
	mu.Lock()
	defer mu.Unlock()
	fileLoaders[strings.ToLower(ext)] = load
}

// Info says what Open opened.
type Info struct {
	// Arch is the network's architecture.
	Arch string
	// Random is true when the weights are random (requested, or the pretrained
	// ones were unavailable: Reason says why).
	Random bool
	Reason string
	// Source describes where the weights came from.
	Source string
	// Warnings lists surprising content the loader tolerated (tensors no
	// module reads, integer-typed parameters); the CLI prints each line.
	Warnings []string
}

// warningsOf returns net's load warnings, if it reports any.
func warningsOf(net models.Network) []string {
	if w, ok := net.(interface{ LoadWarnings() []string }); ok {
		return w.LoadWarnings()
	}
	return nil
}

// checkClasses refuses a network without outputs (every family, ONNX
// included): explaining one would fail deep inside the backend.
func checkClasses(net models.Network, source string) error {
	if k := net.NumClasses(); k < 1 {
		net.Close()
		return fmt.Errorf("%s: the model (%s) has %d output classes; a classifier needs at least 1 (check its last layer)", source, net.Arch(), k)
	}
	return nil
}

// Open opens a model the way the CLI's --weights and vizkit.Open take it:
//
//	"auto"                pretrained weights of arch when cached or downloadable, else random (Info.Random, Info.Reason)
//	"random"              random weights of arch (o.Seed, o.NumClasses)
//	FILE.safetensors|.pth a torchvision-named weight file; the architecture is read from it
//	FILE.onnx             an ONNX graph (any registered file loader)
//	hub:ORG/REPO          a Hugging Face repository's weights
//
// arch, if not empty, names the architecture; a weight set of another one is
// an error. With "auto" or "random" and no arch, vgg11.
func Open(ctx context.Context, spec, arch string, o Options) (models.Network, Info, error) {
	switch spec {
	case "auto", "random":
		if arch == "" {
			arch = "vgg11"
		}
		if spec == "random" {
			net, err := Random(arch, o)
			if err != nil {
				return nil, Info{}, err
			}
			return net, Info{Arch: net.Arch(), Random: true, Reason: fmt.Sprintf("random weights requested (seed %d)", o.Seed), Source: "random"}, nil
		}
		net, random, reason, err := PretrainedOrRandom(ctx, arch, o)
		if err != nil {
			return nil, Info{}, err
		}
		src := "pretrained"
		if random {
			src = "random"
		}
		return net, Info{Arch: net.Arch(), Random: random, Reason: reason, Source: src}, nil
	case "":
		return nil, Info{}, fmt.Errorf("no weights: give a weight file (.safetensors, .pth, .onnx), hub:ORG/REPO, \"auto\" or \"random\"")
	}
	mu.Lock()
	var load FileLoader
	for ext, l := range fileLoaders {
		if strings.HasSuffix(strings.ToLower(spec), ext) {
			load = l
		}
	}
	mu.Unlock()
	if load != nil {
		net, err := load(spec)
		if err != nil {
			return nil, Info{}, err
		}
		if arch != "" && !strings.EqualFold(arch, net.Arch()) {
			net.Close()
			return nil, Info{}, fmt.Errorf("--model %s but %s is a %s", arch, spec, net.Arch())
		}
		if err := checkClasses(net, spec); err != nil {
			return nil, Info{}, err
		}
		return net, Info{Arch: net.Arch(), Source: spec, Warnings: warningsOf(net)}, nil
	}
	w, err := weights.LoadMapped(ctx, spec, o.Hub)
	if err != nil {
		return nil, Info{}, err
	}
	// The set is closed once the family has converted its tensors: the
	// mapping of a .safetensors file then stays only for what the model
	// kept of it (its linear weights, weights.Set.Keep), until the model's
	// Close.
	defer w.Close()
	if f, ferr := FamilyOf(w); ferr == nil && f.FromTimm != nil && strings.HasPrefix(spec, "hub:") {
		if w, err = f.FromTimm(w); err != nil {
			return nil, Info{}, err
		}
	}
	net, err := LoadWeights(w, arch)
	if err != nil {
		return nil, Info{}, err
	}
	if err := checkClasses(net, w.Source); err != nil {
		return nil, Info{}, err
	}
	return net, Info{Arch: net.Arch(), Source: w.Source, Warnings: warningsOf(net)}, nil
}
