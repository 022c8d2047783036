package vizkit

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// camGoldenDir holds the reference CAMs made by scripts/gen_cam_golden.py
// (a float64 PyTorch reimplementation of pytorch-grad-cam's methods).
var camGoldenDir = filepath.Join("..", "testdata", "golden_cam")

type camGoldenCase struct {
	Input  string   `json:"input"`
	Dir    string   `json:"dir"`
	Method string   `json:"method"`
	Layers []string `json:"layers"`
	Target struct {
		Kind    string `json:"kind"`
		Classes []int  `json:"classes"`
	} `json:"target"`
	EigenSmooth bool             `json:"eigen_smooth"`
	AugSmooth   bool             `json:"aug_smooth"`
	Files       map[string][]int `json:"files"`
}

// pearson returns the correlation of two equally long vectors, and whether
// both are constant (then the correlation is undefined).
func pearson(a, b []float32) (float64, bool, bool) {
	n := float64(len(a))
	ma, mb := 0.0, 0.0
	for i := range a {
		ma += float64(a[i])
		mb += float64(b[i])
	}
	ma /= n
	mb /= n
	sab, saa, sbb := 0.0, 0.0, 0.0
	for i := range a {
		da, db := float64(a[i])-ma, float64(b[i])-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return 0, saa == 0, sbb == 0
	}
	return sab / math.Sqrt(saa*sbb), false, false
}

// TestCAMGoldenAgainstPyTorch compares every method's raw maps and channel
// weights (1e-4 relative to the largest reference value), low-resolution
// scaled maps (1e-3) and final maps (Pearson r ≥ 0.999 and max abs diff
// ≤ 1e-4) with the PyTorch reference on tinyvgg11.
func TestCAMGoldenAgainstPyTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(camGoldenDir, "meta.json"))
	if err != nil {
		t.Fatalf("%v (run scripts/gen_cam_golden.py)", err)
	}
	var meta struct {
		Cases []camGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if len(meta.Cases) < 60 {
		t.Fatalf("only %d golden CAM cases", len(meta.Cases))
	}
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	methods := map[string]bool{}
	for _, c := range meta.Cases {
		t.Run(c.Dir, func(t *testing.T) {
			methods[c.Method] = true
			x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", c.Input+".npy"))
			target := engine.Class(c.Target.Classes...)
			if c.Target.Kind == "softmax" {
				target = engine.SoftmaxOf(c.Target.Classes...)
			}
			res, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: c.Method, Layers: c.Layers, Target: target,
				EigenSmooth: c.EigenSmooth, AugSmooth: c.AugSmooth})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(camGoldenDir, c.Dir)
			checked := 0
			for f := range c.Files {
				want := vtest.LoadNPY(t, filepath.Join(dir, f))
				name := strings.TrimSuffix(f, ".npy")
				kind, layer, _ := strings.Cut(name, "_")
				switch kind {
				case "raw":
					vtest.AssertClose(t, f, res.Raw[layer], want, 1e-4)
				case "weights":
					vtest.AssertClose(t, f, res.Weights[layer], want, 1e-4)
				case "low":
					vtest.AssertClose(t, f, res.Low[layer], want, 1e-3)
				case "map":
					got := res.Map
					if !slices.Equal(got.Shape, want.Shape) {
						t.Fatalf("map shape %v, want %v", got.Shape, want.Shape)
					}
					for i := 0; i < got.Shape[0]; i++ {
						g, w := got.Index(i).Data, want.Index(i).Data
						r, gFlat, wFlat := pearson(g, w)
						if gFlat || wFlat {
							if gFlat != wFlat || g[0] != 0 || !res.Flat[i] {
								t.Fatalf("example %d: flat got=%v want=%v (got[0]=%v, Flat=%v)", i, gFlat, wFlat, g[0], res.Flat[i])
							}
							continue
						}
						if r < 0.999 {
							t.Fatalf("example %d: Pearson r = %.6f < 0.999", i, r)
						}
						worst := 0.0
						for j := range g {
							worst = math.Max(worst, math.Abs(float64(g[j]-w[j])))
						}
						if worst > 1e-4 {
							t.Fatalf("example %d: max abs diff %.3g (r = %.6f)", i, worst, r)
						}
						if res.Flat[i] {
							t.Fatalf("example %d flagged flat", i)
						}
					}
				default:
					t.Fatalf("unexpected fixture %s", f)
				}
				checked++
			}
			if checked == 0 || c.Files["map.npy"] == nil {
				t.Fatal("case has no map.npy")
			}
		})
	}
	for _, name := range cam.Names() {
		if name != "cam" && !methods[name] {
			t.Errorf("method %s has no golden case", name)
		}
	}
}
