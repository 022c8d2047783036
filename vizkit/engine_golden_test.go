package vizkit

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// goldenDir holds fixtures made by scripts/gen_golden.py with PyTorch.
var goldenDir = filepath.Join("..", "testdata", "golden")

type goldenMeta struct {
	Model      string                     `json:"model"`
	InputFile  string                     `json:"input_file"`
	Weights    map[string]string          `json:"weights"`
	Target     int                        `json:"target_class"`
	PerExample []int                      `json:"per_example_targets"`
	Files      map[string]json.RawMessage `json:"files"`
}

func loadNPY(t testing.TB, path string) *Array {
	t.Helper()
	shape, data, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &Array{Shape: shape, Data: data}
}

// assertClose checks got against want with a tolerance relative to want's
// largest magnitude (rtol·max|want| + atol).
func assertClose(t testing.TB, what string, got, want *Array, rtol float64) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	scale := 0.0
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	tol := rtol*scale + 1e-7
	worst, at := 0.0, 0
	for i := range want.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if math.IsNaN(d) {
			t.Fatalf("%s: NaN at %d", what, i)
		}
		if d > worst {
			worst, at = d, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: max abs diff %.3g at flat index %d (got %g, want %g), tolerance %.3g (scale %.3g)",
			what, worst, at, got.Data[at], want.Data[at], tol, scale)
	}
}

func goldenCases(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "input_*", "meta.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden fixtures under %s (run scripts/gen_golden.py): %v", goldenDir, err)
	}
	sort.Strings(dirs)
	return dirs
}

func loadGoldenModel(t *testing.T, file string) *vgg.Model {
	t.Helper()
	w, err := weights.LoadSafetensors(filepath.Join(goldenDir, file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vgg.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGoldenAgainstPyTorch compares logits, activations and gradients (w.r.t.
// the input and w.r.t. layers) with PyTorch's, for every fixture.
func TestGoldenAgainstPyTorch(t *testing.T) {
	for _, metaPath := range goldenCases(t) {
		dir := filepath.Dir(metaPath)
		name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(metaPath)
			if err != nil {
				t.Fatal(err)
			}
			var meta goldenMeta
			if err := json.Unmarshal(raw, &meta); err != nil {
				t.Fatal(err)
			}
			m := loadGoldenModel(t, meta.Weights["safetensors"])
			defer m.Close()
			ex, err := engine.NewExplainer(m, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			x := loadNPY(t, filepath.Join(goldenDir, meta.InputFile))
			suffix := fmt.Sprintf("_logit%d.npy", meta.Target)
			req := engine.Request{Target: engine.Class(meta.Target), GradInput: true}
			for f := range meta.Files {
				if l, ok := strings.CutPrefix(f, "act_"); ok {
					req.Taps = append(req.Taps, strings.TrimSuffix(l, ".npy"))
				}
				if l, ok := strings.CutPrefix(f, "grad_"); ok && strings.HasSuffix(f, suffix) && !strings.HasPrefix(l, "input") {
					req.GradTaps = append(req.GradTaps, strings.TrimSuffix(l, suffix))
				}
			}
			sort.Strings(req.Taps)
			sort.Strings(req.GradTaps)
			res, err := ex.Run(x, req)
			if err != nil {
				t.Fatal(err)
			}
			const rtol = 1e-4
			assertClose(t, "logits", res.Logits, loadNPY(t, filepath.Join(dir, "logits.npy")), rtol)
			for _, l := range req.Taps {
				assertClose(t, "activation "+l, res.Acts[l], loadNPY(t, filepath.Join(dir, "act_"+l+".npy")), rtol)
			}
			for _, l := range req.GradTaps {
				assertClose(t, "gradient w.r.t. "+l, res.Grads[l], loadNPY(t, filepath.Join(dir, "grad_"+l+suffix)), rtol)
			}
			assertClose(t, "gradient w.r.t. input", res.InputGrad, loadNPY(t, filepath.Join(dir, "grad_input"+suffix)), rtol)
			for i, c := range res.Classes {
				if c != meta.Target {
					t.Fatalf("example %d: target class %d, want %d", i, c, meta.Target)
				}
			}

			if _, ok := meta.Files[fmt.Sprintf("grad_input_softmax%d.npy", meta.Target)]; ok {
				res, err := ex.Run(x, engine.Request{Target: engine.SoftmaxOf(meta.Target), GradInput: true})
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "softmax gradient w.r.t. input", res.InputGrad,
					loadNPY(t, filepath.Join(dir, fmt.Sprintf("grad_input_softmax%d.npy", meta.Target))), rtol)
			}
			if len(meta.PerExample) > 0 {
				f := "grad_input_targets"
				for _, c := range meta.PerExample {
					f += fmt.Sprintf("_%d", c)
				}
				res, err := ex.Run(x, engine.Request{Target: engine.Class(meta.PerExample...), GradInput: true})
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "per-example target gradient", res.InputGrad, loadNPY(t, filepath.Join(dir, f+".npy")), rtol)
			}
		})
	}
}
