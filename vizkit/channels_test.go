package vizkit

import (
	"context"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/custom"
	"github.com/cnnviz/cnnviz/models/onnx"
	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
	"github.com/cnnviz/cnnviz/vizkit/render"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Inputs of 1 and 4 channels through every gradient and forward-pass method:
// the 1-channel single-logit ONNX fixture (models/onnx/testdata/tinynet.onnx,
// 28×28, LeakyReLU, sigmoid gate, tanh, batch norms) and a 4-channel GoMLX
// function model (two biased 3×3 convolutions with ReLU, global mean pool,
// 3 logits).

// tinyNet loads the 1-channel ONNX fixture, or skips.
func tinyNet(t *testing.T) (*onnx.Model, *engine.Explainer) {
	t.Helper()
	path := filepath.Join("..", "models", "onnx", "testdata", "tinynet.onnx")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no ONNX fixture: %v", err)
	}
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := engine.NewExplainer(m, engine.Options{Backend: "go"})
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); m.Close() })
	return m, ex
}

// fourNet is a 4-channel model: conv1 (4→6, 3×3, pad 1, bias) → ReLU → conv2
// (6→8, 3×3, stride 2, pad 1, bias) → ReLU → global mean → fc (8→3).
func fourNet(t *testing.T) (*custom.Model, *engine.Explainer) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	mk := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.4)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	net, err := custom.New(custom.Spec{Arch: "four", InputChannels: 4, InputSize: 16, MinSize: 4,
		Params: map[string]*tensors.Tensor{
			"conv1.weight": mk(3, 3, 4, 6), "conv1.bias": mk(6),
			"conv2.weight": mk(3, 3, 6, 8), "conv2.bias": mk(8),
			"fc.weight": mk(8, 3),
		},
		Build: func(s *models.Scope, x *graph.Node) *graph.Node {
			x = s.ReLU("relu1", s.Conv("conv1", x, models.ConvSpec{Padding: [2]int{1, 1}}))
			x = s.ReLU("relu2", s.Conv("conv2", x, models.ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}))
			p := s.Out("pool", models.GlobalAvgPool, models.GlobalMeanPool(x))
			return s.Out("fc", models.Linear, graph.Dot(p, s.Param("fc.weight")).Product())
		}})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := engine.NewExplainer(net, engine.Options{Backend: "go"})
	if err != nil {
		net.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); net.Close() })
	return net, ex
}

// wavyInput is a deterministic (1,c,h,w) input in about [−1.3, 1.3].
func wavyInput(c, h, w int) *Array {
	x := engine.NewArray(1, c, h, w)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i)*0.37)+0.3*math.Cos(float64(i)*1.9)) + 0.1
	}
	return x
}

func checkShape(t *testing.T, what string, a *Array, want ...int) {
	t.Helper()
	if a == nil || !slices.Equal(a.Shape, want) {
		var got any
		if a != nil {
			got = a.Shape
		}
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
	if err := a.CheckFinite(what); err != nil {
		t.Fatal(err)
	}
}

// fdCheck compares the input gradient of the logit of class with central
// differences (step eps, normalised units) at the k coordinates of largest
// |gradient|: within tol relative.
func fdCheck(t *testing.T, ex *engine.Explainer, x *Array, class, k int, eps, tol float64) {
	t.Helper()
	s, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{Target: engine.Class(class)})
	if err != nil {
		t.Fatal(err)
	}
	g := s.Grad.Data
	idx := make([]int, len(g))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return math.Abs(float64(g[idx[a]])) > math.Abs(float64(g[idx[b]])) })
	idx = idx[:k]
	per := len(x.Data)
	batch := engine.NewArray(append([]int{2 * k}, x.Shape[1:]...)...)
	for r, j := range idx {
		copy(batch.Data[2*r*per:], x.Data)
		copy(batch.Data[(2*r+1)*per:], x.Data)
		batch.Data[2*r*per+j] += float32(eps)
		batch.Data[(2*r+1)*per+j] -= float32(eps)
	}
	res, err := ex.Run(batch, engine.Request{Target: engine.Class(class)})
	if err != nil {
		t.Fatal(err)
	}
	for r, j := range idx {
		// The perturbation actually applied (float32 rounding of x ± eps).
		h := float64(batch.Data[2*r*per+j]) - float64(batch.Data[(2*r+1)*per+j])
		fd := (float64(res.Scores[2*r]) - float64(res.Scores[2*r+1])) / h
		if d := math.Abs(fd - float64(g[j])); d > tol*math.Abs(float64(g[j])) {
			t.Errorf("C=%d coordinate %d: gradient %.6g, finite difference %.6g (%.2f%% off)", x.Shape[1], j, g[j], fd, 100*d/math.Abs(float64(g[j])))
		}
	}
}

