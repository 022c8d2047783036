package vizkit

// The notebook façade: one call per visualisation, for GoNB cells and scripts.
//
//	m := must.M1(vizkit.Open("vgg11"))
//	img := must.M1(vizkit.LoadImage("../testdata/images/chelsea.jpg"))
//	nb.Show(must.M1(vizkit.GradCAM(m, img)))
//
// Every result displays with nb.Show (package vizkit/nb). The functions below
// are thin: they preprocess the image the way the model expects, call the
// Explainer, and attach the picture the result is drawn on.

import (
	"context"
	"errors"
	"fmt"
	"html"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/npy"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// Model is an opened network with its Explainer and preprocessing: what every
// façade function takes. Close it when done (a GoNB cell ends its program, so
// closing is optional there).
type Model struct {
	// Net is the network; Ex explains it (its compiled graphs are cached for
	// the Model's lifetime, so repeated calls in one cell compile once).
	Net models.Network
	Ex  *engine.Explainer
	// Info says where the weights came from (Info.Random, Info.Reason).
	Info zoo.Info
	// Preprocess turns a decoded image into the network's input; for
	// torchvision's ImageNet models imageio.DefaultImageNet (Resize(256),
	// CenterCrop(224), ImageNet mean/std).
	Preprocess imageio.Preprocess
	// Labels names the classes (len NumClasses): ImageNet's for 1000-class
	// models unless ClassNames says otherwise, else "class i".
	Labels []string

	owned     bool // Close closes Net.
	announced bool // Open showed the random-weights warning in the cell
}

// Open opens a model for the façade. spec is
//
//	an architecture name  "vgg11", "resnet50", … (zoo.Archs): the pretrained ImageNet weights when they
//	                      are cached or downloadable, else random weights (Info.Random, Info.Reason)
//	                      with a visible banner in a notebook
//	"random"              random weights of Arch(…) (default vgg11), Seed(…)
//	FILE.safetensors|.pth a torchvision-named weight file (the architecture is read from it)
//	FILE.onnx             an ONNX graph (where a loader is registered)
//	hub:ORG/REPO          a Hugging Face repository's weights
//
// Options: WithContext, Arch, Seed, Offline, Backend, Quiet, Preprocessing,
// ClassNames. Downloads show a progress line in a notebook.
func Open(spec string, opts ...Option) (*Model, error) {
	s, err := collect("vizkit.Open", opts, "WithContext", "Arch", "Seed", "Offline", "Backend", "Quiet", "Preprocessing", "ClassNames")
	if err != nil {
		return nil, err
	}
	arch, wspec := s.arch, spec
	if _, lerr := zoo.Lookup(spec); lerr == nil {
		if arch != "" && arch != spec {
			return nil, fmt.Errorf("vizkit.Open(%q): Arch(%q) names another architecture", spec, arch)
		}
		arch, wspec = spec, "auto"
	} else if spec != "auto" && spec != "random" && !strings.HasPrefix(spec, "hub:") && !strings.Contains(spec, ".") {
		return nil, fmt.Errorf("vizkit.Open(%q): not an architecture (%s), a weight file (.safetensors, .pth, .onnx), hub:ORG/REPO, \"auto\" or \"random\"",
			spec, strings.Join(zoo.Archs(), ", "))
	}
	zo := zoo.Options{Seed: s.seed}
	zo.Hub.Offline = s.offline
	if notebook != nil {
		zo.Hub.OnProgress = notebook.Download(fmt.Sprintf("downloading the weights of %s", spec))
	}
	net, info, err := zoo.Open(s.context(), wspec, arch, zo)
	if err != nil {
		return nil, fmt.Errorf("vizkit.Open(%q): %w", spec, err)
	}
	m, err := newModel(net, info, s)
	if err != nil {
		net.Close()
		return nil, err
	}
	m.owned = true
	if info.Random && !s.quiet && notebook != nil {
		notebook.Display(m.banner(true).String())
		m.announced = true
	}
	return m, nil
}

// FromNetwork wraps any network (a lab model, your own builder) for the
// façade. The caller keeps ownership of net (Model.Close does not close it).
// Options: Backend, Preprocessing (default imageio.DefaultImageNet), ClassNames.
func FromNetwork(net models.Network, opts ...Option) (*Model, error) {
	if net == nil {
		return nil, errors.New("vizkit.FromNetwork: nil network")
	}
	s, err := collect("vizkit.FromNetwork", opts, "Backend", "Preprocessing", "ClassNames")
	if err != nil {
		return nil, err
	}
	return newModel(net, zoo.Info{Arch: net.Arch(), Source: "your network"}, s)
}

func newModel(net models.Network, info zoo.Info, s *settings) (*Model, error) {
	ex, err := engine.NewExplainer(net, engine.Options{Backend: s.backend})
	if err != nil {
		return nil, err
	}
	m := &Model{Net: net, Ex: ex, Info: info, Preprocess: imageio.DefaultImageNet()}
	if c := models.InputChannels(net); c != 3 {
		// Not an RGB ImageNet model: no normalisation unless Preprocessing says.
		m.Preprocess.Mean, m.Preprocess.Std = [3]float32{}, [3]float32{}
	}
	if h, w, ok := models.ReferenceSize(net); ok && (h != 224 || w != 224) {
		// A graph made for another input size: resize the short side in
		// torchvision's 256:224 proportion and centre-crop to that size.
		m.Preprocess.ResizeShort = (max(h, w)*256 + 112) / 224
		m.Preprocess.CropH, m.Preprocess.CropW = h, w
	}
	if s.preprocess != nil {
		if err := s.preprocess.Validate(); err != nil {
			ex.Close()
			return nil, fmt.Errorf("Preprocessing: %w", err)
		}
		m.Preprocess = *s.preprocess
	}
	k := net.NumClasses()
	switch {
	case s.labels != nil:
		if len(s.labels) != k {
			ex.Close()
			return nil, fmt.Errorf("ClassNames gives %d names for a model with %d classes", len(s.labels), k)
		}
		m.Labels = s.labels
	case k == 1000:
		m.Labels = imageio.ImageNetClasses()
	default:
		m.Labels = make([]string, k)
		for i := range m.Labels {
			m.Labels[i] = fmt.Sprintf("class %d", i)
		}
	}
	return m, nil
}

// Close releases the compiled graphs and, for Open, the network.
func (m *Model) Close() {
	if m == nil {
		return
	}
	m.Ex.Close()
	if m.owned {
		m.Net.Close()
	}
}

// Label names class c ("tabby, tabby cat"), or "class c" when out of range.
func (m *Model) Label(c int) string {
	if c >= 0 && c < len(m.Labels) {
		return m.Labels[c]
	}
	return fmt.Sprintf("class %d", c)
}

// Norm is the input normalisation of m's preprocessing, one value per input
// channel of m's network (models.InputChannels): Preprocess.Mean and Std
// (an all-zero Std meaning 1) for RGB models, their first entries for
// 1-channel (grayscale) models, none (mean 0, std 1) for other channel
// counts, whose inputs the façade does not make from pictures (LoadArray
// takes them already normalised and draws them with this).
func (m *Model) Norm() engine.Normalization {
	c := models.InputChannels(m.Net)
	p := m.Preprocess
	std := p.Std
	if std == ([3]float32{}) {
		std = [3]float32{1, 1, 1}
	}
	switch c {
	case 3:
		return engine.Normalization{Mean: p.Mean[:], Std: std[:]}
	case 1:
		return engine.Normalization{Mean: []float32{p.Mean[0]}, Std: []float32{std[0]}}
	}
	return engine.NoNormalization(c)
}

// banner says which weights the model runs on; compact is the one-line
// version Open shows in a notebook.
func (m *Model) banner(compact bool) *render.HTML {
	h := render.NewHTML()
	if !m.Info.Random {
		h.Paragraph(fmt.Sprintf("✔ %s, weights: %s.", m.Net.Arch(), m.Info.Source))
		return h
	}
	msg := fmt.Sprintf("RANDOM WEIGHTS: %s was never trained here. Pictures show how each method works, "+
		"not what a trained network has learned.", m.Net.Arch())
	if !compact {
		msg += " To see the real thing, run once where the pretrained weights can be downloaded " +
			"(they are then cached: Hugging Face's ~/.cache/huggingface/hub or PyTorch's ~/.cache/torch/hub)."
	}
	h.Warning(msg)
	if m.Info.Reason != "" {
		h.Raw(`<details style="font-size:12px;color:#666;margin:-4px 0 8px"><summary>why</summary>` +
			html.EscapeString(m.Info.Reason) + "</details>\n")
	}
	return h
}

// HTML shows the weights banner (pretrained or random, and why) and a
// one-line summary of the model (vizkit.HTMLer).
func (m *Model) HTML() (string, error) {
	if m == nil || m.Net == nil {
		return "", errors.New("vizkit: nil Model")
	}
	h := m.banner(false)
	if m.announced { // Open already showed the warning and its reason in this cell
		h = render.NewHTML()
	}
	p := m.Preprocess
	pre := "no resize"
	if p.ResizeShort > 0 {
		pre = fmt.Sprintf("shorter side resized to %d", p.ResizeShort)
	}
	if p.CropH > 0 {
		pre += fmt.Sprintf(", centre crop %d×%d", p.CropH, p.CropW)
	}
	params := 0
	for _, l := range m.Net.Layers() {
		if !strings.Contains(l.Name, ".") || l.Kind == models.Conv2d || l.Kind == models.Linear {
			if l.Kind == models.Conv2d || l.Kind == models.Linear || l.Kind == models.BatchNorm2d {
				params += l.Params
			}
		}
	}
	h.Paragraph(fmt.Sprintf("%s: %d classes, %d modules, %s parameters in its convolutions and linear layers; input: %s.",
		m.Net.Arch(), m.Net.NumClasses(), len(m.Net.Layers()), humanCount(params), pre))
	return h.String(), h.Err()
}

func humanCount(n int) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f k", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// Image is what the façade explains: a decoded picture (EXIF orientation
// applied, RGB), which it preprocesses for each model it is used with
// (Model.Preprocess), or an input array given as it is (LoadArray,
// ImageFromArray), for models of any input channel count.
type Image struct {
	// Name labels the picture in captions (the file's base name).
	Name string
	// Picture is the decoded image at its full size; for an array, the
	// picture drawn from it (the input channels chosen by DisplayChannels),
	// which overlays are drawn on.
	Picture *image.RGBA
	// Array, when set, is the network input itself, (1,C,H,W) and already
	// normalised: the façade checks it against each model it is used with
	// (channel count, size) and uses it instead of preprocessing Picture.
	Array *Array
}

// LoadImage decodes a JPEG, PNG, GIF, WebP or BMP file. A relative path that
// does not exist from the working directory is also tried relative to the
// notebook's folder ($GONB_DIR), so "../testdata/images/chelsea.jpg" works in
// the notebooks of this repository however the kernel was started. Pictures
// suit 1- and 3-channel models; for others use LoadArray.
func LoadImage(path string) (*Image, error) {
	img, err := imageio.Load(notebookPath(path))
	if err != nil {
		return nil, err
	}
	return &Image{Name: filepath.Base(path), Picture: img}, nil
}

// notebookPath returns path, or path relative to $GONB_DIR when only that
// exists (see LoadImage).
func notebookPath(path string) string {
	if _, err := os.Stat(path); err != nil && !filepath.IsAbs(path) {
		if d := os.Getenv("GONB_DIR"); d != "" {
			if _, err2 := os.Stat(filepath.Join(d, path)); err2 == nil {
				return filepath.Join(d, path)
			}
		}
	}
	return path
}

// LoadArray reads m's input from a .npy file — float32 (or float64) values
// of shape (C,H,W) or (1,C,H,W), already normalised, C being m's input
// channel count — for models that pictures cannot feed (neither 1 nor 3
// channels), or to give any model an exact input. It is read with package
// npy's strict reader (the CLI's --input-npy) and checked against m like
// ImageFromArray; errors name the file. Relative paths are resolved like
// LoadImage's. Options: DisplayChannels (the channels the picture is drawn
// from; default the first three, or channel 0 in gray for 1 and 2
// channels).
func LoadArray(m *Model, path string, opts ...Option) (*Image, error) {
	if m == nil {
		return nil, errors.New("vizkit.LoadArray: nil model (use vizkit.Open)")
	}
	if _, err := collect("vizkit.LoadArray", opts, "DisplayChannels"); err != nil {
		return nil, err
	}
	shape, data, err := npy.ReadFile(notebookPath(path))
	if err != nil {
		return nil, err
	}
	return ImageFromArray(m, path, &Array{Shape: shape, Data: data}, opts...)
}

// ImageFromArray makes m's input from x, already normalised, of shape
// (C,H,W) or (1,C,H,W) with C m's input channel count (not copied). It
// checks the channel count, the values (finite) and the size (the model's
// CheckInput), naming name (a file, a label) in errors, and draws the
// picture overlays are shown on from the channels DisplayChannels picks
// (default the first three, or channel 0 in gray for 1 and 2 channels),
// mapped back to pixels with m's normalisation. The result works with every
// façade call (GradCAM, Saliency, FeatureMaps, …) on models with m's input.
// Options: DisplayChannels.
func ImageFromArray(m *Model, name string, x *Array, opts ...Option) (*Image, error) {
	if m == nil {
		return nil, errors.New("vizkit.ImageFromArray: nil model (use vizkit.Open)")
	}
	s, err := collect("vizkit.ImageFromArray", opts, "DisplayChannels")
	if err != nil {
		return nil, err
	}
	if x == nil {
		return nil, fmt.Errorf("%s: nil array", name)
	}
	in, err := InputArray(m.Net, name, x.Shape, x.Data)
	if err != nil {
		return nil, err
	}
	display, err := CheckDisplayChannels(s.display, in.Shape[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pic, err := InputImage(in, 0, m.Norm(), display)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Image{Name: filepath.Base(name), Picture: pic, Array: in}, nil
}

// InputArray checks an already normalised input for net — shape (C,H,W) or
// (1,C,H,W) with C net's input channel count, as many values as the shape
// says, all finite, a size net accepts (its CheckInput) — and returns it as
// (1,C,H,W), sharing data. name names the input in errors (a file: the CLI's
// --input-npy and LoadArray use it).
func InputArray(net models.Network, name string, shape []int, data []float32) (*Array, error) {
	c := models.InputChannels(net)
	if len(shape) == 3 {
		shape = append([]int{1}, shape...)
	}
	if len(shape) != 4 || shape[0] != 1 || shape[1] != c {
		return nil, fmt.Errorf("%s: shape %v, want (%d,H,W) or (1,%d,H,W) float32, normalised (model %s takes %d channel(s))", name, shape, c, c, net.Arch(), c)
	}
	if n := shape[0] * shape[1] * shape[2] * shape[3]; n != len(data) || n == 0 {
		return nil, fmt.Errorf("%s: shape %v needs %d values, got %d", name, shape, n, len(data))
	}
	x := &Array{Shape: slices.Clone(shape), Data: data}
	if err := x.CheckFinite(name); err != nil {
		return nil, err
	}
	if err := net.CheckInput(x.Shape); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return x, nil
}

// NewImage wraps a picture already in memory.
func NewImage(name string, img image.Image) (*Image, error) {
	if img == nil || img.Bounds().Empty() {
		return nil, errors.New("vizkit.NewImage: empty image")
	}
	return &Image{Name: name, Picture: imageio.ToRGB(img)}, nil
}

// Input preprocesses img for m: the network input x (1,C,H,W), normalised,
// and the resized and cropped picture it was computed from (W×H), for
// overlays. C is the network's input channel count: 3 (RGB), or 1 — the
// picture is then converted to grayscale (PIL's "L") and normalised with
// Preprocess.Mean[0] and Std[0]. Pictures cannot feed other channel counts:
// an Image made by LoadArray or ImageFromArray can (its Array is checked
// against m and used as it is, with its Picture).
func (m *Model) Input(img *Image) (*Array, *image.RGBA, error) {
	if img != nil && img.Array != nil {
		x, err := InputArray(m.Net, img.Name, img.Array.Shape, img.Array.Data)
		if err != nil {
			return nil, nil, err
		}
		pic := img.Picture
		if pic == nil {
			if pic, err = InputImage(x, 0, m.Norm(), nil); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", img.Name, err)
			}
		}
		return x, pic, nil
	}
	if img == nil || img.Picture == nil {
		return nil, nil, errors.New("vizkit: nil image (use vizkit.LoadImage or vizkit.LoadArray)")
	}
	c := models.InputChannels(m.Net)
	if c != 1 && c != 3 {
		return nil, nil, fmt.Errorf("model %s takes %d input channels; pictures give 1 (grayscale) or 3 (RGB): load a normalised (%d,H,W) array with vizkit.LoadArray(m, \"x.npy\") or vizkit.ImageFromArray(m, name, x) instead", m.Net.Arch(), c, c)
	}
	pre := m.Preprocess
	if c == 1 {
		pre.Mean, pre.Std = [3]float32{}, [3]float32{}
	}
	in, err := pre.Apply(img.Picture)
	if err != nil {
		return nil, nil, fmt.Errorf("preprocessing %s: %w", img.Name, err)
	}
	if c == 1 {
		n := m.Norm()
		if in, err = imageio.Gray(in, n.Mean[0], n.Std[0]); err != nil {
			return nil, nil, fmt.Errorf("preprocessing %s: %w", img.Name, err)
		}
	}
	x := &Array{Shape: []int{1, in.C, in.H, in.W}, Data: in.Data}
	if err := m.Net.CheckInput(x.Shape); err != nil {
		return nil, nil, fmt.Errorf("%s after preprocessing: %w", img.Name, err)
	}
	return x, in.Image, nil
}

// ClassProb is one row of TopK.
type ClassProb struct {
	Class int
	Label string
	Logit float32
	// Prob is the softmax probability over all classes.
	Prob float64
}

// TopKResult is a picture's k most probable classes.
type TopKResult struct {
	Arch    string
	Name    string
	Picture image.Image // the preprocessed crop the network saw
	Classes []ClassProb
}

// TopK runs img through m and returns its k most probable classes (softmax
// of the logits), most probable first. Options: WithContext.
func TopK(m *Model, img *Image, k int, opts ...Option) (*TopKResult, error) {
	if _, err := collect("vizkit.TopK", opts, "WithContext"); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("vizkit.TopK: nil model")
	}
	if k < 1 {
		return nil, fmt.Errorf("vizkit.TopK: k must be at least 1, got %d", k)
	}
	x, crop, err := m.Input(img)
	if err != nil {
		return nil, err
	}
	res, err := m.Ex.Run(x, engine.Request{})
	if err != nil {
		return nil, err
	}
	logits := res.Logits.Data
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	out := &TopKResult{Arch: m.Net.Arch(), Name: img.Name, Picture: crop}
	for _, cs := range engine.TopClasses(logits, k) {
		out.Classes = append(out.Classes, ClassProb{Class: cs.Class, Label: m.Label(cs.Class), Logit: cs.Score,
			Prob: math.Exp(float64(cs.Score)-mx) / sum})
	}
	return out, nil
}

// HTML shows the picture and a table of the classes (vizkit.HTMLer).
func (r *TopKResult) HTML() (string, error) {
	if r == nil {
		return "", errors.New("vizkit: nil TopKResult")
	}
	var rows [][]string
	for i, c := range r.Classes {
		rows = append(rows, []string{fmt.Sprint(i + 1), c.Label, fmt.Sprintf("%.3g", c.Logit), fmt.Sprintf("%.2f%%", 100*c.Prob)})
	}
	h := render.NewHTML()
	b := r.Picture.Bounds()
	h.Figure([]render.FigureItem{{Image: r.Picture, Caption: fmt.Sprintf("%s, %d×%d as %s sees it", r.Name, b.Dx(), b.Dy(), r.Arch),
		WidthPx: max(224, b.Dx())}}, render.FigureOptions{})
	h.Table([]string{"rank", "class", "logit", "probability"}, rows)
	return h.String(), h.Err()
}

// GradCAM is CAM(m, img, "gradcam", opts...): where in the picture is the
// evidence for the target (default: the top-1 class) at the last
// convolutional block (or AtLayer).
func GradCAM(m *Model, img *Image, opts ...Option) (*CAMResult, error) {
	return camCall("vizkit.GradCAM", m, img, "gradcam", opts)
}

// ScoreCAM is CAM(m, img, "scorecam", opts...): one masked copy of the
// picture through the network per channel of the layer (a progress bar in a
// notebook).
func ScoreCAM(m *Model, img *Image, opts ...Option) (*CAMResult, error) {
	return camCall("vizkit.ScoreCAM", m, img, "scorecam", opts)
}

// CAM computes a class activation map of img with method (CAMMethodNames:
// "gradcam", "hirescam", "gradcam++", "layercam", "scorecam", …). The result's
// Map is (1,H,W) in [0,1] at the preprocessed picture's size, and it displays
// as an overlay on that picture.
//
// Options: AtLayer (default DefaultCAMLayer), ForClass / ForTarget (default:
// the top-1 class logit), EigenSmooth, AugSmooth, WithProgress, WithContext,
// or BatchSize.
func CAM(m *Model, img *Image, method string, opts ...Option) (*CAMResult, error) {
	return camCall("vizkit.CAM", m, img, method, opts)
}

func camCall(fn string, m *Model, img *Image, method string, opts []Option) (*CAMResult, error) {
	s, err := collect(fn, opts, "WithContext", "WithProgress", "AtLayer", "ForClass", "ForTarget", "EigenSmooth", "AugSmooth", "BatchSize")
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%s: nil model", fn)
	}
	x, crop, err := m.Input(img)
	if err != nil {
		return nil, err
	}
	if s.batch < 0 {
		return nil, fmt.Errorf("%s: BatchSize must be ≥ 0 (0 = the method's default), got %d", fn, s.batch)
	}
	o := cam.Options{Method: method, BatchSize: s.batch}
	if s.layers != nil {
		o.Layers = s.layers
	}
	if s.target != nil {
		o.Target = *s.target
	}
	o.EigenSmooth, o.AugSmooth = s.eigen, s.aug
	o.Progress = s.progressFor(fmt.Sprintf("%s of %s", method, img.Name))
	res, err := cam.Compute(s.context(), m.Ex, x, o)
	if err != nil {
		return nil, err
	}
	return &CAMResult{Result: res, Images: []image.Image{crop}}, nil
}

