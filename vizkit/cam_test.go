package vizkit

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

func gapExplainer(t *testing.T, g *gapNet) *engine.Explainer {
	t.Helper()
	ex, err := engine.NewExplainer(g, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.Close)
	return ex
}

// checkCAMShapes checks a result's shapes and value ranges.
func checkCAMShapes(t *testing.T, what string, r *cam.Result, n, h, w int) {
	t.Helper()
	if !slices.Equal(r.Map.Shape, []int{n, h, w}) || len(r.Flat) != n || len(r.Classes) != n || len(r.Scores) != n {
		t.Fatalf("%s: map %v, flat %d, classes %d, scores %d; want (%d,%d,%d)", what, r.Map.Shape, len(r.Flat), len(r.Classes), len(r.Scores), n, h, w)
	}
	for i, v := range r.Map.Data {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("%s: map value %v at %d outside [0,1]", what, v, i)
		}
	}
	for i := 0; i < n; i++ {
		m := r.Map.Index(i).Data
		lo, hi := m[0], m[0]
		for _, v := range m {
			lo, hi = min(lo, v), max(hi, v)
		}
		if r.Flat[i] != (lo == hi) || (r.Flat[i] && hi != 0) || (!r.Flat[i] && (lo != 0 || hi < 0.99)) {
			t.Fatalf("%s: example %d flat=%v with range [%v,%v]", what, i, r.Flat[i], lo, hi)
		}
	}
	for l, a := range r.Low {
		if a.Rank() != 3 || a.Shape[0] != n || !slices.Equal(a.Shape, r.Raw[l].Shape) {
			t.Fatalf("%s: low %s %v raw %v", what, l, a.Shape, r.Raw[l].Shape)
		}
		if err := a.CheckFinite("low"); err != nil {
			t.Fatal(err)
		}
	}
	for l, wts := range r.Weights {
		if wts.Rank() != 2 || wts.Shape[0] != n {
			t.Fatalf("%s: weights %s shape %v", what, l, wts.Shape)
		}
	}
}

