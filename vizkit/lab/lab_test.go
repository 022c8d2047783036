package lab

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
)

var (
	labOnce sync.Once
	shared  *Lab
	openErr error
)

// openLab shares one Lab (committed weights) between the tests.
func openLab(t *testing.T) *Lab {
	t.Helper()
	labOnce.Do(func() { shared, openErr = Open() })
	if openErr != nil {
		t.Fatal(openErr)
	}
	return shared
}

func gradCAMMaps(t *testing.T, l *Lab, x *vizkit.Array) *vizkit.Array {
	t.Helper()
	m, err := LookupMethod("gradcam")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := m.Maps(context.Background(), l.Ex, x)
	if err != nil {
		t.Fatal(err)
	}
	return maps
}

// TestGradCAMPointsAtTheObject: with the committed weights, the held-out
// accuracy is ≥ 95 % and Grad-CAM's maximum lies inside the true box for
// ≥ 90 % of 200 held-out images.
func TestGradCAMPointsAtTheObject(t *testing.T) {
	l := openLab(t)
	test, err := TestSet(200)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := l.Accuracy(test)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.95 {
		t.Fatalf("accuracy on 200 held-out images %.3f < 0.95", acc)
	}
	x, _ := Input(test)
	maps := gradCAMMaps(t, l, x)
	hits, energy, area := 0, 0.0, 0.0
	for i, s := range test.Samples {
		box, err := metrics.BoxRegion(s.Size, s.Size, s.Box)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := metrics.PointingGame(maps.Index(i), box, 0)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Hit {
			hits++
		}
		e, _ := metrics.EnergyInRegion(maps.Index(i), box)
		energy += e / 200
		area += box.Area() / 200
	}
	t.Logf("accuracy %.3f, Grad-CAM pointing %d/200, energy in box %.3f (box area %.3f)", acc, hits, energy, area)
	if hits < 180 {
		t.Fatalf("Grad-CAM pointing game %d/200 < 90 %%", hits)
	}
	if energy < 2*area {
		t.Fatalf("Grad-CAM energy in the box %.3f is not well above chance (%.3f)", energy, area)
	}
}

// TestGradCAMBeatsRandomMap: deleting the pixels Grad-CAM ranks first
// destroys the class score faster than deleting random pixels, and inserting
// them restores it faster.
func TestGradCAMBeatsRandomMap(t *testing.T) {
	l := openLab(t)
	test, err := TestSet(40)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := Input(test)
	cam := gradCAMMaps(t, l, x)
	rnd := metrics.RandomMaps(40, test.Size, test.Size, 11)
	ctx := context.Background()
	opts := metrics.CausalOptions{Steps: 16, Options: metrics.Options{BatchSize: 128}}
	auc := map[string][2]float64{}
	for name, m := range map[string]*vizkit.Array{"gradcam": cam, "random": rnd} {
		del, err := metrics.Deletion(ctx, l.Ex, x, m, opts)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := metrics.Insertion(ctx, l.Ex, x, m, opts)
		if err != nil {
			t.Fatal(err)
		}
		auc[name] = [2]float64{del.MeanAUC(), ins.MeanAUC()}
	}
	t.Logf("deletion/insertion AUC: Grad-CAM %.3f/%.3f, random %.3f/%.3f", auc["gradcam"][0], auc["gradcam"][1], auc["random"][0], auc["random"][1])
	if !(auc["gradcam"][0] < auc["random"][0]-0.03) {
		t.Errorf("Grad-CAM deletion AUC %.3f not below the random map's %.3f", auc["gradcam"][0], auc["random"][0])
	}
	if !(auc["gradcam"][1] > auc["random"][1]+0.1) {
		t.Errorf("Grad-CAM insertion AUC %.3f not above the random map's %.3f", auc["gradcam"][1], auc["random"][1])
	}
}

