package zoo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/resnet"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Open maps a .safetensors file and closes the weight set after conversion
// (the model keeps only its linear weights in the mapping): every weight and
// bias the network reports afterwards (VGG's own holder, ResNet's
// ParamStore) equals the file's, before and after binding, and the logits
// equal those of the same file read into memory (weights.Load), bit for bit.
func TestOpenMappedWeights(t *testing.T) {
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
		read, err := weights.Load(context.Background(), path, weights.HubOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := LoadWeights(read, "")
		if err != nil {
			t.Fatal(err)
		}
		checkWeights(t, name+" (unbound)", net, w)
		if a, b := forwardLogits(t, net), forwardLogits(t, ref); !slices.Equal(a, b) {
			t.Fatalf("%s: logits of the mapped model %v differ from the read one's %v", name, a[:3], b[:3])
		}
		ref.Close()
		checkWeights(t, name+" (bound)", net, w)
		net.Close()
	}
}

// checkWeights compares every conv and linear weight and bias of net with w's.
func checkWeights(t *testing.T, name string, net models.Network, w *weights.Set) {
	t.Helper()
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
			t.Fatalf("%s: %s weight differs from the file's after the weight set was closed", name, l.Name)
		}
		if b, ok := w.Tensors[l.Name+".bias"]; ok && !slices.Equal(bias, b.Data) {
			t.Fatalf("%s: %s bias differs from the file's", name, l.Name)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("%s: only %d layers checked", name, checked)
	}
}

// forwardLogits runs net on a fixed 2×3×32×32 input on the pure-Go backend
// (binding net to it) and returns the logits.
func forwardLogits(t *testing.T, net models.Network) []float32 {
	t.Helper()
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	params, err := net.Params(b)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	exec, err := graph.NewExec(b, func(inputs []*graph.Node) *graph.Node { return models.Forward(net, inputs[0], inputs[1:]) })
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	args := []any{tensors.FromFlatDataAndDimensions(x, 2, 3, 32, 32)}
	for _, p := range params {
		args = append(args, p)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out[0])
}

// Pretrained weights from the Hugging Face cache (timm's names, as
// timm/vgg11.tv_in1k publishes them) are mapped, renamed without copying,
// and give the same model as the torchvision-named file read into memory.
func TestPretrainedFromCacheMapped(t *testing.T) {
	cfg, err := vgg.StandardConfig("vgg11", 1000, 8)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := vgg.RandomWeights(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	timm := weights.NewSet("timm")
	for name, ten := range tv.Tensors {
		switch name {
		case "classifier.0.weight": // timm: a 7×7 conv over the last feature map.
			c := cfg.LastChannels()
			timm.Tensors["pre_logits.fc1.weight"] = &weights.Tensor{Shape: []int{ten.Shape[0], c, 7, 7}, Data: ten.Data}
		case "classifier.3.weight":
			timm.Tensors["pre_logits.fc2.weight"] = &weights.Tensor{Shape: []int{ten.Shape[0], ten.Shape[1], 1, 1}, Data: ten.Data}
		case "classifier.0.bias":
			timm.Tensors["pre_logits.fc1.bias"] = ten
		case "classifier.3.bias":
			timm.Tensors["pre_logits.fc2.bias"] = ten
		case "classifier.6.weight":
			timm.Tensors["head.fc.weight"] = ten
		case "classifier.6.bias":
			timm.Tensors["head.fc.bias"] = ten
		default:
			timm.Tensors[name] = ten
		}
	}
	// A narrow VGG11 (what the test can afford) registered like the real
	// ones: timm's repository name, VGG family.
	arch := "vgg11-narrow" // What ConfigFromWeights names a narrowed VGG11.
	if _, err := Lookup(arch); err != nil {
		RegisterArch(&Arch{Name: arch, Family: "vgg", Hub: "timm/" + arch + ".tv_in1k", CAMLayer: "features.20",
			Random: func(k int, seed uint64) (models.Network, error) { return vgg.NewRandom("vgg11", k, 8, seed) }})
	}
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	const commit = "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(cache, "models--timm--"+arch+".tv_in1k")
	snap := filepath.Join(repo, "snapshots", commit)
	for _, d := range []string{snap, filepath.Join(repo, "refs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := weights.SaveSafetensors(filepath.Join(snap, "model.safetensors"), timm); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := weights.LoadMapped(context.Background(), "hub:timm/"+arch+".tv_in1k", weights.HubOptions{Offline: true}); err != nil || !m.Mapped() {
		t.Fatalf("the cached file is not mapped (%v): the test would not test the mapping", err)
	} else {
		m.Close()
	}
	net, err := Pretrained(context.Background(), arch, Options{Hub: weights.HubOptions{Offline: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if runtime.GOOS == "linux" { // The model keeps its linear weights in the mapped file.
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil || !strings.Contains(string(maps), filepath.Join(snap, "model.safetensors")) {
			t.Fatalf("the cached file is not mapped by the loaded model (%v)", err)
		}
	}
	ref, err := LoadWeights(tv, arch)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	checkWeights(t, "pretrained", net, tv)
	if a, b := forwardLogits(t, net), forwardLogits(t, ref); !slices.Equal(a, b) {
		t.Fatalf("logits of the cached pretrained model differ from the file's: %v vs %v", a[:3], b[:3])
	}
}
