package zoo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/alexnet"
	"github.com/cnnviz/cnnviz/models/resnet"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
)

var (
	familyGolden = filepath.Join("..", "..", "testdata", "golden_resnet")
	vggGolden    = filepath.Join("..", "..", "testdata", "golden")
)

func loadSet(t *testing.T, path string) *weights.Set {
	t.Helper()
	w, err := weights.Load(context.Background(), path, weights.HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func wantErr(t *testing.T, what string, err error, parts ...string) {
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

// TestFamiliesRecogniseTheirOwn: each weight file is claimed by exactly its
// family (VGG never takes AlexNet's weights, nor AlexNet VGG's), and
// LoadWeights builds the right model.
func TestFamiliesRecogniseTheirOwn(t *testing.T) {
	for _, tc := range []struct{ path, family, arch string }{
		{filepath.Join(familyGolden, "resnet_basic.safetensors"), "resnet", "resnet18-narrow"},
		{filepath.Join(familyGolden, "resnet_basic.pth"), "resnet", "resnet18-narrow"},
		{filepath.Join(familyGolden, "resnext_bottleneck.pth"), "resnet", "resnet23-custom"},
		{filepath.Join(familyGolden, "alexnet.pth"), "alexnet", "alexnet-narrow"},
		{filepath.Join(familyGolden, "alexnet.safetensors"), "alexnet", "alexnet-narrow"},
		{filepath.Join(vggGolden, "tinyvgg11.safetensors"), "vgg", "vgg11-narrow"},
		{filepath.Join(vggGolden, "tinyvgg11_bn.pth"), "vgg", "vgg11_bn-narrow"},
		{filepath.Join(vggGolden, "tinyvgg13.safetensors"), "vgg", "vgg13-narrow"},
	} {
		w := loadSet(t, tc.path)
		var claimed []string
		for _, name := range []string{"vgg", "resnet", "alexnet"} {
			mu.Lock()
			f := families[name]
			mu.Unlock()
			if f.Recognise(w) {
				claimed = append(claimed, name)
			}
		}
		if len(claimed) != 1 || claimed[0] != tc.family {
			t.Errorf("%s is claimed by %v, want only %s", tc.path, claimed, tc.family)
		}
		net, err := LoadWeights(w, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if net.Arch() != tc.arch {
			t.Errorf("%s: arch %s, want %s", tc.path, net.Arch(), tc.arch)
		}
		switch tc.family {
		case "resnet":
			_, ok := net.(*resnet.Model)
			if !ok {
				t.Errorf("%s: %T", tc.path, net)
			}
		case "alexnet":
			_, ok := net.(*alexnet.Model)
			if !ok {
				t.Errorf("%s: %T", tc.path, net)
			}
		case "vgg":
			_, ok := net.(*vgg.Model)
			if !ok {
				t.Errorf("%s: %T", tc.path, net)
			}
		}
		net.Close()
	}
	_, err := LoadWeights(loadSet(t, filepath.Join(familyGolden, "resnext_bottleneck.pth")), "resnet18")
	wantErr(t, "bottleneck as resnet18", err, "Bottleneck", "resnet18", "BasicBlock")
	_, err = LoadWeights(loadSet(t, filepath.Join(familyGolden, "alexnet.pth")), "resnet50")
	wantErr(t, "alexnet as resnet50", err, "alexnet family")
	_, err = LoadWeights(loadSet(t, filepath.Join(familyGolden, "alexnet.pth")), "alexnet")
	wantErr(t, "narrowed alexnet as alexnet", err, "alexnet-narrow")
	_, err = LoadWeights(loadSet(t, filepath.Join(vggGolden, "tinyvgg11.safetensors")), "alexnet")
	wantErr(t, "vgg as alexnet", err, "vgg family")
}

func TestRegistry(t *testing.T) {
	for _, a := range resnet.Archs() {
		r, err := Lookup(a)
		if err != nil {
			t.Fatal(err)
		}
		if r.Family != "resnet" || r.Hub != "timm/"+a+".tv_in1k" || r.CAMLayer != "layer4" {
			t.Errorf("%s: %+v", a, r)
		}
	}
	if len(resnet.Archs()) != 10 {
		t.Errorf("resnet archs: %v", resnet.Archs())
	}
	r, err := Lookup("alexnet")
	if err != nil {
		t.Fatal(err)
	}
	if r.URL != "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" || r.Hub != "" || r.CAMLayer != "features.12" {
		t.Errorf("alexnet: %+v", r)
	}
	net, err := Random("resnet18", Options{NumClasses: 10, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if net.Arch() != "resnet18" || CAMLayer(net) != "layer4" {
		t.Errorf("random resnet18: %s, CAM layer %q", net.Arch(), CAMLayer(net))
	}
}

// TestResNetFromHubCache: "auto" and hub: find timm's republished
// torchvision weights in a Hugging Face cache laid out as huggingface_hub
// writes it (blobs, snapshots, refs/main), offline.
func TestResNetFromHubCache(t *testing.T) {
	cache := t.TempDir()
	put := func(repo string, s *weights.Set) {
		dir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
		const commit = "0123456789abcdef0123456789abcdef01234567"
		tmp := filepath.Join(t.TempDir(), "model.safetensors")
		if err := weights.SaveSafetensors(tmp, s); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		blob := filepath.Join(dir, "blobs", hex.EncodeToString(sum[:]))
		snap := filepath.Join(dir, "snapshots", commit, "model.safetensors")
		for _, d := range []string{filepath.Dir(blob), filepath.Dir(snap), filepath.Join(dir, "refs")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(blob, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", hex.EncodeToString(sum[:])), snap); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "refs", "main"), []byte(commit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := resnet.StandardConfig("resnet18", 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := resnet.RandomWeights(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	delete(w.Tensors, "bn1.num_batches_tracked") // safetensors of timm carry no int64 counters.
	for n := range w.Tensors {
		if strings.HasSuffix(n, "num_batches_tracked") {
			delete(w.Tensors, n)
		}
	}
	put("timm/resnet18.tv_in1k", w)
	put("timm/resnet34.tv_in1k", loadSet(t, filepath.Join(familyGolden, "resnext_bottleneck.safetensors")))
	o := Options{Hub: weights.HubOptions{CacheDir: cache, Offline: true}}
	net, info, err := Open(context.Background(), "auto", "resnet18", o)
	if err != nil {
		t.Fatal(err)
	}
	if info.Random || net.Arch() != "resnet18" || CAMLayer(net) != "layer4" || net.NumClasses() != 1000 {
		t.Errorf("auto resnet18: %+v, %s", info, net.Arch())
	}
	net.Close()
	// A file of another architecture under resnet34's name is refused, naming both.
	_, err = Pretrained(context.Background(), "resnet34", o)
	wantErr(t, "bottleneck file as resnet34", err, "resnet34", "Bottleneck", "BasicBlock")
	// hub: with no arch takes what the file holds.
	net, _, err = Open(context.Background(), "hub:timm/resnet34.tv_in1k", "", o)
	if err != nil {
		t.Fatal(err)
	}
	if net.Arch() != "resnet23-custom" {
		t.Errorf("hub: arch %s", net.Arch())
	}
	net.Close()
	_, err = Pretrained(context.Background(), "resnet50", o)
	wantErr(t, "resnet50 not cached", err, "resnet50")
}

// TestAlexNetTorchHubCache: AlexNet's weights come from PyTorch's checkpoint
// cache ($TORCH_HOME/hub/checkpoints/<name>-<sha256 prefix>.pth).
func TestAlexNetTorchHubCache(t *testing.T) {
	home := t.TempDir()
	t.Setenv("TORCH_HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	dir := filepath.Join(home, "hub", "checkpoints")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(familyGolden, "alexnet.pth"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	name := "alexnet_tiny-" + hex.EncodeToString(sum[:])[:8] + ".pth"
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := weights.LoadTorchHub(context.Background(), "https://download.pytorch.org/models/"+name, weights.TorchHubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	net, err := LoadWeights(w, "")
	if err != nil {
		t.Fatal(err)
	}
	if net.Arch() != "alexnet-narrow" || len(net.Layers()) != 21 {
		t.Errorf("arch %s, %d layers", net.Arch(), len(net.Layers()))
	}
	net.Close()

	// Nothing cached under the real name, offline: an error naming file and cache.
	o := Options{Hub: weights.HubOptions{Offline: true}}
	_, err = Pretrained(context.Background(), "alexnet", o)
	wantErr(t, "alexnet not cached", err, "alexnet-owt-7be5be79.pth", dir)
	// A file under the real name that fails the SHA-256 prefix check.
	if err := os.WriteFile(filepath.Join(dir, "alexnet-owt-7be5be79.pth"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Pretrained(context.Background(), "alexnet", o)
	wantErr(t, "alexnet bad checksum", err, "alexnet-owt-7be5be79.pth")
}