// TestCAMFamilyIdentities: on a network ending in global average pooling and
// one linear layer, the gradient of a logit with respect to the last ReLU's
// output is W[class,c]/(h·w) at every position, so Grad-CAM, CAM, HiResCAM
// and XGrad-CAM give the same map, and so do LayerCAM and Grad-CAM
// element-wise (activations are ≥ 0). A closed-form check of the whole
// CAM pipeline on the lab model.
func TestCAMFamilyIdentities(t *testing.T) {
	l := openLab(t)
	test, err := TestSet(6)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := Input(test)
	maps := map[string]*vizkit.Array{}
	for _, name := range []string{"gradcam", "cam", "hirescam", "xgradcam", "layercam", "gradcamelementwise"} {
		r, err := cam.Compute(context.Background(), l.Ex, x, cam.Options{Method: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Layers[0] != "features.11" {
			t.Fatalf("%s used layer %v, want the last ReLU features.11", name, r.Layers)
		}
		maps[name] = r.Map
	}
	for _, pair := range [][2]string{{"gradcam", "cam"}, {"gradcam", "hirescam"}, {"gradcam", "xgradcam"}, {"layercam", "gradcamelementwise"}} {
		a, b := maps[pair[0]], maps[pair[1]]
		worst := 0.0
		for i := range a.Data {
			worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
		}
		if worst > 1e-4 {
			t.Errorf("%s and %s differ by up to %.3g", pair[0], pair[1], worst)
		}
	}
}

func TestMetricsTable(t *testing.T) {
	l := openLab(t)
	test, err := TestSet(8)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	tab, err := l.MetricsTable(context.Background(), test, TableOptions{Methods: []string{"gradcam", "saliency", "random"}, Steps: 8,
		PerturbImages: 4, Progress: func(p TableProgress) { stages = append(stages, p.Method+":"+p.Stage) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 3 || tab.Images != 8 || tab.PerturbImages != 4 || len(stages) != 15 {
		t.Fatalf("%d rows, %d/%d images, stages %v", len(tab.Rows), tab.Images, tab.PerturbImages, stages)
	}
	g, r := tab.Rows[0], tab.Rows[2]
	if g.Err != "" || r.Err != "" {
		t.Fatalf("errors: %q %q", g.Err, r.Err)
	}
	if !(g.Pointing > r.Pointing && g.Energy > r.Energy && g.Insertion > r.Insertion) {
		t.Errorf("Grad-CAM %+v does not beat the random map %+v", g, r)
	}
	md := tab.Markdown()
	for _, want := range []string{"| Method | Family | Pointing ↑", "| Grad-CAM | CAM |", "Random map (chance)", "accuracy on these images"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if txt := tab.Text(); !strings.Contains(txt, "Saliency (vanilla gradient)") {
		t.Errorf("Text:\n%s", txt)
	}
	html, err := tab.HTML()
	if err != nil || !strings.Contains(html, "<table") {
		t.Fatalf("HTML %v", err)
	}
	if _, err := l.MetricsTable(context.Background(), test, TableOptions{Methods: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "gradcam") {
		t.Fatalf("unknown method: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.MetricsTable(ctx, test, TableOptions{Methods: []string{"random"}}); err == nil {
		t.Fatal("cancelled context ignored")
	}
}

// TestMethodsFollowTheRegistry: a CAM method registered in vizkit appears in
// the table's methods without any change here, and a failing method gets a
// row with its error instead of stopping the table.
func TestMethodsFollowTheRegistry(t *testing.T) {
	err := cam.Register(&cam.ChannelWeights{Info: cam.Info{Name: "labtestbroken", Title: "Broken (test)", NeedsGrads: true},
		Weights: func(a, g []float32, c, h, w int) []float32 { return make([]float32, c+1) }})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range Methods() {
		found = found || m.Name == "labtestbroken"
	}
	if !found {
		t.Fatal("registered CAM method missing from Methods()")
	}
	for _, name := range cam.Names() {
		if _, err := LookupMethod(name); err != nil {
			t.Fatal(err)
		}
	}
	l := openLab(t)
	test, _ := TestSet(3)
	tab, err := l.MetricsTable(context.Background(), test, TableOptions{Methods: []string{"labtestbroken", "random"}, Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Rows[0].Err == "" || !math.IsNaN(tab.Rows[0].Deletion) || tab.Rows[1].Err != "" {
		t.Fatalf("rows %+v", tab.Rows)
	}
	if !strings.Contains(tab.Markdown(), "Broken (test) (error)") {
		t.Fatal("failed method not marked in the table")
	}
}

func TestPictures(t *testing.T) {
	l := openLab(t)
	test, err := TestSet(6)
	if err != nil {
		t.Fatal(err)
	}
	g, err := SampleGrid(test.Samples, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Bounds(); b.Dx() < 3*128 || b.Dy() < 2*128 {
		t.Fatalf("sample grid %v", b)
	}
	// The box outline is drawn in BoxColor just outside the object's box.
	one, err := SampleImage(test.Samples[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	bx := test.Samples[0].Box
	if c := one.RGBAAt(2*bx.Min.X-1, 2*bx.Min.Y+3); c.G != 255 || c.R != 0 {
		t.Fatalf("no box outline at the box's left edge: %v", c)
	}
	cg, err := l.CAMGrid(context.Background(), test, "gradcam", 4, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b := cg.Bounds(); b.Dx() < 4*128 {
		t.Fatalf("CAM grid %v", b)
	}
	if _, err := l.CAMGrid(context.Background(), test, "gradcam", 7, 2, 2); err == nil {
		t.Fatal("n > batch accepted")
	}
	if _, err := l.CAMGrid(context.Background(), test, "nope", 2, 2, 2); err == nil {
		t.Fatal("unknown method accepted")
	}
	if _, err := SampleImage(test.Samples[0], 0); err == nil {
		t.Fatal("scale 0 accepted")
	}
	k, err := l.FirstLayerKernels()
	if err != nil || k.Bounds().Dx() < 8*48 {
		t.Fatalf("kernels %v %v", k.Bounds(), err)
	}
}

func TestNewChecksClasses(t *testing.T) {
	m, err := smallcnn.NewRandom(smallcnn.Config{Blocks: []int{4}, NumClasses: 3}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := New(m, engine.Options{}); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Fatalf("3-class model: %v", err)
	}
	if _, err := New(nil, engine.Options{}); err == nil {
		t.Fatal("nil model accepted")
	}
	_ = shapes.NumClasses
}
