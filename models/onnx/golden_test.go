package onnx_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/onnx"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// refSpec is one entry of testdata/refs.json (scripts/gen_onnx_fixtures.py).
type refSpec struct {
	Opset      int      `json:"opset"`
	Input      []int    `json:"input"`
	GradCAM    []string `json:"gradcam"`
	ScoreCAM   string   `json:"scorecam"`
	NumOutputs int      `json:"num_outputs"`
}

func readRefs(t *testing.T) map[string]refSpec {
	t.Helper()
	b, err := os.ReadFile("testdata/refs.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]refSpec
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// readNPZ reads every float32 array of an .npz file.
func readNPZ(t *testing.T, path string) map[string]*vizkit.Array {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	out := map[string]*vizkit.Array{}
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		shape, data, err := npy.Read(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s/%s: %v", path, f.Name, err)
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = &vizkit.Array{Shape: shape, Data: data}
	}
	return out
}

// closeTo checks |got−want| ≤ rel·max|want| element-wise and returns the
// worst ratio to that bound.
func closeTo(t *testing.T, what string, got, want *vizkit.Array, rel float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: missing", what)
		return
	}
	if len(got.Data) != len(want.Data) {
		t.Errorf("%s: %d values (shape %v), want %d (shape %v)", what, len(got.Data), got.Shape, len(want.Data), want.Shape)
		return
	}
	scale := 0.0
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst, at := 0.0, 0
	for i := range got.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if math.IsNaN(d) {
			t.Errorf("%s: NaN at %d", what, i)
			return
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > rel*scale {
		t.Errorf("%s: max |Δ| = %.3g at %d (got %v, want %v) > %.0e × max|ref| %.3g", what, worst, at, got.Data[at], want.Data[at], rel, scale)
	} else {
		t.Logf("%s: max |Δ|/max|ref| = %.2g", what, worst/math.Max(scale, 1e-30))
	}
}

func pearson(a, b []float32) float64 {
	var ma, mb float64
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		x, y := float64(a[i])-ma, float64(b[i])-mb
		sab += x * y
		saa += x * x
		sbb += y * y
	}
	return sab / math.Sqrt(saa*sbb)
}

func variance(a []float32) float64 {
	var m, s float64
	for _, v := range a {
		m += float64(v)
	}
	m /= float64(len(a))
	for _, v := range a {
		s += (float64(v) - m) * (float64(v) - m)
	}
	return s / float64(len(a))
}

func reluArr(a *vizkit.Array) []float32 {
	out := make([]float32, len(a.Data))
	for i, v := range a.Data {
		out[i] = max(v, 0)
	}
	return out
}

// TestGoldenPyTorch compares logits, input gradients, Grad-CAM (default and a
// named layer) and Score-CAM with PyTorch's on the exported fixtures.
func TestGoldenPyTorch(t *testing.T) {
	for name, spec := range readRefs(t) {
		t.Run(name, func(t *testing.T) {
			m, err := onnx.Load(filepath.Join("testdata", name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ref := readNPZ(t, filepath.Join("testdata", name+".ref.npz"))
			if m.NumClasses() != spec.NumOutputs || m.InputChannels() != spec.Input[0] || m.Opset != spec.Opset {
				t.Fatalf("NumClasses %d, channels %d, opset %d; want %d, %d, %d", m.NumClasses(), m.InputChannels(), m.Opset, spec.NumOutputs, spec.Input[0], spec.Opset)
			}
			if got := m.DefaultCAMLayer(); got != spec.GradCAM[0] {
				t.Errorf("DefaultCAMLayer = %q, want %q", got, spec.GradCAM[0])
			}
			ex, err := engine.NewExplainer(m, engine.Options{Backend: "go"})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			x := ref["x"]
			classes := make([]int, len(ref["classes"].Data))
			for i, c := range ref["classes"].Data {
				classes[i] = int(c)
			}
			res, err := ex.Run(x, engine.Request{Target: engine.Class(classes...), GradInput: true})
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, "logits", res.Logits, ref["logits"], 1e-4)
			closeTo(t, "input gradient", res.InputGrad, ref["input_grad"], 1e-4)
			check := func(method, layer string, auto bool) {
				opts := cam.Options{Method: method, Target: engine.Class(classes...)}
				if !auto {
					opts.Layers = []string{layer}
				}
				cam, err := cam.Compute(context.Background(), ex, x, opts)
				if err != nil {
					t.Errorf("%s at %s: %v", method, layer, err)
					return
				}
				if cam.Layers[0] != layer {
					t.Errorf("%s: layer %q, want %q", method, cam.Layers[0], layer)
					return
				}
				want := ref[method+"_raw/"+layer]
				closeTo(t, method+" raw at "+layer, cam.Raw[layer], want, 1e-4)
				if r := pearson(cam.Raw[layer].Data, want.Data); !(r >= 0.999) {
					t.Errorf("%s at %s: raw maps r = %.5f < 0.999", method, layer, r)
				}
				if g, w := reluArr(cam.Raw[layer]), reluArr(want); variance(w) > 0 {
					if r := pearson(g, w); !(r >= 0.999) {
						t.Errorf("%s at %s: maps after ReLU r = %.5f < 0.999", method, layer, r)
					}
				}
			}
			check("gradcam", spec.GradCAM[0], true)
			check("gradcam", spec.GradCAM[1], false)
			check("scorecam", spec.ScoreCAM, false)
		})
	}
}
