package vizkit_test

import (
	"fmt"
	"image"
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// fakeNotebook records what the façade shows.
type fakeNotebook struct {
	shown    []string
	progress []vizkit.Progress
}

func (f *fakeNotebook) Display(h string) { f.shown = append(f.shown, h) }
func (f *fakeNotebook) Progress(task string) func(vizkit.Progress) {
	return func(p vizkit.Progress) { f.progress = append(f.progress, p) }
}
func (f *fakeNotebook) Download(string) func(int64, int64) { return func(int64, int64) {} }

func checkHTML(t *testing.T, what string, h vizkit.HTMLer, wants ...string) {
	t.Helper()
	s, err := h.HTML()
	if err != nil {
		t.Fatalf("%s: HTML: %v", what, err)
	}
	for _, w := range append(wants, "data:image/png;base64,") {
		if !strings.Contains(s, w) {
			t.Fatalf("%s: HTML lacks %q", what, w)
		}
	}
}

// labModel wraps the committed smallcnn for the façade, and returns a test
// sample as a picture.
func labModel(t *testing.T) (*vizkit.Model, *shapes.Sample, *vizkit.Image) {
	t.Helper()
	net, err := smallcnn.Pretrained()
	if err != nil {
		t.Fatal(err)
	}
	m, err := vizkit.FromNetwork(net, vizkit.Preprocessing(imageio.Preprocess{Mean: shapes.Mean, Std: shapes.Std}),
		vizkit.ClassNames(shapes.Classes))
	if err != nil {
		net.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); net.Close() })
	s, err := shapes.Generate(shapes.Config{}, smallcnn.DefaultTestSeed, 2)
	if err != nil {
		t.Fatal(err)
	}
	pic, err := render.RGBFromCHW(s.Image, s.Size, s.Size, render.Range{Min: 0, Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	img, err := vizkit.NewImage("sample 2", pic)
	if err != nil {
		t.Fatal(err)
	}
	return m, s, img
}

// The façade on the trained lab network: the right class on top, a Grad-CAM
// whose peak lies on the object, every result displayable.
func TestFacadeOnTheLabNetwork(t *testing.T) {
	m, s, img := labModel(t)
	top, err := vizkit.TopK(m, img, 3)
	if err != nil {
		t.Fatal(err)
	}
	if top.Classes[0].Label != s.Class() {
		t.Fatalf("top-1 %q, the sample is a %q", top.Classes[0].Label, s.Class())
	}
	sum := 0.0
	for _, c := range top.Classes {
		sum += c.Prob
	}
	if !(top.Classes[0].Prob > 0.5 && sum <= 1+1e-9) {
		t.Fatalf("probabilities %+v", top.Classes)
	}
	checkHTML(t, "TopK", top, s.Class())

	cr, err := vizkit.GradCAM(m, img)
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.Map.Shape; len(got) != 3 || got[0] != 1 || got[1] != s.Size || got[2] != s.Size {
		t.Fatalf("map shape %v, want (1,%d,%d)", got, s.Size, s.Size)
	}
	best, at := float32(-1), 0
	for i, v := range cr.Map.Data {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN in the map")
		}
		if v > best {
			best, at = v, i
		}
	}
	if p := image.Pt(at%s.Size, at/s.Size); !p.In(s.Box.Inset(-2)) {
		t.Fatalf("Grad-CAM peak at %v, outside the object's box %v", p, s.Box)
	}
	if len(cr.Images) != 1 || cr.Images[0].Bounds().Dx() != s.Size {
		t.Fatalf("the CAM carries no picture of the input size: %v", cr.Images)
	}
	checkHTML(t, "GradCAM", cr, "Grad-CAM", "overlay")

	// Another class gives another map; a wrong class index is an error.
	other, err := vizkit.GradCAM(m, img, vizkit.ForClass((top.Classes[0].Class+1)%5))
	if err != nil {
		t.Fatal(err)
	}
	if other.Classes[0] == cr.Classes[0] {
		t.Fatal("ForClass was ignored")
	}
	if _, err := vizkit.GradCAM(m, img, vizkit.ForClass(5)); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("class 5 of 5: %v", err)
	}

	sal, err := vizkit.Saliency(m, img, vizkit.Guided())
	if err != nil {
		t.Fatal(err)
	}
	if sal.ReLU.String() != "guided" {
		t.Fatalf("Guided() gave the %s rule", sal.ReLU)
	}
	checkHTML(t, "Saliency", sal)

	fm, err := vizkit.FeatureMaps(m, img, "features.1, features.11", vizkit.TopChannels(4))
	if err != nil {
		t.Fatal(err)
	}
	if len(fm.Layers) != 2 || len(fm.Layers[1].Channels) != 4 {
		t.Fatalf("feature maps: %d layers, %v channels", len(fm.Layers), fm.Layers[len(fm.Layers)-1].Channels)
	}
	checkHTML(t, "FeatureMaps", fm, "features.11")

	k, err := vizkit.Kernels(m, "features.0")
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, "Kernels", k, "features.0")
}

