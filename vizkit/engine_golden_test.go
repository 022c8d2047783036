package vizkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
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

func goldenCases(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "input_*", "meta.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden fixtures under %s (run scripts/gen_golden.py): %v", goldenDir, err)
	}
	sort.Strings(dirs)
	return dirs
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
			m := vtest.GoldenModel(t, meta.Weights["safetensors"])
			defer m.Close()
			ex, err := engine.NewExplainer(m, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			x := vtest.LoadNPY(t, filepath.Join(goldenDir, meta.InputFile))
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
			vtest.AssertClose(t, "logits", res.Logits, vtest.LoadNPY(t, filepath.Join(dir, "logits.npy")), rtol)
			for _, l := range req.Taps {
				vtest.AssertClose(t, "activation "+l, res.Acts[l], vtest.LoadNPY(t, filepath.Join(dir, "act_"+l+".npy")), rtol)
			}
			for _, l := range req.GradTaps {
				vtest.AssertClose(t, "gradient w.r.t. "+l, res.Grads[l], vtest.LoadNPY(t, filepath.Join(dir, "grad_"+l+suffix)), rtol)
			}
			vtest.AssertClose(t, "gradient w.r.t. input", res.InputGrad, vtest.LoadNPY(t, filepath.Join(dir, "grad_input"+suffix)), rtol)
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
				vtest.AssertClose(t, "softmax gradient w.r.t. input", res.InputGrad,
					vtest.LoadNPY(t, filepath.Join(dir, fmt.Sprintf("grad_input_softmax%d.npy", meta.Target))), rtol)
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
				vtest.AssertClose(t, "per-example target gradient", res.InputGrad, vtest.LoadNPY(t, filepath.Join(dir, f+".npy")), rtol)
			}
		})
	}
}