// TestChannelsFiniteDifferences: the input gradient of the 1-channel ONNX
// model and of the 4-channel model agree with central differences at their
// 6 largest coordinates within 3%.
func TestChannelsFiniteDifferences(t *testing.T) {
	_, ex1 := tinyNet(t)
	fdCheck(t, ex1, wavyInput(1, 28, 28), 0, 6, 2e-3, 0.03)
	_, ex4 := fourNet(t)
	fdCheck(t, ex4, wavyInput(4, 16, 16), 1, 6, 2e-3, 0.03)
}

// TestChannelsSaliencyAndGuided: shapes of the gradient methods on 1 and 4
// channels; guided backprop on the 4-channel ReLU model, and a clear refusal
// on the ONNX graph whose activations are not ReLUs.
func TestChannelsSaliencyAndGuided(t *testing.T) {
	_, ex1 := tinyNet(t)
	x1 := wavyInput(1, 28, 28)
	s0, err := attr.Saliency(context.Background(), ex1, x1, attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &SaliencyResult{SaliencyResult: s0} // Drawn with the defaults for 1 channel.
	checkShape(t, "1-channel gradient", s.Grad, 1, 1, 28, 28)
	am, _ := s.AbsMax()
	checkShape(t, "1-channel absmax", am, 1, 28, 28)
	norm, _ := s.Norm.For(1)
	if disp, _ := CheckDisplayChannels(s.DisplayChannels, 1); len(norm.Mean) != 1 || norm.Mean[0] != 0 || norm.Std[0] != 1 || len(disp) != 1 {
		t.Errorf("1-channel defaults: norm %+v, display %v (want none and channel 0)", norm, disp)
	}
	if _, err := s.Panel(0); err != nil {
		t.Fatalf("1-channel panel: %v", err)
	}
	if _, err := attr.Saliency(context.Background(), ex1, x1, attr.SaliencyOptions{ReLU: models.ReLUGuided}); err == nil || !strings.Contains(err.Error(), "LeakyRelu") {
		t.Errorf("guided backprop through LeakyRelu: %v (want an error naming it)", err)
	}

	_, ex4 := fourNet(t)
	x4 := wavyInput(4, 16, 16)
	for _, rule := range []models.ReLURule{models.ReLUStandard, models.ReLUGuided, models.ReLUDeconv} {
		s0, err := attr.Saliency(context.Background(), ex4, x4, attr.SaliencyOptions{ReLU: rule})
		if err != nil {
			t.Fatalf("%v: %v", rule, err)
		}
		s := &SaliencyResult{SaliencyResult: s0, DisplayChannels: []int{3, 2, 1}}
		checkShape(t, "4-channel gradient", s.Grad, 1, 4, 16, 16)
		gx, _ := s.GradTimesInput()
		checkShape(t, "4-channel grad×input", gx, 1, 4, 16, 16)
		if _, err := s.HTML(); err != nil {
			t.Fatalf("%v HTML: %v", rule, err)
		}
	}
	g, err := attr.GuidedGradCAM(context.Background(), ex4, x4, attr.GuidedGradCAMOptions{Layers: []string{"conv2"}, Target: engine.Class(2)})
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "4-channel Guided Grad-CAM", g.Map, 1, 4, 16, 16)
	for c := 0; c < 4; c++ { // Map = guided gradient × CAM, on every channel.
		p := c*256 + 5*16 + 7
		if want := g.Guided.Grad.Data[p] * g.CAM.Map.Data[5*16+7]; g.Map.Data[p] != want {
			t.Errorf("Guided Grad-CAM channel %d: %v, want %v", c, g.Map.Data[p], want)
		}
	}
	if _, err := (&GuidedGradCAMResult{GuidedGradCAMResult: g}).Panel(0); err != nil {
		t.Fatal(err)
	}
}