// Saliency is the gradient of the target (default: the top-1 class logit)
// with respect to the input pixels (Simonyan et al.), shown as the magnitude
// map and the signed gradient. Options: Guided (guided backpropagation),
// Deconv, ForClass / ForTarget, DisplayChannels, WithContext.
func Saliency(m *Model, img *Image, opts ...Option) (*SaliencyResult, error) {
	s, err := collect("vizkit.Saliency", opts, "WithContext", "ForClass", "ForTarget", "Guided", "Deconv", "DisplayChannels")
	if err != nil {
		return nil, err
	}
	x, norm, err := m.attrInput(img, s)
	if err != nil {
		return nil, err
	}
	so := attr.SaliencyOptions{ReLU: s.relu}
	if s.target != nil {
		so.Target = *s.target
	}
	r, err := attr.Saliency(s.context(), m.Ex, x, so)
	if err != nil {
		return nil, err
	}
	return &SaliencyResult{SaliencyResult: r, Norm: norm, DisplayChannels: s.display}, nil
}

// GuidedGradCAM multiplies guided backpropagation by the upsampled Grad-CAM
// map. Options: AtLayer, ForClass / ForTarget, DisplayChannels, WithContext.
func GuidedGradCAM(m *Model, img *Image, opts ...Option) (*GuidedGradCAMResult, error) {
	s, err := collect("vizkit.GuidedGradCAM", opts, "WithContext", "AtLayer", "ForClass", "ForTarget", "DisplayChannels")
	if err != nil {
		return nil, err
	}
	x, norm, err := m.attrInput(img, s)
	if err != nil {
		return nil, err
	}
	o := attr.GuidedGradCAMOptions{Layers: s.layers}
	if s.target != nil {
		o.Target = *s.target
	}
	r, err := attr.GuidedGradCAM(s.context(), m.Ex, x, o)
	if err != nil {
		return nil, err
	}
	return &GuidedGradCAMResult{GuidedGradCAMResult: r, Norm: norm, DisplayChannels: s.display}, nil
}

