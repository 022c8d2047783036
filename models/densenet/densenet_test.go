package densenet

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
)

var golden = filepath.Join("..", "..", "testdata", "golden_dense")

// TestLoadFormats: .safetensors, .pth (num_batches_tracked int64) and the
// old-style keys of torchvision's published checkpoints give the same model.
func TestLoadFormats(t *testing.T) {
	var ref []float32
	for _, f := range []string{"tinydensenet.safetensors", "tinydensenet.pth", "tinydensenet_oldkeys.pth"} {
		var w *weights.Set
		var err error
		if strings.HasSuffix(f, ".pth") {
			w, err = weights.LoadPTH(filepath.Join(golden, f))
		} else {
			w, err = weights.LoadSafetensors(filepath.Join(golden, f))
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(w)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c := m.Config
		if c.GrowthRate != 8 || c.InitFeatures != 16 || c.BnSize != 2 || len(c.BlockConfig) != 4 || c.NumClasses != 10 || c.Arch != "densenet" {
			t.Fatalf("%s: config %+v", f, c)
		}
		k, _, err := m.Weight("features.denseblock3.denselayer2.conv2")
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = k.Data
		} else if len(k.Data) != len(ref) || k.Data[7] != ref[7] || k.Data[len(ref)-1] != ref[len(ref)-1] {
			t.Fatalf("%s: conv2 weight differs", f)
		}
		if err := m.CheckInput([]int{1, 3, 28, 40}); err == nil || !strings.Contains(err.Error(), "29×29") {
			t.Fatalf("a 28-pixel input: %v", err)
		}
		m.Close()
	}
}

// TestLoadErrors: strict loading names the tensor at fault.
func TestLoadErrors(t *testing.T) {
	fresh := func() *weights.Set {
		w, err := weights.LoadSafetensors(filepath.Join(golden, "tinydensenet.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := fresh()
	delete(w.Tensors, "features.transition2.norm.running_var")
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.transition2.norm.running_var") {
		t.Fatalf("missing tensor: %v", err)
	}
	w = fresh()
	w.Tensors["features.extra.weight"] = &weights.Tensor{Shape: []int{1}, Data: []float32{0}}
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.extra.weight") {
		t.Fatalf("extra tensor: %v", err)
	}
	w = fresh()
	w.Tensors["features.denseblock2.denselayer1.conv1.weight"].Shape = []int{16, 8, 2, 2}
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.denseblock2.denselayer1.conv1.weight") {
		t.Fatalf("mis-shaped tensor: %v", err)
	}
	w = fresh()
	w.Tensors["features.norm5.weight"].Data[3] = float32(nanValue())
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.norm5.weight") {
		t.Fatalf("NaN: %v", err)
	}
	w = fresh()
	t0 := w.Tensors["features.denseblock1.denselayer1.norm1.weight"]
	w.Tensors["features.denseblock1.denselayer1.norm.1.weight"] = t0
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "old-style") {
		t.Fatalf("both key styles: %v", err)
	}
}

func nanValue() float64 { z := 0.0; return z / z }
