package zoo

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/resnet"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Open maps a .safetensors file and releases the mapping after conversion:
// every weight and bias the network reports afterwards (VGG's own holder,
// ResNet's ParamStore) equals the file's, so nothing reads the released
// mapping.
func TestOpenMappedKeepsNoMapping(t *testing.T) {
	vc, err := vgg.StandardConfig("vgg11_bn", 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	vw, err := vgg.RandomWeights(vc, 3)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := resnet.StandardConfig("resnet18", 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := resnet.RandomWeights(rc, 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*weights.Set{"vgg.safetensors": vw, "resnet.safetensors": rw} {
		path := filepath.Join(t.TempDir(), name)
		if err := weights.SaveSafetensors(path, w); err != nil {
			t.Fatal(err)
		}
		if m, err := weights.MapSafetensors(path); err != nil || !m.Mapped() {
			t.Fatalf("%s is not mapped (%v): the test would not test the mapping", name, err)
		} else {
			m.Close()
		}
		net, _, err := Open(context.Background(), path, "", Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checked := 0
		for _, l := range net.Layers() {
			if l.Kind != models.Conv2d && l.Kind != models.Linear {
				continue
			}
			got, bias, err := net.Weight(l.Name)
			if err != nil {
				t.Fatalf("%s %s: %v", name, l.Name, err)
			}
			if !slices.Equal(got.Data, w.Tensors[l.Name+".weight"].Data) {
				t.Fatalf("%s: %s weight differs from the file's after the mapping was released", name, l.Name)
			}
			if b, ok := w.Tensors[l.Name+".bias"]; ok && !slices.Equal(bias, b.Data) {
				t.Fatalf("%s: %s bias differs from the file's", name, l.Name)
			}
			checked++
		}
		if checked < 5 {
			t.Fatalf("%s: only %d layers checked", name, checked)
		}
		net.Close()
	}
}