// SmoothGrad averages the gradient over noisy copies of the picture
// (Smilkov et al.). Options: Samples (default 24, 8 with CNNVIZ_FAST=1),
// Guided, ForClass / ForTarget, DisplayChannels, WithProgress, WithContext,
// or a whole attr.SmoothGradOptions with WithSmoothGradOptions (the other
// options override its fields).
func SmoothGrad(m *Model, img *Image, opts ...Option) (*SmoothGradResult, error) {
	s, err := collect("vizkit.SmoothGrad", opts, "WithContext", "WithProgress", "ForClass", "ForTarget", "Guided", "Deconv", "Samples", "DisplayChannels", "WithSmoothGradOptions")
	if err != nil {
		return nil, err
	}
	x, norm, err := m.attrInput(img, s)
	if err != nil {
		return nil, err
	}
	o := s.smooth
	if s.n > 0 {
		o.Samples = s.n
	} else if o.Samples == 0 {
		o.Samples = quick(24, 8)
	}
	if s.reluSet {
		o.ReLU = s.relu
	}
	if s.target != nil {
		o.Target = *s.target
	}
	if o.Progress == nil {
		o.Progress = s.progressFor(fmt.Sprintf("SmoothGrad: %d noisy copies", o.Samples))
	}
	r, err := attr.SmoothGrad(s.context(), m.Ex, x, o)
	if err != nil {
		return nil, err
	}
	return &SmoothGradResult{SmoothGradResult: r, Norm: norm, DisplayChannels: s.display}, nil
}

