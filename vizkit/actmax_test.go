package vizkit

import (
	"context"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
)

// TestFFTParamAdjoint is the dot-product test of the Fourier map and its
// transpose: <L θ, g> = <θ, Lᵀ g> for random θ and g.
func TestFFTParamAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][2]int{{8, 10}, {7, 9}, {16, 16}, {5, 12}} {
		p := newFFTParam(3, sz[0], sz[1], 1)
		th := p.init(rng, 1)
		g := make([]float64, 3*sz[0]*sz[1])
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		lhs, rhs := dot64(p.linear(th), g), dot64(th, p.linearT(g))
		if math.Abs(lhs-rhs) > 1e-10*math.Max(1, math.Abs(lhs)) {
			t.Fatalf("%v: <Lθ,g> = %.15g, <θ,Lᵀg> = %.15g", sz, lhs, rhs)
		}
	}
}

// TestFFTParamBackward compares the full backward pass (sigmoid, colour
// decorrelation, Fourier transpose) with central differences of
// J(θ) = Σ c·image(θ).
func TestFFTParamBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := newFFTParam(3, 6, 7, 1)
	th := p.init(rng, 0.05)
	c := make([]float64, 3*6*7)
	for i := range c {
		c[i] = rng.NormFloat64()
	}
	grad := p.backward(p.image(th), c)
	for _, i := range []int{0, 3, 17, 40, len(th)/2 + 5, len(th) - 1} {
		const eps = 1e-6
		tp, tm := append([]float64(nil), th...), append([]float64(nil), th...)
		tp[i] += eps
		tm[i] -= eps
		fd := (dot64(p.image(tp), c) - dot64(p.image(tm), c)) / (2 * eps)
		if math.Abs(fd-grad[i]) > 1e-6*math.Max(1, math.Abs(fd)) {
			t.Fatalf("θ[%d]: backward %.10g, finite difference %.10g", i, grad[i], fd)
		}
	}
}

func TestWarpAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h, w := 11, 13
	for _, tr := range [][4]float64{{0, 0, 1, 0}, {2, -3, 1, 0}, {1, 1, 1.05, 7}, {-4, 2, 0.95, -10}} {
		wp := newWarp(h, w, tr[0], tr[1], tr[2], tr[3])
		x, g := make([]float64, h*w), make([]float64, h*w)
		for i := range x {
			x[i], g[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		y := make([]float64, h*w)
		wp.apply(y, x, 0) // Pad 0 makes apply linear.
		gt := make([]float64, h*w)
		wp.applyT(gt, g)
		if lhs, rhs := dot64(y, g), dot64(x, gt); math.Abs(lhs-rhs) > 1e-10*math.Max(1, math.Abs(lhs)) {
			t.Fatalf("warp %v: <Wx,g> = %.15g, <x,Wᵀg> = %.15g", tr, lhs, rhs)
		}
		if tr == [4]float64{0, 0, 1, 0} {
			for i := range x {
				if y[i] != x[i] {
					t.Fatal("identity warp changed the image")
				}
			}
		}
	}
	// A shift moves content and pads with the constant.
	wp := newWarp(3, 3, 0, 1, 1, 0)
	y := make([]float64, 9)
	wp.apply(y, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, -1)
	if want := []float64{-1, 1, 2, -1, 4, 5, -1, 7, 8}; !equal64(y, want) {
		t.Fatalf("shift right by 1: %v, want %v", y, want)
	}
}

func TestTotalVariationGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	img := make([]float64, 2*5*6)
	for i := range img {
		img[i] = rng.Float64()
	}
	g := make([]float64, len(img))
	totalVariation(img, 2, 5, 6, g, 1)
	for i := range img {
		const eps = 1e-7
		p, m := append([]float64(nil), img...), append([]float64(nil), img...)
		p[i] += eps
		m[i] -= eps
		fd := (totalVariation(p, 2, 5, 6, nil, 0) - totalVariation(m, 2, 5, 6, nil, 0)) / (2 * eps)
		if math.Abs(fd-g[i]) > 1e-5 {
			t.Fatalf("pixel %d: TV gradient %v, finite difference %v", i, g[i], fd)
		}
	}
	a := &Array{Shape: []int{1, 1, 2, 2}, Data: []float32{0, 1, 3, 3}}
	if v, _ := TotalVariation(a); v[0] != 1+3+2+0 {
		t.Fatalf("TV of [[0 1] [3 3]] = %v, want 6", v[0])
	}
}

