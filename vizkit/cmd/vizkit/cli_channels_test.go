package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/onnx"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
)

// tinyONNX is the 1-channel single-logit ONNX fixture (28×28), or a skip.
func tinyONNX(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "models", "onnx", "testdata", "tinynet.onnx")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no ONNX fixture: %v", err)
	}
	return p
}

func explainArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runExplain(context.Background(), args, &stdout, &stderr)
	return stderr.String(), err
}

func wantNPYShape(t *testing.T, dir, name string, shape ...int) []float32 {
	t.Helper()
	got, data := cliReadNPY(t, filepath.Join(dir, name))
	if len(got) != len(shape) {
		t.Fatalf("%s: shape %v, want %v", name, got, shape)
	}
	for i := range got {
		if got[i] != shape[i] {
			t.Fatalf("%s: shape %v, want %v", name, got, shape)
		}
	}
	return data
}

// TestCLIChannelsONNX: `vizkit explain` on the 1-channel ONNX model with the
// gradient and sampling methods writes the documented .npy files with one
// channel; --mean/--std reach the "black" baseline; the saliency gradient is
// the library's on the same grayscale input.
func TestCLIChannelsONNX(t *testing.T) {
	model := tinyONNX(t)
	img := filepath.Join("..", "..", "..", "testdata", "images", "chelsea.jpg")
	out := t.TempDir()
	log, err := explainArgs(t, "--weights", model, "--image", img, "--npy", "--out", out,
		"--mean", "0.5", "--std", "0.25", "--methods", "saliency,smoothgrad,ig,occlusion")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	grad := wantNPYShape(t, out, "saliency_grad.npy", 1, 28, 28)
	wantNPYShape(t, out, "saliency_absmax.npy", 28, 28)
	wantNPYShape(t, out, "saliency_max.npy", 28, 28)
	wantNPYShape(t, out, "saliency_gradxinput.npy", 1, 28, 28)
	for _, f := range []string{"smoothgrad.npy", "smoothgrad_sq.npy", "vargrad.npy", "ig.npy"} {
		wantNPYShape(t, out, f, 1, 28, 28)
	}
	for i, v := range wantNPYShape(t, out, "ig_baseline.npy", 1, 28, 28) {
		if v != -2 { // black = (0 − 0.5)/0.25
			t.Fatalf("ig_baseline[%d] = %v, want −2 (black under --mean 0.5 --std 0.25)", i, v)
		}
	}
	occ := wantNPYShape(t, out, "occlusion.npy", 28, 28)
	nonzero := 0
	for _, v := range occ {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Errorf("occlusion map is all zero")
	}
	for _, f := range []string{"input.png", "saliency.png", "smoothgrad.png", "ig.png", "occlusion.png"} {
		cliCheckPNG(t, filepath.Join(out, f))
	}
	if dir := os.Getenv("CNNVIZ_PNG_DIR"); dir != "" {
		b, _ := os.ReadFile(filepath.Join(out, "saliency.png"))
		os.WriteFile(filepath.Join(dir, "cli_tinynet_saliency.png"), b, 0o644)
	}

	// The same gradient from the library on the same preprocessing.
	m, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	pic, err := imageio.Load(img)
	if err != nil {
		t.Fatal(err)
	}
	pre := imageio.Preprocess{ResizeShort: 32, CropH: 28, CropW: 28}
	in, err := pre.Apply(pic)
	if err != nil {
		t.Fatal(err)
	}
	if in, err = imageio.Gray(in, 0.5, 0.25); err != nil {
		t.Fatal(err)
	}
	s, err := attr.Saliency(context.Background(), ex, &vizkit.Array{Shape: []int{1, 1, 28, 28}, Data: in.Data}, attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cliCloseTo(t, "saliency_grad", grad, s.Grad.Data, 1e-4)
}

// TestCLIChannelsNPYAndErrors: a 1-channel --input-npy with
// --display-channels, and clear errors for channels and normalisations that
// do not fit the model.
func TestCLIChannelsNPYAndErrors(t *testing.T) {
	model := tinyONNX(t)
	dir := t.TempDir()
	x := make([]float32, 28*28)
	for i := range x {
		x[i] = float32(i%28) / 28
	}
	npyPath := filepath.Join(dir, "digit.npy")
	writeNPYForTest(t, npyPath, []int{1, 28, 28}, x)
	out := filepath.Join(dir, "out")
	if log, err := explainArgs(t, "--weights", model, "--input-npy", npyPath, "--display-channels", "0", "--npy", "--out", out, "--methods", "saliency"); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	wantNPYShape(t, out, "saliency_grad.npy", 1, 28, 28)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--display-channels", "1"}, "display channel 1 is out of range for an input with 1 channel(s)"},
		{[]string{"--display-channels", "0,0"}, "1 channel (gray) or 3"},
		{[]string{"--display-channels", "x"}, `"x" is not a channel index`},
		{[]string{"--mean", "0.1,0.2,0.3"}, "--mean: 3 values for a model with 1 input channel(s)"},
	} {
		args := append([]string{"--weights", model, "--input-npy", npyPath, "--out", filepath.Join(dir, "bad"), "--methods", "saliency"}, c.args...)
		if _, err := explainArgs(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (want %q)", c.args, err, c.want)
		}
	}
	// An RGB model drawn from channels 2,1,0 works; channel 3 does not exist.
	rgbOut := filepath.Join(dir, "rgb")
	if log, err := explainArgs(t, "--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"), "--image", filepath.Join("..", "..", "..", "testdata", "images", "chelsea.jpg"),
		"--display-channels", "2,1,0", "--out", rgbOut, "--methods", "saliency"); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if _, err := explainArgs(t, "--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"), "--image", filepath.Join("..", "..", "..", "testdata", "images", "chelsea.jpg"),
		"--display-channels", "3,1,0", "--out", filepath.Join(dir, "bad"), "--methods", "saliency"); err == nil || !strings.Contains(err.Error(), "display channel 3 is out of range for an input with 3 channel(s)") {
		t.Errorf("--display-channels 3,1,0 on an RGB model: %v", err)
	}
}

