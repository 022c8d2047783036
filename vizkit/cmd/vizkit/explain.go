package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/npy"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// runCtx is what a visualization method sees: the loaded model, the input,
// the resolved target and helpers that write PNG/.npy files and add report
// sections. The views live in method_*.go files and register themselves;
// the attribution methods are the engine's registered ones (attribution.go).
type runCtx struct {
	Ctx context.Context
	Ex  *engine.Explainer
	Net models.Network
	// Input is the normalised input (1,C,H,W); Image the same input for display (H×W).
	Input *vizkit.Array
	Image image.Image
	// Mean and Std are the normalisation used, one value per input channel (to
	// undo it for display; the "black" baseline of ig).
	Mean, Std []float32
	// Display are the input channels drawn (--display-channels; empty: the
	// first three, or channel 0 in gray for 1- and 2-channel inputs).
	Display []int
	// Class is the target class (--class, else the top-1 prediction).
	Class  int
	Target vizkit.Target
	// Layers are the --layer values; empty means each method's default.
	Layers []string
	// EigenSmooth and AugSmooth are the CAM smoothing options (--eigen-smooth, --aug-smooth).
	EigenSmooth, AugSmooth bool
	// OutDir is where files go; NPY says whether raw arrays are written.
	OutDir string
	NPY    bool
	Report *render.HTML
	// Label names a class ("281 tabby" for ImageNet models, "class 3" otherwise).
	Label func(int) string
	Log   io.Writer
}

// norm is the input normalisation as a engine.Normalization.
func (c *runCtx) norm() engine.Normalization {
	return engine.Normalization{Mean: c.Mean, Std: c.Std}
}

// SavePNG writes OutDir/name.png.
func (c *runCtx) SavePNG(name string, img image.Image) error {
	return render.WritePNG(filepath.Join(c.OutDir, fileName(name)+".png"), img)
}

// fileName makes a module name safe as a file name: torchvision module
// paths ("layer4.1") are kept as they are; other characters than letters,
// digits, '.', '_' and '-' (the '/' of ONNX value names) become '_'.
func fileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, name)
}

// SaveNPY writes OutDir/name.npy when --npy is set.
func (c *runCtx) SaveNPY(name string, a *vizkit.Array) error {
	if !c.NPY {
		return nil
	}
	return npy.WriteFile(filepath.Join(c.OutDir, fileName(name)+".npy"), a.Shape, a.Data)
}

// method is one --methods entry: an attribution method (Engine set: a
// method registered with package engine, see attribution.go) or a view that
// is not an attribution (features, kernels, actmax, deepdream, camcompare).
type method struct {
	Name, Help string
	// Run computes the visualization, writes its files and adds a report section.
	Run func(c *runCtx) error
	// Engine is the registered engine method an attribution method runs
	// (Name itself, or the engine's name for an alias such as guided);
	// empty for the views.
	Engine string
}

// methodRegistry holds the views, registered at init by the method_*.go
// files; the attribution methods come from the engine's registry when
// --methods is resolved (cliMethods), so a method registered at any time is
// offered.
var methodRegistry = map[string]*method{}

func register(m *method) { methodRegistry[m.Name] = m }

// cliMethods returns every CLI method by name: the views and the
// attribution methods (attributionMethods; a view keeps its name if an
// engine method has the same one).
func cliMethods() map[string]*method {
	all := attributionMethods(methodRegistry)
	for name, m := range methodRegistry {
		all[name] = m
	}
	return all
}

func methodNames() []string {
	return slices.Sorted(maps.Keys(cliMethods()))
}

func listMethods(w io.Writer) {
	all := cliMethods()
	for _, n := range slices.Sorted(maps.Keys(all)) {
		fmt.Fprintf(w, "%-20s %s\n", n, all[n].Help)
	}
}

// modelFlags are shared by explain and layers.
type modelFlags struct {
	model, weightsSpec, backendCfg string
	randomInit                     seedFlag
	randomReason                   string
	numClasses                     int
	offline                        bool
}

// seedFlag is an optional non-negative seed (--random-init).
type seedFlag struct {
	set  bool
	seed uint64
}

func (s *seedFlag) String() string {
	if s == nil || !s.set {
		return ""
	}
	return strconv.FormatUint(s.seed, 10)
}