// Options a function does not take, or that contradict each other, are
// errors that say what is accepted; so are bad specs and nil arguments.
func TestFacadeOptionErrors(t *testing.T) {
	m, _, img := labModel(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"GradCAM with TopChannels", second(vizkit.GradCAM(m, img, vizkit.TopChannels(3))), "does not take the option TopChannels"},
		{"Saliency Guided+Deconv", second(vizkit.Saliency(m, img, vizkit.Guided(), vizkit.Deconv())), "exclude each other"},
		{"Kernels with AtLayer", second(vizkit.Kernels(m, "features.0", vizkit.AtLayer("x"))), "it takes: KernelOptions"},
		{"twice", second(vizkit.GradCAM(m, img, vizkit.AtLayer("features.11"), vizkit.AtLayer("features.1"))), "given twice"},
		{"nil image", second(vizkit.GradCAM(m, nil)), "nil image"},
		{"unknown layer", second(vizkit.FeatureMaps(m, img, "features.99")), "features.99"},
		{"bad spec", second(vizkit.Open("vgg12")), "not an architecture"},
		{"Open with Guided", second(vizkit.Open("random", vizkit.Guided())), "does not take the option Guided"},
		{"missing file", second(vizkit.LoadImage("no/such/picture.jpg")), "picture.jpg"},
		{"ActMax without channels", second(vizkit.ActMax(m, "features.11")), "at least one channel"},
		{"Kernels with a bad style", second(vizkit.Kernels(m, "features.0", vizkit.KernelStyle{Scale: -2})), "must not be negative"},
		{"FeatureMaps with a bad style", second(vizkit.FeatureMaps(m, img, "features.1", vizkit.FeatureStyle{Alpha: 2})), "Alpha"},
		{"FeatureMaps with a KernelStyle", second(vizkit.FeatureMaps(m, img, "features.1", vizkit.KernelStyle{})), "it takes: TopChannels, FeatureOptions, FeatureStyle"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// Style values given to the façade become the result's Style, and draw the
// same pictures as the style set afterwards; the selection is unaffected.
func TestFacadeStyles(t *testing.T) {
	m, _, img := labModel(t)
	ks := vizkit.KernelStyle{Norm: vizkit.NormShared, Diverging: true, Scale: 6, Cols: 4, NoCaptions: true}
	k, err := vizkit.Kernels(m, "features.0", vizkit.KernelOptions{MaxOut: 8, SortByNorm: true}, ks)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := vizkit.Kernels(m, "features.0", vizkit.KernelOptions{MaxOut: 8, SortByNorm: true})
	if err != nil {
		t.Fatal(err)
	}
	if k.Style != ks || plain.Style != (vizkit.KernelStyle{}) {
		t.Fatalf("kernel styles %+v and %+v", k.Style, plain.Style)
	}
	a, err := k.Image()
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.WithStyle(ks).Image()
	if err != nil {
		t.Fatal(err)
	}
	c, err := plain.Image()
	if err != nil {
		t.Fatal(err)
	}
	if !a.Bounds().Eq(b.Bounds()) || string(a.Pix) != string(b.Pix) {
		t.Fatal("Kernels(…, style) and WithStyle(style) draw different pictures")
	}
	if a.Bounds().Eq(c.Bounds()) && string(a.Pix) == string(c.Pix) {
		t.Fatal("the style changed nothing")
	}
	fs := vizkit.FeatureStyle{Norm: vizkit.NormShared, Colormap: render.Magma, Scale: 3, Cols: 2, Alpha: 0.7}
	fm, err := vizkit.FeatureMaps(m, img, "features.1", vizkit.TopChannels(4), fs)
	if err != nil {
		t.Fatal(err)
	}
	fplain, err := vizkit.FeatureMaps(m, img, "features.1", vizkit.TopChannels(4))
	if err != nil {
		t.Fatal(err)
	}
	if fm.Style != fs || fm.Image == nil || fplain.Style != (vizkit.FeatureStyle{}) {
		t.Fatalf("feature styles %+v, %+v; image %v", fm.Style, fplain.Style, fm.Image != nil)
	}
	if fmt.Sprint(fm.Layers[0].Channels) != fmt.Sprint(fplain.Layers[0].Channels) {
		t.Fatalf("the style changed the selection: %v vs %v", fm.Layers[0].Channels, fplain.Layers[0].Channels)
	}
	for _, draw := range []func(*vizkit.FeatureMapsResult) (*image.RGBA, error){
		func(r *vizkit.FeatureMapsResult) (*image.RGBA, error) { return r.Grid("features.1") },
		func(r *vizkit.FeatureMapsResult) (*image.RGBA, error) { return r.Overlay("features.1", -1, nil) },
	} {
		a, err := draw(fm)
		if err != nil {
			t.Fatal(err)
		}
		b, err := draw(fplain.WithStyle(fs))
		if err != nil {
			t.Fatal(err)
		}
		if !a.Bounds().Eq(b.Bounds()) || string(a.Pix) != string(b.Pix) {
			t.Fatal("FeatureMaps(…, style) and WithStyle(style) draw different pictures")
		}
	}
	checkHTML(t, "styled FeatureMaps", fm, "one shared range")
}

// Long calls report through the one Progress type: to WithProgress, or to
// the notebook's progress bars when none is given.
func TestFacadeProgress(t *testing.T) {
	m, _, img := labModel(t)
	var got []vizkit.Progress
	if _, err := vizkit.ScoreCAM(m, img, vizkit.AtLayer("features.4"), vizkit.WithProgress(func(p vizkit.Progress) { got = append(got, p) })); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1].Done != got[len(got)-1].Total || got[0].Task == "" {
		t.Fatalf("Score-CAM progress: %+v", got)
	}
	nbk := &fakeNotebook{}
	vizkit.SetNotebook(nbk)
	defer vizkit.SetNotebook(nil)
	if _, err := vizkit.SmoothGrad(m, img, vizkit.Samples(4)); err != nil {
		t.Fatal(err)
	}
	if len(nbk.progress) == 0 || nbk.progress[len(nbk.progress)-1].Done != 4 {
		t.Fatalf("SmoothGrad's notebook progress: %+v", nbk.progress)
	}
	nbk.progress = nil
	am, err := vizkit.ActMaxOf(m, []vizkit.Target{engine.ChannelMean("features.11", 3)}, vizkit.Steps(3), vizkit.Size(32),
		vizkit.WithActMax(actmax.Options{Seed: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if len(am.History) != 3 || am.Pixels.Shape[2] != 32 {
		t.Fatalf("ActMaxOf ran %d steps at %v", len(am.History), am.Pixels.Shape)
	}
	if n := len(nbk.progress); n != 3 || nbk.progress[n-1].Done != 3 || nbk.progress[n-1].Total != 3 {
		t.Fatalf("ActMaxOf's notebook progress: %+v", nbk.progress)
	}
	if _, err := vizkit.ActMaxOf(m, []vizkit.Target{engine.ChannelMean("features.11", 3)}, vizkit.Steps(1), vizkit.Size(32),
		vizkit.DisplayChannels(0, 5)); err == nil || !strings.Contains(err.Error(), "display channels") {
		t.Fatalf("ActMaxOf with 2 display channels: %v", err)
	}
	checkHTML(t, "ActMax", am)
}

// Open on an architecture name without pretrained weights at hand gives a
// random VGG11 that says so, and shows the banner in a notebook.
func TestOpenRandomVGG11(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a full-size VGG11")
	}
	nbk := &fakeNotebook{}
	vizkit.SetNotebook(nbk)
	defer vizkit.SetNotebook(nil)
	t.Setenv("HF_HUB_OFFLINE", "1")
	m, err := vizkit.Open("vgg11", vizkit.Offline(), vizkit.Seed(3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info.Random {
		if m.Info.Reason == "" || len(nbk.shown) != 1 || !strings.Contains(nbk.shown[0], "RANDOM WEIGHTS") {
			t.Fatalf("random weights without a reason or banner: %+v, shown %q", m.Info, nbk.shown)
		}
		// The model card does not repeat the banner Open already showed.
		checkHTMLNoImage(t, m, "vgg11: 1000 classes")
		if card, _ := m.HTML(); strings.Contains(card, "RANDOM WEIGHTS") {
			t.Fatal("the model card repeats the banner")
		}
	}
	img, err := vizkit.LoadImage("../testdata/images/chelsea.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cr, err := vizkit.GradCAM(m, img)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Layers[0] != "features.20" || cr.Map.Shape[1] != 224 {
		t.Fatalf("Grad-CAM at %v, map %v", cr.Layers, cr.Map.Shape)
	}
	checkHTML(t, "GradCAM", cr, "features.20")
	top, err := vizkit.TopK(m, img, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Classes) != 5 || top.Classes[0].Class != cr.Classes[0] {
		t.Fatalf("top-5 %+v vs Grad-CAM's class %d", top.Classes, cr.Classes[0])
	}
}

func checkHTMLNoImage(t *testing.T, h vizkit.HTMLer, wants ...string) {
	t.Helper()
	s, err := h.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("HTML lacks %q: %s", w, s)
		}
	}
}

// The tables and comparisons the notebooks show, on the lab network.
func TestFacadeTablesOnTheLabNetwork(t *testing.T) {
	m, s, img := labModel(t)
	kn, err := vizkit.KernelNorms(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(kn.Rows) != 5 || kn.Rows[0][0] != "features.0" {
		t.Fatalf("kernel norms rows %v", kn.Rows)
	}
	rf, err := vizkit.ReceptiveFields(m, img)
	if err != nil {
		t.Fatal(err)
	}
	// smallcnn: 3×3 convs, two 2×2 max-pools: the first ReLU sees 3×3 px.
	if rf.Rows[0][4] != "3×3 px" || len(rf.Figure) != len(rf.Rows) {
		t.Fatalf("receptive fields %v", rf.Rows)
	}
	sp, err := vizkit.Sparsity(m, img)
	if err != nil {
		t.Fatal(err)
	}
	checkHTMLNoImage(t, sp, "values = 0", "features.1")
	steps, err := vizkit.GradCAMSteps(m, img)
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, "GradCAMSteps", steps, "weight w_c", s.Class())
	cmp, err := vizkit.CompareCAM(m, img, append(vizkit.Methods("gradcam", "cam", "nosuchcam"), vizkit.AtLayers("features.4", "features.4,features.11")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Results) != 4 || len(cmp.Failed) != 1 || !strings.Contains(cmp.Failed[0], "nosuchcam") {
		t.Fatalf("comparison: %d results, failed %v", len(cmp.Results), cmp.Failed)
	}
	checkHTML(t, "CompareCAM", cmp, "Not shown — nosuchcam")
	if cmp.Labels[3] != "features.4+features.11" {
		t.Fatalf("labels %q", cmp.Labels)
	}
	if _, err := vizkit.CompareCAM(m, img, vizkit.Methods("nosuchcam")...); err == nil {
		t.Fatal("a comparison of failures succeeded")
	}
}

// Captions say what differs: the method when methods differ, the class when
// one method explains several classes.
func TestCompareCAMLabels(t *testing.T) {
	m, _, img := labModel(t)
	cmp, err := vizkit.CompareCAM(m, img, vizkit.With(vizkit.Methods("gradcam", "layercam"), vizkit.AtLayer("features.11"))...)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Labels[0] != "Grad-CAM" || cmp.Labels[1] != "LayerCAM" {
		t.Fatalf("method labels %q", cmp.Labels)
	}
	cmp, err = vizkit.CompareCAM(m, img, vizkit.ForClasses(0, 3)...)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Labels[0] != shapes.Classes[0] || cmp.Labels[1] != shapes.Classes[3] {
		t.Fatalf("class labels %q", cmp.Labels)
	}
}

// GradientAscent is FlashTorch's recipe: pixel parameterisation, normalised
// steps, no regularisation; it must raise every requested filter's mean
// activation well above its value on the initial noise.
func TestGradientAscentFlashTorch(t *testing.T) {
	t.Setenv("CNNVIZ_FAST", "1")
	net, err := vgg.NewRandom("vgg11", 10, 8, 3) // A narrow VGG11, as the actmax tests use.
	if err != nil {
		t.Fatal(err)
	}
	m, err := vizkit.FromNetwork(net)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); net.Close() })
	r, err := vizkit.GradientAscent(m, "features.8", 3, 17) // a conv layer, as FlashTorch's features[24]
	if err != nil {
		t.Fatal(err)
	}
	if r.Param != actmax.ParamPixel || r.Optimizer != actmax.OptimizerNormalized {
		t.Fatalf("param %s optimizer %s, want FlashTorch's pixel/normalised", r.Param, r.Optimizer)
	}
	if got := r.Input.Shape; len(got) != 4 || got[0] != 2 || got[2] != 112 || got[3] != 112 {
		t.Fatalf("input shape %v, want (2,3,112,112) with CNNVIZ_FAST", got)
	}
	for i := range r.Scores {
		if !(r.Scores[i] > r.InitialScores[i]+0.1*(1+abs32(r.InitialScores[i]))) {
			t.Errorf("filter %d: activation %v → %v, not raised", i, r.InitialScores[i], r.Scores[i])
		}
	}
	if _, err := vizkit.GradientAscent(m, "features.9"); err == nil {
		t.Error("no channels accepted")
	}
	if _, err := vizkit.GradientAscent(m, "features.8", 999); err == nil {
		t.Error("channel 999 of a 32-channel layer accepted")
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestFacadeWholeAttrOptions: WithSmoothGradOptions and WithIGOptions pass
// whole attr options; the short options override their fields.
func TestFacadeWholeAttrOptions(t *testing.T) {
	m, _, img := labModel(t)
	sg, err := vizkit.SmoothGrad(m, img, vizkit.WithSmoothGradOptions(attr.SmoothGradOptions{Samples: 2, Seed: 5, BatchSize: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if sg.Samples != 2 {
		t.Errorf("SmoothGrad samples %d, want 2 from WithSmoothGradOptions", sg.Samples)
	}
	checkHTML(t, "SmoothGrad", sg)
	ig, err := vizkit.IntegratedGradients(m, img, vizkit.WithIGOptions(attr.IGOptions{Steps: 8, Baseline: attr.IGBaselineZeros}), vizkit.Steps(3))
	if err != nil {
		t.Fatal(err)
	}
	if ig.Steps != 3 || ig.BaselineName != attr.IGBaselineZeros {
		t.Errorf("IG steps %d baseline %q, want 3 (Steps overrides) and zeros", ig.Steps, ig.BaselineName)
	}
	if _, err := vizkit.Saliency(m, img, vizkit.WithIGOptions(attr.IGOptions{})); err == nil || !strings.Contains(err.Error(), "does not take the option WithIGOptions") {
		t.Errorf("Saliency with WithIGOptions: %v", err)
	}
}