// TestCLIChannelsDataset: data-set mode over a folder of 2 PNGs with the
// 1-channel model (grayscale, the graph's 28×28 size), CAM and saliency.
func TestCLIChannelsDataset(t *testing.T) {
	model := tinyONNX(t)
	data := t.TempDir()
	dsWriteImage(t, filepath.Join(data, "one.png"), 60, 40, 10, 10, 12, 3)
	dsWriteImage(t, filepath.Join(data, "two.png"), 50, 50, 30, 5, 10, 9)
	out := filepath.Join(t.TempDir(), "out")
	log, err := explainArgs(t, "--weights", model, "--image", data, "--methods", "gradcam,saliency", "--npy", "--out", out, "--batch-size", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	s := dsReadSummary(t, out)
	if len(s.Rows) != 2 || len(s.Skipped) != 0 {
		t.Fatalf("rows %d, skipped %+v\n%s", len(s.Rows), s.Skipped, log)
	}
	for _, r := range s.Rows {
		d := filepath.Join(out, "images", filepath.FromSlash(r.Rel))
		wantNPYShape(t, d, "saliency_grad.npy", 1, 28, 28)
		wantNPYShape(t, d, "logits.npy", 1)
		for _, f := range []string{"input.png", "saliency.png", "index.html"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				t.Errorf("%s: %v", r.Rel, err)
			}
		}
		page, _ := os.ReadFile(filepath.Join(d, "index.html"))
		if !strings.Contains(string(page), "centre-cropped to 28×28, grayscale") {
			t.Errorf("%s: the report does not describe the grayscale 28×28 input", r.Rel)
		}
	}
	// A 3-value --mean for the 1-channel model is refused before any work.
	if _, err := explainArgs(t, "--weights", model, "--image", data, "--mean", "0.1,0.2,0.3", "--out", filepath.Join(t.TempDir(), "o")); err == nil || !strings.Contains(err.Error(), "--mean: 3 values") {
		t.Errorf("data set with a 3-value --mean: %v", err)
	}
}
