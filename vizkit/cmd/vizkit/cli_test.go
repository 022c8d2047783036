package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

var cliGolden = filepath.Join("..", "..", "..", "testdata", "golden")

func runTinyExplain(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"),
		"--input-npy", filepath.Join(cliGolden, "inputs", "input_a.npy"), "--npy", "--out", out}, args...)
	if err := runExplain(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("explain %v: %v\n%s", args, err, stderr.String())
	}
	return out, stderr.String()
}

func cliReadNPY(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return shape, data
}

// closeTo compares with a tolerance relative to want's largest magnitude.
func cliCloseTo(t *testing.T, what string, got, want []float32, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= rtol*scale+1e-7) {
			t.Fatalf("%s: value %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestCLIKernelsFeatures runs `vizkit explain --methods kernels,features --npy`
// on the tiny cliGolden model and checks the .npy files against PyTorch's weights
// and activations, the PNGs and the report.
func TestCLIKernelsFeatures(t *testing.T) {
	out, log := runTinyExplain(t, "--methods", "kernels,features")
	ref, err := weights.LoadSafetensors(filepath.Join(cliGolden, "tinyvgg11.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// Defaults: kernels of features.0 and features.3.
	for _, l := range []string{"features.0", "features.3"} {
		shape, data := cliReadNPY(t, filepath.Join(out, "kernel_"+l+".weight.npy"))
		want := ref.Tensors[l+".weight"]
		if fmt.Sprint(shape) != fmt.Sprint(want.Shape) {
			t.Fatalf("%s kernel shape %v, want %v", l, shape, want.Shape)
		}
		for i := range data {
			if data[i] != want.Data[i] {
				t.Fatalf("%s kernel value %d = %v, want %v", l, i, data[i], want.Data[i])
			}
		}
		cliCheckPNG(t, filepath.Join(out, "kernels_"+l+".png"))
	}
	// Defaults: features of an early, a middle and the last block's ReLU.
	for _, l := range []string{"features.1", "features.9", "features.19"} {
		shape, data := cliReadNPY(t, filepath.Join(out, "act_"+l+".npy"))
		wshape, want := cliReadNPY(t, filepath.Join(cliGolden, "tinyvgg11", "input_a", "act_"+l+".npy"))
		if fmt.Sprint(shape) != fmt.Sprint(wshape[1:]) {
			t.Fatalf("act_%s shape %v, want (C,H,W) %v", l, shape, wshape[1:])
		}
		cliCloseTo(t, "act_"+l, data, want, 1e-4)
		cliCheckPNG(t, filepath.Join(out, "features_"+l+".png"))
		cliCheckPNG(t, filepath.Join(out, "features_mean_"+l+".png"))
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Kernels of features.0 (8×3×3×3)", "Kernels of features.3 (16×8×3×3)",
		"Feature maps of features.1 (ReLU)", "Feature maps of features.19 (ReLU)", "data:image/png;base64,"} {
		if !strings.Contains(string(page), s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if !strings.Contains(log, "kernels done") || !strings.Contains(log, "features done") {
		t.Errorf("log: %s", log)
	}
}

// TestCLILayerFlag checks --layer: a ReLU maps to the conv feeding it for
// kernels and is used directly for features; a Linear layer is an error.
func TestCLILayerFlag(t *testing.T) {
	out, _ := runTinyExplain(t, "--methods", "kernels,features", "--layer", "features.4")
	if _, err := os.Stat(filepath.Join(out, "kernel_features.3.weight.npy")); err != nil {
		t.Fatalf("kernels for --layer features.4: %v", err)
	}
	shape, _ := cliReadNPY(t, filepath.Join(out, "act_features.4.npy"))
	if fmt.Sprint(shape) != "[16 32 32]" {
		t.Fatalf("act_features.4 shape %v", shape)
	}
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if !strings.Contains(string(page), "showing the kernels of features.3") {
		t.Error("report does not say which conv --layer features.4 mapped to")
	}
	var stderr bytes.Buffer
	err := runExplain(context.Background(), []string{"--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"),
		"--input-npy", filepath.Join(cliGolden, "inputs", "input_a.npy"), "--out", t.TempDir(),
		"--methods", "features", "--layer", "classifier.1"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), `"classifier.1" is a ReLU with output (N,16)`) {
		t.Fatalf("features on classifier.1: %v", err)
	}
	err = runExplain(context.Background(), []string{"--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"),
		"--input-npy", filepath.Join(cliGolden, "inputs", "input_a.npy"), "--out", t.TempDir(),
		"--methods", "kernels", "--layer", "classifier.0"}, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "conv layers: features.0, features.3") {
		t.Fatalf("kernels on classifier.0: %v", err)
	}
}

func cliCheckPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 10 || b.Dy() < 10 {
		t.Fatalf("%s is only %v", path, b)
	}
}

// TestCLITargets explains the sum of two class logits and a regression
// output through the CLI; the Grad-CAM map of a sum differs from either
// class's and the report names the target.
func TestCLITargets(t *testing.T) {
	outSet, _ := runTinyExplain(t, "--methods", "gradcam", "--target", "classes", "--classes", "1,2")
	out1, _ := runTinyExplain(t, "--methods", "gradcam", "--class", "1")
	page, err := os.ReadFile(filepath.Join(outSet, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "sum of the logits of classes 1,2") {
		t.Fatalf("report does not name the class-set target")
	}
	_, set := cliReadNPY(t, filepath.Join(outSet, "cam_gradcam_features.20.npy"))
	_, one := cliReadNPY(t, filepath.Join(out1, "cam_gradcam_features.20.npy"))
	same := true
	for i := range set {
		if math.Abs(float64(set[i]-one[i])) > 1e-6 {
			same = false
		}
	}
	if same {
		t.Fatalf("Grad-CAM of the class set equals that of class 1 alone")
	}
	outDec, _ := runTinyExplain(t, "--methods", "saliency", "--target", "decrease", "--output", "3")
	outInc, _ := runTinyExplain(t, "--methods", "saliency", "--target", "increase", "--output", "3")
	_, dec := cliReadNPY(t, filepath.Join(outDec, "saliency_grad.npy"))
	_, inc := cliReadNPY(t, filepath.Join(outInc, "saliency_grad.npy"))
	for i := range dec {
		if dec[i] != -inc[i] {
			t.Fatalf("saliency of decrease at %d = %v, want −(increase) = %v", i, dec[i], -inc[i])
		}
	}
}
