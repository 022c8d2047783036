package vizkit

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/densenet"
	"github.com/cnnviz/cnnviz/models/mobilenet"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// denseGoldenDir holds fixtures made by scripts/gen_family_golden_dense.py
// (torchvision's DenseNet and MobileNetV2 classes, narrowed).
var denseGoldenDir = filepath.Join("..", "testdata", "golden_dense")

type denseGoldenMeta struct {
	Target int `json:"target_class"`
	Models map[string]struct {
		Taps  []string `json:"taps"`
		Grads []string `json:"grads"`
		Cams  []string `json:"cams"`
	} `json:"models"`
}

// gradCAMOf is pytorch-grad-cam's Grad-CAM from an activation and its
// gradient (N,C,H,W): w[n,c] = mean_{h,w} grad; cr = relu(Σ_c w·A) (N,H,W).
// With reluA, A is replaced by relu(A) (see densenet's package doc).
func gradCAMOf(act, grad *Array, reluA bool) *Array {
	n, c, h, w := act.Shape[0], act.Shape[1], act.Shape[2], act.Shape[3]
	out := &Array{Shape: []int{n, h, w}, Data: make([]float32, n*h*w)}
	for i := 0; i < n; i++ {
		for k := 0; k < c; k++ {
			base := (i*c + k) * h * w
			var s float64
			for p := 0; p < h*w; p++ {
				s += float64(grad.Data[base+p])
			}
			wk := s / float64(h*w)
			for p := 0; p < h*w; p++ {
				a := float64(act.Data[base+p])
				if reluA {
					a = math.Max(a, 0)
				}
				out.Data[i*h*w+p] += float32(wk * a)
			}
		}
	}
	for i, v := range out.Data {
		out.Data[i] = float32(math.Max(float64(v), 0))
	}
	return out
}

// TestDenseFamiliesGolden compares the DenseNet and MobileNet-V2 builders
// with PyTorch (torchvision's own classes): logits, module outputs inside
// dense layers and inverted residuals, gradients of a class logit w.r.t. the
// input and two modules, guided backpropagation through ReLU and ReLU6, and
// Grad-CAM at two modules — with the im2col and the native lowering.
func TestDenseFamiliesGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(denseGoldenDir, "meta.json"))
	if err != nil {
		t.Fatalf("%v (run scripts/gen_family_golden_dense.py)", err)
	}
	var meta denseGoldenMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	load := map[string]func(*weights.Set) (models.Network, error){
		"tinydensenet":  func(w *weights.Set) (models.Network, error) { return densenet.Load(w) },
		"tinymobilenet": func(w *weights.Set) (models.Network, error) { return mobilenet.Load(w) },
	}
	for _, name := range []string{"tinydensenet", "tinymobilenet"} {
		mm := meta.Models[name]
		if len(mm.Taps) == 0 || len(mm.Cams) != 2 {
			t.Fatalf("%s: meta.json lists no taps or not two CAM modules", name)
		}
		for _, low := range []struct {
			name string
			l    models.Lowering
		}{{"im2col", models.LoweringIm2Col}, {"native", models.LoweringNative}} {
			t.Run(name+"/"+low.name, func(t *testing.T) {
				w, err := weights.LoadSafetensors(filepath.Join(denseGoldenDir, name+".safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				net, err := load[name](w)
				if err != nil {
					t.Fatal(err)
				}
				defer net.Close()
				ex, err := engine.NewExplainer(net, engine.Options{Lowering: low.l})
				if err != nil {
					t.Fatal(err)
				}
				defer ex.Close()
				for _, in := range []string{"input_a", "input_b"} {
					dir := filepath.Join(denseGoldenDir, name, in)
					x := vtest.LoadNPY(t, filepath.Join(dir, "input.npy"))
					gt := append(append([]string(nil), mm.Grads...), mm.Cams...)
					req := engine.Request{Target: engine.Class(meta.Target), GradInput: true, Taps: append(append([]string(nil), mm.Taps...), mm.Cams...), GradTaps: gt}
					res, err := ex.Run(x, req)
					if err != nil {
						t.Fatal(err)
					}
					const rtol = 1e-4
					vtest.AssertClose(t, in+" logits", res.Logits, vtest.LoadNPY(t, filepath.Join(dir, "logits.npy")), rtol)
					for _, l := range mm.Taps {
						vtest.AssertClose(t, in+" activation "+l, res.Acts[l], vtest.LoadNPY(t, filepath.Join(dir, "act_"+l+".npy")), rtol)
					}
					for _, l := range mm.Grads {
						vtest.AssertClose(t, in+" gradient w.r.t. "+l, res.Grads[l], vtest.LoadNPY(t, filepath.Join(dir, "grad_"+l+".npy")), rtol)
					}
					vtest.AssertClose(t, in+" gradient w.r.t. input", res.InputGrad, vtest.LoadNPY(t, filepath.Join(dir, "grad_input.npy")), rtol)
					for _, l := range mm.Cams {
						vtest.AssertClose(t, in+" Grad-CAM at "+l, gradCAMOf(res.Acts[l], res.Grads[l], false), vtest.LoadNPY(t, filepath.Join(dir, "gradcam_"+l+".npy")), rtol)
					}
					if name == "tinydensenet" {
						// features.norm5 is the batch norm's own output; pytorch-grad-cam
						// sees relu(norm5) there (torchvision's in-place F.relu) — the
						// same gradient, A replaced by relu(A). Both forms match, and differ.
						l := "features.norm5"
						pgc := vtest.LoadNPY(t, filepath.Join(dir, "gradcam_pgc_"+l+".npy"))
						vtest.AssertClose(t, in+" pytorch-grad-cam's Grad-CAM at "+l, gradCAMOf(res.Acts[l], res.Grads[l], true), pgc, rtol)
						neg := false
						for _, v := range res.Acts[l].Data {
							neg = neg || v < 0
						}
						if !neg {
							t.Fatalf("%s: features.norm5 has no negative value: the tap is not the batch norm's own output", in)
						}
					}
					g, err := ex.Run(x, engine.Request{Target: engine.Class(meta.Target), GradInput: true, ReLU: models.ReLUGuided})
					if err != nil {
						t.Fatal(err)
					}
					vtest.AssertClose(t, in+" guided backprop w.r.t. input", g.InputGrad, vtest.LoadNPY(t, filepath.Join(dir, "guided_input.npy")), rtol)
				}
			})
		}
	}
}
