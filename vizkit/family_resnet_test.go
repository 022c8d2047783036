package vizkit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
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
	return vtest.LoadNPY(t, filepath.Join(resnetGoldenDir, model, file+".npy"))
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
				ex, err := engine.NewExplainer(net, engine.Options{Lowering: tc.lowering})
				if err != nil {
					t.Fatal(err)
				}
				defer ex.Close()
				x := familyGolden(t, model, "input")
				target := engine.Class(meta.Targets...)
				res, err := ex.Run(x, engine.Request{Taps: meta.Acts, GradTaps: meta.Grads, GradInput: true, Target: target})
				if err != nil {
					t.Fatal(err)
				}
				vtest.AssertClose(t, "logits", res.Logits, familyGolden(t, model, "logits"), rtol)
				for _, m := range meta.Acts {
					vtest.AssertClose(t, "output of "+m, res.Acts[m], familyGolden(t, model, "act_"+m), rtol)
				}
				for _, m := range meta.Grads {
					vtest.AssertClose(t, "gradient w.r.t. "+m, res.Grads[m], familyGolden(t, model, "grad_"+m), rtol)
				}
				vtest.AssertClose(t, "input gradient", res.InputGrad, familyGolden(t, model, "grad_input"), rtol)

				g, err := ex.Run(x, engine.Request{GradInput: true, Target: target, ReLU: models.ReLUGuided})
				if err != nil {
					t.Fatal(err)
				}
				vtest.AssertClose(t, "guided input gradient", g.InputGrad, familyGolden(t, model, "guided_input"), rtol)

				for _, m := range meta.Cams {
					c, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Layers: []string{m}, Target: target})
					if err != nil {
						t.Fatal(err)
					}
					vtest.AssertClose(t, "Grad-CAM raw map at "+m, c.Raw[m], familyGolden(t, model, "gradcam_raw_"+m), rtol)
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
			var outs [2]*engine.Result
			var taps []string
			for i, l := range []models.Lowering{models.LoweringIm2Col, models.LoweringNative} {
				net, meta := openFamilyGolden(t, model, ".safetensors")
				if taps == nil {
					for _, layer := range net.Layers() {
						taps = append(taps, layer.Name)
					}
				}
				ex, err := engine.NewExplainer(net, engine.Options{Lowering: l})
				if err != nil {
					t.Fatal(err)
				}
				res, err := ex.Run(familyGolden(t, model, "input"), engine.Request{Taps: taps, GradTaps: meta.Grads, GradInput: true, Target: engine.Class(meta.Targets...)})
				ex.Close()
				if err != nil {
					t.Fatal(err)
				}
				outs[i] = res
			}
			for _, m := range taps {
				vtest.AssertClose(t, "im2col vs native: "+m, outs[0].Acts[m], outs[1].Acts[m], 1e-5)
			}
			vtest.AssertClose(t, "im2col vs native: input gradient", outs[0].InputGrad, outs[1].InputGrad, 1e-5)
		})
	}
}

