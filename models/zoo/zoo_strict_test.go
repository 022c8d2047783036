package zoo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
)

// writeVGG saves random weights of cfg (edited by edit) and returns the path.
func writeVGG(t *testing.T, cfg vgg.Config, edit func(*weights.Set)) string {
	t.Helper()
	w, err := vgg.RandomWeights(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(w)
	}
	p := filepath.Join(t.TempDir(), "w.safetensors")
	if err := weights.SaveSafetensors(p, w); err != nil {
		t.Fatal(err)
	}
	return p
}

// A user who names a model gets that model or an error.
func TestOpenNamedModelMustMatch(t *testing.T) {
	ctx := context.Background()
	full, err := vgg.StandardConfig("vgg11", 10, 8) // narrow: a small file with vgg11's layout
	if err != nil {
		t.Fatal(err)
	}
	plain := writeVGG(t, full, nil)
	// A VGG11 with its second conv block dropped and the modules renumbered
	// loads as vgg-custom, but not as vgg11.
	dropped := full
	dropped.Blocks = append([]int{8, 0}, full.Blocks[4:]...)
	custom := writeVGG(t, dropped, nil)
	for _, c := range []struct {
		name, path, arch, want string
	}{
		{"bn asked, no bn in the file", plain, "vgg11_bn", "--model vgg11_bn but the weights in"},
		{"block dropped, vgg11 asked", custom, "vgg11", "are a vgg-custom"},
		{"other depth", plain, "vgg16", "--model vgg16 but"},
	} {
		net, _, err := Open(ctx, c.path, c.arch, Options{})
		if err == nil {
			net.Close()
			t.Fatalf("%s: loaded", c.name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %q lacks %q", c.name, err, c.want)
		}
	}
	net, info, err := Open(ctx, custom, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	if info.Arch != "vgg-custom" || len(info.Warnings) != 0 {
		t.Fatalf("unnamed custom VGG: %+v", info)
	}
	// Unknown tensors load with a warning naming them.
	extra := writeVGG(t, full, func(w *weights.Set) {
		w.Tensors["head.extra.weight"] = &weights.Tensor{Shape: []int{2}, Data: []float32{1, 2}}
	})
	net, info, err = Open(ctx, extra, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "head.extra.weight") {
		t.Fatalf("warnings %q", info.Warnings)
	}
}
