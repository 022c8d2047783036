package vizkit

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/gomlx/gomlx/core/graph"
)

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// directional compares gradient entries with central differences of the
// target, one coordinate at a time, on the 24 coordinates of largest |gradient|.
// ReLU networks are piecewise linear, so a difference that straddles a kink
// is off (max-pool switches, ReLU flips); at least 18 of the 24 must agree
// within 5%. The exact check is the PyTorch golden test; this one covers
// custom targets and gradients w.r.t. layers independently of PyTorch.
func directional(t *testing.T, ex *engine.Explainer, x *Array, req engine.Request, grad *Array, _ uint64, what string) {
	t.Helper()
	idx := make([]int, len(grad.Data))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		return math.Abs(float64(grad.Data[idx[a]])) > math.Abs(float64(grad.Data[idx[b]]))
	})
	// float32 rounding through the network is ~1e-6 of the score; a step of
	// 3e-2 keeps its effect on the difference under ~0.5%.
	const eps = 3e-2
	f := func(i int, delta float64) float64 {
		xp := x.Clone()
		xp.Data[i] += float32(delta)
		res, err := ex.Run(xp, engine.Request{Target: req.Target, StartAfter: req.StartAfter, StartInput: req.StartInput})
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, v := range res.Scores {
			s += float64(v)
		}
		return s
	}
	good := 0
	var worst string
	for _, i := range idx[:24] {
		fd := (f(i, eps) - f(i, -eps)) / (2 * eps)
		an := float64(grad.Data[i])
		if math.Abs(fd-an) <= 5e-2*math.Abs(an)+1e-4 {
			good++
		} else {
			worst = fmt.Sprintf("index %d: finite difference %.6g vs analytic %.6g", i, fd, an)
		}
	}
	if good < 18 {
		t.Fatalf("%s: only %d of 24 coordinates agree with finite differences; e.g. %s", what, good, worst)
	}
	t.Logf("%s: %d of 24 coordinates agree with finite differences", what, good)
}