// photoInputs returns the sample photos resized to size×size and normalised.
func photoInputs(t *testing.T, size int) []*Array {
	t.Helper()
	var out []*Array
	for _, f := range []string{"chelsea.jpg", "coffee.jpg", "astronaut.jpg"} {
		img, err := imageio.Load(filepath.Join("..", "testdata", "images", f))
		if err != nil {
			t.Fatal(err)
		}
		in, err := imageio.Preprocess{Resize: [2]int{size, size}, Mean: imageio.ImageNetMean, Std: imageio.ImageNetStd}.Apply(img)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Array{Shape: []int{1, 3, size, size}, Data: in.Data})
	}
	return out
}

// TestActMaxRaisesActivation: images optimised for a filter's mean activation
// (conv features.8, FlashTorch's objective) make the filter fire far more than
// uniform noise or the sample photos do. Firing is measured after the filter's
// ReLU (features.9, the mean positive response, ≥ 0, so ratios are
// meaningful): with FlashTorch's unconstrained pixel ascent by more than 3×,
// with Lucid's Fourier parameterisation (whose sigmoid keeps pixels in range
// like a photo's) and random transforms by more than 1.5×.
func TestActMaxRaisesActivation(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	const size, layer, relu = 48, "features.8", "features.9"
	channels := []int{0, 1, 2, 3}
	rng := rand.New(rand.NewPCG(9, 10))
	noise := engine.NewArray(1, 3, size, size)
	for i := range noise.Data {
		c := i / (size * size)
		noise.Data[i] = (float32(rng.Float64()) - imageio.ImageNetMean[c]) / imageio.ImageNetStd[c]
	}
	refs := append([]*Array{noise}, photoInputs(t, size)...)
	fire := func(x *Array, c int) []float32 {
		r, err := ex.Run(x, engine.Request{Target: engine.ChannelMean(relu, c)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Scores
	}
	for _, tc := range []struct {
		opts  ActMaxOptions
		ratio float64
	}{
		{ActMaxOptions{Size: [2]int{size, size}, Steps: 20, Seed: 1}, 3},
		{ActMaxOptions{Size: [2]int{size, size}, Steps: 60, LR: 0.1, Seed: 1, Param: ParamFFT, Optimizer: OptimizerAdam,
			Jitter: 2, Scales: []float64{0.95, 1, 1.05}, Rotations: []float64{-5, 0, 5}}, 1.5},
	} {
		objs := make([]Objective, len(channels))
		for i, c := range channels {
			objs[i] = ChannelObjective(layer, c)
		}
		res, err := ex.ActMax(context.Background(), objs, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range channels {
			if !(res.Scores[i] > res.InitialScores[i]) {
				t.Errorf("%s channel %d: objective %.4g → %.4g", res.Param, c, res.InitialScores[i], res.Scores[i])
			}
			best := 0.0
			for _, x := range refs {
				best = math.Max(best, float64(fire(x, c)[0]))
			}
			one := &Array{Shape: []int{1, 3, size, size}, Data: res.Input.Index(i).Data}
			got := float64(fire(one, c)[0])
			t.Logf("%s/%s channel %d: mean ReLU response %.4g, best of noise and photos %.4g (×%.1f); conv objective %.4g → %.4g",
				res.Param, res.Optimizer, c, got, best, got/best, res.InitialScores[i], res.Scores[i])
			if !(got > tc.ratio*best) {
				t.Errorf("%s channel %d: response %.4g is not > %g× the best reference %.4g", res.Param, c, got, tc.ratio, best)
			}
		}
		if err := res.Pixels.CheckFinite("pixels"); err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Pixels.Data {
			if v < 0 || v > 1 {
				t.Fatalf("pixel %v outside [0,1]", v)
			}
		}
	}
}

func TestActMaxDeterministic(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	run := func(seed uint64) *ActMaxResult {
		r, err := ex.ActMax(context.Background(), []Objective{ChannelObjective("features.3", 1), ChannelObjective("features.3", 4)},
			ActMaxOptions{Size: [2]int{32, 32}, Steps: 5, Seed: seed, Jitter: 2, Param: ParamFFT})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, c := run(3), run(3), run(4)
	if !equal32(a.Input.Data, b.Input.Data) {
		t.Fatal("ActMax is not deterministic for a fixed seed")
	}
	if equal32(a.Input.Data, c.Input.Data) {
		t.Fatal("seeds 3 and 4 give the same images")
	}
}

// TestActMaxRegularisedIsSmoother: total variation and L2 penalties plus blur
// give images with lower total variation than plain gradient ascent.
func TestActMaxRegularisedIsSmoother(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	objs := []Objective{ChannelObjective("features.6", 2), ChannelObjective("features.6", 5)}
	base := ActMaxOptions{Size: [2]int{40, 40}, Steps: 20, Seed: 2}
	plain, err := ex.ActMax(context.Background(), objs, base)
	if err != nil {
		t.Fatal(err)
	}
	reg := base
	reg.TV, reg.L2, reg.BlurEvery = 0.3, 0.05, 4
	smooth, err := ex.ActMax(context.Background(), objs, reg)
	if err != nil {
		t.Fatal(err)
	}
	tvPlain, _ := TotalVariation(plain.Pixels)
	tvReg, _ := TotalVariation(smooth.Pixels)
	for i := range objs {
		t.Logf("filter %d: TV plain %.1f, regularised %.1f; objective %.3g vs %.3g", objs[i].Channel, tvPlain[i], tvReg[i], plain.Scores[i], smooth.Scores[i])
		if !(tvReg[i] < 0.7*tvPlain[i]) {
			t.Errorf("filter %d: regularised TV %.1f not below 0.7× plain %.1f", objs[i].Channel, tvReg[i], tvPlain[i])
		}
		if !(smooth.Scores[i] > smooth.InitialScores[i]) {
			t.Errorf("filter %d: regularised run did not raise the objective (%.3g → %.3g)", objs[i].Channel, smooth.InitialScores[i], smooth.Scores[i])
		}
	}
}

// TestActMaxBatchIndependent: images optimised together (one-hot channel
// masks in one batch) are the images optimised alone.
func TestActMaxBatchIndependent(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	x0 := saliencyGolden(t, "actmax_x0.npy")
	all, err := ex.ActMaxFilters(context.Background(), "features.4", 3, ActMaxOptions{Init: x0, Steps: 3, Chunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []int{0, 2} {
		one, err := ex.ActMax(context.Background(), []Objective{ChannelObjective("features.4", ch)}, ActMaxOptions{Init: x0, Steps: 3})
		if err != nil {
			t.Fatal(err)
		}
		got := &Array{Shape: one.Input.Shape, Data: all.Input.Index(ch).Data}
		assertClose(t, "filter optimised in a batch vs alone", got, one.Input, 1e-5)
	}
}

func TestActMaxNeuronAndClass(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	for _, objs := range [][]Objective{
		{NeuronObjective("features.6", 3, 2, 5), NeuronObjective("features.6", 7, 2, 5)},
		{NeuronObjective("classifier.0", 4, 0, 0)},
		{ClassObjective(2), ClassObjective(9)},
	} {
		r, err := ex.ActMax(context.Background(), objs, ActMaxOptions{Size: [2]int{32, 32}, Steps: 10, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range objs {
			if !(float64(r.Scores[i]) > float64(r.InitialScores[i])+0.1*math.Abs(float64(r.InitialScores[i]))+1e-3) {
				t.Errorf("%s: %.4g → %.4g, not raised", o, r.InitialScores[i], r.Scores[i])
			}
		}
	}
	// A class objective equals the logit.
	r, err := ex.ActMax(context.Background(), []Objective{ClassObjective(4)}, ActMaxOptions{Size: [2]int{32, 32}, Steps: 1})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := ex.Run(r.Input, engine.Request{Target: engine.Class(4)})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(lg.Scores[0]-r.Scores[0])) > 1e-5 {
		t.Fatalf("class objective %v, logit %v", r.Scores[0], lg.Scores[0])
	}
}

func TestActMaxErrors(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	ctx := context.Background()
	small := ActMaxOptions{Size: [2]int{32, 32}, Steps: 1}
	cases := []struct {
		objs []Objective
		opts ActMaxOptions
		want string
	}{
		{nil, small, "at least one objective"},
		{[]Objective{ChannelObjective("features.99", 0)}, small, "valid layers"},
		{[]Objective{ChannelObjective("features.3", 16)}, small, "out of range for layer \"features.3\" with 16 channels"},
		{[]Objective{ChannelObjective("features.3", 0), ChannelObjective("features.6", 0)}, small, "share kind, layer"},
		{[]Objective{NeuronObjective("features.6", 0, 9, 0)}, small, "outside layer \"features.6\"'s 8x8 output grid"},
		{[]Objective{ClassObjective(10)}, small, "class index 10 is out of range"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{Size: [2]int{16, 16}}, "at least 32"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{Param: ParamFFT, BlurEvery: 2}, "pixel parameterisation only"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{Param: "wavelet"}, "unknown parameterisation"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{Optimizer: "sgd"}, "unknown optimizer"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{TV: math.NaN()}, "must be finite"},
		{[]Objective{ChannelObjective("features.3", 0)}, ActMaxOptions{Init: engine.NewArray(1, 3, 8, 8), Size: [2]int{32, 32}}, "Init must have shape"},
	}
	for _, c := range cases {
		_, err := ex.ActMax(ctx, c.objs, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %+v: error %v, want one containing %q", c.objs, c.opts, err, c.want)
		}
	}
	if _, err := ex.ActMaxFilters(ctx, "features.3", 17, small); err == nil || !strings.Contains(err.Error(), "16 channels") {
		t.Errorf("ActMaxFilters 17 of 16: %v", err)
	}
}

func TestDeepDream(t *testing.T) {
	ex, _, _ := saliencyFixture(t)
	photo := photoInputs(t, 64)[0]
	steps := 0
	r, err := ex.DeepDream(context.Background(), photo, DeepDreamOptions{Layer: "features.8", Steps: 4, Octaves: 2, Jitter: 4, Seed: 1,
		Progress: func(step, total int, _ float32) {
			steps++
			if total != 8 {
				t.Fatalf("progress total %d, want 8", total)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if steps != 8 {
		t.Fatalf("%d progress calls, want 8", steps)
	}
	if !(r.Score > 1.5*r.InitialScore) {
		t.Fatalf("DeepDream objective %.4g → %.4g, want > 1.5×", r.InitialScore, r.Score)
	}
	if !slices.Equal(r.Input.Shape, photo.Shape) {
		t.Fatalf("dreamed shape %v, want %v", r.Input.Shape, photo.Shape)
	}
	for _, v := range r.Pixels.Data {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %v outside [0,1]", v)
		}
	}
	if _, err := ex.DeepDream(context.Background(), photo, DeepDreamOptions{Layer: "features.8", Octaves: 3, OctaveScale: 2}); err == nil || !strings.Contains(err.Error(), "fewer octaves") {
		t.Fatalf("too many octaves: %v", err)
	}
	if _, err := ex.DeepDream(context.Background(), photo, DeepDreamOptions{Layer: "nope"}); err == nil {
		t.Fatal("unknown layer: no error")
	}
}

// TestGradientPictures renders every result type, checks panel sizes and
// that the HTML embeds the pictures.
func TestGradientPictures(t *testing.T) {
	ex, x, target := saliencyFixture(t)
	ctx := context.Background()
	s0, err := attr.Saliency(context.Background(), ex.Explainer, x, attr.SaliencyOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	sg0, err := attr.SmoothGrad(ctx, ex.Explainer, x, attr.SmoothGradOptions{Target: target, Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	ig0, err := attr.IntegratedGradients(ctx, ex.Explainer, x, attr.IGOptions{Target: target, Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	oc0, err := attr.Occlusion(ctx, ex.Explainer, x, attr.OcclusionOptions{Target: target, Window: [2]int{8, 8}, Stride: [2]int{8, 8}})
	if err != nil {
		t.Fatal(err)
	}
	gg0, err := attr.GuidedGradCAM(context.Background(), ex.Explainer, x, attr.GuidedGradCAMOptions{Target: target, Layers: []string{"features.9"}})
	if err != nil {
		t.Fatal(err)
	}
	s, sg, ig := &SaliencyResult{SaliencyResult: s0}, &SmoothGradResult{SmoothGradResult: sg0}, &IGResult{IGResult: ig0}
	oc, gg := &OcclusionResult{OcclusionResult: oc0}, &GuidedGradCAMResult{GuidedGradCAMResult: gg0}
	am, err := ex.ActMaxFilters(ctx, "features.3", 3, ActMaxOptions{Size: [2]int{32, 32}, Steps: 2})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]interface {
		HTML() (string, error)
	}{"saliency": s, "smoothgrad": sg, "ig": ig, "occlusion": oc, "guided gradcam": gg, "actmax": am} {
		h, err := r.HTML()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := 2 // examples
		if name == "actmax" {
			want = 1
		}
		if n := strings.Count(h, "<img src=\"data:image/png;base64,"); n < want {
			t.Fatalf("%s: %d embedded images, want ≥ %d", name, n, want)
		}
	}
	for _, f := range []func(int) (int, error){
		func(i int) (int, error) { p, err := s.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := sg.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := ig.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := oc.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := gg.Panel(i); return panelWidth(p), err },
	} {
		w, err := f(1)
		if err != nil {
			t.Fatal(err)
		}
		if w < 3*32 {
			t.Fatalf("panel only %d px wide", w)
		}
		if _, err := f(2); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("panel of example 2 of 2: %v", err)
		}
	}
	g, err := am.Grid(0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Bounds().Dx() < 3*128 {
		t.Fatalf("actmax grid %v: tiles not enlarged to ≥128 px", g.Bounds())
	}
}

func panelWidth(p *image.RGBA) int {
	if p == nil {
		return 0
	}
	return p.Bounds().Dx()
}

func dot64(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func equal64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
