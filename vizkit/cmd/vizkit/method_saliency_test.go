package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

var gradGolden = filepath.Join("..", "..", "..", "testdata", "golden")

func gradReadNPY(t *testing.T, path string) *vizkit.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &vizkit.Array{Shape: shape, Data: data}
}

func gradClose(t *testing.T, what string, got, want *vizkit.Array, rtol float64) {
	t.Helper()
	if len(got.Shape) != len(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i := range got.Shape {
		if got.Shape[i] != want.Shape[i] {
			t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
		}
	}
	scale := float32(0)
	for _, v := range want.Data {
		scale = max(scale, v, -v)
	}
	for i := range want.Data {
		if d := got.Data[i] - want.Data[i]; d > float32(rtol)*scale+1e-7 || -d > float32(rtol)*scale+1e-7 {
			t.Fatalf("%s: value %d = %v, want %v", what, i, got.Data[i], want.Data[i])
		}
	}
}

// TestCLIGradientMethods runs every gradient/attribution/actmax method of the
// CLI on the tiny golden model with --class 3 and checks the .npy files (the
// vanilla gradient against PyTorch's, the others against the vizkit API), the
// PNGs and the report sections.
func TestCLIGradientMethods(t *testing.T) {
	defer func(old struct{ Filters, Size, Steps int }) { actMaxCLI = old }(actMaxCLI)
	actMaxCLI.Filters, actMaxCLI.Size, actMaxCLI.Steps = 3, 32, 3
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	methods := "saliency,guided,deconv,guidedgradcam,smoothgrad,ig,occlusion,actmax,deepdream"
	args := []string{"--weights", filepath.Join(gradGolden, "tinyvgg11.safetensors"), "--input-npy", filepath.Join(gradGolden, "inputs", "input_a.npy"),
		"--class", "3", "--npy", "--out", out, "--methods", methods}
	if err := runExplain(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr.String())
	}
	ref := filepath.Join(gradGolden, "tinyvgg11", "input_a")
	in := gradReadNPY(t, filepath.Join(gradGolden, "inputs", "input_a.npy"))
	grad := gradReadNPY(t, filepath.Join(out, "saliency_grad.npy"))
	want := gradReadNPY(t, filepath.Join(ref, "grad_input_logit3.npy"))
	want.Shape = want.Shape[1:]
	gradClose(t, "saliency_grad.npy vs PyTorch", grad, want, 1e-4)

	w, err := weights.LoadSafetensors(filepath.Join(gradGolden, "tinyvgg11.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vgg.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	for rule, file := range map[models.ReLURule]string{models.ReLUGuided: "guided_backprop.npy", models.ReLUDeconv: "deconv.npy"} {
		s, err := attr.Saliency(context.Background(), ex, in, attr.SaliencyOptions{Target: engine.Class(3), ReLU: rule})
		if err != nil {
			t.Fatal(err)
		}
		gradClose(t, file, gradReadNPY(t, filepath.Join(out, file)), s.Grad.Index(0), 1e-6)
	}
	ig, err := attr.IntegratedGradients(context.Background(), ex, in, attr.IGOptions{Target: engine.Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	gradClose(t, "ig.npy", gradReadNPY(t, filepath.Join(out, "ig.npy")), ig.Attr.Index(0), 1e-5)
	shapes := map[string]string{
		"saliency_absmax.npy": "[64 64]", "saliency_max.npy": "[64 64]", "saliency_gradxinput.npy": "[3 64 64]",
		"guided_gradcam_features.20.npy": "[3 64 64]", "smoothgrad.npy": "[3 64 64]", "smoothgrad_sq.npy": "[3 64 64]",
		"vargrad.npy": "[3 64 64]", "ig_baseline.npy": "[3 64 64]", "occlusion.npy": "[64 64]",
		"actmax_features.8.npy": "[3 3 32 32]", "deepdream_features.8.npy": "[3 64 64]",
	}
	for f, shape := range shapes {
		a := gradReadNPY(t, filepath.Join(out, f))
		if got := fmt.Sprint(a.Shape); got != shape {
			t.Fatalf("%s: shape %v, want %s", f, a.Shape, shape)
		}
		if err := a.CheckFinite(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"saliency", "guided_backprop", "deconv", "guided_gradcam_features.20", "smoothgrad", "ig", "occlusion", "actmax_features.8", "deepdream_features.8"} {
		data, err := os.ReadFile(filepath.Join(out, f+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s.png: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 64 || b.Dy() < 64 {
			t.Fatalf("%s.png is only %v", f, b)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Vanilla gradient", "Guided backpropagation", "Deconvnet", "Guided Grad-CAM", "SmoothGrad", "Integrated Gradients", "Completeness", "Occlusion", "Activation maximisation", "DeepDream"} {
		if !strings.Contains(string(page), s) {
			t.Fatalf("report lacks %q", s)
		}
	}
	if !strings.Contains(stderr.String(), "integrated gradients completeness error") {
		t.Fatalf("log lacks the IG completeness line:\n%s", stderr.String())
	}
}
