package cam

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/gomlx/gomlx/core/graph"
)

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
			got := firstPrincipalProjection(t2, c, hw)
			dir := math.Copysign(1, sumA)
			for p := range s {
				want := dir * norm * (s[p] - mean)
				if math.Abs(float64(got[p])-want) > 1e-4*norm {
					t.Fatalf("C=%d hw=%d sign=%v: p=%d got %v want %v", c, hw, sign, p, got[p], want)
				}
			}
		}
	}
	if p := firstPrincipalProjection(make([]float32, 12), 3, 4); p[0] != 0 || p[3] != 0 {
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

// TestCAMProperties: closed-form relations between methods and options.
func TestCAMProperties(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(5, 1, 3, 64, 48)
	layers := []string{"features.19"}
	// A target function picking logit 3 is engine.Class(3).
	pick3 := engine.Target{Kind: engine.TargetFunc, Name: "logit 3", Func: func(l *graph.Node) *graph.Node {
		return graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(3, 4)), 1)
	}}
	for _, name := range []string{"gradcam", "scorecam", "ablationcam", "hirescam"} {
		a, err := Compute(context.Background(), ex, x, Options{Method: name, Layers: layers, Target: engine.Class(3)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Compute(context.Background(), ex, x, Options{Method: name, Layers: layers, Target: pick3})
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, name+" engine.TargetFunc vs engine.Class", b.Raw["features.19"], a.Raw["features.19"], 1e-5)
		if b.Classes[0] != -1 {
			t.Fatalf("engine.TargetFunc classes %v", b.Classes)
		}
	}
	// The augmentation set is flip-symmetric: aug-smoothed CAM of the mirrored
	// input is the mirrored aug-smoothed CAM.
	xf := x.Clone()
	flipW(xf.Data, 3, 64, 48)
	a, err := Compute(context.Background(), ex, x, Options{Layers: layers, Target: engine.Class(3), AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compute(context.Background(), ex, xf, Options{Layers: layers, Target: engine.Class(3), AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	flipW(b.Map.Data, 1, 64, 48)
	vtest.AssertClose(t, "aug-smooth flip equivariance", b.Map, a.Map, 1e-5)
	if !a.AugSmooth || a.Flat[0] {
		t.Fatal("aug-smooth flags")
	}
	// Top-1 default: resolved on the un-augmented input.
	top, err := ex.Run(x, engine.Request{Target: engine.Predicted()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Compute(context.Background(), ex, x, Options{AugSmooth: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Classes[0] != top.Classes[0] || !d.AutoLayer {
		t.Fatalf("default target class %d, top-1 %d", d.Classes[0], top.Classes[0])
	}
	// Two layers: the mean of each layer's scaled, resized map, scaled again.
	both, err := Compute(context.Background(), ex, x, Options{Layers: []string{"features.19", "features.20"}, Target: engine.Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	m19, _ := Compute(context.Background(), ex, x, Options{Layers: []string{"features.19"}, Target: engine.Class(3)})
	m20, _ := Compute(context.Background(), ex, x, Options{Layers: []string{"features.20"}, Target: engine.Class(3)})
	vtest.AssertClose(t, "per-layer raw", both.Raw["features.20"], m20.Raw["features.20"], 1e-6)
	mean := engine.NewArray(1, 64, 48)
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
	vtest.AssertClose(t, "two-layer mean", both.Map, mean, 1e-5)
}

func TestCAMErrorsAndNotes(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(6, 1, 3, 64, 64)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Method: "scorecam", Layers: []string{"classifier.1"}}, "spatial extent"},
		{Options{Method: "eigencam", Layers: []string{"features.19", "features.19"}}, "listed twice"},
		{Options{Method: "layercam", Layers: []string{"features.99"}}, "valid layers"},
		{Options{Method: "gradcampp", Target: engine.Class(10)}, "class index 10 is out of range"},
		{Options{Method: "xgradcam", Target: engine.Class(1, 2)}, "2 classes for a batch of 1"},
	} {
		if _, err := Compute(context.Background(), ex, x, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: got %v, want error containing %q", tc.opts, err, tc.want)
		}
	}
	if _, err := Compute(context.Background(), ex, engine.NewArray(1, 3, 8, 8), Options{}); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("tiny input: %v", err)
	}
	if _, err := Compute(context.Background(), ex, nil, Options{}); err == nil {
		t.Fatal("nil input accepted")
	}
	r, err := Compute(context.Background(), ex, x, Options{Method: "fullgrad", Layers: []string{"features.19"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "ignores the requested layers") {
		t.Fatalf("notes %v", r.Notes)
	}
	if err := Register(&ChannelWeights{Info{Name: "gradcam"}, gradCAMWeights}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate registration: %v", err)
	}
	if err := Register(&WholeMap{Info: Info{Name: "nofunction"}}); err == nil || !strings.Contains(err.Error(), "has no function") {
		t.Fatalf("adapter without a function: %v", err)
	}
	if err := Register(&ChannelWeights{Info{Name: "Upper"}, gradCAMWeights}); err == nil {
		t.Fatal("upper-case name accepted")
	}
	// Random-init VGG: zero biases are reported by FullGrad.
	rnd := vtest.TinyExplainer(t, "vgg11")
	r, err = Compute(context.Background(), rnd, engine.NewArray(1, 3, 32, 32), Options{Method: "fullgrad"})
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
	ex := vtest.GoldenExplainer(t, "tinyvgg11_bn.safetensors")
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
	r, err := Compute(context.Background(), ex, vtest.RandomArray(7, 1, 3, 64, 64), Options{Method: "fullgrad", Target: engine.Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "fullgrad bn", r, 1, 64, 64)
}

// Score-CAM evaluates each distinct activation map once (all-zero maps of
// dead channels, exact duplicates) and batches masked inputs across examples
// with one class per row: its weights equal a brute-force evaluation of every
// channel of every example on its own.
func TestScoreCAMDedupMatchesBruteForce(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(21, 3, 3, 64, 64)
	classes := []int{3, 5, 3}
	var evals int
	r, err := Compute(context.Background(), ex, x, Options{Method: "scorecam", Target: engine.Class(classes...), BatchSize: 5,
		Progress: func(p engine.Progress) { evals = p.Done }})
	if err != nil {
		t.Fatal(err)
	}
	layer := r.Layers[0]
	acts, err := ex.Run(x, engine.Request{Taps: []string{layer}, Target: engine.Class(classes...)})
	if err != nil {
		t.Fatal(err)
	}
	a := acts.Acts[layer]
	n, c, h, w := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	if evals != n*c {
		t.Fatalf("progress ended at %d of %d", evals, n*c)
	}
	distinct := 0
	for i := 0; i < n; i++ {
		for k, src := range distinctMaps(a.Index(i).Data, c, h*w) {
			if src == k {
				distinct++
			}
		}
	}
	if distinct == n*c {
		t.Fatalf("no duplicate maps among %d: the test needs dead channels", n*c)
	}
	t.Logf("%d distinct maps of %d", distinct, n*c)
	want := engine.NewArray(n, c)
	for i := 0; i < n; i++ {
		xi := x.Index(i)
		scores := make([]float64, c)
		for k := 0; k < c; k++ {
			mask, err := scoreCAMMask(a.Index(i).Data[k*h*w:(k+1)*h*w], h, w, 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			xm := engine.NewArray(1, 3, 64, 64)
			for q := 0; q < 3; q++ {
				for p, m := range mask {
					xm.Data[q*64*64+p] = xi.Data[q*64*64+p] * m
				}
			}
			res, err := ex.Run(xm, engine.Request{Target: engine.Class(classes[i])})
			if err != nil {
				t.Fatal(err)
			}
			scores[k] = float64(res.Scores[0])
		}
		softmaxInto(want.Index(i).Data, scores)
	}
	vtest.AssertClose(t, "Score-CAM weights", r.Weights[layer], want, 1e-5)
}