// IntegratedGradients integrates the gradient along the straight path from
// a black picture to img (Sundararajan et al.); its HTML ends with the
// completeness check. Options: Steps (default 32, 8 with CNNVIZ_FAST=1),
// ForClass / ForTarget, DisplayChannels, WithProgress, WithContext, or a
// whole attr.IGOptions with WithIGOptions (the other options override its
// fields; its Norm defaults to the model's).
func IntegratedGradients(m *Model, img *Image, opts ...Option) (*IGResult, error) {
	s, err := collect("vizkit.IntegratedGradients", opts, "WithContext", "WithProgress", "ForClass", "ForTarget", "Steps", "DisplayChannels", "WithIGOptions")
	if err != nil {
		return nil, err
	}
	x, norm, err := m.attrInput(img, s)
	if err != nil {
		return nil, err
	}
	o := s.ig
	if s.n > 0 {
		o.Steps = s.n
	} else if o.Steps == 0 {
		o.Steps = quick(32, 8)
	}
	if o.Norm.IsZero() {
		o.Norm = norm
	}
	if s.target != nil {
		o.Target = *s.target
	}
	if o.Progress == nil {
		o.Progress = s.progressFor(fmt.Sprintf("Integrated Gradients: %d points on the path", o.Steps))
	}
	r, err := attr.IntegratedGradients(s.context(), m.Ex, x, o)
	if err != nil {
		return nil, err
	}
	return &IGResult{IGResult: r, Norm: o.Norm, DisplayChannels: s.display}, nil
}