// TestChannelsSmoothGrad: with explicit noise, SmoothGrad's mean is the mean
// of the gradients at the noisy copies (each taken with Saliency).
func TestChannelsSmoothGrad(t *testing.T) {
	_, ex1 := tinyNet(t)
	_, ex4 := fourNet(t)
	for _, tc := range []struct {
		ex *engine.Explainer
		x  *Array
	}{{ex1, wavyInput(1, 28, 28)}, {ex4, wavyInput(4, 16, 16)}} {
		c, h, w := tc.x.Shape[1], tc.x.Shape[2], tc.x.Shape[3]
		z := engine.NewArray(2, c, h, w)
		rng := rand.New(rand.NewPCG(1, uint64(c)))
		for i := range z.Data {
			z.Data[i] = float32(rng.NormFloat64())
		}
		const sigma = 0.2
		r, err := attr.SmoothGrad(context.Background(), tc.ex, tc.x, attr.SmoothGradOptions{Noise: z, Sigma: sigma, Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, "SmoothGrad", r.Mean, 1, c, h, w)
		checkShape(t, "VarGrad", r.Var, 1, c, h, w)
		want := make([]float64, len(tc.x.Data))
		for s := 0; s < 2; s++ {
			xs := tc.x.Clone()
			for j := range xs.Data {
				xs.Data[j] = float32(float64(tc.x.Data[j]) + sigma*float64(z.Data[s*len(xs.Data)+j]))
			}
			g, err := attr.Saliency(context.Background(), tc.ex, xs, attr.SaliencyOptions{Target: engine.Class(0)})
			if err != nil {
				t.Fatal(err)
			}
			for j, v := range g.Grad.Data {
				want[j] += float64(v) / 2
			}
		}
		for j, v := range r.Mean.Data {
			if math.Abs(float64(v)-want[j]) > 1e-5+1e-4*math.Abs(want[j]) {
				t.Fatalf("C=%d: SmoothGrad[%d] = %v, mean of the noisy gradients %v", c, j, v, want[j])
			}
		}
		if _, err := (&SmoothGradResult{SmoothGradResult: r}).Panel(0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChannelsIGCompleteness: Σ attributions ≈ f(x) − f(baseline), with f
// computed by two plain forward passes. Tolerance: 2% of |f(x) − f(b)| with
// 128 Gauss–Legendre steps (the ReLU network's integrand is piecewise
// smooth, so the quadrature error shrinks like 1/steps, not faster).
func TestChannelsIGCompleteness(t *testing.T) {
	_, ex1 := tinyNet(t)
	_, ex4 := fourNet(t)
	norm4 := engine.Normalization{Mean: []float32{0.1, 0.2, 0.3, 0.4}, Std: []float32{0.5, 0.5, 0.25, 1}}
	for _, tc := range []struct {
		name string
		ex   *engine.Explainer
		x    *Array
		norm engine.Normalization
	}{{"1 channel", ex1, wavyInput(1, 28, 28), engine.Normalization{}}, {"4 channels", ex4, wavyInput(4, 16, 16), norm4}} {
		r, err := attr.IntegratedGradients(context.Background(), tc.ex, tc.x, attr.IGOptions{Steps: 128, Target: engine.Class(0), Norm: tc.norm})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, tc.name+" IG", r.Attr, tc.x.Shape...)
		// The black baseline is −mean/std per channel (0 without normalisation).
		hw := tc.x.Shape[2] * tc.x.Shape[3]
		for c := 0; c < tc.x.Shape[1]; c++ {
			want := float32(0)
			if tc.norm.Mean != nil {
				want = -tc.norm.Mean[c] / tc.norm.Std[c]
			}
			if got := r.Baseline.Data[c*hw+3]; got != want {
				t.Errorf("%s: black baseline channel %d = %v, want %v", tc.name, c, got, want)
			}
		}
		fx, err := tc.ex.Run(tc.x, engine.Request{Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		fb, err := tc.ex.Run(r.Baseline, engine.Request{Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, v := range r.Attr.Data {
			sum += float64(v)
		}
		diff := float64(fx.Scores[0]) - float64(fb.Scores[0])
		if math.Abs(diff) < 1e-3 {
			t.Fatalf("%s: f(x) − f(baseline) = %g is too small for the test", tc.name, diff)
		}
		if rel := math.Abs(sum-diff) / math.Abs(diff); rel > 0.02 {
			t.Errorf("%s: Σ attributions %.6g, f(x) − f(baseline) %.6g: %.2f%% off", tc.name, sum, diff, 100*rel)
		} else {
			t.Logf("%s: Σ attributions %.6g, f(x) − f(baseline) %.6g (%.3f%% off)", tc.name, sum, diff, 100*rel)
		}
		if _, err := (&IGResult{IGResult: r, Norm: tc.norm}).Panel(0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChannelsOcclusion compares one window of the occlusion map with f(x) −
// f(x with that window set to the baseline on every channel), computed
// directly (non-overlapping windows: each pixel is covered once).
func TestChannelsOcclusion(t *testing.T) {
	_, ex1 := tinyNet(t)
	_, ex4 := fourNet(t)
	for _, tc := range []struct {
		ex        *engine.Explainer
		x         *Array
		win       int
		y0, x0, k int
	}{{ex1, wavyInput(1, 28, 28), 7, 7, 14, 0}, {ex4, wavyInput(4, 16, 16), 8, 8, 0, 2}} {
		c, h, w := tc.x.Shape[1], tc.x.Shape[2], tc.x.Shape[3]
		const base = 0.5
		r, err := attr.Occlusion(context.Background(), tc.ex, tc.x, attr.OcclusionOptions{Window: [2]int{tc.win, tc.win}, Stride: [2]int{tc.win, tc.win},
			Baseline: base, Target: engine.Class(tc.k)})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, "occlusion Attr", r.Attr, 1, c, h, w)
		checkShape(t, "occlusion Map", r.Map, 1, h, w)
		occ := tc.x.Clone()
		for ch := 0; ch < c; ch++ {
			for y := tc.y0; y < tc.y0+tc.win; y++ {
				for xx := tc.x0; xx < tc.x0+tc.win; xx++ {
					occ.Data[(ch*h+y)*w+xx] = base
				}
			}
		}
		both, err := tc.ex.Run(&Array{Shape: []int{2, c, h, w}, Data: append(append([]float32(nil), tc.x.Data...), occ.Data...)}, engine.Request{Target: engine.Class(tc.k)})
		if err != nil {
			t.Fatal(err)
		}
		want := float64(both.Scores[0]) - float64(both.Scores[1])
		for _, p := range [][2]int{{tc.y0, tc.x0}, {tc.y0 + tc.win - 1, tc.x0 + tc.win - 1}} {
			got := float64(r.Map.Data[p[0]*w+p[1]])
			if math.Abs(got-want) > 1e-5+1e-4*math.Abs(want) {
				t.Errorf("C=%d: occlusion map at %v = %.6g, direct f(x) − f(occluded) = %.6g", c, p, got, want)
			}
			for ch := 0; ch < c; ch++ {
				if a := r.Attr.Data[(ch*h+p[0])*w+p[1]]; float64(a) != got {
					t.Errorf("C=%d: Attr channel %d = %v, map %v", c, ch, a, got)
				}
			}
		}
		if _, err := (&OcclusionResult{OcclusionResult: r}).Panel(0); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChannelsMetrics runs the faithfulness metrics on 1 and 4 channels; the
// deletion curve's last point (every pixel deleted to zero) is the score of
// an all-zero input, computed directly, and ConfidenceChange's After is the
// score of x·map.
func TestChannelsMetrics(t *testing.T) {
	_, ex1 := tinyNet(t)
	_, ex4 := fourNet(t)
	ctx := context.Background()
	for _, tc := range []struct {
		ex *engine.Explainer
		x  *Array
	}{{ex1, wavyInput(1, 28, 28)}, {ex4, wavyInput(4, 16, 16)}} {
		c, h, w := tc.x.Shape[1], tc.x.Shape[2], tc.x.Shape[3]
		s, err := attr.Saliency(context.Background(), tc.ex, tc.x, attr.SaliencyOptions{Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		am, _ := s.AbsMax()
		mo := metrics.Options{Classes: []int{0}, Score: metrics.ScoreLogit}
		del, err := metrics.Deletion(ctx, tc.ex, tc.x, am, metrics.CausalOptions{Options: mo, Steps: 4})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, "deletion curve", del.Curves, 1, 5)
		zero, err := tc.ex.Run(engine.NewArray(1, c, h, w), engine.Request{Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		if got := del.Curves.Data[4]; math.Abs(float64(got-zero.Scores[0])) > 1e-5 {
			t.Errorf("C=%d: deletion end %v, f(0) %v", c, got, zero.Scores[0])
		}
		ins, err := metrics.Insertion(ctx, tc.ex, tc.x, am, metrics.CausalOptions{Options: mo, Steps: 4})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, "insertion curve", ins.Curves, 1, 5)
		scaled, err := metrics.ScaleMaps(am)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := metrics.ConfidenceChange(ctx, tc.ex, tc.x, scaled, mo)
		if err != nil {
			t.Fatal(err)
		}
		xm := tc.x.Clone()
		for ch := 0; ch < c; ch++ {
			for p := 0; p < h*w; p++ {
				xm.Data[ch*h*w+p] *= scaled.Data[p]
			}
		}
		direct, err := tc.ex.Run(xm, engine.Request{Target: engine.Class(0)})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(cc.After[0]-direct.Scores[0])) > 1e-5 {
			t.Errorf("C=%d: ConfidenceChange after %v, f(x·map) %v", c, cc.After[0], direct.Scores[0])
		}
		road, err := metrics.ROAD(ctx, tc.ex, tc.x, scaled, metrics.ROADOptions{Options: mo, Percentiles: []float64{20, 50, 80}})
		if err != nil {
			t.Fatal(err)
		}
		checkShape(t, "ROAD MoRF", road.MoRF, 1, 3)
		checkShape(t, "ROAD LeRF", road.LeRF, 1, 3)
	}
}

// TestChannelsActMax: activation maximisation of a 1-channel and a
// 4-channel model, pixel and Fourier (identity colour basis) parameterisations.
func TestChannelsActMax(t *testing.T) {
	_, ex1 := tinyNet(t)
	_, ex4 := fourNet(t)
	ctx := context.Background()
	r1, err := actmax.Run(ctx, ex1, []Target{engine.Class(0)}, actmax.Options{Size: [2]int{28, 28}, Steps: 5})
	if err != nil {
		t.Fatal(err)
	}
	r := &ActMaxResult{Result: r1}
	checkShape(t, "1-channel actmax", r.Input, 1, 1, 28, 28)
	if !(r.Scores[0] > r.InitialScores[0]) {
		t.Errorf("1-channel actmax: score %v → %v did not rise", r.InitialScores[0], r.Scores[0])
	}
	if _, err := r.Grid(0); err != nil {
		t.Fatal(err)
	}
	for _, param := range []string{actmax.ParamPixel, actmax.ParamFFT} {
		opts := actmax.Options{Size: [2]int{16, 16}, Steps: 8, Param: param}
		if param == actmax.ParamFFT {
			opts.Optimizer, opts.Jitter = actmax.OptimizerAdam, 1
		}
		r4, err := actmax.Run(ctx, ex4, []Target{engine.ChannelMean("conv2", 0), engine.ChannelMean("conv2", 5)}, opts)
		if err != nil {
			t.Fatalf("%s: %v", param, err)
		}
		r := &ActMaxResult{Result: r4, DisplayChannels: []int{3, 2, 1}}
		checkShape(t, param+" actmax input", r.Input, 2, 4, 16, 16)
		checkShape(t, param+" actmax pixels", r.Pixels, 2, 4, 16, 16)
		for i := range r.Scores {
			if !(r.Scores[i] > r.InitialScores[i]) {
				t.Errorf("%s objective %d: score %v → %v did not rise", param, i, r.InitialScores[i], r.Scores[i])
			}
		}
		if _, err := r.Grid(0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := actmax.Run(ctx, ex4, []Target{engine.ChannelMean("conv2", 0)}, actmax.Options{Size: [2]int{16, 16}, Steps: 1,
		Norm: engine.Normalization{Std: []float32{1, 1, 1}}}); err == nil || !strings.Contains(err.Error(), "Std has 3 values but the input has 4 channels") {
		t.Errorf("actmax with a 3-value Std on a 4-channel model: %v", err)
	}
	dr, err := actmax.DeepDream(ctx, ex4, wavyInput(4, 16, 16), actmax.DreamOptions{Layer: "conv1", Steps: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := &DeepDreamResult{DreamResult: dr}
	checkShape(t, "DeepDream", d.Input, 1, 4, 16, 16)
	if _, err := d.Panel(d.Original); err != nil {
		t.Fatal(err)
	}
}

// TestNormalizationChannels: defaults per channel count, and lengths that
// do not match the input are errors naming both.
func TestNormalizationChannels(t *testing.T) {
	n3, err := engine.Normalization{}.For(3)
	if err != nil || n3.Mean[0] != 0.485 || n3.Std[2] != 0.225 {
		t.Errorf("default for 3 channels: %+v, %v (want ImageNet's)", n3, err)
	}
	n1, err := engine.Normalization{}.For(1)
	if err != nil || len(n1.Mean) != 1 || n1.Mean[0] != 0 || n1.Std[0] != 1 {
		t.Errorf("default for 1 channel: %+v, %v (want none)", n1, err)
	}
	n4, err := engine.Normalization{Std: []float32{2, 2, 2, 2}}.For(4)
	if err != nil || n4.Mean[3] != 0 || n4.Std[3] != 2 {
		t.Errorf("Std only: %+v, %v", n4, err)
	}
	if _, err := (engine.Normalization{Mean: []float32{0, 0}, Std: []float32{1, 0, 1, 1}}).For(4); err == nil || !strings.Contains(err.Error(), "Mean has 2 values but the input has 4 channels") {
		t.Errorf("length mismatch: %v", err)
	}
	if _, err := (engine.Normalization{Std: []float32{1, 0, 1, 1}}).For(4); err == nil || !strings.Contains(err.Error(), "channel 1") {
		t.Errorf("zero std: %v", err)
	}
	_, ex4 := fourNet(t)
	x4 := wavyInput(4, 16, 16)
	ctx := context.Background()
	bad := engine.Normalization{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
	for name, run := range map[string]func() error{
		// Drawing the input with the wrong normalisation fails; IG's black
		// baseline needs it to compute.
		"Saliency": func() error {
			r, err := attr.Saliency(ctx, ex4, x4, attr.SaliencyOptions{})
			if err != nil {
				return err
			}
			_, err = (&SaliencyResult{SaliencyResult: r, Norm: bad}).Panel(0)
			return err
		},
		"SmoothGrad": func() error {
			r, err := attr.SmoothGrad(ctx, ex4, x4, attr.SmoothGradOptions{Samples: 1})
			if err != nil {
				return err
			}
			_, err = (&SmoothGradResult{SmoothGradResult: r, Norm: bad}).HTML()
			return err
		},
		"IG": func() error {
			_, err := attr.IntegratedGradients(ctx, ex4, x4, attr.IGOptions{Norm: bad, Steps: 2})
			return err
		},
		"Occlusion": func() error {
			r, err := attr.Occlusion(ctx, ex4, x4, attr.OcclusionOptions{Window: [2]int{8, 8}, Stride: [2]int{8, 8}})
			if err != nil {
				return err
			}
			_, err = (&OcclusionResult{OcclusionResult: r, Norm: bad}).Panel(0)
			return err
		},
		"GuidedGradCAM": func() error {
			r, err := attr.GuidedGradCAM(ctx, ex4, x4, attr.GuidedGradCAMOptions{})
			if err != nil {
				return err
			}
			_, err = (&GuidedGradCAMResult{GuidedGradCAMResult: r, Norm: bad}).Panel(0)
			return err
		},
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "Mean has 3 values but the input has 4 channels") {
			t.Errorf("%s with ImageNet's normalisation on 4 channels: %v", name, err)
		}
	}
	if got := engine.ImageNetNormalization().Black(); len(got) != 3 || math.Abs(float64(got[0])+2.1179) > 1e-3 {
		t.Errorf("ImageNet black %v", got)
	}
}

// TestDisplayChannels: choosing channels to draw, and clear errors.
func TestDisplayChannels(t *testing.T) {
	if got, _ := CheckDisplayChannels(nil, 1); len(got) != 1 || got[0] != 0 {
		t.Errorf("default for 1 channel %v", got)
	}
	if got, _ := CheckDisplayChannels(nil, 2); len(got) != 1 || got[0] != 0 {
		t.Errorf("default for 2 channels %v", got)
	}
	if got, _ := CheckDisplayChannels(nil, 5); len(got) != 3 || got[2] != 2 {
		t.Errorf("default for 5 channels %v", got)
	}
	if _, err := CheckDisplayChannels([]int{3, 2, 4}, 4); err == nil || !strings.Contains(err.Error(), "display channel 4 is out of range for an input with 4 channel(s)") {
		t.Errorf("out of range: %v", err)
	}
	if _, err := CheckDisplayChannels([]int{0, 1}, 4); err == nil || !strings.Contains(err.Error(), "1 channel (gray) or 3") {
		t.Errorf("two channels: %v", err)
	}
	_, ex4 := fourNet(t)
	x4 := wavyInput(4, 16, 16)
	sal, err := attr.Saliency(context.Background(), ex4, x4, attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&SaliencyResult{SaliencyResult: sal, DisplayChannels: []int{-1}}).Panel(0); err == nil || !strings.Contains(err.Error(), "display channel -1") {
		t.Errorf("Saliency with channel -1: %v", err)
	}
	ig, err := attr.IntegratedGradients(context.Background(), ex4, x4, attr.IGOptions{Steps: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&IGResult{IGResult: ig, DisplayChannels: []int{0, 1, 7}}).HTML(); err == nil || !strings.Contains(err.Error(), "display channel 7") {
		t.Errorf("IG with channel 7: %v", err)
	}

	// Channel 3 is bright, the others dark: drawn from 3,2,1 the picture is red.
	x := engine.NewArray(1, 4, 2, 2)
	for p := 0; p < 4; p++ {
		x.Data[3*4+p] = 1
	}
	img, err := InputImage(x, 0, engine.Normalization{}, []int{3, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := img.RGBAAt(1, 1); c != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("channels 3,2,1 of a channel-3 input: pixel %v, want red", c)
	}
	img, err = InputImage(x, 0, engine.Normalization{Mean: []float32{0, 0, 0, 0.5}, Std: []float32{1, 1, 1, 0.25}}, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	if c := img.RGBAAt(0, 0); c.R != 191 || c.G != 191 || c.B != 191 { // 1·0.25 + 0.5 = 0.75 gray
		t.Errorf("gray channel 3 with mean 0.5, std 0.25: pixel %v, want 191 gray", c)
	}
	if _, err := InputImage(x, 0, engine.Normalization{}, []int{4}); err == nil || !strings.Contains(err.Error(), "display channel 4") {
		t.Errorf("InputImage channel 4: %v", err)
	}
}

// TestChannelsFacade: the façade feeds a 1-channel model grayscale pictures,
// takes DisplayChannels once, and refuses pictures for 4-channel models.
func TestChannelsFacade(t *testing.T) {
	net1, _ := tinyNet(t)
	m, err := FromNetwork(net1, Backend("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pic := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range pic.Pix {
		pic.Pix[i] = uint8(i * 7)
	}
	img, err := NewImage("pattern", pic)
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := m.Input(img)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "façade input", x, 1, 1, 28, 28)
	s, err := Saliency(m, img, DisplayChannels(0))
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "façade saliency", s.Grad, 1, 1, 28, 28)
	if _, err := Saliency(m, img, DisplayChannels(1)); err == nil || !strings.Contains(err.Error(), "display channel 1 is out of range for an input with 1 channel") {
		t.Errorf("DisplayChannels(1) on a 1-channel model: %v", err)
	}
	if _, err := Saliency(m, img, DisplayChannels(0), DisplayChannels(0)); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("DisplayChannels twice: %v", err)
	}
	if _, err := TopK(m, img, 1, DisplayChannels(0)); err == nil || !strings.Contains(err.Error(), "does not take the option DisplayChannels") {
		t.Errorf("TopK with DisplayChannels: %v", err)
	}
	net4, _ := fourNet(t)
	m4, err := FromNetwork(net4, Backend("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer m4.Close()
	if _, _, err := m4.Input(img); err == nil || !strings.Contains(err.Error(), "takes 4 input channels") {
		t.Errorf("picture for a 4-channel model: %v", err)
	}
	if n := m4.Norm(); len(n.Mean) != 4 || n.Std[3] != 1 {
		t.Errorf("4-channel façade norm %+v", n)
	}
}

// TestChannelsPictures writes a 1-channel saliency panel and a 4-channel one
// drawn from channels 3,2,1 (to $CNNVIZ_PNG_DIR when set, for looking at).
func TestChannelsPictures(t *testing.T) {
	dir := os.Getenv("CNNVIZ_PNG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	_, ex1 := tinyNet(t)
	s1, err := attr.Saliency(context.Background(), ex1, wavyInput(1, 28, 28), attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := (&SaliencyResult{SaliencyResult: s1}).Panel(0)
	if err != nil {
		t.Fatal(err)
	}
	_, ex4 := fourNet(t)
	x4 := engine.NewArray(1, 4, 16, 16) // channel c: a bright square in quadrant c
	for c := 0; c < 4; c++ {
		y0, x0 := 8*(c/2), 8*(c%2)
		for y := y0; y < y0+8; y++ {
			for x := x0; x < x0+8; x++ {
				x4.Data[(c*16+y)*16+x] = 1
			}
		}
	}
	s4, err := attr.Saliency(context.Background(), ex4, x4, attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p4, err := (&SaliencyResult{SaliencyResult: s4, DisplayChannels: []int{3, 2, 1}}).Panel(0)
	if err != nil {
		t.Fatal(err)
	}
	in4, err := InputImage(x4, 0, engine.Normalization{}, []int{3, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	// Quadrant 3 (bottom right) is red, 2 (bottom left) green, 1 (top right)
	// blue, 0 (top left, channel 0 not drawn) black.
	for _, q := range []struct {
		x, y int
		want color.RGBA
	}{{12, 12, color.RGBA{255, 0, 0, 255}}, {3, 12, color.RGBA{0, 255, 0, 255}}, {12, 3, color.RGBA{0, 0, 255, 255}}, {3, 3, color.RGBA{0, 0, 0, 255}}} {
		if got := in4.RGBAAt(q.x, q.y); got != q.want {
			t.Errorf("channels 3,2,1 at (%d,%d): %v, want %v", q.x, q.y, got, q.want)
		}
	}
	for name, img := range map[string]image.Image{"saliency_1ch.png": p1, "saliency_4ch_321.png": p4} {
		if err := render.WritePNG(filepath.Join(dir, name), img); err != nil {
			t.Fatal(err)
		}
	}
}