// TestResNetFamilyProtocol: the engine's module-level features work on
// residual networks — the default CAM module, starting the network after a
// stage from PyTorch's activation of it, and refusing to start inside a
// residual branch (not a cut of the graph).
func TestResNetFamilyProtocol(t *testing.T) {
	for _, tc := range []struct{ model, cam, start, inside string }{
		{"resnet_basic", "layer4", "layer3", "layer3.1.conv2"},
		{"resnext_bottleneck", "layer4", "layer3.1", "layer2.0.bn3"},
		{"alexnet", "features.12", "features.12", ""},
	} {
		net, meta := openFamilyGolden(t, tc.model, ".safetensors")
		if l, err := cam.DefaultLayer(net); err != nil || l != tc.cam {
			t.Errorf("%s: DefaultCAMLayer = %q, %v; want %s", tc.model, l, err, tc.cam)
		}
		if l := zoo.CAMLayer(net); l != "" {
			t.Errorf("%s: a narrowed model has no registered CAM layer, got %q", tc.model, l)
		}
		ex, err := engine.NewExplainer(net, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		x := familyGolden(t, tc.model, "input")
		res, err := ex.Run(familyGolden(t, tc.model, "act_"+tc.start), engine.Request{StartAfter: tc.start, StartInput: x.Shape, Target: engine.Class(meta.Targets...)})
		if err != nil {
			t.Fatalf("%s: start after %s: %v", tc.model, tc.start, err)
		}
		vtest.AssertClose(t, tc.model+": logits from "+tc.start, res.Logits, familyGolden(t, tc.model, "logits"), 1e-4)
		if tc.inside != "" {
			a, err := ex.Run(x, engine.Request{Taps: []string{tc.inside}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ex.Run(a.Acts[tc.inside], engine.Request{StartAfter: tc.inside, StartInput: x.Shape}); err == nil {
				t.Errorf("%s: starting after %s (inside a residual block) was accepted", tc.model, tc.inside)
			}
		}
		ex.Close()
	}
}

// TestResNetFamilyOddInputs: odd, non-square inputs (every stride-2 layer
// rounds up; a 19×7 input reaches layer4 as 1×1) match PyTorch with both
// lowerings: logits, the last CAM module's output, the input gradient.
func TestResNetFamilyOddInputs(t *testing.T) {
	for _, model := range []string{"resnet_basic", "resnext_bottleneck", "alexnet"} {
		for _, l := range []models.Lowering{models.LoweringIm2Col, models.LoweringNative} {
			net, meta := openFamilyGolden(t, model, ".safetensors")
			ex, err := engine.NewExplainer(net, engine.Options{Lowering: l})
			if err != nil {
				t.Fatal(err)
			}
			m := meta.Cams[len(meta.Cams)-1]
			x := familyGolden(t, model, "input_odd")
			if err := net.CheckInput(x.Shape); err != nil {
				t.Fatal(err)
			}
			res, err := ex.Run(x, engine.Request{Taps: []string{m}, GradInput: true, Target: engine.Class(meta.Targets...)})
			if err != nil {
				t.Fatal(err)
			}
			what := model + " odd input, lowering " + []string{"auto", "im2col", "native"}[l]
			vtest.AssertClose(t, what+": logits", res.Logits, familyGolden(t, model, "logits_odd"), 1e-4)
			vtest.AssertClose(t, what+": "+m, res.Acts[m], familyGolden(t, model, "act_odd_"+m), 1e-4)
			vtest.AssertClose(t, what+": input gradient", res.InputGrad, familyGolden(t, model, "grad_input_odd"), 1e-4)
			ex.Close()
		}
	}
}

// TestResNetFamilyAllCAMMethods runs every registered CAM method on the
// narrowed ResNeXt-style and AlexNet fixtures at their default CAM module:
// each gives a finite map of the input's size — except CAM (Zhou et al.) on
// AlexNet, which has no GAP + single linear head, and says so. On the ResNet
// (GAP + fc) CAM's map equals Grad-CAM's (the gradient of a logit w.r.t.
// layer4 is fc's class weight / (h·w) at every position).
func TestResNetFamilyAllCAMMethods(t *testing.T) {
	for _, model := range []string{"resnext_bottleneck", "alexnet"} {
		net, meta := openFamilyGolden(t, model, ".safetensors")
		ex, err := engine.NewExplainer(net, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		x := familyGolden(t, model, "input")
		for _, method := range cam.Names() {
			c, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: method, Target: engine.Class(meta.Targets...)})
			if model == "alexnet" && method == "cam" {
				if err == nil || !strings.Contains(err.Error(), "gradcam") {
					t.Errorf("CAM on AlexNet: %v", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", model, method, err)
				continue
			}
			if !slices.Equal(c.Map.Shape, []int{x.Shape[0], x.Shape[2], x.Shape[3]}) {
				t.Errorf("%s %s: map %v", model, method, c.Map.Shape)
			}
			for _, v := range c.Map.Data {
				if v != v || v < 0 || v > 1 {
					t.Fatalf("%s %s: map value %g", model, method, v)
				}
			}
		}
		if model != "alexnet" {
			a, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Target: engine.Class(meta.Targets...)})
			if err != nil {
				t.Fatal(err)
			}
			g, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Target: engine.Class(meta.Targets...)})
			if err != nil {
				t.Fatal(err)
			}
			vtest.AssertClose(t, "CAM vs Grad-CAM on "+model, a.Map, g.Map, 1e-4)
		}
		if model != "alexnet" {
			a, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Target: engine.Class(meta.Targets...)})
			if err != nil {
				t.Fatal(err)
			}
			g, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Target: engine.Class(meta.Targets...)})
			if err != nil {
				t.Fatal(err)
			}
			vtest.AssertClose(t, "CAM vs Grad-CAM on "+model, a.Map, g.Map, 1e-4)
		}
		ex.Close()
	}
}