// attrInput is the network input of img for an attribution and the model's
// normalisation, after checking the DisplayChannels option against the
// input's channel count (so that a bad choice fails before the computation).
func (m *Model) attrInput(img *Image, s *settings) (*Array, engine.Normalization, error) {
	x, _, err := m.input(img)
	if err != nil {
		return nil, engine.Normalization{}, err
	}
	if _, err := CheckDisplayChannels(s.display, x.Shape[1]); err != nil {
		return nil, engine.Normalization{}, err
	}
	norm, err := m.Norm().For(x.Shape[1])
	if err != nil {
		return nil, engine.Normalization{}, err
	}
	return x, norm, nil
}

// FeatureMaps shows the activations of one or more layers (comma-separated:
// "features.1,features.9") for img: by default the 16 channels with the
// largest mean activation per layer, with their mean over the picture and
// overlays on the preprocessed picture. Options: TopChannels(n) or a whole
// FeatureOptions value (which channels, which example), and a FeatureStyle
// value (how they are drawn: the result's Style).
func FeatureMaps(m *Model, img *Image, layers string, opts ...Option) (*FeatureMapsResult, error) {
	s, err := collect("vizkit.FeatureMaps", opts, "TopChannels", "FeatureOptions", "FeatureStyle")
	if err != nil {
		return nil, err
	}
	if err := s.fstyle.check(); err != nil {
		return nil, fmt.Errorf("vizkit.FeatureMaps: %w", err)
	}
	x, crop, err := m.input(img)
	if err != nil {
		return nil, err
	}
	o := s.feature
	if !s.has("FeatureOptions") {
		o = FeatureOptions{Select: SelectTopMean, N: 16}
	}
	if s.n > 0 {
		o.N = s.n
		if o.Select == SelectFirst && o.Channels == nil {
			o.Select = SelectTopMean
		}
	}
	names := splitNames(layers)
	if len(names) == 0 {
		return nil, errors.New("vizkit.FeatureMaps: no layer named")
	}
	res, err := FeatureMapsOf(m.Ex, x, names, o)
	if err != nil {
		return nil, err
	}
	res.Style, res.Image = s.fstyle, crop
	return res, nil
}