func (s *seedFlag) Set(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a seed ≥ 0, got %q", v)
	}
	s.set, s.seed = true, uint64(n)
	return nil
}

func (mf *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&mf.model, "model", "", "architecture: "+strings.Join(zoo.Archs(), ", ")+" (default vgg11; with --weights FILE the architecture is read from the file, and --model, if given, must match it)")
	fs.StringVar(&mf.weightsSpec, "weights", "", "weights: a .safetensors or torchvision .pth file, an .onnx model, hub:ORG/REPO (e.g. hub:timm/vgg11.tv_in1k) from the Hugging Face hub, or \"auto\": the model's pretrained ImageNet weights (Hugging Face hub or PyTorch's checkpoint cache) when cached or downloadable, else random weights (seed --random-init, default 0) with a warning")
	fs.Var(&mf.randomInit, "random-init", "use random weights with this seed (≥ 0) instead of --weights (offline; pictures show mechanics, not meaning)")
	fs.IntVar(&mf.numClasses, "num-classes", 1000, "number of classes for --random-init")
	fs.StringVar(&mf.backendCfg, "backend", "", `GoMLX backend: "go" (pure Go, default), "xla:cpu" or "xla:cuda" (default $GOMLX_BACKEND or "go")`)
	fs.BoolVar(&mf.offline, "offline", false, "never download: use the Hugging Face and PyTorch caches only (also HF_HUB_OFFLINE=1)")
}

