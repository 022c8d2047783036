package actmax

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/gomlx/gomlx/core/graph"
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
	a := &engine.Array{Shape: []int{1, 1, 2, 2}, Data: []float32{0, 1, 3, 3}}
	if v, _ := TotalVariation(a); v[0] != 1+3+2+0 {
		t.Fatalf("TV of [[0 1] [3 3]] = %v, want 6", v[0])
	}
}

// photoInputs returns the sample photos resized to size×size and normalised.
func photoInputs(t *testing.T, size int) []*engine.Array {
	t.Helper()
	var out []*engine.Array
	for _, f := range []string{"chelsea.jpg", "coffee.jpg", "astronaut.jpg"} {
		img, err := imageio.Load(filepath.Join("..", "..", "testdata", "images", f))
		if err != nil {
			t.Fatal(err)
		}
		in, err := imageio.Preprocess{Resize: [2]int{size, size}, Mean: imageio.ImageNetMean, Std: imageio.ImageNetStd}.Apply(img)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &engine.Array{Shape: []int{1, 3, size, size}, Data: in.Data})
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
	ex, _, _ := vtest.SaliencyFixture(t)
	const size, layer, relu = 48, "features.8", "features.9"
	channels := []int{0, 1, 2, 3}
	rng := rand.New(rand.NewPCG(9, 10))
	noise := engine.NewArray(1, 3, size, size)
	for i := range noise.Data {
		c := i / (size * size)
		noise.Data[i] = (float32(rng.Float64()) - imageio.ImageNetMean[c]) / imageio.ImageNetStd[c]
	}
	refs := append([]*engine.Array{noise}, photoInputs(t, size)...)
	fire := func(x *engine.Array, c int) []float32 {
		r, err := ex.Run(x, engine.Request{Target: engine.ChannelMean(relu, c)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Scores
	}
	for _, tc := range []struct {
		opts  Options
		ratio float64
	}{
		{Options{Size: [2]int{size, size}, Steps: 20, Seed: 1}, 3},
		{Options{Size: [2]int{size, size}, Steps: 60, LR: 0.1, Seed: 1, Param: ParamFFT, Optimizer: OptimizerAdam,
			Jitter: 2, Scales: []float64{0.95, 1, 1.05}, Rotations: []float64{-5, 0, 5}}, 1.5},
	} {
		objs := make([]engine.Target, len(channels))
		for i, c := range channels {
			objs[i] = engine.ChannelMean(layer, c)
		}
		res, err := Run(context.Background(), ex, objs, tc.opts)
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
			one := &engine.Array{Shape: []int{1, 3, size, size}, Data: res.Input.Index(i).Data}
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
	ex, _, _ := vtest.SaliencyFixture(t)
	run := func(seed uint64) *Result {
		r, err := Run(context.Background(), ex, []engine.Target{engine.ChannelMean("features.3", 1), engine.ChannelMean("features.3", 4)},
			Options{Size: [2]int{32, 32}, Steps: 5, Seed: seed, Jitter: 2, Param: ParamFFT})
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
	ex, _, _ := vtest.SaliencyFixture(t)
	objs := []engine.Target{engine.ChannelMean("features.6", 2), engine.ChannelMean("features.6", 5)}
	base := Options{Size: [2]int{40, 40}, Steps: 20, Seed: 2}
	plain, err := Run(context.Background(), ex, objs, base)
	if err != nil {
		t.Fatal(err)
	}
	reg := base
	reg.TV, reg.L2, reg.BlurEvery = 0.3, 0.05, 4
	smooth, err := Run(context.Background(), ex, objs, reg)
	if err != nil {
		t.Fatal(err)
	}
	tvPlain, _ := TotalVariation(plain.Pixels)
	tvReg, _ := TotalVariation(smooth.Pixels)
	for i := range objs {
		t.Logf("filter %d: TV plain %.1f, regularised %.1f; objective %.3g vs %.3g", []int{2, 5}[i], tvPlain[i], tvReg[i], plain.Scores[i], smooth.Scores[i])
		if !(tvReg[i] < 0.7*tvPlain[i]) {
			t.Errorf("filter %d: regularised TV %.1f not below 0.7× plain %.1f", []int{2, 5}[i], tvReg[i], tvPlain[i])
		}
		if !(smooth.Scores[i] > smooth.InitialScores[i]) {
			t.Errorf("filter %d: regularised run did not raise the objective (%.3g → %.3g)", []int{2, 5}[i], smooth.InitialScores[i], smooth.Scores[i])
		}
	}
}

// TestActMaxBatchIndependent: images optimised together (one-hot channel
// masks in one batch) are the images optimised alone.
func TestActMaxBatchIndependent(t *testing.T) {
	ex, _, _ := vtest.SaliencyFixture(t)
	x0 := vtest.SaliencyGolden(t, "actmax_x0.npy")
	all, err := Filters(context.Background(), ex, "features.4", 3, Options{Init: x0, Steps: 3, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []int{0, 2} {
		one, err := Run(context.Background(), ex, []engine.Target{engine.ChannelMean("features.4", ch)}, Options{Init: x0, Steps: 3})
		if err != nil {
			t.Fatal(err)
		}
		got := &engine.Array{Shape: one.Input.Shape, Data: all.Input.Index(ch).Data}
		vtest.AssertClose(t, "filter optimised in a batch vs alone", got, one.Input, 1e-5)
	}
}

func TestActMaxNeuronAndClass(t *testing.T) {
	ex, _, _ := vtest.SaliencyFixture(t)
	for _, objs := range [][]engine.Target{
		{engine.Neuron("features.6", 3, 2, 5), engine.Neuron("features.6", 7, 2, 5)},
		{engine.Neuron("classifier.0", 4, 0, 0)},
		{engine.Class(2), engine.Class(9)},
	} {
		r, err := Run(context.Background(), ex, objs, Options{Size: [2]int{32, 32}, Steps: 10, Seed: 5})
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
	r, err := Run(context.Background(), ex, []engine.Target{engine.Class(4)}, Options{Size: [2]int{32, 32}, Steps: 1})
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
	ex, _, _ := vtest.SaliencyFixture(t)
	ctx := context.Background()
	small := Options{Size: [2]int{32, 32}, Steps: 1}
	cases := []struct {
		objs []engine.Target
		opts Options
		want string
	}{
		{nil, small, "at least one target"},
		{[]engine.Target{engine.ChannelMean("features.99", 0)}, small, "valid layers"},
		{[]engine.Target{engine.ChannelMean("features.3", 16)}, small, "out of range for layer \"features.3\" with 16 channels"},
		{[]engine.Target{engine.ChannelMean("features.3", 0), engine.ChannelMean("features.6", 0)}, small, "share kind, layer"},
		{[]engine.Target{engine.Neuron("features.6", 0, 9, 0)}, small, "outside layer \"features.6\"'s 8x8 output grid"},
		{[]engine.Target{engine.Class(10)}, small, "class index 10 is out of range"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{Size: [2]int{16, 16}}, "at least 32"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{Param: ParamFFT, BlurEvery: 2}, "pixel parameterisation only"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{Param: "wavelet"}, "unknown parameterisation"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{Optimizer: "sgd"}, "unknown optimizer"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{TV: math.NaN()}, "must be finite"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{Init: engine.NewArray(1, 3, 8, 8), Size: [2]int{32, 32}}, "Init must have shape"},
		{[]engine.Target{engine.ChannelMean("features.3", 0)}, Options{BatchSize: -1}, "BatchSize -1"},
		{[]engine.Target{engine.SoftmaxOf(3)}, small, "maximises engine.Class(c)"},
		{[]engine.Target{engine.Class(1, 2)}, small, "maximises engine.Class(c)"},
		{[]engine.Target{engine.Predicted()}, small, "maximises engine.Class(c)"},
		{[]engine.Target{engine.NamedFunc("features.3", "mean of features.3 channel 0", func(a *graph.Node) *graph.Node { return graph.ReduceMean(a, 1, 2, 3) })}, small, "maximises engine.Class(c)"},
		{[]engine.Target{engine.ChannelMean("features.3", 0), engine.Class(1)}, small, "share kind, layer"},
		{[]engine.Target{engine.Neuron("features.6", 0, 1, 1), engine.Neuron("features.6", 1, 1, 2)}, small, "share kind, layer and neuron position"},
	}
	for _, c := range cases {
		_, err := Run(ctx, ex, c.objs, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %+v: error %v, want one containing %q", c.objs, c.opts, err, c.want)
		}
	}
	if _, err := Filters(ctx, ex, "features.3", 17, small); err == nil || !strings.Contains(err.Error(), "16 channels") {
		t.Errorf("Filters 17 of 16: %v", err)
	}
}

func TestDeepDream(t *testing.T) {
	ex, _, _ := vtest.SaliencyFixture(t)
	photo := photoInputs(t, 64)[0]
	steps := 0
	r, err := DeepDream(context.Background(), ex, photo, DreamOptions{Layer: "features.8", Steps: 4, Octaves: 2, Jitter: 4, Seed: 1,
		Progress: func(p engine.Progress) {
			steps++
			if p.Total != 8 || p.Done != steps {
				t.Fatalf("progress %d/%d, want %d/8", p.Done, p.Total, steps)
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
	if _, err := DeepDream(context.Background(), ex, photo, DreamOptions{Layer: "features.8", Octaves: 3, OctaveScale: 2}); err == nil || !strings.Contains(err.Error(), "fewer octaves") {
		t.Fatalf("too many octaves: %v", err)
	}
	if _, err := DeepDream(context.Background(), ex, photo, DreamOptions{Layer: "nope"}); err == nil {
		t.Fatal("unknown layer: no error")
	}
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