// Kernels shows the weights of a convolution layer ("features.0") as a grid
// of tiles (colour tiles for a first layer). Options: a KernelOptions value
// (which tiles: view, channels, sorting) and a KernelStyle value (how they
// are drawn: normalisation, colours, size; the result's Style).
func Kernels(m *Model, layer string, opts ...Option) (*KernelsResult, error) {
	s, err := collect("vizkit.Kernels", opts, "KernelOptions", "KernelStyle")
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("vizkit.Kernels: nil model")
	}
	res, err := KernelsOf(m.Net, layer, s.kernel)
	if err != nil {
		return nil, err
	}
	res.Style = s.kstyle
	if _, err := res.plan(); err != nil {
		return nil, err
	}
	return res, nil
}

// ActMax synthesises, for each channel of layer, a picture that maximises the
// channel's mean activation (Lucid's Fourier parameterisation with jitter,
// scaling and rotation, Adam), e.g. ActMax(m, "features.24", 45, 271).
// Defaults: 128×128, 40 steps (10 with CNNVIZ_FAST=1); use ActMaxOf for
// other targets and options. A progress bar shows in a notebook.
func ActMax(m *Model, layer string, channels ...int) (*ActMaxResult, error) {
	if len(channels) == 0 {
		return nil, fmt.Errorf("vizkit.ActMax: name at least one channel of %s", layer)
	}
	return ActMaxOf(m, channelTargets(layer, channels))
}

