package resnet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

var goldenDir = filepath.Join("..", "..", "testdata", "golden_resnet")

type tvArch struct {
	Keys   [][2]json.RawMessage `json:"keys"`
	Params int                  `json:"params"`
}

// torchvisionShapes reads torchvision's state_dict layouts (names and shapes
// in order, parameter counts) written by scripts/gen_family_golden.py.
func torchvisionShapes(t *testing.T) map[string]tvArch {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, "torchvision_shapes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]tvArch
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func loadGolden(t *testing.T, file string) *weights.Set {
	t.Helper()
	w, err := weights.Load(t.Context(), filepath.Join(goldenDir, file), weights.HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestStandardConfigsMatchTorchvision checks every architecture of the table
// against torchvision's own state_dict: the same tensor names in the same
// order with the same shapes, the same parameter count; and that the
// architecture read back from those shapes is the named one.
func TestStandardConfigsMatchTorchvision(t *testing.T) {
	tv := torchvisionShapes(t)
	for _, arch := range Archs() {
		ref, ok := tv[arch]
		if !ok {
			t.Fatalf("%s: not in torchvision_shapes.json", arch)
		}
		cfg, err := StandardConfig(arch, 1000, 1)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Arch != arch {
			t.Errorf("StandardConfig(%s).Arch = %s", arch, cfg.Arch)
		}
		names, shapes := StateDictShapes(cfg)
		if len(names) != len(ref.Keys) {
			t.Fatalf("%s: %d tensors, torchvision has %d", arch, len(names), len(ref.Keys))
		}
		set := weights.NewSet("torchvision shapes of " + arch)
		params := 0
		for i, kv := range ref.Keys {
			var name string
			var shape []int
			if err := json.Unmarshal(kv[0], &name); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(kv[1], &shape); err != nil {
				t.Fatal(err)
			}
			if names[i] != name || !reflect.DeepEqual(shapes[name], shape) && !(len(shape) == 0 && len(shapes[name]) == 0) {
				t.Fatalf("%s: tensor %d is %s %v, torchvision's is %s %v", arch, i, names[i], shapes[names[i]], name, shape)
			}
			set.Tensors[name] = &weights.Tensor{Shape: shape}
			if !strings.HasSuffix(name, "running_mean") && !strings.HasSuffix(name, "running_var") && !strings.HasSuffix(name, "num_batches_tracked") {
				n := 1
				for _, d := range shape {
					n *= d
				}
				params += n
			}
		}
		if params != ref.Params {
			t.Errorf("%s: %d parameters, torchvision %d", arch, params, ref.Params)
		}
		got, err := ConfigFromWeights(set)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: ConfigFromWeights(torchvision's shapes) = %s, want %s", arch, got.Describe(), cfg.Describe())
		}
	}
}

// TestLoadFixtures loads the narrowed PyTorch fixtures (.pth with
// num_batches_tracked, .safetensors without) and checks what is read from
// them and the module table.
func TestLoadFixtures(t *testing.T) {
	for _, tc := range []struct {
		file       string
		bottleneck bool
		depths     [4]int
		groups     int
		arch       string
		relu41     int
	}{
		{"resnet_basic.pth", false, [4]int{2, 2, 2, 2}, 1, "resnet18-narrow", 2},
		{"resnet_basic.safetensors", false, [4]int{2, 2, 2, 2}, 1, "resnet18-narrow", 2},
		{"resnext_bottleneck.pth", true, [4]int{1, 2, 2, 2}, 4, "resnet23-custom", 3},
		{"resnext_bottleneck.safetensors", true, [4]int{1, 2, 2, 2}, 4, "resnet23-custom", 3},
	} {
		m, err := Load(loadGolden(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		c := m.Config
		for s := range c.Stages {
			if len(c.Stages[s]) != tc.depths[s] {
				t.Errorf("%s: layer%d has %d blocks, want %d", tc.file, s+1, len(c.Stages[s]), tc.depths[s])
			}
		}
		if c.Bottleneck != tc.bottleneck || c.Stages[1][0].Groups != tc.groups || c.Arch != tc.arch || c.Stem != 8 || c.NumClasses != 10 {
			t.Errorf("%s: config %s", tc.file, c.Describe())
		}
		byName := map[string]models.Layer{}
		var order []string
		for _, l := range m.Layers() {
			byName[l.Name] = l
			order = append(order, l.Name)
		}
		if l := byName["layer4.1.relu"]; l.Calls != tc.relu41 || l.Kind != models.ReLU {
			t.Errorf("%s: layer4.1.relu = %+v, want %d calls", tc.file, l, tc.relu41)
		}
		for _, want := range []string{"conv1", "bn1", "relu", "maxpool", "layer1", "layer2.0.downsample", "layer2.0.downsample.0", "layer2.0.downsample.1", "layer3.1", "layer4", "avgpool", "fc"} {
			if _, ok := byName[want]; !ok {
				t.Errorf("%s: no module %q in %v", tc.file, want, order)
			}
		}
		if byName["layer4"].Kind != KindSequential || byName["layer4.1"].Kind != c.blockKind() {
			t.Errorf("%s: container kinds %s, %s", tc.file, byName["layer4"].Kind, byName["layer4.1"].Kind)
		}
		// Containers come after their children; layer4 is the last spatial module.
		if order[len(order)-3] != "layer4" || order[len(order)-2] != "avgpool" || order[len(order)-1] != "fc" {
			t.Errorf("%s: module order ends with %v", tc.file, order[len(order)-4:])
		}
		if d := byName["layer4"].Dims; !reflect.DeepEqual(d, []int{c.Features(), 7, 7}) {
			t.Errorf("%s: layer4 dims %v at 224×224", tc.file, d)
		}
		if byName["avgpool"].Spatial != true || byName["fc"].Spatial {
			t.Errorf("%s: avgpool/fc spatial flags wrong", tc.file)
		}
		b, err := m.ModuleBias("layer4.1.bn2")
		if err != nil || len(b) != c.Stages[3][1].Width {
			t.Errorf("%s: ModuleBias(layer4.1.bn2) = %d values, %v", tc.file, len(b), err)
		}
		wt, bias, err := m.Weight("layer2.0.conv2")
		if err != nil || bias != nil || !reflect.DeepEqual(wt.Shape, []int{c.Stages[1][0].Width, c.Stages[1][0].Width / tc.groups, 3, 3}) {
			t.Errorf("%s: Weight(layer2.0.conv2) = %v, bias %v, %v", tc.file, wt, bias, err)
		}
		m.Close()
	}
}

func expectErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error %q does not mention %q", what, err, p)
		}
	}
}

// TestBadWeights: every malformed weight set is an error naming the tensor,
// what was expected and what was found.
func TestBadWeights(t *testing.T) {
	fresh := func() *weights.Set { return loadGolden(t, "resnext_bottleneck.pth") }

	w := fresh() // A missing block: layer3.0 gone, layer3.1 present.
	for n := range w.Tensors {
		if strings.HasPrefix(n, "layer3.0.") {
			delete(w.Tensors, n)
		}
	}
	_, err := Load(w)
	expectErr(t, "missing block", err, "layer3.0", "missing", "layer3.1")

	w = fresh() // A missing tensor of a block.
	delete(w.Tensors, "layer2.1.bn2.running_var")
	_, err = Load(w)
	expectErr(t, "missing tensor", err, `"layer2.1.bn2.running_var"`, "missing")

	w = fresh() // A transposed stem kernel (HWIO instead of OIHW).
	k := w.Tensors["conv1.weight"]
	k.Shape = []int{7, 7, 3, 8}
	_, err = Load(w)
	expectErr(t, "transposed conv1", err, `"conv1.weight"`, "[7 7 3 8]", "[C,3,7,7]")

	w = fresh() // A transposed 1×1 kernel inside a block.
	k = w.Tensors["layer2.0.conv3.weight"]
	k.Shape = []int{k.Shape[1], k.Shape[0], 1, 1}
	_, err = Load(w)
	expectErr(t, "transposed conv3", err, `"layer2.0.conv3.weight"`, fmt.Sprint(k.Shape))

	w = fresh() // A mis-shaped BN tensor.
	w.Tensors["layer4.0.bn1.weight"] = &weights.Tensor{Shape: []int{3}, Data: []float32{1, 1, 1}}
	_, err = Load(w)
	expectErr(t, "BN shape", err, `"layer4.0.bn1.weight"`, "[3]", "expected")

	w = fresh() // An unknown tensor.
	w.Tensors["layer4.1.se.fc1.weight"] = &weights.Tensor{Shape: []int{2}, Data: []float32{1, 2}}
	_, err = Load(w)
	expectErr(t, "unknown tensor", err, "layer4.1.se.fc1.weight", "not part of")

	w = fresh() // A non-finite value.
	w.Tensors["layer1.0.conv2.weight"].Data[5] = float32(nan())
	_, err = Load(w)
	expectErr(t, "NaN", err, `"layer1.0.conv2.weight"`, "non-finite")

	// A Bottleneck file asked to load as ResNet-18.
	_, err = LoadAs(fresh(), "resnet18")
	expectErr(t, "wrong arch", err, "Bottleneck", "BasicBlock", "resnet18")

	// Not a ResNet at all.
	_, err = Load(loadGolden(t, "alexnet.safetensors"))
	expectErr(t, "alexnet weights", err, "not a torchvision ResNet")
}

func nan() float64 { var z float64; return z / z }

// TestRandomInit: torchvision's initialisation statistics, seeded, and the
// random weights of a standard architecture load as that architecture.
func TestRandomInit(t *testing.T) {
	cfg, err := StandardConfig("resnet50", 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := RandomWeights(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	w2, _ := RandomWeights(cfg, 7)
	k := w.Tensors["layer3.2.conv2.weight"] // [256,256,3,3]: std √(2/(256·9))
	var s2 float64
	for _, v := range k.Data {
		s2 += float64(v) * float64(v)
	}
	std := (s2 / float64(len(k.Data)))
	if want := 2.0 / (256 * 9); std < 0.97*want || std > 1.03*want {
		t.Errorf("conv variance %g, want %g", std, want)
	}
	if !reflect.DeepEqual(k.Data[:50], w2.Tensors["layer3.2.conv2.weight"].Data[:50]) {
		t.Error("same seed, different weights")
	}
	if w.Tensors["layer1.0.bn3.weight"].Data[3] != 1 || w.Tensors["layer1.0.bn3.bias"].Data[3] != 0 ||
		w.Tensors["layer1.0.bn3.running_var"].Data[3] != 1 {
		t.Error("BN not weight 1, bias 0, var 1")
	}
	fc := w.Tensors["fc.weight"]
	b := 1 / 45.254833995939045 // 1/√2048
	for _, v := range fc.Data {
		if float64(v) < -b || float64(v) > b {
			t.Fatalf("fc weight %g outside ±%g", v, b)
		}
	}
	m, err := NewRandom("resnet18", 10, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Arch() != "resnet18" || m.NumParams() != 11689512-513*990 {
		t.Errorf("random resnet18: arch %s, %d params", m.Arch(), m.NumParams())
	}
}

// TestNames: the naming of torchvision, narrowed and custom layouts.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		divisor int
		want    string
	}{{"resnet18", 1, "resnet18"}, {"resnet18", 8, "resnet18-narrow"}, {"resnext50_32x4d", 1, "resnext50_32x4d"},
		{"wide_resnet50_2", 2, "wide_resnet50_2-narrow"}, {"resnet50", 4, "resnet50-narrow"}, {"resnext101_64x4d", 1, "resnext101_64x4d"}} {
		c, err := StandardConfig(tc.arch, 10, tc.divisor)
		if err != nil {
			t.Fatal(err)
		}
		if c.Arch != tc.want {
			t.Errorf("%s/%d: %s, want %s", tc.arch, tc.divisor, c.Arch, tc.want)
		}
	}
	c, err := NewConfig(true, [4]int{1, 1, 1, 1}, 2, 64, 16, 5)
	if err != nil || c.Arch != "resnet14-custom" {
		t.Errorf("custom: %s, %v", c.Arch, err)
	}
}

// TestTinyInputs: CheckInput accepts any H, W ≥ 1 and the graph builds for
// them (PyTorch's ResNets accept them too: every stride-2 layer gives ⌈H/2⌉).
func TestTinyInputs(t *testing.T) {
	m, err := Load(loadGolden(t, "resnet_basic.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, d := range [][]int{{1, 3, 1, 1}, {2, 3, 2, 5}, {1, 3, 33, 1}} {
		if err := m.CheckInput(d); err != nil {
			t.Fatal(err)
		}
		calls, err := models.Trace(m, d)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		for _, c := range calls {
			if c.Path == "layer4" {
				h, w := d[2], d[3]
				for i := 0; i < 5; i++ {
					h, w = (h+1)/2, (w+1)/2
				}
				if c.Dims[1] != h || c.Dims[2] != w {
					t.Errorf("%v: layer4 %v, want %d×%d", d, c.Dims, h, w)
				}
			}
		}
	}
	for _, d := range [][]int{{1, 3, 0, 4}, {1, 1, 8, 8}, {3, 8, 8}, {0, 3, 8, 8}} {
		if err := m.CheckInput(d); err == nil {
			t.Errorf("CheckInput(%v) accepted", d)
		}
	}
}
