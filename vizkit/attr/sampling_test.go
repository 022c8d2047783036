package attr

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestIGCompleteness: with 64 steps the completeness error of Integrated
// Gradients, Σ attr − (f(x) − f(baseline)), is under 1% on the tiny model for
// the predicted class (f(x) − f(b) between 1 and 2.1 here). The integrand of a
// ReLU/max-pool network is discontinuous along the path, so the error falls
// only roughly as 1/steps and not monotonically; for weakly scoring classes
// (f(x) − f(b) ~0.1–0.4) 64 steps can leave a few percent.
func TestIGCompleteness(t *testing.T) {
	ex, x, _ := vtest.SaliencyFixture(t)
	for _, method := range []string{IGGaussLegendre, IGRiemannMiddle} {
		for _, baseline := range []string{IGBaselineBlack, IGBaselineZeros, IGBaselineBlur} {
			res, err := IntegratedGradients(context.Background(), ex, x, IGOptions{Steps: 64, Method: method, Baseline: baseline})
			if err != nil {
				t.Fatal(err)
			}
			rel := res.RelativeDelta()
			for i := range rel {
				diff := math.Abs(float64(res.Scores[i] - res.BaselineScores[i]))
				if diff < 0.5 {
					t.Fatalf("%s/%s example %d: f(x)−f(b) = %.3g is too small for a meaningful check", method, baseline, i, diff)
				}
				if rel[i] >= 0.01 {
					t.Errorf("%s/%s example %d: completeness error %.3g = %.2f%% of f(x)-f(b) = %.4g", method, baseline, i, res.Delta[i], 100*rel[i], diff)
				}
			}
		}
	}
}