func channelTargets(layer string, channels []int) []Target {
	ts := make([]Target, len(channels))
	for i, c := range channels {
		ts[i] = engine.ChannelMean(layer, c)
	}
	return ts
}

// GradientAscent is FlashTorch's GradientAscent.visualize as written in its
// tutorial: for each channel of layer, pixel-space ascent from FlashTorch's
// uniform noise with normalised-gradient steps of LR 1, no regularisation,
// 224×224, 20 steps (CNNVIZ_FAST=1: 112×112, 8 steps), e.g.
// GradientAscent(m, "features.24", 45, 271, 363, 489) on VGG16 (conv5_1).
// A progress bar shows in a notebook.
func GradientAscent(m *Model, layer string, channels ...int) (*ActMaxResult, error) {
	if len(channels) == 0 {
		return nil, fmt.Errorf("vizkit.GradientAscent: name at least one channel of %s", layer)
	}
	if m == nil {
		return nil, errors.New("vizkit.GradientAscent: nil model")
	}
	size := quick(224, 112)
	o := actmax.Options{Param: actmax.ParamPixel, Optimizer: actmax.OptimizerNormalized, LR: 1, Steps: quick(20, 8), Size: [2]int{size, size}, Norm: m.Norm(),
		Progress: (&settings{}).progressFor(fmt.Sprintf("FlashTorch gradient ascent on %s, %d filter(s): steps", layer, len(channels)))}
	r, err := actmax.Run(context.Background(), m.Ex, channelTargets(layer, channels), o)
	if err != nil {
		return nil, err
	}
	return &ActMaxResult{Result: r}, nil
}