// TestCAMMatrix is pytorch-grad-cam's test_run_all_models in spirit: every
// method × batch {1, 2} × {square, non-square} × eigen_smooth {off, on} on
// the tiny VGG gives the right shapes, values in [0,1] and no NaN; a batch of
// two, with one target per example, gives each example's single-image map.
func TestCAMMatrix(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	for _, size := range [][2]int{{64, 64}, {48, 80}} {
		x2 := vtest.RandomArray(11, 2, 3, size[0], size[1])
		singles := []*Array{{Shape: []int{1, 3, size[0], size[1]}, Data: x2.Index(0).Data}, {Shape: []int{1, 3, size[0], size[1]}, Data: x2.Index(1).Data}}
		classes := []int{3, 6}
		for _, name := range cam.Names() {
			for _, eigen := range []bool{false, true} {
				what := fmt.Sprintf("%s %dx%d eigen=%v", name, size[0], size[1], eigen)
				opts := cam.Options{Method: name, EigenSmooth: eigen, Target: engine.Class(classes...)}
				r2, err := cam.Compute(context.Background(), ex, x2, opts)
				if name == "cam" {
					if err == nil || !strings.Contains(err.Error(), "global average pooling") || !strings.Contains(err.Error(), "gradcam") {
						t.Fatalf("%s on VGG: want a clear error, got %v", what, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				checkCAMShapes(t, what, r2, 2, size[0], size[1])
				if r2.Classes[0] != 3 || r2.Classes[1] != 6 {
					t.Fatalf("%s: classes %v", what, r2.Classes)
				}
				if name != "fullgrad" && (!r2.AutoLayer || r2.Layers[0] != "features.20") {
					t.Fatalf("%s: layers %v auto %v", what, r2.Layers, r2.AutoLayer)
				}
				for i, x1 := range singles {
					opts.Target = engine.Class(classes[i])
					r1, err := cam.Compute(context.Background(), ex, x1, opts)
					if err != nil {
						t.Fatalf("%s single %d: %v", what, i, err)
					}
					checkCAMShapes(t, what, r1, 1, size[0], size[1])
					vtest.AssertClose(t, what+fmt.Sprintf(" example %d vs batch", i), r1.Map, &Array{Shape: []int{1, size[0], size[1]}, Data: r2.Map.Index(i).Data}, 1e-4)
				}
			}
		}
	}
}

func TestCAMOriginalOnGAPNetwork(t *testing.T) {
	g := newGAPNet(16, 5, 1, false)
	ex := gapExplainer(t, g)
	x := vtest.RandomArray(2, 2, 3, 24, 20)
	if l, _ := cam.DefaultLayer(g); l != "features.4" {
		t.Fatalf("default layer %q", l)
	}
	cr, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Target: engine.Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "cam", cr, 2, 24, 20)
	// Weights are the fc rows of the targets.
	for i, k := range []int{1, 4} {
		got := cr.Weights["features.4"].Index(i).Data
		want := g.host["fc.weight"][k*16 : (k+1)*16]
		for c := range want {
			if got[c] != want[c] {
				t.Fatalf("example %d channel %d: weight %v, fc %v", i, c, got[c], want[c])
			}
		}
	}
	// On GAP + linear, Grad-CAM's weights are W[k]/(h·w): the same map.
	gc, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Target: engine.Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	hw := float32(12 * 10)
	for i := 0; i < 2; i++ {
		for c, w := range cr.Weights["features.4"].Index(i).Data {
			if d := math.Abs(float64(gc.Weights["features.4"].Index(i).Data[c]*hw - w)); d > 1e-5 {
				t.Fatalf("Grad-CAM weight·hw differs from CAM weight by %v", d)
			}
		}
	}
	vtest.AssertClose(t, "CAM vs Grad-CAM map", gc.Map, cr.Map, 1e-5)
	// Ablation on GAP + linear is closed form: y − y_c = W[k,c]·mean(A_c).
	ab, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "ablationcam", Target: engine.Class(1, 4), BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := ex.Run(x, engine.Request{Taps: []string{"features.4"}, Target: engine.Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []int{1, 4} {
		a := acts.Acts["features.4"].Index(i).Data
		y := float64(acts.Scores[i])
		for c := 0; c < 16; c++ {
			mean := 0.0
			for _, v := range a[c*hw2(12, 10) : (c+1)*hw2(12, 10)] {
				mean += float64(v)
			}
			mean /= 120
			want := float64(g.host["fc.weight"][k*16+c]) * mean / y
			if got := float64(ab.Weights["features.4"].Index(i).Data[c]); math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
				t.Fatalf("ablation weight example %d channel %d: %v, closed form %v", i, c, got, want)
			}
		}
	}
	// FullGrad reads conv biases through Network.Weight.
	fg, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "fullgrad", Target: engine.Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "fullgrad", fg, 2, 24, 20)
	if strings.Join(fg.Layers, ",") != "features.0,features.3" {
		t.Fatalf("fullgrad layers %v", fg.Layers)
	}
	// CAM's restrictions.
	if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Target: engine.SoftmaxOf(1)}); err == nil || !strings.Contains(err.Error(), "not a class logit") {
		t.Fatalf("softmax target: %v", err)
	}
	if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Layers: []string{"features.1"}}); err == nil || !strings.Contains(err.Error(), `"features.4"`) {
		t.Fatalf("wrong layer: %v", err)
	}
}

func hw2(h, w int) int { return h * w }

// TestCAMDeadNetwork: all-zero activations and gradients give all-zero maps
// flagged Flat, never NaN, for every method (EigenCAM included).
func TestCAMDeadNetwork(t *testing.T) {
	ex := gapExplainer(t, newGAPNet(8, 3, 5, true))
	x := vtest.RandomArray(3, 1, 3, 16, 16)
	for _, name := range cam.Names() {
		for _, eigen := range []bool{false, true} {
			r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, EigenSmooth: eigen})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkCAMShapes(t, name, r, 1, 16, 16)
			if !r.Flat[0] {
				t.Fatalf("%s eigen=%v: dead network not flagged flat", name, eigen)
			}
		}
	}
}

