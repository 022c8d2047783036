package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// familyCase is a narrowed torchvision model with PyTorch golden arrays
// (testdata/golden_*), explained through the CLI exactly as a user would.
type familyCase struct {
	name, weights, dir string
	// layer is a module path whose activation the golden files hold.
	layer string
}

func familyCases() []familyCase {
	root := filepath.Join("..", "..", "..", "testdata")
	return []familyCase{
		{"densenet", filepath.Join(root, "golden_dense", "tinydensenet.safetensors"), filepath.Join(root, "golden_dense", "tinydensenet", "input_a"), "features.denseblock2.denselayer1.conv2"},
		{"mobilenet", filepath.Join(root, "golden_dense", "tinymobilenet.pth"), filepath.Join(root, "golden_dense", "tinymobilenet", "input_a"), "features.18"},
		{"resnet", filepath.Join(root, "golden_resnet", "resnet_basic.safetensors"), filepath.Join(root, "golden_resnet", "resnet_basic"), "layer3.1"},
		{"resnext", filepath.Join(root, "golden_resnet", "resnext_bottleneck.pth"), filepath.Join(root, "golden_resnet", "resnext_bottleneck"), "layer4"},
		{"alexnet", filepath.Join(root, "golden_resnet", "alexnet.safetensors"), filepath.Join(root, "golden_resnet", "alexnet"), "features.12"},
	}
}

// TestCLIFamilies runs `vizkit explain --npy` with every method family on
// each narrowed model: logits and the requested module's activation equal
// PyTorch's, the documented file names appear for module paths, and the
// report names the model.
func TestCLIFamilies(t *testing.T) {
	for _, fc := range familyCases() {
		if _, err := os.Stat(fc.weights); err != nil {
			t.Logf("%s: no fixture (%v)", fc.name, err)
			continue
		}
		t.Run(fc.name, func(t *testing.T) {
			in := filepath.Join(fc.dir, "input.npy")
			shape, data := cliReadNPY(t, in)
			if shape[0] > 1 { // The CLI explains one image: take the first.
				n := len(data) / shape[0]
				tmp := filepath.Join(t.TempDir(), "one.npy")
				writeNPYForTest(t, tmp, shape[1:], data[:n])
				in = tmp
			}
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			args := []string{"--weights", fc.weights, "--input-npy", in, "--npy", "--out", out,
				"--methods", "kernels,features,gradcam,saliency,guided", "--layer", fc.layer}
			if err := runExplain(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("explain: %v\n%s", err, stderr.String())
			}
			_, logits := cliReadNPY(t, filepath.Join(out, "logits.npy"))
			_, want := cliReadNPY(t, filepath.Join(fc.dir, "logits.npy"))
			cliCloseTo(t, "logits", logits, want[:len(logits)], 1e-4)
			_, act := cliReadNPY(t, filepath.Join(out, "act_"+fc.layer+".npy"))
			_, wantAct := cliReadNPY(t, filepath.Join(fc.dir, "act_"+fc.layer+".npy"))
			cliCloseTo(t, "act_"+fc.layer, act, wantAct[:len(act)], 1e-4)
			for _, f := range []string{"cam_gradcam_" + fc.layer + ".npy", "saliency_grad.npy", "guided_backprop.npy", "index.html"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			page, _ := os.ReadFile(filepath.Join(out, "index.html"))
			if !strings.Contains(string(page), fc.layer) {
				t.Errorf("report does not mention %s", fc.layer)
			}
		})
	}
}

func writeNPYForTest(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	if err := npy.WriteFile(path, shape, data); err != nil {
		t.Fatal(err)
	}
}

// TestCLIONNX explains ONNX graphs through the CLI: a narrowed ResNet-18 by
// torchvision module path, and a 1-channel single-logit network from an
// RGB photo (converted to grayscale, resized to the graph's input size) with
// the negative class as target.
func TestCLIONNX(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "models", "onnx", "testdata")
	if _, err := os.Stat(filepath.Join(dir, "resnet18n.onnx")); err != nil {
		t.Skipf("no ONNX fixtures: %v", err)
	}
	img := filepath.Join("..", "..", "..", "testdata", "images", "chelsea.jpg")
	for _, c := range []struct {
		model string
		args  []string
		files []string
	}{
		{"resnet18n.onnx", []string{"--layer", "layer4.1", "--methods", "features,gradcam,guided"},
			[]string{"act_layer4.1.npy", "cam_gradcam_layer4.1.npy", "guided_backprop.npy", "logits.npy"}},
		{"tinynet.onnx", []string{"--target", "negative", "--methods", "features,gradcam,kernels"},
			[]string{"logits.npy", "kernel_stem.0.weight.npy", "index.html"}},
	} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		args := append([]string{"--weights", filepath.Join(dir, c.model), "--image", img, "--npy", "--out", out}, c.args...)
		if err := runExplain(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v\n%s", c.model, err, stderr.String())
		}
		for _, f := range c.files {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: missing %s", c.model, f)
			}
		}
		if c.model == "tinynet.onnx" {
			shape, _ := cliReadNPY(t, filepath.Join(out, "logits.npy"))
			if len(shape) != 1 || shape[0] != 1 {
				t.Errorf("tinynet logits shape %v, want (1,)", shape)
			}
			page, _ := os.ReadFile(filepath.Join(out, "index.html"))
			if !strings.Contains(string(page), "negative class") || !strings.Contains(string(page), "grayscale") {
				t.Errorf("tinynet report does not name the negative-class target and the grayscale input")
			}
		}
	}
}
