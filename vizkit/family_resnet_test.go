package vizkit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/models/zoo"
)

// resnetGoldenDir holds fixtures made by scripts/gen_family_golden.py with
// PyTorch (torchvision's ResNet and AlexNet classes, narrowed).
var resnetGoldenDir = filepath.Join("..", "testdata", "golden_resnet")

type familyGoldenMeta struct {
	Model   string   `json:"model"`
	Targets []int    `json:"targets"`
	Acts    []string `json:"acts"`
	Grads   []string `json:"grads"`
	Cams    []string `json:"cams"`
}

func familyGolden(t *testing.T, model, file string) *Array {
	t.Helper()
	return loadNPY(t, filepath.Join(resnetGoldenDir, model, file+".npy"))
}

// openFamilyGolden loads a fixture's weights (".safetensors" or ".pth")
// through zoo.LoadWeights, which recognises the family.
func openFamilyGolden(t *testing.T, model, ext string) (models.Network, familyGoldenMeta) {
	t.Helper()
	w, err := weights.Load(t.Context(), filepath.Join(resnetGoldenDir, model+ext), weights.HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	net, err := zoo.LoadWeights(w, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(net.Close)
	raw, err := os.ReadFile(filepath.Join(resnetGoldenDir, model, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta familyGoldenMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	return net, meta
}

// TestResNetFamilyGolden compares torchvision-structured ResNets (BasicBlock;
// grouped Bottleneck) and AlexNet with PyTorch: logits, module outputs inside
// and between residual blocks, gradients of a class logit with respect to the
// input and to modules, the guided-backprop input gradient (every application
// of each block's shared relu) and Grad-CAM at two modules — with the Go
// backend's im2col lowering and with the native convolution, from the
// .safetensors and the .pth files.
func TestResNetFamilyGolden(t *testing.T) {
	const rtol = 1e-4
	for _, model := range []string{"resnet_basic", "resnext_bottleneck", "alexnet"} {
		for _, tc := range []struct {
			ext      string
			lowering models.Lowering
		}{{".safetensors", models.LoweringAuto}, {".pth", models.LoweringNative}} {
			t.Run(model+tc.ext, func(t *testing.T) {
				net, meta := openFamilyGolden(t, model, tc.ext)
				ex, err := NewExplainer(net, Options{Lowering: tc.lowering})
				if err != nil {
					t.Fatal(err)
				}
				defer ex.Close()
				x := familyGolden(t, model, "input")
				target := Class(meta.Targets...)
				res, err := ex.Run(x, Request{Taps: meta.Acts, GradTaps: meta.Grads, GradInput: true, Target: target})
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "logits", res.Logits, familyGolden(t, model, "logits"), rtol)
				for _, m := range meta.Acts {
					assertClose(t, "output of "+m, res.Acts[m], familyGolden(t, model, "act_"+m), rtol)
				}
				for _, m := range meta.Grads {
					assertClose(t, "gradient w.r.t. "+m, res.Grads[m], familyGolden(t, model, "grad_"+m), rtol)
				}
				assertClose(t, "input gradient", res.InputGrad, familyGolden(t, model, "grad_input"), rtol)

				g, err := ex.Run(x, Request{GradInput: true, Target: target, ReLU: models.ReLUGuided})
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "guided input gradient", g.InputGrad, familyGolden(t, model, "guided_input"), rtol)

				for _, m := range meta.Cams {
					c, err := ex.CAM(x, CAMOptions{Method: "gradcam", Layers: []string{m}, Target: target})
					if err != nil {
						t.Fatal(err)
					}
					assertClose(t, "Grad-CAM raw map at "+m, c.Raw[m], familyGolden(t, model, "gradcam_raw_"+m), rtol)
				}
			})
		}
	}
}

// TestResNetFamilyLoweringsAgree runs the narrowed models with both
// convolution lowerings on the same backend and compares every module output
// (grouped, strided, 1×1, 7×7 and 11×11 convolutions).
func TestResNetFamilyLoweringsAgree(t *testing.T) {
	for _, model := range []string{"resnet_basic", "resnext_bottleneck", "alexnet"} {
		t.Run(model, func(t *testing.T) {
			var outs [2]*Result
			var taps []string
			for i, l := range []models.Lowering{models.LoweringIm2Col, models.LoweringNative} {
				net, meta := openFamilyGolden(t, model, ".safetensors")
				if taps == nil {
					for _, layer := range net.Layers() {
						taps = append(taps, layer.Name)
					}
				}
				ex, err := NewExplainer(net, Options{Lowering: l})
				if err != nil {
					t.Fatal(err)
				}
				res, err := ex.Run(familyGolden(t, model, "input"), Request{Taps: taps, GradTaps: meta.Grads, GradInput: true, Target: Class(meta.Targets...)})
				ex.Close()
				if err != nil {
					t.Fatal(err)
				}
				outs[i] = res
			}
			for _, m := range taps {
				assertClose(t, "im2col vs native: "+m, outs[0].Acts[m], outs[1].Acts[m], 1e-5)
			}
			assertClose(t, "im2col vs native: input gradient", outs[0].InputGrad, outs[1].InputGrad, 1e-5)
		})
	}
}