// load returns the model and whether it has random weights (with the reason
// in mf.randomReason when --weights auto fell back to them).
func (mf *modelFlags) load(ctx context.Context, log io.Writer) (models.Network, bool, error) {
	arch := mf.model
	if arch == "" && (mf.weightsSpec == "auto" || mf.weightsSpec == "") {
		arch = "vgg11"
	}
	if arch != "" {
		if _, err := zoo.Lookup(arch); err != nil {
			return nil, false, fmt.Errorf("--model: %w", err)
		}
	}
	if mf.numClasses < 1 {
		return nil, false, fmt.Errorf("--num-classes must be at least 1, got %d", mf.numClasses)
	}
	opts := zoo.Options{Hub: weights.HubOptions{Offline: mf.offline, Progress: log}, NumClasses: mf.numClasses, Seed: mf.randomInit.seed}
	if mf.weightsSpec == "auto" {
		net, info, err := zoo.Open(ctx, "auto", arch, opts)
		if err != nil {
			return nil, false, err
		}
		if info.Random {
			mf.randomInit.set = true
			mf.randomReason = info.Reason
			fmt.Fprintf(log, "vizkit: WARNING: %s; using random weights (seed %d)\n", info.Reason, mf.randomInit.seed)
		}
		return net, info.Random, nil
	}
	switch {
	case mf.weightsSpec != "" && mf.randomInit.set:
		return nil, false, errors.New("give either --weights or --random-init, not both")
	case mf.weightsSpec == "" && !mf.randomInit.set:
		return nil, false, fmt.Errorf("no weights: give --weights FILE (.safetensors/.pth/.onnx), --weights hub:ORG/REPO, --weights auto, or --random-init SEED for random weights of --model (default %s)", arch)
	case mf.randomInit.set:
		net, err := zoo.Random(arch, opts)
		return net, true, err
	}
	net, info, err := zoo.Open(ctx, mf.weightsSpec, mf.model, opts)
	if err != nil {
		return nil, false, err
	}
	for _, w := range info.Warnings {
		fmt.Fprintf(log, "vizkit: WARNING: %s\n", w)
	}
	return net, false, nil
}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if wantsDataset(args) { // several images, folders, globs, --list, --shard: dataset.go
		return runDataset(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { explainUsage(fs, stderr) }
	var mf modelFlags
	mf.register(fs)
	imagePath := fs.String("image", "", "input image (PNG, JPEG, GIF, WebP, BMP); preprocessed as torchvision's Resize(256)+CenterCrop(224)+Normalize(ImageNet) (grayscale for 1-channel models, the graph's own size for fixed-size ONNX models, --mean/--std)")
	inputNPY := fs.String("input-npy", "", "input as an already normalised float32 .npy of shape (C,H,W) or (1,C,H,W), C the model's input channel count (bypasses image preprocessing; --mean/--std then only say how to draw it)")
	class := fs.Int("class", -1, "target class index (default: the top-1 prediction)")
	targetKind := fs.String("target", "class", "what to explain: class (the logit of --class or the top-1 class), softmax (its probability), positive / negative (a single-logit binary head: the logit or its negation), value / increase / decrease (regression output --output: its value, what raises it, what lowers it), similarity (cosine similarity of an embedding head with --reference), classes (the sum of the logits of --classes)")
	outputIdx := fs.Int("output", 0, "--target value|increase|decrease: which output unit to explain")
	referenceNPY := fs.String("reference", "", "--target similarity: a float32 .npy with the reference embedding (D,)")
	meanFlag := fs.String("mean", "", "per-channel normalisation mean, comma-separated (1 value or one per input channel; default ImageNet's for RGB models, 0 for others; \"none\" for 0): applied to --image, used to draw --input-npy")
	stdFlag := fs.String("std", "", "per-channel normalisation standard deviation (1 value or one per channel; default ImageNet's for RGB models, 1 for others; \"none\" for 1)")
	displayFlag := fs.String("display-channels", "", displayChannelsHelp)
	classSet := fs.String("classes", "", "--target classes: comma-separated class indices whose logits are summed")
	layers := fs.String("layer", "", "comma-separated layer names for the methods (default: each method's own, e.g. the last conv block for CAMs)")
	methodsFlag := fs.String("methods", "features,kernels,gradcam,saliency", "comma-separated methods (see `vizkit methods`)")
	outDir := fs.String("out", "", "output folder: created, or replaced when it holds a previous vizkit result (manifest.json); any other non-empty folder is refused. Written atomically: files go to a staging folder next to it, manifest.json last")
	writeNPY := fs.Bool("npy", false, "also write raw float32 arrays as .npy")
	eigenSmooth := fs.Bool("eigen-smooth", false, "CAM methods: replace the weighted activations by their first principal component (pytorch-grad-cam's eigen_smooth)")
	augSmooth := fs.Bool("aug-smooth", false, "CAM methods: average over horizontal flips × brightness 0.9/1.0/1.1 (pytorch-grad-cam's aug_smooth; 6× slower)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *outDir == "" {
		return errors.New("--out DIR is required")
	}
	if (*imagePath == "") == (*inputNPY == "") {
		return errors.New("give exactly one of --image FILE and --input-npy FILE")
	}
	chosen, err := parseMethods(*methodsFlag)
	if err != nil {
		return err
	}
	// Validate everything before creating anything (see output.go).
	if err := checkOutDir(*outDir); err != nil {
		return err
	}

	start := time.Now()
	net, random, err := mf.load(ctx, stderr)
	if err != nil {
		return err
	}
	defer net.Close()
	b, err := backend.New(mf.backendCfg)
	if err != nil {
		return err
	}
	ex, err := engine.NewExplainer(net, engine.Options{BackendInstance: b})
	if err != nil {
		return err
	}
	defer ex.Close()

	prep, err := newInputPrep(net, *meanFlag, *stdFlag, *displayFlag)
	if err != nil {
		return err
	}
	c := &runCtx{Ctx: ctx, Ex: ex, Net: net, NPY: *writeNPY, Report: render.NewHTML(), Log: stderr,
		EigenSmooth: *eigenSmooth, AugSmooth: *augSmooth, Mean: prep.mean, Std: prep.std, Display: prep.display}
	if *layers != "" {
		for _, l := range strings.Split(*layers, ",") {
			l = strings.TrimSpace(l)
			if _, err := ex.Layer(l); err != nil {
				return fmt.Errorf("--layer: %w", err)
			}
			c.Layers = append(c.Layers, l)
		}
	}
	inputDesc := ""
	if *imagePath != "" {
		img, err := imageio.Load(*imagePath)
		if err != nil {
			return err
		}
		in, err := prep.apply(img)
		if err != nil {
			return fmt.Errorf("%s: %w", *imagePath, err)
		}
		c.Input = &vizkit.Array{Shape: []int{1, in.C, in.H, in.W}, Data: in.Data}
		c.Image = in.Image
		inputDesc = fmt.Sprintf("%s (%d×%d, %s)", filepath.Base(*imagePath), img.Bounds().Dx(), img.Bounds().Dy(), prep.describe())
	} else {
		shape, data, err := npy.ReadFile(*inputNPY)
		if err != nil {
			return err
		}
		if c.Input, err = vizkit.InputArray(net, "--input-npy "+*inputNPY, shape, data); err != nil {
			return err
		}
		if c.Image, err = vizkit.InputImage(c.Input, 0, c.norm(), c.Display); err != nil {
			return err
		}
		shape = c.Input.Shape
		inputDesc = fmt.Sprintf("%s (%d×%d, %d channel(s), already normalised)", filepath.Base(*inputNPY), shape[3], shape[2], shape[1])
	}
	c.Label = func(i int) string {
		if net.NumClasses() == imageio.NumImageNetClasses {
			return imageio.Label(i)
		}
		return fmt.Sprintf("class %d", i)
	}

	res, err := ex.Run(c.Input, engine.Request{Target: engine.Predicted()})
	if err != nil {
		return err
	}
	logits := res.Logits.Index(0)
	c.Class = res.Classes[0]
	if *class >= 0 || *class < -1 {
		if err := imageio.CheckClass(*class, net.NumClasses()); err != nil {
			return fmt.Errorf("--class: %w", err)
		}
		c.Class = *class
	}
	c.Target = engine.Class(c.Class)
	targetDesc := ""
	if t, desc, err := parseTarget(*targetKind, c.Class, *outputIdx, *referenceNPY, *classSet); err != nil {
		return err
	} else if desc != "" {
		c.Target, targetDesc = t, desc
		if _, err := ex.Run(c.Input, engine.Request{Target: t}); err != nil {
			return fmt.Errorf("--target %s: %w", *targetKind, err)
		}
	}
	out, err := stageOut(*outDir)
	if err != nil {
		return err
	}
	defer out.Abort()
	c.OutDir = out.stage
	if err := c.SaveNPY("logits", logits); err != nil {
		return err
	}
	if err := c.SavePNG("input", c.Image); err != nil {
		return err
	}

	r := c.Report
	r.Heading(1, "cnnviz report")
	if random {
		why := ""
		if mf.randomReason != "" {
			why = " — " + mf.randomReason
		}
		r.Warning(fmt.Sprintf("Random weights (seed %d)%s: this network was never trained. The pictures show how each method works, not what a trained network sees. Pass --weights to explain a real model.", mf.randomInit.seed, why))
	}
	r.Paragraph(fmt.Sprintf("Model %s (%d layers, %s parameters) from %s, backend %s. Input %s.",
		net.Arch(), len(net.Layers()), humanCount(models.NumParams(net)), sourceOr(net, mf), b.Name(), inputDesc))
	probs := softmax(logits.Data)
	var rows [][]string
	for i, cs := range engine.TopClasses(logits.Data, 5) {
		rows = append(rows, []string{strconv.Itoa(i + 1), c.Label(cs.Class), fmt.Sprintf("%.4g", cs.Score), fmt.Sprintf("%.2f%%", 100*probs[cs.Class])})
	}
	r.Figure([]render.FigureItem{{Image: c.Image, Caption: "input", WidthPx: 224}}, render.FigureOptions{})
	r.Heading(2, "Top-5 classes")
	r.Table([]string{"rank", "class", "logit", "probability"}, rows)
	if targetDesc != "" {
		r.Paragraph(fmt.Sprintf("Target of the explanations: %s (--target %s).", targetDesc, *targetKind))
	} else {
		r.Paragraph(fmt.Sprintf("Target class for the explanations: %s%s.", c.Label(c.Class), map[bool]string{true: " (chosen with --class)", false: " (the top-1 prediction)"}[*class >= 0]))
	}
	fmt.Fprintf(stderr, "vizkit: %s on %s, top-1 %s; target %s\n", net.Arch(), inputDesc, c.Label(res.Classes[0]), c.Label(c.Class))

	for _, m := range chosen {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := m.Run(c); err != nil {
			return fmt.Errorf("method %s: %w", m.Name, err)
		}
		fmt.Fprintf(stderr, "vizkit: %s done in %.2fs\n", m.Name, time.Since(t0).Seconds())
	}
	r.Paragraph(fmt.Sprintf("Made by cnnviz in %.1fs.", time.Since(start).Seconds()))
	if err := r.Err(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.OutDir, "index.html"), []byte(r.Page("cnnviz: "+net.Arch()+" on "+filepath.Base(*imagePath+*inputNPY))), 0o644); err != nil {
		return err
	}
	names := make([]string, len(chosen))
	for i, m := range chosen {
		names[i] = m.Name
	}
	if err := out.Commit(manifest{Command: "explain", Input: *imagePath + *inputNPY, Model: net.Arch(),
		Weights: sourceOr(net, mf), Methods: names, Class: c.Class}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", filepath.Join(*outDir, "index.html"))
	return nil
}

// parseMethods resolves --methods: a comma-separated list of at least one
// known method, each at most once.
func parseMethods(list string) ([]*method, error) {
	var chosen []*method
	seen := map[string]bool{}
	engineSeen := map[string]string{}
	all := cliMethods()
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		m, ok := all[name]
		if !ok {
			return nil, fmt.Errorf("unknown method %q; known: %s", name, strings.Join(methodNames(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("--methods: %q is given twice", name)
		}
		if other, dup := engineSeen[m.Engine]; dup && m.Engine != "" {
			return nil, fmt.Errorf("--methods: %q and %q are the same method (%s)", other, name, m.Engine)
		}
		seen[name] = true
		if m.Engine != "" {
			engineSeen[m.Engine] = name
		}
		chosen = append(chosen, m)
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("--methods %q names no method; give at least one of: %s", list, strings.Join(methodNames(), ", "))
	}
	return chosen, nil
}

func runLayers(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("layers", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	size := fs.Int("size", 224, "input height and width for the output shapes (default 224, or the size an ONNX model was exported at)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 1 || *size > 4096 {
		return fmt.Errorf("--size must be between 1 and 4096, got %d", *size)
	}
	if mf.weightsSpec == "" && !mf.randomInit.set {
		mf.randomInit.set = true
	}
	net, _, err := mf.load(ctx, os.Stderr)
	if err != nil {
		return err
	}
	defer net.Close()
	fmt.Fprintf(stdout, "%s from %s: %s parameters\n", net.Arch(), sourceOr(net, mf), humanCount(models.NumParams(net)))
	w := 14
	for _, l := range net.Layers() {
		w = max(w, len(l.Name)+2*strings.Count(l.Name, "."))
	}
	// Output shapes for a --size input, from one trace of the graph.
	dims := map[string][]int{}
	in := []int{1, models.InputChannels(net), *size, *size}
	if h, w, ok := models.ReferenceSize(net); ok && !sizeSet(fs) {
		in[2], in[3] = h, w
	}
	if err := net.CheckInput(in); err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	calls, err := models.Trace(net, in)
	if err != nil {
		return err
	}
	for _, c := range calls {
		if d := c.Dims; len(d) == 4 {
			dims[c.Path] = []int{d[3], d[1], d[2]}
		} else if len(d) == 2 {
			dims[c.Path] = []int{d[1]}
		}
	}
	fmt.Fprintf(stdout, "%-*s %-20s %-18s %12s\n", w, "module", "kind", "output", "parameters")
	for _, l := range net.Layers() {
		if d, ok := dims[l.Name]; ok {
			l.Dims = d
		}
		depth := strings.Count(l.Name, ".")
		if strings.Contains(l.Name, "/") || strings.HasPrefix(net.Arch(), "vgg") {
			depth = 0 // torchvision's VGG is flat: features.N, classifier.N.
		}
		name := strings.Repeat("  ", depth) + l.Name
		out := fmt.Sprint(l.Out)
		if l.Dims != nil {
			out = strings.Trim(strings.ReplaceAll(fmt.Sprint(l.Dims), " ", "×"), "[]")
		}
		calls := ""
		if l.Calls > 1 {
			calls = fmt.Sprintf(" (×%d)", l.Calls)
		}
		fmt.Fprintf(stdout, "%-*s %-20s %-18s %12d\n", w, name, string(l.Kind)+calls, out, l.Params)
	}
	return nil
}

// parseNorm parses --mean and --std for a model with ch input channels: one
// value for all channels or one per channel; empty means ImageNet's for
// 3-channel models and none (0, 1) otherwise; "none" means 0 and 1.
func parseNorm(meanS, stdS string, ch int) (mean, std []float32, err error) {
	parse := func(flag, v string, def3 [3]float32, none float32) ([]float32, error) {
		out := make([]float32, ch)
		switch v = strings.TrimSpace(v); {
		case v == "" && ch == 3:
			copy(out, def3[:])
			return out, nil
		case v == "" || v == "none":
			for i := range out {
				out[i] = none
			}
			return out, nil
		}
		parts := strings.Split(v, ",")
		if len(parts) != 1 && len(parts) != ch {
			return nil, fmt.Errorf("--%s: %d values for a model with %d input channel(s); give 1 or %d", flag, len(parts), ch, ch)
		}
		for i := range out {
			p := strings.TrimSpace(parts[min(i, len(parts)-1)])
			f, err := strconv.ParseFloat(p, 32)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("--%s: %q is not a finite number", flag, p)
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	if mean, err = parse("mean", meanS, imageio.ImageNetMean, 0); err != nil {
		return nil, nil, err
	}
	if std, err = parse("std", stdS, imageio.ImageNetStd, 1); err != nil {
		return nil, nil, err
	}
	for i, v := range std {
		if !(v > 0) {
			return nil, nil, fmt.Errorf("--std: channel %d has standard deviation %v; it must be positive", i, v)
		}
	}
	return mean, std, nil
}

// displayChannelsHelp documents --display-channels (explain and data sets).
const displayChannelsHelp = "input channels drawn for the input and per-channel attributions, comma-separated: 3 (as red, green, blue, e.g. 3,2,1) or 1 (gray); default the first three (channel 0 in gray for 1- and 2-channel models); each must be below the model's input channel count"

// inputPrep turns pictures into a model's input, the same way for a single
// image and for data sets: torchvision's Resize(256)+CenterCrop(224) (the
// graph's own size, in the same 256:224 proportion, for fixed-size ONNX
// graphs), then RGB normalised by --mean/--std for 3-channel models, or
// grayscale (PIL's "L") normalised by their single value for 1-channel
// models. Other channel counts take .npy inputs only.
type inputPrep struct {
	ch        int
	pre       imageio.Preprocess // without normalisation for 1-channel models
	mean, std []float32          // one per input channel
	display   []int              // resolved --display-channels
}

// newInputPrep reads --mean, --std and --display-channels for net.
func newInputPrep(net models.Network, meanS, stdS, displayS string) (*inputPrep, error) {
	p := &inputPrep{ch: models.InputChannels(net), pre: imageio.DefaultImageNet()}
	var err error
	if p.mean, p.std, err = parseNorm(meanS, stdS, p.ch); err != nil {
		return nil, err
	}
	var sel []int
	for _, f := range strings.Split(displayS, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--display-channels: %q is not a channel index", f)
		}
		sel = append(sel, k)
	}
	if p.display, err = vizkit.CheckDisplayChannels(sel, p.ch); err != nil {
		return nil, fmt.Errorf("--display-channels: %w (model %s)", err, net.Arch())
	}
	if h, w, ok := models.ReferenceSize(net); ok && (h != 224 || w != 224) {
		// A model made for another input size: resize the short side in
		// torchvision's 256:224 proportion and centre-crop to that size.
		p.pre.ResizeShort = (max(h, w)*256 + 112) / 224
		p.pre.CropH, p.pre.CropW = h, w
	}
	if p.ch == 3 {
		copy(p.pre.Mean[:], p.mean)
		copy(p.pre.Std[:], p.std)
	} else {
		p.pre.Mean, p.pre.Std = [3]float32{}, [3]float32{}
	}
	return p, nil
}

// pictures reports whether the model's input can be made from a picture.
func (p *inputPrep) pictures() error {
	if p.ch != 3 && p.ch != 1 {
		return fmt.Errorf("the model takes %d input channels; images give 1 (grayscale) or 3 (RGB): pass a normalised (%d,H,W) array with --input-npy", p.ch, p.ch)
	}
	return nil
}

// apply preprocesses a decoded picture: (C,H,W) normalised values and the
// resized, cropped RGB picture.
func (p *inputPrep) apply(img image.Image) (*imageio.Input, error) {
	if err := p.pictures(); err != nil {
		return nil, err
	}
	in, err := p.pre.Apply(img)
	if err != nil {
		return nil, err
	}
	if p.ch == 1 {
		return imageio.Gray(in, p.mean[0], p.std[0])
	}
	return in, nil
}

// describe says what apply does, for reports.
func (p *inputPrep) describe() string {
	s := fmt.Sprintf("resized to %d and centre-cropped to %d×%d", p.pre.ResizeShort, p.pre.CropW, p.pre.CropH)
	if p.ch == 1 {
		s += ", grayscale"
	}
	return s
}

// parseTarget turns --target and its companion flags into a vizkit.Target;
// desc is "" for the default (the class logit).
func parseTarget(kind string, class, output int, referenceNPY, classes string) (vizkit.Target, string, error) {
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case "", "class", "logit":
		return vizkit.Target{}, "", nil
	case "softmax":
		t := engine.SoftmaxOf(class)
		return t, t.String(), nil
	case "positive", "negative":
		t := engine.BinaryTarget(kind == "positive")
		return t, t.Name, nil
	case "value", "increase", "decrease":
		if output < 0 {
			return vizkit.Target{}, "", fmt.Errorf("--output must be ≥ 0, got %d", output)
		}
		mode := map[string]engine.RegressionMode{"value": engine.RegressionValue, "increase": engine.RegressionIncrease, "decrease": engine.RegressionDecrease}[kind]
		t := engine.RegressionTarget(output, mode)
		return t, t.Name, nil
	case "similarity":
		if referenceNPY == "" {
			return vizkit.Target{}, "", errors.New("--target similarity needs --reference FILE.npy (the reference embedding, float32, shape (D,) or (1,D))")
		}
		shape, data, err := npy.ReadFile(referenceNPY)
		if err != nil {
			return vizkit.Target{}, "", fmt.Errorf("--reference: %w", err)
		}
		if len(shape) == 2 && shape[0] == 1 {
			shape = shape[1:]
		}
		if len(shape) != 1 {
			return vizkit.Target{}, "", fmt.Errorf("--reference %s: shape %v, want (D,) or (1,D)", referenceNPY, shape)
		}
		t := engine.SimilarityTarget(data)
		return t, t.Name, nil
	case "classes":
		var cs []int
		for _, f := range strings.Split(classes, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil {
				return vizkit.Target{}, "", fmt.Errorf("--classes: %q is not a class index", f)
			}
			cs = append(cs, n)
		}
		if len(cs) == 0 {
			return vizkit.Target{}, "", errors.New("--target classes needs --classes, e.g. --classes 151,152,153")
		}
		t := engine.ClassSetTarget(cs...)
		return t, t.Name, nil
	}
	return vizkit.Target{}, "", fmt.Errorf("unknown --target %q; known: class, softmax, positive, negative, value, increase, decrease, similarity, classes", kind)
}

// sizeSet reports whether --size was given.
func sizeSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "size" })
	return set
}

// sourceOr describes where net's weights came from.
func sourceOr(net models.Network, mf modelFlags) string {
	if s := models.SourceOf(net); s != "" {
		return s
	}
	if mf.randomInit.set {
		return fmt.Sprintf("random weights (seed %d)", mf.randomInit.seed)
	}
	return mf.weightsSpec
}

func runInstallXLA(args []string) error {
	platform := "cpu"
	if len(args) > 0 {
		platform = args[0]
	}
	if platform != "cpu" && platform != "cuda" {
		return fmt.Errorf("install-xla: platform %q, want cpu or cuda", platform)
	}
	return backend.InstallXLA(platform)
}

func softmax(x []float32) []float64 {
	mx := float64(x[0])
	for _, v := range x {
		mx = max(mx, float64(v))
	}
	out := make([]float64, len(x))
	s := 0.0
	for i, v := range x {
		out[i] = math.Exp(float64(v) - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func humanCount(n int) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.Itoa(n)
}
