package vizkit

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/render"
	"github.com/gomlx/gomlx/core/graph"
)

func goldenExplainer(t *testing.T, file string) *Explainer {
	t.Helper()
	m := loadGoldenModel(t, file)
	ex, err := NewExplainer(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); m.Close() })
	return ex
}

func gapExplainer(t *testing.T, g *gapNet) *Explainer {
	t.Helper()
	ex, err := NewExplainer(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.Close)
	return ex
}

// checkCAMShapes checks a result's shapes and value ranges.
func checkCAMShapes(t *testing.T, what string, r *CAMResult, n, h, w int) {
	t.Helper()
	if !sameDims(r.Map.Shape, []int{n, h, w}) || len(r.Flat) != n || len(r.Classes) != n || len(r.Scores) != n {
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
		if a.Rank() != 3 || a.Shape[0] != n || !sameDims(a.Shape, r.Raw[l].Shape) {
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
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	for _, size := range [][2]int{{64, 64}, {48, 80}} {
		x2 := randomArray(11, 2, 3, size[0], size[1])
		singles := []*Array{{Shape: []int{1, 3, size[0], size[1]}, Data: x2.Index(0).Data}, {Shape: []int{1, 3, size[0], size[1]}, Data: x2.Index(1).Data}}
		classes := []int{3, 6}
		for _, name := range CAMMethodNames() {
			for _, eigen := range []bool{false, true} {
				what := fmt.Sprintf("%s %dx%d eigen=%v", name, size[0], size[1], eigen)
				opts := CAMOptions{Method: name, EigenSmooth: eigen, Target: Class(classes...)}
				r2, err := ex.CAM(x2, opts)
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
					opts.Target = Class(classes[i])
					r1, err := ex.CAM(x1, opts)
					if err != nil {
						t.Fatalf("%s single %d: %v", what, i, err)
					}
					checkCAMShapes(t, what, r1, 1, size[0], size[1])
					assertClose(t, what+fmt.Sprintf(" example %d vs batch", i), r1.Map, &Array{Shape: []int{1, size[0], size[1]}, Data: r2.Map.Index(i).Data}, 1e-4)
				}
			}
		}
	}
}

func TestCAMOriginalOnGAPNetwork(t *testing.T) {
	g := newGAPNet(16, 5, 1, false)
	ex := gapExplainer(t, g)
	x := randomArray(2, 2, 3, 24, 20)
	if l, _ := DefaultCAMLayer(g); l != "features.4" {
		t.Fatalf("default layer %q", l)
	}
	cam, err := ex.CAM(x, CAMOptions{Method: "cam", Target: Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "cam", cam, 2, 24, 20)
	// Weights are the fc rows of the targets.
	for i, k := range []int{1, 4} {
		got := cam.Weights["features.4"].Index(i).Data
		want := g.host["fc.weight"][k*16 : (k+1)*16]
		for c := range want {
			if got[c] != want[c] {
				t.Fatalf("example %d channel %d: weight %v, fc %v", i, c, got[c], want[c])
			}
		}
	}
	// On GAP + linear, Grad-CAM's weights are W[k]/(h·w): the same map.
	gc, err := ex.CAM(x, CAMOptions{Method: "gradcam", Target: Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	hw := float32(12 * 10)
	for i := 0; i < 2; i++ {
		for c, w := range cam.Weights["features.4"].Index(i).Data {
			if d := math.Abs(float64(gc.Weights["features.4"].Index(i).Data[c]*hw - w)); d > 1e-5 {
				t.Fatalf("Grad-CAM weight·hw differs from CAM weight by %v", d)
			}
		}
	}
	assertClose(t, "CAM vs Grad-CAM map", gc.Map, cam.Map, 1e-5)
	// Ablation on GAP + linear is closed form: y − y_c = W[k,c]·mean(A_c).
	ab, err := ex.CAM(x, CAMOptions{Method: "ablationcam", Target: Class(1, 4), BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := ex.Run(x, Request{Taps: []string{"features.4"}, Target: Class(1, 4)})
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
	fg, err := ex.CAM(x, CAMOptions{Method: "fullgrad", Target: Class(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "fullgrad", fg, 2, 24, 20)
	if strings.Join(fg.Layers, ",") != "features.0,features.3" {
		t.Fatalf("fullgrad layers %v", fg.Layers)
	}
	// CAM's restrictions.
	if _, err := ex.CAM(x, CAMOptions{Method: "cam", Target: SoftmaxOf(1)}); err == nil || !strings.Contains(err.Error(), "not a class logit") {
		t.Fatalf("softmax target: %v", err)
	}
	if _, err := ex.CAM(x, CAMOptions{Method: "cam", Layers: []string{"features.1"}}); err == nil || !strings.Contains(err.Error(), `"features.4"`) {
		t.Fatalf("wrong layer: %v", err)
	}
}

func hw2(h, w int) int { return h * w }

// TestCAMDeadNetwork: all-zero activations and gradients give all-zero maps
// flagged Flat, never NaN, for every method (EigenCAM included).
func TestCAMDeadNetwork(t *testing.T) {
	ex := gapExplainer(t, newGAPNet(8, 3, 5, true))
	x := randomArray(3, 1, 3, 16, 16)
	for _, name := range CAMMethodNames() {
		for _, eigen := range []bool{false, true} {
			r, err := ex.CAM(x, CAMOptions{Method: name, EigenSmooth: eigen})
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

func TestFirstPrincipalProjectionClosedForm(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, dims := range [][2]int{{5, 40}, {40, 5}, {7, 7}} { // (C, hw): both Gram branches.
		c, hw := dims[0], dims[1]
		a := make([]float64, c)
		b := make([]float64, c)
		s := make([]float64, hw)
		for i := range a {
			a[i], b[i] = r.NormFloat64(), r.NormFloat64()
		}
		for p := range s {
			s[p] = r.NormFloat64()
		}
		for _, sign := range []float64{1, -1} {
			t2 := make([]float32, c*hw)
			sumA, norm := 0.0, 0.0
			for i := range a {
				sumA += sign * a[i]
				norm += a[i] * a[i]
				for p := range s {
					t2[i*hw+p] = float32(sign*a[i]*s[p] + b[i])
				}
			}
			norm = math.Sqrt(norm)
			mean := 0.0
			for _, v := range s {
				mean += v
			}
			mean /= float64(hw)
			got := FirstPrincipalProjection(t2, c, hw)
			dir := math.Copysign(1, sumA)
			for p := range s {
				want := dir * norm * (s[p] - mean)
				if math.Abs(float64(got[p])-want) > 1e-4*norm {
					t.Fatalf("C=%d hw=%d sign=%v: p=%d got %v want %v", c, hw, sign, p, got[p], want)
				}
			}
		}
	}
	if p := FirstPrincipalProjection(make([]float32, 12), 3, 4); p[0] != 0 || p[3] != 0 {
		t.Fatalf("zero input: %v", p)
	}
	// Eigen-decomposition: A·v = λ·v for every pair.
	n := 9
	m := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			v := r.NormFloat64()
			m[i*n+j], m[j*n+i] = v, v
		}
	}
	vals, vecs := symmetricEigen(m, n)
	for k := 0; k < n; k++ {
		if k > 0 && vals[k] < vals[k-1] {
			t.Fatalf("eigenvalues not ascending: %v", vals)
		}
		for i := 0; i < n; i++ {
			av := 0.0
			for j := 0; j < n; j++ {
				av += m[i*n+j] * vecs[j*n+k]
			}
			if math.Abs(av-vals[k]*vecs[i*n+k]) > 1e-10 {
				t.Fatalf("A·v ≠ λ·v for eigenpair %d", k)
			}
		}
	}
}

func TestCAMProgressCancelAndBatchSize(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(4, 1, 3, 64, 64)
	for _, name := range []string{"scorecam", "ablationcam"} {
		var seen []CAMProgress
		ref, err := ex.CAM(x, CAMOptions{Method: name, Progress: func(p CAMProgress) { seen = append(seen, p) }})
		if err != nil {
			t.Fatal(err)
		}
		last := seen[len(seen)-1]
		if last.Total != 32 || last.Done != 32 || last.Layer != "features.20" || last.Method != name {
			t.Fatalf("%s progress %+v", name, seen)
		}
		// A batch size that does not divide 32 (padded last batch) gives the same map.
		r, err := ex.CAM(x, CAMOptions{Method: name, BatchSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, name+" batch 5 vs default", r.Raw["features.20"], ref.Raw["features.20"], 1e-5)
		// Cancellation after the first batch.
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, err = ex.CAMContext(ctx, x, CAMOptions{Method: name, BatchSize: 4, Progress: func(CAMProgress) { calls++; cancel() }})
		if !errors.Is(err, context.Canceled) || calls != 1 || !strings.Contains(err.Error(), "after 4 of 32") {
			t.Fatalf("%s cancel: calls %d, err %v", name, calls, err)
		}
		// With aug smoothing the total covers the 6 augmentations.
		seen = nil
		if _, err := ex.CAM(x, CAMOptions{Method: name, AugSmooth: true, Progress: func(p CAMProgress) { seen = append(seen, p) }}); err != nil {
			t.Fatal(err)
		}
		if last := seen[len(seen)-1]; last.Total != 6*32 || last.Done != last.Total {
			t.Fatalf("%s aug progress %+v", name, last)
		}
	}
	if _, err := ex.CAM(x, CAMOptions{Method: "scorecam", BatchSize: -1}); err == nil || !strings.Contains(err.Error(), "BatchSize") {
		t.Fatalf("negative batch: %v", err)
	}
}

// TestCAMProperties: closed-form relations between methods and options.
func TestCAMProperties(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(5, 1, 3, 64, 48)
	layers := []string{"features.19"}
	// A target function picking logit 3 is Class(3).
	pick3 := Target{Kind: TargetFunc, Name: "logit 3", Func: func(l *graph.Node) *graph.Node {
		return graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(3, 4)), 1)
	}}
	for _, name := range []string{"gradcam", "scorecam", "ablationcam", "hirescam"} {
		a, err := ex.CAM(x, CAMOptions{Method: name, Layers: layers, Target: Class(3)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := ex.CAM(x, CAMOptions{Method: name, Layers: layers, Target: pick3})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, name+" TargetFunc vs Class", b.Raw["features.19"], a.Raw["features.19"], 1e-5)
		if b.Classes[0] != -1 {
			t.Fatalf("TargetFunc classes %v", b.Classes)
		}
	}
	// The augmentation set is flip-symmetric: aug-smoothed CAM of the mirrored
	// input is the mirrored aug-smoothed CAM.
	xf := x.Clone()
	flipW(xf.Data, 3, 64, 48)
	a, err := ex.CAM(x, CAMOptions{Layers: layers, Target: Class(3), AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ex.CAM(xf, CAMOptions{Layers: layers, Target: Class(3), AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	flipW(b.Map.Data, 1, 64, 48)
	assertClose(t, "aug-smooth flip equivariance", b.Map, a.Map, 1e-5)
	if !a.AugSmooth || a.Flat[0] {
		t.Fatal("aug-smooth flags")
	}
	// Top-1 default: resolved on the un-augmented input.
	top, err := ex.Run(x, Request{Target: Predicted()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ex.CAM(x, CAMOptions{AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Classes[0] != top.Classes[0] || !d.AutoLayer {
		t.Fatalf("default target class %d, top-1 %d", d.Classes[0], top.Classes[0])
	}
	// Two layers: the mean of each layer's scaled, resized map, scaled again.
	both, err := ex.CAM(x, CAMOptions{Layers: []string{"features.19", "features.20"}, Target: Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	m19, _ := ex.CAM(x, CAMOptions{Layers: []string{"features.19"}, Target: Class(3)})
	m20, _ := ex.CAM(x, CAMOptions{Layers: []string{"features.20"}, Target: Class(3)})
	assertClose(t, "per-layer raw", both.Raw["features.20"], m20.Raw["features.20"], 1e-6)
	mean := NewArray(1, 64, 48)
	for i := range mean.Data {
		mean.Data[i] = (m19.Map.Data[i] + m20.Map.Data[i]) / 2 // Each single-layer map is its scaled resize.
	}
	lo, hi := mean.Data[0], mean.Data[0]
	for _, v := range mean.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	for i := range mean.Data {
		mean.Data[i] = (mean.Data[i] - lo) / (hi - lo)
	}
	assertClose(t, "two-layer mean", both.Map, mean, 1e-5)
}

func TestCAMErrorsAndNotes(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(6, 1, 3, 64, 64)
	for _, tc := range []struct {
		opts CAMOptions
		want string
	}{
		{CAMOptions{Method: "scorecam", Layers: []string{"classifier.1"}}, "spatial extent"},
		{CAMOptions{Method: "eigencam", Layers: []string{"features.19", "features.19"}}, "listed twice"},
		{CAMOptions{Method: "layercam", Layers: []string{"features.99"}}, "valid layers"},
		{CAMOptions{Method: "gradcampp", Target: Class(10)}, "class index 10 is out of range"},
		{CAMOptions{Method: "xgradcam", Target: Class(1, 2)}, "2 classes for a batch of 1"},
	} {
		if _, err := ex.CAM(x, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: got %v, want error containing %q", tc.opts, err, tc.want)
		}
	}
	if _, err := ex.CAM(NewArray(1, 3, 8, 8), CAMOptions{}); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("tiny input: %v", err)
	}
	if _, err := ex.CAM(nil, CAMOptions{}); err == nil {
		t.Fatal("nil input accepted")
	}
	r, err := ex.CAM(x, CAMOptions{Method: "fullgrad", Layers: []string{"features.19"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "ignores the requested layers") {
		t.Fatalf("notes %v", r.Notes)
	}
	if err := RegisterCAMMethod(&CAMMethod{Name: "gradcam", Weights: gradCAMWeights}); err == nil {
		t.Fatal("duplicate registration accepted")
	}
	if err := RegisterCAMMethod(&CAMMethod{Name: "both", Weights: gradCAMWeights, Raw: gradCAMWeights}); err == nil {
		t.Fatal("two functions accepted")
	}
	// Random-init VGG: zero biases are reported by FullGrad.
	rnd := tinyExplainer(t, "vgg11")
	r, err = rnd.CAM(NewArray(1, 3, 32, 32), CAMOptions{Method: "fullgrad"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Notes, " "), "every bias of the model is 0") || !r.Flat[0] {
		t.Fatalf("zero-bias notes %v flat %v", r.Notes, r.Flat)
	}
}

// TestFullGradBatchNormBias: the effective BN bias equals
// β − μ·γ/√(σ²+ε) computed from the checkpoint.
func TestFullGradBatchNormBias(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11_bn.safetensors")
	w, err := weights.LoadSafetensors(filepath.Join(goldenDir, "tinyvgg11_bn.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	bl, skipped, err := fullGradBiases(ex)
	if err != nil {
		t.Fatal(err)
	}
	if len(bl) != 16 || len(skipped) != 0 {
		t.Fatalf("%d bias layers, skipped %v", len(bl), skipped)
	}
	bn := 0
	for _, b := range bl {
		l, _ := ex.Layer(b.name)
		if l.Kind != models.BatchNorm2d {
			continue
		}
		bn++
		get := func(f string) []float32 { return w.Tensors[b.name+"."+f].Data }
		g, be, mu, v := get("weight"), get("bias"), get("running_mean"), get("running_var")
		for c := range b.bias {
			want := float64(be[c]) - float64(mu[c])*float64(g[c])/math.Sqrt(float64(v[c])+1e-5)
			if math.Abs(float64(b.bias[c])-want) > 1e-5 {
				t.Fatalf("%s channel %d: bias %v want %v", b.name, c, b.bias[c], want)
			}
		}
	}
	if bn != 8 {
		t.Fatalf("%d BatchNorm bias layers, want 8", bn)
	}
	r, err := ex.CAM(randomArray(7, 1, 3, 64, 64), CAMOptions{Method: "fullgrad", Target: Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "fullgrad bn", r, 1, 64, 64)
}

func TestCAMRendering(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(8, 1, 3, 64, 64)
	base := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range base.Pix {
		base.Pix[i] = uint8(i * 7)
	}
	var results []*CAMResult
	for _, name := range []string{"gradcam", "eigencam", "layercam"} {
		r, err := ex.CAM(x, CAMOptions{Method: name, Target: Class(3)})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
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
