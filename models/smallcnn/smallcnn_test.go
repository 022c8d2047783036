package smallcnn

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

var goldenDir = filepath.Join("..", "..", "testdata", "lab", "golden")

func loadNPY(t *testing.T, name string) *vizkit.Array {
	t.Helper()
	shape, data, err := npy.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 scripts/gen_lab_golden.py)", err)
	}
	return &vizkit.Array{Shape: shape, Data: data}
}

func assertClose(t *testing.T, what string, got, want *vizkit.Array, rtol float64) {
	t.Helper()
	if len(got.Shape) != len(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i := range got.Shape {
		if got.Shape[i] != want.Shape[i] {
			t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
		}
	}
	scale := 0.0
	for _, v := range want.Data {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range want.Data {
		if d := math.Abs(float64(got.Data[i]) - float64(want.Data[i])); !(d <= rtol*scale+1e-7) {
			t.Fatalf("%s: index %d: got %g, want %g (scale %g)", what, i, got.Data[i], want.Data[i], scale)
		}
	}
}

// TestGoldenPyTorch checks forward values and gradients of a tiny smallcnn
// against PyTorch (scripts/gen_lab_golden.py) through the vizkit engine.
func TestGoldenPyTorch(t *testing.T) {
	w, err := weights.LoadSafetensors(filepath.Join(goldenDir, "tiny_smallcnn.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.Config.Blocks; len(got) != 6 || got[1] != 0 || got[3] != 0 || got[5] != 8 || m.NumClasses() != 5 {
		t.Fatalf("inferred config %+v, want Blocks {4,0,6,0,6,8}, 5 classes", m.Config)
	}
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := loadNPY(t, "tiny_input.npy")
	res, err := ex.Run(x, engine.Request{Taps: []string{"features.9", "pool"}, GradTaps: []string{"features.9"}, GradInput: true,
		Target: engine.Class(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "logits", res.Logits, loadNPY(t, "tiny_logits.npy"), 1e-5)
	assertClose(t, "features.9", res.Acts["features.9"], loadNPY(t, "tiny_act_features9.npy"), 1e-5)
	assertClose(t, "pool", res.Acts["pool"], loadNPY(t, "tiny_act_pool.npy"), 1e-5)
	assertClose(t, "grad features.9", res.Grads["features.9"], loadNPY(t, "tiny_grad_features9.npy"), 1e-4)
	assertClose(t, "grad input", res.InputGrad, loadNPY(t, "tiny_grad_input.npy"), 1e-4)
	// Forward-only graphs (nothing differentiated: the scope builds forward-only forms) compute the same values.
	fwd, err := ex.Run(x, engine.Request{Taps: []string{"features.9"}, Target: engine.Class(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "forward-only logits", fwd.Logits, loadNPY(t, "tiny_logits.npy"), 1e-5)
	assertClose(t, "forward-only features.9", fwd.Acts["features.9"], loadNPY(t, "tiny_act_features9.npy"), 1e-5)
	// A gradient tap at features.6 makes the layers before it forward-only.
	part, err := ex.Run(x, engine.Request{GradTaps: []string{"features.6", "features.9"}, Target: engine.Class(1, 3)})
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "grad features.9 (partial)", part.Grads["features.9"], loadNPY(t, "tiny_grad_features9.npy"), 1e-4)

	// CAM (Zhou et al.) applies: GAP + one linear layer, on the last ReLU.
	cam, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "cam", Target: engine.Class(1, 3)})
	if err != nil {
		t.Fatalf("CAM on smallcnn: %v", err)
	}
	if cam.Layers[0] != "features.9" {
		t.Fatalf("CAM layer %v, want features.9", cam.Layers)
	}
}

func TestLayersAndWeightsRoundTrip(t *testing.T) {
	m, err := NewRandom(DefaultConfig(), 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var names []string
	for _, l := range m.Layers() {
		names = append(names, l.Name)
	}
	want := "features.0 features.1 features.2 features.3 features.4 features.5 features.6 features.7 features.8 features.9 features.10 features.11 pool fc"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("layers %q, want %q", got, want)
	}
	if l := m.Layers()[12]; l.Kind != models.GlobalAvgPool || l.Spatial || l.Out != 64 {
		t.Fatalf("pool layer %+v", l)
	}
	if got, want := m.NumParams(), 3*8*9+8+8*32*9+32+2*(32*32*9+32)+32*64*9+64+64*5+5; got != want || want != 39877 {
		t.Fatalf("NumParams %d", got)
	}
	if err := m.CheckInput([]int{1, 3, 3, 8}); err == nil || !strings.Contains(err.Error(), "at least 4×4") {
		t.Fatalf("CheckInput small: %v", err)
	}
	if err := m.CheckInput([]int{1, 1, 8, 8}); err == nil {
		t.Fatal("CheckInput accepted 1 channel")
	}
	if _, _, err := m.Weight("pool"); err == nil || !strings.Contains(err.Error(), "features.0") {
		t.Fatalf("Weight(pool): %v", err)
	}
	// Weights → file → Load gives identical logits.
	ws, err := m.Weights()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "w.safetensors")
	if err := weights.SaveSafetensors(p, ws); err != nil {
		t.Fatal(err)
	}
	w2, err := weights.LoadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Load(w2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	b, err := shapes.MakeBatch(shapes.Config{}, 5, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := m.Logits(nil, b.Images, b.Shape())
	if err != nil {
		t.Fatal(err)
	}
	l2, err := m2.Logits(nil, b.Images, b.Shape())
	if err != nil {
		t.Fatal(err)
	}
	for i := range l1 {
		if l1[i] != l2[i] {
			t.Fatalf("logit %d: %g after round trip, want %g", i, l2[i], l1[i])
		}
	}
}

func TestConfigFromWeightsErrors(t *testing.T) {
	good, err := RandomWeights(DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *weights.Set {
		s := weights.NewSet("test")
		for k, v := range good.Tensors {
			s.Tensors[k] = v
		}
		return s
	}
	cases := []struct {
		name, want string
		edit       func(s *weights.Set)
	}{
		{"no convs", "no conv kernels", func(s *weights.Set) {
			for k := range s.Tensors {
				if strings.HasPrefix(k, "features.") {
					delete(s.Tensors, k)
				}
			}
		}},
		{"no fc", `"fc.weight" is missing`, func(s *weights.Set) { delete(s.Tensors, "fc.weight") }},
		{"fc mismatch", `"fc.weight" has shape [5 32]`, func(s *weights.Set) {
			s.Tensors["fc.weight"] = &weights.Tensor{Shape: []int{5, 32}, Data: make([]float32, 160)}
		}},
		{"gap", "4 layers apart", func(s *weights.Set) {
			s.Tensors["features.12.weight"] = s.Tensors["features.10.weight"]
			delete(s.Tensors, "features.10.weight")
		}},
		{"bad in channels", `"features.3.weight" has shape [32 4 3 3]`, func(s *weights.Set) {
			s.Tensors["features.3.weight"] = &weights.Tensor{Shape: []int{32, 4, 3, 3}, Data: make([]float32, 32*4*9)}
		}},
		{"missing bias", `"features.6.bias" is missing`, func(s *weights.Set) { delete(s.Tensors, "features.6.bias") }},
		{"nan", "non-finite", func(s *weights.Set) {
			d := append([]float32(nil), s.Tensors["fc.bias"].Data...)
			d[2] = float32(math.NaN())
			s.Tensors["fc.bias"] = &weights.Tensor{Shape: []int{5}, Data: d}
		}},
	}
	for _, c := range cases {
		s := clone()
		c.edit(s)
		if _, err := Load(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// TestPretrainedAccuracy checks the committed weights on the held-out set.
func TestPretrainedAccuracy(t *testing.T) {
	m, err := Pretrained()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w, _ := PretrainedWeights()
	if w.Metadata["arch"] != Arch || w.Metadata["data_seed"] != "1" {
		t.Errorf("metadata %v", w.Metadata)
	}
	ev, err := Evaluate(m, nil, shapes.Config{}, DefaultTestSeed, 0, 1000, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out accuracy %.3f, confusion %v", ev.Accuracy, ev.Confusion)
	if ev.Accuracy < 0.95 {
		t.Fatalf("held-out accuracy %.3f < 0.95", ev.Accuracy)
	}
}

// TestTrainLossFalls retrains a narrow network on 32×32 images (no
// clutter) from scratch for 300 steps: the loss must fall well below chance
// (ln 5 ≈ 1.61), and the batch-norm-folded model must classify.
func TestTrainLossFalls(t *testing.T) {
	t0 := time.Now()
	var progress []TrainProgress
	res, err := Train(context.Background(), TrainOptions{
		Config: Config{Blocks: []int{8, 0, 16, 16, 0, 32, 32}, NumClasses: shapes.NumClasses},
		Data:   shapes.Config{Size: 32, Clutter: -1},
		Steps:  300, BatchSize: 16, StatsImages: 64, ProgressEvery: 100,
		Progress: func(p TrainProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Model.Close()
	if len(res.Losses) != 300 || len(progress) != 3 || progress[2].Step != 300 || progress[2].Steps != 300 {
		t.Fatalf("%d losses, progress %+v", len(res.Losses), progress)
	}
	first, last := meanOf(res.Losses[:20]), meanOf(res.Losses[250:])
	t.Logf("loss %.3f → %.3f in %s", first, last, time.Since(t0))
	if !(first > 1.4 && last < 0.6*first) {
		t.Fatalf("loss did not fall: first 20 steps %.3f, last 50 %.3f", first, last)
	}
	// The folded model computes what was trained: its accuracy on the training
	// distribution is far above chance (20 %).
	ev, err := Evaluate(res.Model, nil, shapes.Config{Size: 32, Clutter: -1}, 99, 0, 200, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy of the folded model %.3f", ev.Accuracy)
	if ev.Accuracy < 0.6 {
		t.Fatalf("accuracy after folding batch norm %.2f", ev.Accuracy)
	}
	if res.Weights.Metadata["batch_norm_folded"] != "true" || len(res.Weights.Tensors) != 2*6 {
		t.Fatalf("weights %v metadata %v", res.Weights.Names(), res.Weights.Metadata)
	}
}

func TestTrainCancelAndErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err := Train(ctx, TrainOptions{
		Config: Config{Blocks: []int{4}, NumClasses: shapes.NumClasses}, Data: shapes.Config{Size: 32},
		Steps: 50, BatchSize: 4, ProgressEvery: 1,
		Progress: func(p TrainProgress) {
			steps = p.Step
			if p.Step == 3 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) || steps > 4 {
		t.Fatalf("cancelled training: err %v after %d steps", err, steps)
	}
	if _, err := Train(context.Background(), TrainOptions{Config: Config{Blocks: []int{4}, NumClasses: 3}}); err == nil || !strings.Contains(err.Error(), "5 classes") {
		t.Fatalf("class mismatch: %v", err)
	}
	if _, err := Train(context.Background(), TrainOptions{Steps: -1}); err == nil {
		t.Fatal("negative steps accepted")
	}
}

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