func TestCAMProgressCancelAndBatchSize(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(4, 1, 3, 64, 64)
	for _, name := range []string{"scorecam", "ablationcam"} {
		var seen []engine.Progress
		ref, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, Progress: func(p engine.Progress) { seen = append(seen, p) }})
		if err != nil {
			t.Fatal(err)
		}
		last := seen[len(seen)-1]
		if last.Total != 32 || last.Done != 32 || last.Task != name+" at features.20" {
			t.Fatalf("%s progress %+v", name, seen)
		}
		// A batch size that does not divide 32 (padded last batch) gives the same map.
		r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, BatchSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, name+" batch 5 vs default", r.Raw["features.20"], ref.Raw["features.20"], 1e-5)
		// Cancellation after the first batch.
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err = cam.Compute(ctx, ex, x, cam.Options{Method: name, BatchSize: 4, Progress: func(engine.Progress) { calls++; cancel() }})
		if !errors.Is(err, context.Canceled) || calls != 1 || !strings.Contains(err.Error(), "after 4 of 32") {
			t.Fatalf("%s cancel: calls %d, err %v", name, calls, err)
		}
		// With aug smoothing the total covers the 6 augmentations.
		seen = nil
		if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, AugSmooth: true, Progress: func(p engine.Progress) { seen = append(seen, p) }}); err != nil {
			t.Fatal(err)
		}
		if last := seen[len(seen)-1]; last.Total != 6*32 || last.Done != last.Total {
			t.Fatalf("%s aug progress %+v", name, last)
		}
	}
	if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "scorecam", BatchSize: -1}); err == nil || !strings.Contains(err.Error(), "BatchSize") {
		t.Fatalf("negative batch: %v", err)
	}
}

func TestCAMRendering(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(8, 1, 3, 64, 64)
	base := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range base.Pix {
		base.Pix[i] = uint8(i * 7)
	}
	var results []*CAMResult
	for _, name := range []string{"gradcam", "eigencam", "layercam"} {
		r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, Target: engine.Class(3)})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, &CAMResult{Result: r})
	}
	r := results[0]
	ov, err := r.Overlay(0, base, CAMStyle{})
	if err != nil || ov.Bounds().Dx() != 64 {
		t.Fatalf("overlay: %v", err)
	}
	m, _ := r.MapOf(0)
	want, _ := render.Overlay(base, m, render.Jet, 0.5)
	if string(want.Pix) != string(ov.Pix) {
		t.Fatal("default style is not JET at 0.5")
	}
	vir, err := r.Overlay(0, base, CAMStyle{Colormap: render.Viridis, HeatWeight: 0.7})
	if err != nil || string(vir.Pix) == string(ov.Pix) {
		t.Fatalf("viridis overlay: %v", err)
	}
	if _, err := r.Overlay(0, base, CAMStyle{HeatWeight: 2}); err == nil {
		t.Fatal("HeatWeight 2 accepted")
	}
	if _, err := r.Overlay(1, base, CAMStyle{}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("example 1: %v", err)
	}
	html, err := r.View(CAMStyle{}, base).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.View(CAMStyle{HeatWeight: 2}, base).HTML(); err == nil {
		t.Fatal("a view with HeatWeight 2 rendered")
	}
	var _ HTMLer = r
	r.Images = []image.Image{base}
	if def, err := r.HTML(); err != nil || def != html {
		t.Fatalf("HTML() with Images set differs from View(CAMStyle{}, base): %v", err)
	}
	for _, s := range []string{"Grad-CAM", "features.20 (chosen automatically)", "data:image/png;base64,", "class 3"} {
		if !strings.Contains(html, s) {
			t.Fatalf("HTML lacks %q", s)
		}
	}
	grid, err := CompareCAMs(base, results, 0, CAMStyle{Cols: 2})
	if err != nil {
		t.Fatal(err)
	}
	if b := grid.Bounds(); b.Dx() < 2*64 || b.Dy() < 2*64 {
		t.Fatalf("grid %v", b)
	}
	if grid.RGBAAt(0, 0) != (color.RGBA{255, 255, 255, 255}) {
		t.Fatal("grid background")
	}
	if _, err := CompareCAMs(base, nil, 0, CAMStyle{}); err == nil {
		t.Fatal("empty comparison accepted")
	}
}