// TestFiniteDifferences checks the engine's gradients w.r.t. the input and
// w.r.t. an intermediate layer against central finite differences, for logit
// and softmax targets, on VGG11 and VGG11-BN.
func TestFiniteDifferences(t *testing.T) {
	for _, arch := range []string{"tinyvgg11", "tinyvgg11_bn"} {
		m := vtest.GoldenModel(t, arch+".safetensors")
		ex, err := engine.NewExplainer(m, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		x := vtest.RandomArray(3, 2, 3, 40, 40)
		for _, target := range []Target{engine.Class(4), engine.SoftmaxOf(1, 6), engine.Predicted()} {
			res, err := ex.Run(x, engine.Request{Target: target, GradInput: true, Taps: []string{"features.10"}, GradTaps: []string{"features.10"}})
			if err != nil {
				t.Fatal(err)
			}
			directional(t, ex, x, engine.Request{Target: target}, res.InputGrad, 11, arch+" input "+target.String())
			directional(t, ex, res.Acts["features.10"], engine.Request{Target: Target{Kind: target.Kind, Classes: res.Classes}, StartAfter: "features.10", StartInput: x.Shape},
				res.Grads["features.10"], 12, arch+" features.10 "+target.String())
		}
	}
}

func TestTargetFuncAndPredicted(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.RandomArray(5, 2, 3, 32, 32)
	res, err := ex.Run(x, engine.Request{Target: engine.Predicted()})
	if err != nil {
		t.Fatal(err)
	}
	top := res.Logits.ArgMax()
	for i := range top {
		if res.Classes[i] != top[i] {
			t.Fatalf("predicted class %d, argmax %d", res.Classes[i], top[i])
		}
		if res.Scores[i] != res.Logits.Data[i*10+top[i]] {
			t.Fatalf("score %v, logit %v", res.Scores[i], res.Logits.Data[i*10+top[i]])
		}
	}
	// A custom target: logit 2 minus logit 5, per example.
	fn := Target{Kind: engine.TargetFunc, Name: "l2-l5", Func: func(l *graph.Node) *graph.Node {
		return graph.Sub(graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(2, 3)), 1), graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(5, 6)), 1))
	}}
	res2, err := ex.Run(x, engine.Request{Target: fn, GradInput: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range res2.Scores {
		want := res.Logits.Data[i*10+2] - res.Logits.Data[i*10+5]
		if math.Abs(float64(res2.Scores[i]-want)) > 1e-5 {
			t.Fatalf("custom score %v, want %v", res2.Scores[i], want)
		}
		if res2.Classes[i] != -1 {
			t.Fatalf("custom target class %d, want -1", res2.Classes[i])
		}
	}
	directional(t, ex, x, engine.Request{Target: fn}, res2.InputGrad, 9, "custom target")
}

func TestBadRequestsHaveClearErrors(t *testing.T) {
	ex := vtest.TinyExplainer(t, "vgg11")
	x := vtest.RandomArray(1, 1, 3, 32, 32)
	cases := []struct {
		name string
		x    *Array
		req  engine.Request
		want string
	}{
		{"unknown tap", x, engine.Request{Taps: []string{"features.99"}}, `no layer "features.99"; valid layers: features.0`},
		{"unknown grad tap", x, engine.Request{GradTaps: []string{"conv5_3"}}, `no layer "conv5_3"`},
		{"class out of range", x, engine.Request{GradInput: true, Target: engine.Class(12)}, "class index 12 is out of range for model vgg11 with 10 classes (valid: 0..9)"},
		{"negative class", x, engine.Request{Target: engine.Class(-1)}, "class index -1 is out of range"},
		{"classes vs batch", vtest.RandomArray(1, 3, 3, 32, 32), engine.Request{Target: engine.Class(1, 2)}, "2 classes for a batch of 3"},
		{"wrong channels", vtest.RandomArray(1, 1, 1, 32, 32), engine.Request{}, "3 channels"},
		{"too small", vtest.RandomArray(1, 1, 3, 16, 16), engine.Request{}, "at least 32×32"},
		{"rank", vtest.RandomArray(1, 3, 32, 32), engine.Request{}, "(N,3,H,W)"},
		{"func without name", x, engine.Request{Target: Target{Kind: engine.TargetFunc}}, "needs both Func and Name"},
		{"scale without values", x, engine.Request{ScaleLayer: "features.19"}, "needs RunOptions.Scale of shape (1,32)"},
		{"start after bad shape", x, engine.Request{StartAfter: "features.10"}, `StartAfter "features.10" must be that layer's output (N,C,H,W) with 16 channels`},
	}
	nan := vtest.RandomArray(1, 1, 3, 32, 32)
	nan.Data[5] = float32(math.NaN())
	cases = append(cases, struct {
		name string
		x    *Array
		req  engine.Request
		want string
	}{"NaN input", nan, engine.Request{}, "non-finite value"})
	for _, c := range cases {
		_, err := ex.Run(c.x, c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestReLURulesAndScale(t *testing.T) {
	ex := vtest.TinyExplainer(t, "vgg11")
	x := vtest.RandomArray(2, 1, 3, 32, 32)
	std, err := ex.Run(x, engine.Request{Target: engine.Class(3), GradInput: true})
	if err != nil {
		t.Fatal(err)
	}
	guided, err := ex.Run(x, engine.Request{Target: engine.Class(3), GradInput: true, ReLU: models.ReLUGuided})
	if err != nil {
		t.Fatal(err)
	}
	if std.Scores[0] != guided.Scores[0] {
		t.Fatal("guided ReLU changed the forward pass")
	}
	same := true
	for i := range std.InputGrad.Data {
		if std.InputGrad.Data[i] != guided.InputGrad.Data[i] {
			same = false
		}
	}
	if same {
		t.Fatal("guided backprop gave the plain gradient")
	}
	// Scaling every channel of a layer by 1 changes nothing; by 0 it kills the signal after it.
	ones := engine.NewArray(1, 32)
	for i := range ones.Data {
		ones.Data[i] = 1
	}
	r1, err := ex.RunWith(x, engine.Request{Target: engine.Class(3), ScaleLayer: "features.19"}, engine.RunOptions{Scale: ones})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(r1.Scores[0]-std.Scores[0])) > 1e-5 {
		t.Fatalf("unit scale changed the score: %v vs %v", r1.Scores[0], std.Scores[0])
	}
	r0, err := ex.RunWith(x, engine.Request{Target: engine.Class(3), ScaleLayer: "features.19", Taps: []string{"features.20"}}, engine.RunOptions{Scale: engine.NewArray(1, 32)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r0.Acts["features.20"].Data {
		if v != 0 {
			t.Fatal("zero scale left activations after the scaled layer")
		}
	}
	if ex.NumExecutables() != 4 {
		t.Fatalf("%d executables cached, want 4 (one per request kind)", ex.NumExecutables())
	}
	ex.Close()
	if _, err := ex.Run(x, engine.Request{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("run after Close: %v", err)
	}
}

func TestChannelMeanTarget(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.RandomArray(8, 1, 3, 32, 32)
	target := engine.ChannelMean("features.4", 5)
	res, err := ex.Run(x, engine.Request{Target: target, GradInput: true, Taps: []string{"features.4"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Logits != nil {
		t.Fatal("a layer target should stop the network early (nil logits)")
	}
	act := res.Acts["features.4"].Index(0).Index(5).Data
	mean := 0.0
	for _, v := range act {
		mean += float64(v)
	}
	mean /= float64(len(act))
	if math.Abs(mean-float64(res.Scores[0])) > 1e-5 {
		t.Fatalf("channel mean %v, score %v", mean, res.Scores[0])
	}
	directional(t, ex, x, engine.Request{Target: target}, res.InputGrad, 0, "channel mean")
	if _, err := ex.Run(x, engine.Request{Target: engine.ChannelMean("features.4", 16)}); err == nil || !strings.Contains(err.Error(), "channel 16 is out of range for layer \"features.4\" with 16 channels") {
		t.Fatalf("bad channel: %v", err)
	}
}

func TestGradCAMBasics(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if l, _ := cam.DefaultLayer(m); l != "features.20" {
		t.Fatalf("default CAM layer %q, want features.20", l)
	}
	x := vtest.RandomArray(8, 2, 3, 48, 40)
	cr, err := cam.Compute(context.Background(), ex, x, cam.Options{Layers: []string{"features.19"}, Target: engine.Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cr.Map.Shape, []int{2, 48, 40}) || !slices.Equal(cr.Low["features.19"].Shape, []int{2, 3, 2}) {
		t.Fatalf("shapes %v %v", cr.Map.Shape, cr.Low["features.19"].Shape)
	}
	for i, v := range cr.Map.Data {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("map value %v at %d outside [0,1]", v, i)
		}
	}
	if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Layers: []string{"classifier.1"}}); err == nil || !strings.Contains(err.Error(), "spatial extent") {
		t.Fatalf("flat layer: %v", err)
	}
	if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "nope"}); err == nil || !strings.Contains(err.Error(), "known: ") {
		t.Fatalf("unknown method: %v", err)
	}
}
