package onnx_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/onnx"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

func finite(t *testing.T, what string, a *vizkit.Array) {
	t.Helper()
	if a == nil || len(a.Data) == 0 {
		t.Errorf("%s: empty", what)
		return
	}
	for i, v := range a.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Errorf("%s: non-finite %v at %d", what, v, i)
			return
		}
	}
}

// TestEngineMethods runs every explanation method family on an imported
// ResNet (CAM methods on every fixture): they must work without errors and
// give finite maps.
func TestEngineMethods(t *testing.T) {
	ctx := context.Background()
	m, err := onnx.Load(filepath.Join("testdata", "resnet18n.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := readNPZ(t, filepath.Join("testdata", "resnet18n.ref.npz"))["x"]
	x1 := &vizkit.Array{Shape: []int{1, 3, 64, 64}, Data: x.Data[:3*64*64]}
	for _, method := range cam.Names() {
		opts := cam.Options{Method: method, BatchSize: 8}
		if method == "fullgrad" {
			// Batch norms are folded into the convolutions of this export: each
			// convolution carries the folded bias β − μ·γ/√(σ²+ε) (the
			// convolutions themselves had none), which is what pytorch-grad-cam's
			// FullGrad reads from the batch norms of the unfolded model, and
			// the gradient at the fused output is the batch norm's. So FullGrad
			// runs on the convolutions' biases, one term per convolution.
			r, err := cam.Compute(context.Background(), ex, x1, opts)
			if err != nil {
				t.Errorf("FullGrad on a folded export: %v", err)
				continue
			}
			finite(t, "fullgrad", r.Map)
			convs := 0
			for _, l := range m.Layers() {
				if l.Kind == models.Conv2d {
					convs++
				}
			}
			if len(r.Layers) != convs || convs == 0 {
				t.Errorf("FullGrad used %d bias layers %v; the export has %d convolutions", len(r.Layers), r.Layers, convs)
			}
			for _, name := range r.Layers {
				if _, b, err := m.Weight(name); err != nil || len(b) == 0 {
					t.Errorf("FullGrad layer %s: bias %d values, %v", name, len(b), err)
				}
			}
			continue
		}
		r, err := cam.Compute(context.Background(), ex, x1, opts)
		if err != nil {
			t.Errorf("CAM %s: %v", method, err)
			continue
		}
		finite(t, "CAM "+method, r.Map)
	}
	for _, rule := range []models.ReLURule{models.ReLUStandard, models.ReLUGuided, models.ReLUDeconv} {
		s, err := attr.Saliency(context.Background(), ex, x1, attr.SaliencyOptions{ReLU: rule})
		if err != nil {
			t.Errorf("Saliency %v: %v", rule, err)
			continue
		}
		finite(t, "saliency", s.Grad)
	}
	if g, err := attr.GuidedGradCAM(context.Background(), ex, x1, attr.GuidedGradCAMOptions{}); err != nil {
		t.Errorf("GuidedGradCAM: %v", err)
	} else {
		finite(t, "guided grad-cam", g.Map)
	}
	if r, err := attr.SmoothGrad(ctx, ex, x1, attr.SmoothGradOptions{Samples: 4}); err != nil {
		t.Errorf("SmoothGrad: %v", err)
	} else {
		_ = r
	}
	if r, err := attr.IntegratedGradients(ctx, ex, x1, attr.IGOptions{Steps: 4}); err != nil {
		t.Errorf("IntegratedGradients: %v", err)
	} else {
		finite(t, "IG", r.Attr)
	}
	if r, err := attr.Occlusion(ctx, ex, x1, attr.OcclusionOptions{Window: [2]int{16, 16}, Stride: [2]int{16, 16}}); err != nil {
		t.Errorf("Occlusion: %v", err)
	} else {
		finite(t, "occlusion", r.Map)
	}
	if _, err := vizkit.FeatureMapsOf(ex, x1, []string{"layer1", "layer3.1.conv2", "/maxpool/MaxPool_output_0"}, vizkit.FeatureOptions{}); err != nil {
		t.Errorf("FeatureMaps: %v", err)
	}
	if k, err := vizkit.KernelsOf(m, "conv1", vizkit.KernelOptions{}); err != nil {
		t.Errorf("Kernels: %v", err)
	} else if _, err := k.Tiles(); err != nil {
		t.Errorf("Kernel tiles: %v", err)
	}
	// StartAfter a stage and ScaleLayer (Ablation-CAM's mechanism) on module paths.
	full, err := ex.Run(x1, engine.Request{Taps: []string{"layer3"}})
	if err != nil {
		t.Fatal(err)
	}
	tail, err := ex.Run(full.Acts["layer3"], engine.Request{StartAfter: "layer3", StartInput: x1.Shape})
	if err != nil {
		t.Fatal(err)
	}
	for i := range full.Logits.Data {
		if d := math.Abs(float64(full.Logits.Data[i] - tail.Logits.Data[i])); d > 1e-5 {
			t.Fatalf("StartAfter layer3: logit %d differs by %g", i, d)
		}
	}
}

// TestOtherActivationsRefuseRules: guided backprop on a graph with LeakyRelu,
// Sigmoid and Tanh is an error that says why; the standard rule works, and
// FullGrad uses the kept batch norms.
func TestOtherActivationsRefuseRules(t *testing.T) {
	m, err := onnx.Load(filepath.Join("testdata", "tinynet.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := readNPZ(t, filepath.Join("testdata", "tinynet.ref.npz"))["x"]
	_, err = ex.Run(x, engine.Request{GradInput: true, ReLU: models.ReLUGuided, Target: engine.Class(0, 0)})
	if err == nil || !strings.Contains(err.Error(), "ReLU") || !strings.Contains(err.Error(), "LeakyRelu") {
		t.Errorf("guided rule on LeakyRelu: %v", err)
	}
	if _, err := ex.Run(x, engine.Request{GradInput: true, Target: engine.Class(0, 0)}); err != nil {
		t.Error(err)
	}
	if b, err := m.ModuleBias("stem.1"); err != nil || len(b) != 6 {
		t.Errorf("ModuleBias(stem.1) = %v, %v", b, err)
	}
	if _, err := m.ModuleBias("stem.0"); err == nil {
		t.Error("ModuleBias of a Conv: no error")
	}
	r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "fullgrad", Target: engine.Class(0, 0)})
	if err != nil {
		t.Errorf("FullGrad: %v", err)
	} else {
		finite(t, "fullgrad", r.Map)
	}
}
