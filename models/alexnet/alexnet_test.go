package alexnet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

var goldenDir = filepath.Join("..", "..", "testdata", "golden_resnet")

func loadGolden(t *testing.T, file string) *weights.Set {
	t.Helper()
	w, err := weights.Load(t.Context(), filepath.Join(goldenDir, file), weights.HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMatchesTorchvision: the random weights of the standard configuration
// have torchvision's state_dict names and shapes (scripts/gen_family_golden.py
// wrote them from torchvision.models.alexnet()) and its parameter count.
func TestMatchesTorchvision(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(goldenDir, "torchvision_shapes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tv map[string]struct {
		Keys   [][2]json.RawMessage `json:"keys"`
		Params int                  `json:"params"`
	}
	if err := json.Unmarshal(raw, &tv); err != nil {
		t.Fatal(err)
	}
	ref := tv["alexnet"]
	cfg, err := StandardConfig(1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := RandomWeights(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Tensors) != len(ref.Keys) {
		t.Fatalf("%d tensors, torchvision %d", len(w.Tensors), len(ref.Keys))
	}
	params := 0
	for _, kv := range ref.Keys {
		var name string
		var shape []int
		_ = json.Unmarshal(kv[0], &name)
		_ = json.Unmarshal(kv[1], &shape)
		got, ok := w.Tensors[name]
		if !ok || !reflect.DeepEqual(got.Shape, shape) {
			t.Fatalf("torchvision's %s %v: ours %v", name, shape, got)
		}
		params += got.Size()
	}
	if params != ref.Params || params != 61100840 {
		t.Errorf("%d parameters, torchvision %d", params, ref.Params)
	}
	b := 1 / 19.05255888325765 // 1/√(3·11·11): PyTorch's default bound for features.0
	for _, v := range w.Tensors["features.0.weight"].Data {
		if float64(v) < -b || float64(v) > b {
			t.Fatalf("features.0 weight %g outside ±%g", v, b)
		}
	}
	got, err := ConfigFromWeights(w)
	if err != nil || got != cfg || got.Arch != "alexnet" {
		t.Errorf("ConfigFromWeights = %+v, %v; want %+v", got, err, cfg)
	}
}

func TestLoadFixture(t *testing.T) {
	for _, f := range []string{"alexnet.pth", "alexnet.safetensors"} {
		m, err := Load(loadGolden(t, f))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{Arch: "alexnet-narrow", Convs: [5]int{8, 24, 48, 32, 32}, Hidden: [2]int{64, 64}, NumClasses: 10}
		if m.Config != want {
			t.Errorf("%s: %+v", f, m.Config)
		}
		var names []string
		byName := map[string]models.Layer{}
		for _, l := range m.Layers() {
			names = append(names, l.Name)
			byName[l.Name] = l
		}
		wantNames := []string{"features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "features.6",
			"features.7", "features.8", "features.9", "features.10", "features.11", "features.12", "avgpool",
			"classifier.0", "classifier.1", "classifier.2", "classifier.3", "classifier.4", "classifier.5", "classifier.6"}
		if !reflect.DeepEqual(names, wantNames) {
			t.Errorf("%s: modules %v", f, names)
		}
		for name, dims := range map[string][]int{"features.0": {8, 55, 55}, "features.2": {8, 27, 27}, "features.5": {24, 13, 13},
			"features.12": {32, 6, 6}, "avgpool": {32, 6, 6}, "classifier.1": {64}, "classifier.6": {10}} {
			if !reflect.DeepEqual(byName[name].Dims, dims) {
				t.Errorf("%s: %s dims %v, want %v (224×224 input)", f, name, byName[name].Dims, dims)
			}
		}
		if byName["classifier.3"].Kind != models.Dropout || byName["features.12"].Kind != models.MaxPool2d || byName["classifier.1"].In != 32*36 {
			t.Errorf("%s: kinds/in wrong: %+v %+v", f, byName["classifier.3"], byName["classifier.1"])
		}
		if b, err := m.ModuleBias("features.3"); err != nil || len(b) != 24 {
			t.Errorf("ModuleBias(features.3): %d, %v", len(b), err)
		}
		if w, b, err := m.Weight("features.0"); err != nil || !reflect.DeepEqual(w.Shape, []int{8, 3, 11, 11}) || len(b) != 8 {
			t.Errorf("Weight(features.0): %v %v", w, err)
		}
		m.Close()
	}
}

// TestMinInput: 63×63 is the smallest input that leaves features.12 a 1×1
// output (PyTorch: 62 gives features.12 a 2-pixel input, less than its
// 3-pixel window, an error); 62 is refused with a clear error.
func TestMinInput(t *testing.T) {
	m, err := NewRandom(10, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	calls, err := models.Trace(m, []int{1, 3, 63, 70})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.Path == "features.12" && (c.Dims[1] != 1 || c.Dims[2] != 1) {
			t.Errorf("features.12 at 63×70: %v", c.Dims)
		}
	}
	// (models.MaxPool2D accepts a 2-pixel input to a 3-pixel window, where
	// PyTorch raises; CheckInput keeps AlexNet to sizes PyTorch accepts.)
	if err := m.CheckInput([]int{1, 3, 62, 70}); err == nil || !strings.Contains(err.Error(), "63") {
		t.Errorf("CheckInput(62): %v", err)
	}
	if err := m.CheckInput([]int{2, 3, 63, 63}); err != nil {
		t.Error(err)
	}
	if err := m.CheckInput([]int{2, 1, 63, 63}); err == nil {
		t.Error("1 channel accepted")
	}
}

func TestBadWeights(t *testing.T) {
	fresh := func() *weights.Set { return loadGolden(t, "alexnet.pth") }
	check := func(what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("%s: %q does not mention %q", what, err, p)
			}
		}
	}
	w := fresh()
	k := w.Tensors["features.3.weight"]
	k.Shape = []int{8, 24, 5, 5} // transposed [in,out,...]
	_, err := Load(w)
	check("transposed", err, `"features.3.weight"`, "[8 24 5 5]", "[C,8,5,5]")

	w = fresh()
	delete(w.Tensors, "classifier.4.bias")
	_, err = Load(w)
	check("missing bias", err, `"classifier.4.bias"`, "missing")

	w = fresh()
	w.Tensors["features.13.weight"] = &weights.Tensor{Shape: []int{1}, Data: []float32{1}}
	_, err = Load(w)
	check("unknown tensor", err, "features.13.weight", "not part of")

	w = fresh()
	k = w.Tensors["classifier.1.weight"]
	k.Shape = []int{k.Shape[1], k.Shape[0]}
	_, err = Load(w)
	check("transposed linear", err, `"classifier.1.weight"`, "[1152 64]")

	_, err = Load(loadGolden(t, "resnet_basic.safetensors"))
	check("resnet weights", err, "not a torchvision AlexNet")
}