// TestIGIntegrationRules checks the quadrature: Gauss–Legendre integrates
// polynomials of degree ≤ 2n−1 exactly on [0,1]; the Riemann rules follow
// Captum's alphas and weights.
func TestIGIntegrationRules(t *testing.T) {
	for _, n := range []int{1, 2, 5, 16, 50} {
		a, w, err := IGIntegration(IGGaussLegendre, n)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k <= 2*n-1; k++ {
			s := 0.0
			for i := range a {
				s += w[i] * math.Pow(a[i], float64(k))
			}
			if math.Abs(s-1/float64(k+1)) > 1e-12 {
				t.Fatalf("n=%d: ∫x^%d = %.15g, want %.15g", n, k, s, 1/float64(k+1))
			}
		}
		for i := 1; i < n; i++ {
			if !(a[i] > a[i-1]) || a[0] <= 0 || a[n-1] >= 1 {
				t.Fatalf("n=%d: nodes %v not ascending inside (0,1)", n, a)
			}
		}
	}
	n := 4
	for method, want := range map[string][]float64{
		IGRiemannLeft:      {0, 0.25, 0.5, 0.75},
		IGRiemannRight:     {0.25, 0.5, 0.75, 1},
		IGRiemannMiddle:    {0.125, 0.375, 0.625, 0.875},
		IGRiemannTrapezoid: {0, 1.0 / 3, 2.0 / 3, 1},
	} {
		a, w, err := IGIntegration(method, n)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for i := range a {
			if math.Abs(a[i]-want[i]) > 1e-15 {
				t.Fatalf("%s alphas %v, want %v", method, a, want)
			}
			sum += w[i]
		}
		wantSum := 1.0
		if method == IGRiemannTrapezoid {
			wantSum = 1 - 1/float64(n) // Captum's weights: 1/n, halved at both ends.
		}
		if math.Abs(sum-wantSum) > 1e-15 {
			t.Fatalf("%s weights sum %v, want %v", method, sum, wantSum)
		}
	}
	if _, _, err := IGIntegration(IGRiemannLeft, 1); err == nil {
		t.Fatal("riemann with 1 step: no error")
	}
	if _, _, err := IGIntegration("simpson", 8); err == nil || !strings.Contains(err.Error(), "gausslegendre") {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestIGBaselines(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	res, err := IntegratedGradients(context.Background(), ex, x, IGOptions{Target: target, Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	black := engine.ImageNetNormalization().Black()
	for c, want := range []float32{-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225} {
		if math.Abs(float64(black[c]-want)) > 1e-6 || res.Baseline.Data[c*32*32+17] != black[c] || res.Baseline.Data[(3+c)*32*32] != black[c] {
			t.Fatalf("black baseline channel %d = %v, want %v", c, res.Baseline.Data[c*32*32+17], want)
		}
	}
	// The baseline equal to the input gives no attribution and no error.
	same, err := IntegratedGradients(context.Background(), ex, x, IGOptions{Target: target, Steps: 4, BaselineArray: x})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range same.Attr.Data {
		if v != 0 {
			t.Fatalf("attribution %d = %v with baseline = input", i, v)
		}
	}
	// A (1,3,H,W) baseline is shared by every example.
	one := engine.NewArray(1, 3, 32, 32)
	for i := range one.Data {
		one.Data[i] = 0.25
	}
	shared, err := IntegratedGradients(context.Background(), ex, x, IGOptions{Target: target, Steps: 4, BaselineArray: one})
	if err != nil {
		t.Fatal(err)
	}
	if shared.Baseline.Data[3*32*32+5] != 0.25 || shared.BaselineName != "custom" {
		t.Fatalf("shared baseline not broadcast: %v %q", shared.Baseline.Data[3*32*32+5], shared.BaselineName)
	}
}

func TestSmoothGradSeedsAndChunks(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	run := func(seed uint64, chunk int) *SmoothGradResult {
		r, err := SmoothGrad(context.Background(), ex, x, SmoothGradOptions{Target: target, Samples: 5, Seed: seed, BatchSize: chunk})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, c, d := run(1, 4), run(1, 4), run(1, 10), run(2, 4)
	for i := range a.Mean.Data {
		if a.Mean.Data[i] != b.Mean.Data[i] {
			t.Fatal("SmoothGrad is not deterministic for a fixed seed")
		}
	}
	vtest.AssertClose(t, "SmoothGrad with another chunk size", c.Mean, a.Mean, 1e-5)
	same := 0
	for i := range a.Mean.Data {
		if a.Mean.Data[i] == d.Mean.Data[i] {
			same++
		}
	}
	if same > len(a.Mean.Data)/10 {
		t.Fatalf("seeds 1 and 2 give %d identical values of %d", same, len(a.Mean.Data))
	}
	for i, s := range a.Sigma {
		xi := x.Index(i).Data
		lo, hi := xi[0], xi[0]
		for _, v := range xi {
			lo, hi = min(lo, v), max(hi, v)
		}
		if want := 0.15 * (float64(hi) - float64(lo)); math.Abs(s-want) > 1e-12 {
			t.Fatalf("sigma %v, want 0.15·range %v", s, want)
		}
	}
}

// TestSmoothGradTinyNoise: with negligible noise SmoothGrad is the vanilla
// gradient, SmoothGrad² its square and VarGrad ~0.
func TestSmoothGradTinyNoise(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	r, err := SmoothGrad(context.Background(), ex, x, SmoothGradOptions{Target: target, Samples: 3, Sigma: 1e-7})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Saliency(context.Background(), ex, x, SaliencyOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "SmoothGrad (σ→0)", r.Mean, s.Grad, 1e-4)
	sq := s.Grad.Clone()
	for i, v := range sq.Data {
		sq.Data[i] = v * v
	}
	vtest.AssertClose(t, "SmoothGrad² (σ→0)", r.MeanSquare, sq, 1e-3)
	maxVar, maxSq := 0.0, 0.0
	for i := range r.Var.Data {
		maxVar = math.Max(maxVar, float64(r.Var.Data[i]))
		maxSq = math.Max(maxSq, float64(sq.Data[i]))
	}
	if maxVar > 1e-3*maxSq {
		t.Fatalf("VarGrad %g with σ→0 (max square %g)", maxVar, maxSq)
	}
}

// TestOcclusionWholeImage: a window covering the whole input gives every pixel
// f(x) − f(baseline image).
func TestOcclusionWholeImage(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	r, err := Occlusion(context.Background(), ex, x, OcclusionOptions{Target: target, Window: [2]int{32, 32}, Stride: [2]int{32, 32}, Baseline: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	flat := engine.NewArray(x.Shape...)
	for i := range flat.Data {
		flat.Data[i] = 0.5
	}
	f, err := ex.Run(flat, engine.Request{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		want := r.Scores[i] - f.Scores[i]
		for _, v := range r.Map.Index(i).Data {
			if math.Abs(float64(v-want)) > 1e-6 {
				t.Fatalf("example %d: map %v, want f(x)−f(flat) = %v", i, v, want)
			}
		}
	}
	if r.Positions != [2]int{1, 1} {
		t.Fatalf("positions %v, want 1×1", r.Positions)
	}
}

func TestAttributionErrors(t *testing.T) {
	ex, x, _ := vtest.SaliencyFixture(t)
	ctx := context.Background()
	nan := x.Clone()
	nan.Data[7] = float32(math.NaN())
	cases := []struct {
		name, want string
		run        func() error
	}{
		{"saliency bad shape", "(N,C,H,W)", func() error {
			_, err := Saliency(context.Background(), ex, engine.NewArray(2, 32, 32), SaliencyOptions{})
			return err
		}},
		{"saliency class", "out of range", func() error {
			_, err := Saliency(context.Background(), ex, x, SaliencyOptions{Target: engine.Class(10)})
			return err
		}},
		{"saliency relu", "ReLU rule", func() error {
			_, err := Saliency(context.Background(), ex, x, SaliencyOptions{ReLU: models.ReLURule(9)})
			return err
		}},
		{"smoothgrad nan", "non-finite", func() error { _, err := SmoothGrad(ctx, ex, nan, SmoothGradOptions{Samples: 2}); return err }},
		{"smoothgrad noise", "Noise must have shape", func() error {
			_, err := SmoothGrad(ctx, ex, x, SmoothGradOptions{Noise: engine.NewArray(2, 3, 32, 32)})
			return err
		}},
		{"smoothgrad level", "positive", func() error { _, err := SmoothGrad(ctx, ex, x, SmoothGradOptions{NoiseLevel: -1}); return err }},
		{"smoothgrad batch size", "BatchSize", func() error {
			_, err := SmoothGrad(ctx, ex, x, SmoothGradOptions{Samples: 2, BatchSize: -1})
			return err
		}},
		{"ig method", "unknown integration method", func() error { _, err := IntegratedGradients(ctx, ex, x, IGOptions{Method: "simpson"}); return err }},
		{"ig baseline", "unknown IG baseline", func() error { _, err := IntegratedGradients(ctx, ex, x, IGOptions{Baseline: "white"}); return err }},
		{"ig baseline shape", "BaselineArray", func() error {
			_, err := IntegratedGradients(ctx, ex, x, IGOptions{BaselineArray: engine.NewArray(1, 3, 16, 16)})
			return err
		}},
		{"ig class", "out of range", func() error {
			_, err := IntegratedGradients(ctx, ex, x, IGOptions{Target: engine.Class(0, 12)})
			return err
		}},
		{"ig classes", "give 1 (for all) or 2", func() error {
			_, err := IntegratedGradients(ctx, ex, x, IGOptions{Target: engine.Class(1, 2, 3)})
			return err
		}},
		{"occlusion window", "does not fit", func() error {
			_, err := Occlusion(ctx, ex, x, OcclusionOptions{Window: [2]int{40, 8}, Stride: [2]int{4, 4}})
			return err
		}},
		{"occlusion stride", "may not exceed", func() error {
			_, err := Occlusion(ctx, ex, x, OcclusionOptions{Window: [2]int{8, 8}, Stride: [2]int{9, 4}})
			return err
		}},
		{"occlusion baseline", "finite", func() error {
			_, err := Occlusion(ctx, ex, x, OcclusionOptions{Baseline: float32(math.Inf(1))})
			return err
		}},
	}
	for _, c := range cases {
		err := c.run()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestAttributionCancel(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := IntegratedGradients(ctx, ex, x, IGOptions{Target: target, Steps: 32, BatchSize: 4, Progress: func(engine.Progress) {
		calls++
		cancel()
	}})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("cancelled IG: err %v after %d chunks, want context.Canceled after 1", err, calls)
	}
}

func TestStandardizeAndClip(t *testing.T) {
	flat := &engine.Array{Shape: []int{1, 4}, Data: []float32{2, 2, 2, 2}}
	for _, v := range engine.StandardizeAndClip(flat, 0.1, 0.5).Data {
		if v != 0.5 {
			t.Fatalf("constant input → %v, want brightness 0.5 (std 0 replaced by 1e-7, as FlashTorch)", v)
		}
	}
	a := &engine.Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 10, 20, 30}}
	got := engine.StandardizeAndClip(a, 0.1, 0.5)
	// Per example: mean 2, sample std 1 → 0.4, 0.5, 0.6; and the same for the second.
	for i, want := range []float32{0.4, 0.5, 0.6, 0.4, 0.5, 0.6} {
		if math.Abs(float64(got.Data[i]-want)) > 1e-6 {
			t.Fatalf("StandardizeAndClip %v, want [0.4 0.5 0.6 0.4 0.5 0.6]", got.Data)
		}
	}
	d := engine.DeprocessImage(&engine.Array{Shape: []int{1, 2}, Data: []float32{-1, 1}}) // population std 1
	if math.Abs(float64(d.Data[0])-(0.5-0.1/(1+1e-5))) > 1e-6 {
		t.Fatalf("DeprocessImage %v", d.Data)
	}
}
