package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/npy"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// runCtx is what a visualization method sees: the loaded model, the input,
// the resolved target and helpers that write PNG/.npy files and add report
// sections. Methods live in method_*.go files and register themselves.
type runCtx struct {
	Ctx context.Context
	Ex  *vizkit.Explainer
	Net models.Network
	// Input is the normalised input (1,3,H,W); Image the same input for display (H×W).
	Input *vizkit.Array
	Image image.Image
	// Mean and Std are the normalisation used (to undo it for display).
	Mean, Std [3]float32
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

// SavePNG writes OutDir/name.png.
func (c *runCtx) SavePNG(name string, img image.Image) error {
	return render.WritePNG(filepath.Join(c.OutDir, name+".png"), img)
}

// SaveNPY writes OutDir/name.npy when --npy is set.
func (c *runCtx) SaveNPY(name string, a *vizkit.Array) error {
	if !c.NPY {
		return nil
	}
	return npy.WriteFile(filepath.Join(c.OutDir, name+".npy"), a.Shape, a.Data)
}

// method is one --methods entry.
type method struct {
	Name, Help string
	// Run computes the visualization, writes its files and adds a report section.
	Run func(c *runCtx) error
}

var methodRegistry = map[string]*method{}

func register(m *method) { methodRegistry[m.Name] = m }

func methodNames() []string {
	names := make([]string, 0, len(methodRegistry))
	for k := range methodRegistry {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func listMethods(w io.Writer) {
	for _, n := range methodNames() {
		fmt.Fprintf(w, "%-20s %s\n", n, methodRegistry[n].Help)
	}
}

// modelFlags are shared by explain and layers.
type modelFlags struct {
	model, weightsSpec, backendCfg string
	randomInit                     int64
	randomReason                   string
	numClasses                     int
	offline                        bool
}

func (mf *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&mf.model, "model", "", "architecture: "+strings.Join(vgg.Archs(), ", ")+" (default vgg11; with --weights FILE the architecture is read from the file, and --model, if given, must match it)")
	fs.StringVar(&mf.weightsSpec, "weights", "", "weights: a .safetensors or torchvision .pth file, hub:ORG/REPO (e.g. hub:timm/vgg11.tv_in1k) from the Hugging Face hub, or \"auto\": the model's pretrained ImageNet weights from the hub when cached or downloadable, else random weights (seed --random-init, default 0) with a warning")
	fs.Int64Var(&mf.randomInit, "random-init", -1, "use random weights with this seed instead of --weights (offline; pictures show mechanics, not meaning)")
	fs.IntVar(&mf.numClasses, "num-classes", 1000, "number of classes for --random-init")
	fs.StringVar(&mf.backendCfg, "backend", "", `GoMLX backend: "go" (pure Go, default), "xla:cpu" or "xla:cuda" (default $GOMLX_BACKEND or "go")`)
	fs.BoolVar(&mf.offline, "offline", false, "never download: use the Hugging Face cache only (also HF_HUB_OFFLINE=1)")
}

// load returns the model and whether it has random weights (with the reason
// in mf.randomReason when --weights auto fell back to them).
func (mf *modelFlags) load(ctx context.Context, log io.Writer) (*vgg.Model, bool, error) {
	arch := mf.model
	if arch == "" {
		arch = "vgg11"
	}
	if mf.weightsSpec == "auto" {
		seed := uint64(0)
		if mf.randomInit > 0 {
			seed = uint64(mf.randomInit)
		}
		m, random, reason, err := vgg.PretrainedOrRandom(ctx, arch, seed, weights.HubOptions{Offline: mf.offline, Progress: log})
		if random {
			mf.randomInit = int64(seed)
			mf.randomReason = reason
			fmt.Fprintf(log, "vizkit: WARNING: %s; using random weights (seed %d)\n", reason, seed)
		}
		return m, random, err
	}
	switch {
	case mf.weightsSpec != "" && mf.randomInit >= 0:
		return nil, false, errors.New("give either --weights or --random-init, not both")
	case mf.weightsSpec == "" && mf.randomInit < 0:
		return nil, false, fmt.Errorf("no weights: give --weights FILE (.safetensors/.pth), --weights hub:timm/%s.tv_in1k, or --random-init SEED for random weights", strings.TrimSuffix(arch, "_bn"))
	case mf.randomInit >= 0:
		m, err := vgg.NewRandom(arch, mf.numClasses, 1, uint64(mf.randomInit))
		return m, true, err
	}
	opts := weights.HubOptions{Offline: mf.offline, Progress: log}
	w, err := weights.Load(ctx, mf.weightsSpec, opts)
	if err != nil {
		return nil, false, err
	}
	m, err := vgg.Load(w)
	if err != nil {
		return nil, false, err
	}
	base := func(s string) string {
		return strings.SplitN(strings.TrimSuffix(strings.TrimSuffix(s, "-narrow"), "_bn"), "-", 2)[0]
	}
	if mf.model != "" && base(m.Config.Arch) != base(mf.model) && !strings.HasPrefix(m.Config.Arch, "vgg-custom") {
		m.Close()
		return nil, false, fmt.Errorf("--model %s but the weights in %s are a %s", mf.model, mf.weightsSpec, m.Config.Arch)
	}
	return m, false, nil
}

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs)
	imagePath := fs.String("image", "", "input image (PNG, JPEG, GIF, WebP, BMP); preprocessed as torchvision's Resize(256)+CenterCrop(224)+Normalize(ImageNet)")
	inputNPY := fs.String("input-npy", "", "input as an already normalised float32 .npy of shape (3,H,W) or (1,3,H,W) (bypasses image preprocessing)")
	class := fs.Int("class", -1, "target class index (default: the top-1 prediction)")
	layers := fs.String("layer", "", "comma-separated layer names for the methods (default: each method's own, e.g. the last conv block for CAMs)")
	methodsFlag := fs.String("methods", "features,kernels,gradcam,saliency", "comma-separated methods (see `vizkit methods`)")
	outDir := fs.String("out", "", "output directory (created)")
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
	var chosen []*method
	for _, name := range strings.Split(*methodsFlag, ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		m, ok := methodRegistry[name]
		if !ok {
			return fmt.Errorf("unknown method %q; known: %s", name, strings.Join(methodNames(), ", "))
		}
		chosen = append(chosen, m)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
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
	ex, err := vizkit.NewExplainer(net, vizkit.Options{BackendInstance: b})
	if err != nil {
		return err
	}
	defer ex.Close()

	c := &runCtx{Ctx: ctx, Ex: ex, Net: net, OutDir: *outDir, NPY: *writeNPY, Report: render.NewHTML(), Log: stderr,
		EigenSmooth: *eigenSmooth, AugSmooth: *augSmooth,
		Mean: imageio.ImageNetMean, Std: imageio.ImageNetStd}
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
		in, err := imageio.DefaultImageNet().Apply(img)
		if err != nil {
			return fmt.Errorf("%s: %w", *imagePath, err)
		}
		c.Input = &vizkit.Array{Shape: []int{1, in.C, in.H, in.W}, Data: in.Data}
		c.Image = in.Image
		inputDesc = fmt.Sprintf("%s (%d×%d, resized to 256 and centre-cropped to 224×224)", filepath.Base(*imagePath), img.Bounds().Dx(), img.Bounds().Dy())
	} else {
		shape, data, err := npy.ReadFile(*inputNPY)
		if err != nil {
			return err
		}
		if len(shape) == 3 {
			shape = append([]int{1}, shape...)
		}
		if len(shape) != 4 || shape[0] != 1 || shape[1] != 3 {
			return fmt.Errorf("--input-npy %s: shape %v, want (3,H,W) or (1,3,H,W) float32, normalised", *inputNPY, shape)
		}
		c.Input = &vizkit.Array{Shape: shape, Data: data}
		c.Image, err = imageio.ToImage(data, 3, shape[2], shape[3], c.Mean, c.Std)
		if err != nil {
			return err
		}
		inputDesc = fmt.Sprintf("%s (%d×%d, already normalised)", filepath.Base(*inputNPY), shape[3], shape[2])
	}
	c.Label = func(i int) string {
		if net.NumClasses() == imageio.NumImageNetClasses {
			return imageio.Label(i)
		}
		return fmt.Sprintf("class %d", i)
	}

	res, err := ex.Run(c.Input, vizkit.Request{Target: vizkit.Predicted()})
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
	c.Target = vizkit.Class(c.Class)
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
		r.Warning(fmt.Sprintf("Random weights (seed %d)%s: this network was never trained. The pictures show how each method works, not what a trained network sees. Pass --weights to explain a real model.", mf.randomInit, why))
	}
	r.Paragraph(fmt.Sprintf("Model %s (%d layers, %s parameters) from %s, backend %s. Input %s.",
		net.Config.Arch, len(net.Layers()), humanCount(net.NumParams()), net.Source, b.Name(), inputDesc))
	probs := softmax(logits.Data)
	var rows [][]string
	for i, cs := range vizkit.TopClasses(logits.Data, 5) {
		rows = append(rows, []string{strconv.Itoa(i + 1), c.Label(cs.Class), fmt.Sprintf("%.4g", cs.Score), fmt.Sprintf("%.2f%%", 100*probs[cs.Class])})
	}
	r.Figure([]render.FigureItem{{Image: c.Image, Caption: "input", WidthPx: 224}}, render.FigureOptions{})
	r.Heading(2, "Top-5 classes")
	r.Table([]string{"rank", "class", "logit", "probability"}, rows)
	r.Paragraph(fmt.Sprintf("Target class for the explanations: %s%s.", c.Label(c.Class), map[bool]string{true: " (chosen with --class)", false: " (the top-1 prediction)"}[*class >= 0]))
	fmt.Fprintf(stderr, "vizkit: %s on %s, top-1 %s; target %s\n", net.Config.Arch, inputDesc, c.Label(res.Classes[0]), c.Label(c.Class))

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
	page := filepath.Join(*outDir, "index.html")
	if err := os.WriteFile(page, []byte(r.Page("cnnviz: "+net.Config.Arch+" on "+filepath.Base(*imagePath+*inputNPY))), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", page)
	return nil
}

func runLayers(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("layers", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.weightsSpec == "" && mf.randomInit < 0 {
		mf.randomInit = 0
	}
	net, _, err := mf.load(ctx, os.Stderr)
	if err != nil {
		return err
	}
	defer net.Close()
	fmt.Fprintf(stdout, "%s from %s: %s parameters\n", net.Config.Arch, net.Source, humanCount(net.NumParams()))
	fmt.Fprintf(stdout, "%-14s %-18s %8s %8s %12s\n", "layer", "kind", "in", "out", "parameters")
	for _, l := range net.Layers() {
		fmt.Fprintf(stdout, "%-14s %-18s %8d %8d %12d\n", l.Name, l.Kind, l.In, l.Out, l.Params)
	}
	return nil
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
