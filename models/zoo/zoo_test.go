package zoo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
)

var golden = filepath.Join("..", "..", "testdata", "golden")

func TestOpenFilesAndErrors(t *testing.T) {
	ctx := context.Background()
	for _, f := range []string{"tinyvgg11.safetensors", "tinyvgg11.pth"} {
		net, info, err := Open(ctx, filepath.Join(golden, f), "", Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !strings.HasPrefix(net.Arch(), "vgg11") || info.Random || net.NumClasses() != 10 {
			t.Fatalf("%s: arch %s, random %v, %d classes", f, net.Arch(), info.Random, net.NumClasses())
		}
		net.Close()
	}
	if _, _, err := Open(ctx, filepath.Join(golden, "tinyvgg11.safetensors"), "vgg16", Options{}); err == nil || !strings.Contains(err.Error(), "vgg16") {
		t.Fatalf("--model vgg16 on vgg11 weights: %v", err)
	}
	if _, err := Lookup("resnet5000"); err == nil || !strings.Contains(err.Error(), "known: ") {
		t.Fatalf("unknown architecture: %v", err)
	}
	w := weights.NewSet("garbage.safetensors")
	w.Tensors["foo.bar"] = &weights.Tensor{Shape: []int{1}, Data: []float32{1}}
	if _, err := LoadWeights(w, ""); err == nil || !strings.Contains(err.Error(), "match none of the known families") {
		t.Fatalf("garbage weights: %v", err)
	}
	if _, _, err := Open(ctx, "", "", Options{}); err == nil {
		t.Fatal("empty spec opened")
	}
	if _, err := Random("vgg11", Options{NumClasses: -1}); err == nil {
		t.Fatal("negative class count accepted")
	}
}

// With no network and an empty cache, "auto" falls back to random weights
// and says why.
func TestOpenAutoOffline(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("TORCH_HOME", t.TempDir())
	net, info, err := Open(context.Background(), "auto", "vgg11", Options{Hub: weights.HubOptions{Offline: true}, NumClasses: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if !info.Random || info.Reason == "" || net.Arch() != "vgg11" {
		t.Fatalf("info %+v arch %s", info, net.Arch())
	}
	for _, name := range Archs() {
		a, err := Lookup(name)
		if err != nil || a.Random == nil || (a.Hub == "" && a.URL == "") {
			t.Errorf("architecture %s: %+v %v (every registered architecture needs random init and a weights source)", name, a, err)
		}
	}
}