// ActMaxOf is activation maximisation of any targets — engine.ChannelMean
// (layer, ch), engine.Neuron(layer, ch, y, x) or engine.Class(c), sharing
// kind and layer — one picture each. Options: Steps, Size, DisplayChannels,
// WithProgress, WithContext, or WithActMax(actmax.Options{…}) (its zero
// fields take the façade's defaults: Fourier parameterisation, Adam, 128×128
// — 160 for class targets — jitter, scales 0.95–1.05, rotations ±5°; ±10°
// and scales 0.9–1.1 for classes). DisplayChannels picks the channels drawn
// of a multi-channel model's pictures.
func ActMaxOf(m *Model, targets []Target, opts ...Option) (*ActMaxResult, error) {
	s, err := collect("vizkit.ActMaxOf", opts, "WithContext", "WithProgress", "Steps", "Size", "DisplayChannels", "WithActMax")
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("vizkit.ActMaxOf: nil model")
	}
	class := false
	for _, t := range targets {
		_, unit := t.Unit()
		class = class || !unit
	}
	o := s.actmax
	if o.Param == "" {
		o.Param = actmax.ParamFFT
	}
	if o.Optimizer == "" {
		o.Optimizer = actmax.OptimizerAdam
	}
	if o.Steps == 0 {
		o.Steps = quick(40, 10)
	}
	if s.n > 0 {
		o.Steps = s.n
	}
	if o.Size == [2]int{} {
		size := 128
		if class {
			size = quick(160, 128)
		}
		o.Size = [2]int{size, size}
	}
	if s.size > 0 {
		o.Size = [2]int{s.size, s.size}
	}
	if o.Jitter == 0 && o.Scales == nil && o.Rotations == nil {
		o.Jitter, o.Scales, o.Rotations = 4, []float64{0.95, 1, 1.05}, []float64{-5, 0, 5}
		if class {
			o.Jitter, o.Scales, o.Rotations = 8, []float64{0.9, 0.95, 1, 1.05, 1.1}, []float64{-10, -5, 0, 5, 10}
		}
	}
	if o.Norm.IsZero() {
		o.Norm = m.Norm()
	}
	display, err := CheckDisplayChannels(s.display, models.InputChannels(m.Net))
	if err != nil {
		return nil, fmt.Errorf("vizkit.ActMaxOf: %w", err)
	}
	if o.Progress == nil {
		o.Progress = s.progressFor(fmt.Sprintf("activation maximisation of %d target(s): steps", len(targets)))
	}
	r, err := actmax.Run(s.context(), m.Ex, targets, o)
	if err != nil {
		return nil, err
	}
	return &ActMaxResult{Result: r, DisplayChannels: display}, nil
}

// DeepDream amplifies what layer sees in img (Mordvintsev et al.): gradient
// ascent on its mean squared activation over octaves. Defaults: 3 octaves ×
// 10 steps (2 × 4 with CNNVIZ_FAST=1), jitter 8. Options: Steps,
// DisplayChannels, WithProgress, WithContext, or
// WithDeepDream(actmax.DreamOptions{…}).
func DeepDream(m *Model, img *Image, layer string, opts ...Option) (*DeepDreamResult, error) {
	s, err := collect("vizkit.DeepDream", opts, "WithContext", "WithProgress", "Steps", "DisplayChannels", "WithDeepDream")
	if err != nil {
		return nil, err
	}
	x, _, err := m.input(img)
	if err != nil {
		return nil, err
	}
	o := s.dream
	o.Layer = layer
	if o.Octaves == 0 {
		o.Octaves = quick(3, 2)
	}
	if o.Steps == 0 {
		o.Steps = quick(10, 4)
	}
	if s.n > 0 {
		o.Steps = s.n
	}
	if o.Jitter == 0 {
		o.Jitter = 8
	}
	if o.Norm.IsZero() {
		o.Norm = m.Norm()
	}
	display, err := CheckDisplayChannels(s.display, x.Shape[1])
	if err != nil {
		return nil, fmt.Errorf("vizkit.DeepDream: %w", err)
	}
	if o.Progress == nil {
		o.Progress = s.progressFor(fmt.Sprintf("DeepDream on %s: %d octaves × %d steps", layer, o.Octaves, o.Steps))
	}
	r, err := actmax.DeepDream(s.context(), m.Ex, x, o)
	if err != nil {
		return nil, err
	}
	return &DeepDreamResult{DreamResult: r, DisplayChannels: display}, nil
}

func (m *Model) input(img *Image) (*Array, *image.RGBA, error) {
	if m == nil {
		return nil, nil, errors.New("vizkit: nil model (use vizkit.Open)")
	}
	return m.Input(img)
}

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Quick reports whether CNNVIZ_FAST=1 is set: the façade's iterative methods
// (SmoothGrad, IntegratedGradients, ActMax, DeepDream) then default to fewer
// iterations (documented per function). Explicit options always win.
func Quick() bool { return os.Getenv("CNNVIZ_FAST") == "1" }

func quick(normal, fast int) int {
	if Quick() {
		return fast
	}
	return normal
}

// contextOr returns ctx, or context.Background when nil.
func contextOr(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
