package vizkit

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestSaliencyGolden compares with the fixtures scripts/gen_saliency_golden.py
// made with PyTorch on tinyvgg11 (testdata/golden/tinyvgg11.safetensors).
func TestSaliencyGolden(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	const rtol = 1e-4
	for _, tc := range []struct {
		rule models.ReLURule
		file string
	}{{models.ReLUStandard, "grad.npy"}, {models.ReLUGuided, "guided.npy"}, {models.ReLUDeconv, "deconv.npy"}} {
		s, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{Target: target, ReLU: tc.rule})
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, s.Title, s.Grad, vtest.SaliencyGolden(t, tc.file), rtol)
		if s.Classes[0] != 3 || s.Classes[1] != 7 {
			t.Fatalf("%s: classes %v, want [3 7]", s.Method, s.Classes)
		}
		if tc.rule != models.ReLUStandard {
			continue
		}
		am, err := s.AbsMax()
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, "abs max", am, vtest.SaliencyGolden(t, "absmax.npy"), rtol)
		mx, err := s.Max()
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, "signed max", mx, vtest.SaliencyGolden(t, "max.npy"), rtol)
		// The display transform is steep (×0.1/std): compare on the reference max
		// so that the check is about the formula, not the gradient's last digits.
		vtest.AssertClose(t, "FlashTorch standardize_and_clip", engine.StandardizeAndClip(vtest.SaliencyGolden(t, "max.npy"), 0.1, 0.5),
			vtest.SaliencyGolden(t, "max_display.npy"), 1e-5)
		gx, err := s.GradTimesInput()
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, "gradient × input", gx, vtest.SaliencyGolden(t, "gradxinput.npy"), rtol)
	}
	g, err := attr.GuidedGradCAM(context.Background(), ex, x, attr.GuidedGradCAMOptions{Target: target, Layers: []string{"features.9"}})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "Grad-CAM (features.9)", g.CAM.Map, vtest.SaliencyGolden(t, "gradcam.npy"), 1e-4)
	vtest.AssertClose(t, "Guided Grad-CAM", g.Map, vtest.SaliencyGolden(t, "guided_gradcam.npy"), 1e-4)
}

func TestSmoothGradGolden(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	z := vtest.SaliencyGolden(t, "smoothgrad_z.npy")
	for _, chunk := range []int{5, 16} { // 5 does not divide the 12 noisy inputs.
		calls := 0
		res, err := attr.SmoothGrad(context.Background(), ex, x, attr.SmoothGradOptions{Target: target, Noise: z,
			BatchSize: chunk, Progress: func(p engine.Progress) {
				calls++
				if p.Total != 12 || p.Done > p.Total {
					t.Fatalf("progress %d/%d, want total 12", p.Done, p.Total)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if want := (12 + chunk - 1) / chunk; calls != want {
			t.Fatalf("chunk %d: %d progress calls, want %d", chunk, calls, want)
		}
		vtest.AssertClose(t, "SmoothGrad", res.Mean, vtest.SaliencyGolden(t, "smoothgrad_mean.npy"), 1e-4)
		vtest.AssertClose(t, "SmoothGrad²", res.MeanSquare, vtest.SaliencyGolden(t, "smoothgrad_sq.npy"), 1e-4)
		vtest.AssertClose(t, "VarGrad", res.Var, vtest.SaliencyGolden(t, "vargrad.npy"), 1e-4)
		if res.Samples != 6 {
			t.Fatalf("samples %d, want 6", res.Samples)
		}
	}
}

func TestIntegratedGradientsGolden(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	raw, err := os.ReadFile(vtest.Testdata("golden_saliency", "ig.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]struct {
		FX        []float64 `json:"f_x"`
		FBaseline []float64 `json:"f_baseline"`
		Delta     []float64 `json:"delta"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	for file, want := range meta {
		parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(file, "ig_"), ".npy"), "_")
		method := strings.Join(parts[:len(parts)-1], "_")
		baseline := parts[len(parts)-1]
		t.Run(method+"/"+baseline, func(t *testing.T) {
			opts := attr.IGOptions{Target: target, Steps: 12, Method: method, Baseline: baseline, BlurSigma: 2, BatchSize: 7}
			res, err := attr.IntegratedGradients(context.Background(), ex, x, opts)
			if err != nil {
				t.Fatal(err)
			}
			vtest.AssertClose(t, "IG "+file, res.Attr, vtest.SaliencyGolden(t, file), 1e-4)
			if baseline == "blur" {
				vtest.AssertClose(t, "blur baseline", res.Baseline, vtest.SaliencyGolden(t, "baseline_blur.npy"), 1e-6)
			}
			for i := range want.Delta {
				if math.Abs(float64(res.Scores[i])-want.FX[i]) > 1e-5 || math.Abs(float64(res.BaselineScores[i])-want.FBaseline[i]) > 1e-5 {
					t.Fatalf("example %d: f(x) %g f(b) %g, want %g %g", i, res.Scores[i], res.BaselineScores[i], want.FX[i], want.FBaseline[i])
				}
				if math.Abs(res.Delta[i]-want.Delta[i]) > 1e-4 {
					t.Fatalf("example %d: completeness delta %g, want %g", i, res.Delta[i], want.Delta[i])
				}
			}
		})
	}
}

func TestOcclusionGolden(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	for _, tc := range []struct {
		win, stride [2]int
		file        string
		positions   [2]int
	}{
		{[2]int{8, 8}, [2]int{4, 4}, "occlusion_8x8_s4.npy", [2]int{7, 7}},
		{[2]int{10, 7}, [2]int{4, 5}, "occlusion_10x7_s4x5.npy", [2]int{7, 6}},
	} {
		res, err := attr.Occlusion(context.Background(), ex, x, attr.OcclusionOptions{Target: target, Window: tc.win, Stride: tc.stride, BatchSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		if res.Positions != tc.positions {
			t.Fatalf("%s: positions %v, want %v", tc.file, res.Positions, tc.positions)
		}
		vtest.AssertClose(t, tc.file, res.Attr, vtest.SaliencyGolden(t, tc.file), 1e-4)
	}
}
