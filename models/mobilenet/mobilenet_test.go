package mobilenet

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
)

var golden = filepath.Join("..", "..", "testdata", "golden_dense")

// TestLoadFormats: .safetensors and .pth (num_batches_tracked int64) load to
// the same architecture, read from the weights (width 0.25, narrowed last stage).
func TestLoadFormats(t *testing.T) {
	for _, f := range []string{"tinymobilenet.safetensors", "tinymobilenet.pth"} {
		w, err := weights.Load(context.Background(), filepath.Join(golden, f), weights.HubOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(w)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c := m.Config
		if c.Stem != 8 || c.Last != 160 || c.NumClasses != 10 || len(c.Blocks) != 17 || c.Blocks[0].Expand || !c.Blocks[1].Expand ||
			c.Blocks[16].Out != 80 || !c.Blocks[2].Residual() || c.Blocks[3].Residual() || c.Blocks[13].Stride != 2 {
			t.Fatalf("%s: config %+v", f, c)
		}
		k, _, err := m.Weight("features.14.conv.1.0")
		if err != nil || k.Shape[1] != 1 || k.Shape[0] != c.Blocks[13].Hidden {
			t.Fatalf("%s: depthwise weight %v, %v", f, k, err)
		}
		m.Close()
	}
}

// TestStandardConfig: torchvision's channel rounding at widths 1 and 0.25.
func TestStandardConfig(t *testing.T) {
	c, err := StandardConfig(1, 1000)
	if err != nil || c.Stem != 32 || c.Last != 1280 || c.Blocks[16].Out != 320 || c.Blocks[1].Hidden != 96 {
		t.Fatalf("width 1: %+v %v", c, err)
	}
	c, err = StandardConfig(0.25, 10)
	if err != nil || c.Stem != 8 || c.Last != 1280 || c.Blocks[16].Out != 80 || c.Blocks[0].Out != 8 {
		t.Fatalf("width 0.25: %+v %v", c, err)
	}
	if _, err := StandardConfig(0, 10); err == nil {
		t.Fatal("width 0 accepted")
	}
}

// TestLoadErrors: a missing block is named; a wrong number of blocks says why.
func TestLoadErrors(t *testing.T) {
	w, err := weights.LoadSafetensors(filepath.Join(golden, "tinymobilenet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	delete(w.Tensors, "features.9.conv.3.running_mean")
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "features.9.conv.3.running_mean") {
		t.Fatalf("missing tensor: %v", err)
	}
	for name := range w.Tensors {
		if strings.HasPrefix(name, "features.17.") {
			delete(w.Tensors, name)
		}
	}
	if _, err := Load(w); err == nil || !strings.Contains(err.Error(), "blocks") {
		t.Fatalf("16 blocks: %v", err)
	}
}
