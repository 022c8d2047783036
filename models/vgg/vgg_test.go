package vgg

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

var golden = filepath.Join("..", "..", "testdata", "golden")

func mustLoad(t *testing.T, load func(string) (*weights.Set, error), file string) *weights.Set {
	t.Helper()
	w, err := load(filepath.Join(golden, file))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The .pth and .safetensors fixtures written by PyTorch hold the same tensors,
// and both load into the same model (num_batches_tracked is ignored).
func TestPTHAndSafetensorsAgree(t *testing.T) {
	for _, name := range []string{"tinyvgg11", "tinyvgg11_bn", "tinyvgg13"} {
		st := mustLoad(t, weights.LoadSafetensors, name+".safetensors")
		pth := mustLoad(t, weights.LoadPTH, name+".pth")
		for k, a := range st.Tensors {
			b, ok := pth.Tensors[k]
			if !ok {
				t.Fatalf("%s: %s missing from .pth", name, k)
			}
			for i := range a.Data {
				if a.Data[i] != b.Data[i] {
					t.Fatalf("%s: %s differs at %d", name, k, i)
				}
			}
		}
		m1, err := Load(st)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Load(pth)
		if err != nil {
			t.Fatal(err)
		}
		if m1.Config.Arch != m2.Config.Arch || len(m1.Layers()) != len(m2.Layers()) {
			t.Fatalf("%s: configs differ: %+v vs %+v", name, m1.Config, m2.Config)
		}
	}
}

func TestConfigInference(t *testing.T) {
	cases := map[string]struct {
		arch   string
		layers int
		bn     bool
	}{
		"tinyvgg11":    {"vgg11-narrow", 21 + 8, false},
		"tinyvgg11_bn": {"vgg11_bn-narrow", 29 + 8, true},
		"tinyvgg13":    {"vgg13-narrow", 25 + 8, false},
	}
	for name, want := range cases {
		m, err := Load(mustLoad(t, weights.LoadSafetensors, name+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Arch != want.arch || len(m.Layers()) != want.layers || m.Config.BatchNorm != want.bn || m.NumClasses() != 10 {
			t.Fatalf("%s: arch %s, %d layers, bn %v, %d classes", name, m.Config.Arch, len(m.Layers()), m.Config.BatchNorm, m.NumClasses())
		}
	}
	// Full-size standard configs are recognised by name.
	for _, arch := range Archs() {
		cfg, err := StandardConfig(arch, 1000, 1)
		if err != nil {
			t.Fatal(err)
		}
		w, err := RandomWeights(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ConfigFromWeights(w)
		if err != nil {
			t.Fatal(err)
		}
		if got.Arch != arch {
			t.Fatalf("%s recognised as %s", arch, got.Arch)
		}
	}
}

// Weight returns PyTorch layouts exactly, including classifier.0, whose input
// axis is reordered internally.
func TestWeightRoundTrip(t *testing.T) {
	w := mustLoad(t, weights.LoadSafetensors, "tinyvgg11.safetensors")
	m, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers() {
		if l.Kind != models.Conv2d && l.Kind != models.Linear {
			if _, _, err := m.Weight(l.Name); err == nil {
				t.Fatalf("%s: Weight of a %s should fail", l.Name, l.Kind)
			}
			continue
		}
		got, bias, err := m.Weight(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		want := w.Tensors[l.Name+".weight"]
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("%s weight differs at %d", l.Name, i)
			}
		}
		for i, v := range w.Tensors[l.Name+".bias"].Data {
			if bias[i] != v {
				t.Fatalf("%s bias differs at %d", l.Name, i)
			}
		}
	}
}

func TestBadWeightsHaveClearErrors(t *testing.T) {
	base := func() *weights.Set { return mustLoad(t, weights.LoadSafetensors, "tinyvgg11.safetensors") }
	cases := []struct {
		name string
		edit func(*weights.Set)
		want string
	}{
		{"missing bias", func(w *weights.Set) { delete(w.Tensors, "features.3.bias") }, `tensor "features.3.bias" is missing`},
		{"missing classifier", func(w *weights.Set) { delete(w.Tensors, "classifier.6.weight") }, `"classifier.6.weight" is missing`},
		{"wrong conv shape", func(w *weights.Set) { w.Tensors["features.3.weight"].Shape = []int{16, 4, 3, 3} }, `"features.3.weight" has shape [16 4 3 3]; after the max-pool features.2 a convolution kernel [out 8 3 3]`},
		{"wrong classifier input", func(w *weights.Set) { w.Tensors["classifier.0.weight"].Shape = []int{32, 784} }, `expected [32 1568] for 32 channels`},
		{"wrong bias size", func(w *weights.Set) { w.Tensors["features.0.bias"].Shape = []int{7} }, `"features.0.bias" has shape [7], expected [8]`},
		{"no convs", func(w *weights.Set) {
			for k := range w.Tensors {
				if strings.HasPrefix(k, "features.") {
					delete(w.Tensors, k)
				}
			}
		}, "no convolution weight features.0.weight"},
		{"gap", func(w *weights.Set) {
			w.Tensors["features.30.weight"] = w.Tensors["features.18.weight"]
			w.Tensors["features.30.bias"] = w.Tensors["features.18.bias"]
		}, `tensor "features.21.weight" is missing: after the max-pool features.20 a convolution [out 32 3 3] is expected at features.21, but the checkpoint's next modules are features.30`},
		// Issue 16: errors that blamed the wrong module.
		{"missing features.3.weight", func(w *weights.Set) { delete(w.Tensors, "features.3.weight") }, `tensor "features.3.weight" is missing: after the max-pool features.2 a convolution [out 8 3 3] is expected at features.3, which has only features.3.bias`},
		{"features.3.weight wrongly ranked", func(w *weights.Set) {
			w.Tensors["features.3.weight"] = &weights.Tensor{Shape: []int{16, 72}, Data: make([]float32, 16*72)}
		}, `tensor "features.3.weight" has shape [16 72]; after the max-pool features.2 a convolution kernel [out 8 3 3]`},
		{"stray running_mean", func(w *weights.Set) {
			w.Tensors["features.1.running_mean"] = &weights.Tensor{Shape: []int{8}, Data: make([]float32, 8)}
		}, `tensor "features.1.weight": expected a batch norm parameter of shape [8] after convolution features.0, but it is missing (features.1 holds features.1.running_mean, so`},
		{"whole block dropped", func(w *weights.Set) {
			delete(w.Tensors, "features.3.weight")
			delete(w.Tensors, "features.3.bias")
		}, `tensor "features.3.weight" is missing: after the max-pool features.2 a convolution [out 8 3 3] is expected at features.3, but the checkpoint's next modules are features.6`},
		{"stray tensor on a ReLU", func(w *weights.Set) {
			w.Tensors["features.4.weight"] = &weights.Tensor{Shape: []int{4}, Data: make([]float32, 4)}
		}, `unexpected features.4.weight: features.4 should be the ReLU after convolution features.3`},
		{"zero classes", func(w *weights.Set) {
			w.Tensors["classifier.6.weight"] = &weights.Tensor{Shape: []int{0, w.Tensors["classifier.6.weight"].Shape[1]}, Data: nil}
			w.Tensors["classifier.6.bias"] = &weights.Tensor{Shape: []int{0}, Data: nil}
		}, `a classifier with 0 classes; it needs at least 1`},
		{"zero-channel conv", func(w *weights.Set) {
			w.Tensors["features.0.weight"] = &weights.Tensor{Shape: []int{0, 3, 3, 3}}
		}, `tensor "features.0.weight" has shape [0 3 3 3]; after the input a convolution kernel [out 3 3 3] with out ≥ 1`},
		{"bad module index", func(w *weights.Set) {
			w.Tensors["features.-1.weight"] = &weights.Tensor{Shape: []int{1}, Data: make([]float32, 1)}
		}, `tensor "features.-1.weight": expected features.N.FIELD with a module index N`},
	}
	for _, c := range cases {
		w := base()
		c.edit(w)
		_, err := Load(w)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
	w := base()
	w.Tensors["features.0.weight"].Data[3] = float32(nanValue())
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Errorf("NaN weight: %v", err)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestCheckInput(t *testing.T) {
	m, err := NewRandom("vgg11", 10, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	for dims, want := range map[[4]int]string{
		{1, 3, 31, 64}: "at least 32×32",
		{1, 4, 64, 64}: "3 channels",
		{0, 3, 64, 64}: "N ≥ 1",
	} {
		if err := m.CheckInput(dims[:]); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", dims, err, want)
		}
	}
	if err := m.CheckInput([]int{2, 3, 32, 45}); err != nil {
		t.Error(err)
	}
	if _, err := StandardConfig("vgg12", 10, 1); err == nil || !strings.Contains(err.Error(), "known: vgg11") {
		t.Errorf("unknown arch: %v", err)
	}
}

// The minimum-size message counts the max-pools (VGG11 has 5, not 32).
func TestCheckInputCountsPools(t *testing.T) {
	m := &Model{}
	cfg, err := StandardConfig("vgg11", 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = cfg
	err = m.CheckInput([]int{1, 3, 16, 40})
	if err == nil || !strings.Contains(err.Error(), "at least 32×32 pixels (it has 5 max-pools), got 16×40") {
		t.Fatalf("error %v", err)
	}
}

// Integer-typed parameters and unknown tensors load with warnings that name
// them; num_batches_tracked (an integer counter) is expected and silent.
func TestLoadWarnings(t *testing.T) {
	w := mustLoad(t, weights.LoadSafetensors, "tinyvgg11.safetensors")
	m, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if len(m.Warnings) != 0 {
		t.Fatalf("clean file warned: %q", m.Warnings)
	}
	w = mustLoad(t, weights.LoadSafetensors, "tinyvgg11.safetensors")
	w.Tensors["features.0.bias"].DType = "I64"
	w.Tensors["features.1.num_batches_tracked"] = &weights.Tensor{Shape: []int{}, Data: []float32{3}, DType: "I64"}
	w.Tensors["features.0.num_batches_tracked"] = &weights.Tensor{Shape: []int{}, Data: []float32{3}, DType: "I64"}
	w.Tensors["extra.thing"] = &weights.Tensor{Shape: []int{1}, Data: []float32{0}}
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.1.num_batches_tracked") {
		t.Fatalf("a BN counter after a conv without BN: %v", err)
	}
	delete(w.Tensors, "features.1.num_batches_tracked")
	m, err = Load(w)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	got := strings.Join(m.LoadWarnings(), "\n")
	if len(m.Warnings) != 2 || !strings.Contains(got, `parameter "features.0.bias" is stored as integers (I64)`) ||
		!strings.Contains(got, "1 tensor(s) are not part of vgg11") || !strings.Contains(got, "extra.thing") {
		t.Fatalf("warnings:\n%s", got)
	}
}
