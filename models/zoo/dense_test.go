package zoo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

var denseGolden = filepath.Join("..", "..", "testdata", "golden_dense")

// TestDenseFamiliesRecognised: every fixture format loads through
// LoadWeights, exactly one family claims each weight set, and a wrong
// --model is an error naming what was found.
func TestDenseFamiliesRecognised(t *testing.T) {
	for _, c := range []struct{ file, family, arch string }{
		{"tinydensenet.safetensors", "densenet", "densenet"},
		{"tinydensenet.pth", "densenet", "densenet"},
		{"tinydensenet_oldkeys.pth", "densenet", "densenet"},
		{"tinymobilenet.safetensors", "mobilenet", "mobilenet_v2"},
		{"tinymobilenet.pth", "mobilenet", "mobilenet_v2"},
	} {
		w, err := weights.Load(context.Background(), filepath.Join(denseGolden, c.file), weights.HubOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		var claim []string
		for name, f := range families {
			if f.Recognise(w) {
				claim = append(claim, name)
			}
		}
		if len(claim) != 1 || claim[0] != c.family {
			t.Fatalf("%s: claimed by %v, want only %s", c.file, claim, c.family)
		}
		net, err := LoadWeights(w, "")
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if net.Arch() != c.arch || net.NumClasses() != 10 {
			t.Fatalf("%s: arch %s with %d classes", c.file, net.Arch(), net.NumClasses())
		}
		net.Close()
		wrong := map[string]string{"densenet": "densenet121", "mobilenet": "vgg11"}[c.family]
		if _, err := LoadWeights(w, wrong); err == nil || !strings.Contains(err.Error(), wrong) {
			t.Fatalf("%s loaded as %s: %v", c.file, wrong, err)
		}
	}
}

// TestDenseFamiliesRandom: torchvision's parameter counts (its model docs'
// num_params) and the default CAM layers' shapes at 224×224.
func TestDenseFamiliesRandom(t *testing.T) {
	for _, c := range []struct {
		arch, cam string
		params    int
		camDims   []int
	}{
		{"densenet121", "features.norm5", 7978856, []int{1024, 7, 7}},
		{"densenet161", "features.norm5", 28681000, []int{2208, 7, 7}},
		{"densenet169", "features.norm5", 14149480, []int{1664, 7, 7}},
		{"densenet201", "features.norm5", 20013928, []int{1920, 7, 7}},
		{"mobilenet_v2", "features.18", 3504872, []int{1280, 7, 7}},
	} {
		net, err := Random(c.arch, Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := net.(interface{ NumParams() int }).NumParams(); got != c.params {
			t.Errorf("%s: %d parameters, torchvision has %d", c.arch, got, c.params)
		}
		if CAMLayer(net) != c.cam {
			t.Errorf("%s: CAM layer %q", c.arch, CAMLayer(net))
		}
		l, _, err := models.FindLayer(c.arch, net.Layers(), c.cam)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Dims) != 3 || l.Dims[0] != c.camDims[0] || l.Dims[1] != 7 || l.Dims[2] != 7 {
			t.Errorf("%s: %s dims %v, want %v", c.arch, c.cam, l.Dims, c.camDims)
		}
		total := 0
		for _, l := range net.Layers() {
			if l.Name == "features" || l.Name == "classifier" { // Containers sum their children.
				total += l.Params
			}
		}
		if total != c.params {
			t.Errorf("%s: container parameter sums %d, want %d", c.arch, total, c.params)
		}
		net.Close()
	}
}

// TestMobileNetV2TorchHubCache: the pretrained path reads PyTorch's
// checkpoint cache ($TORCH_HOME/hub/checkpoints) with the SHA-256 prefix
// check, offline; a file that fails the check is an error naming it, and
// Open("auto") then falls back to random weights saying why.
func TestMobileNetV2TorchHubCache(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(denseGolden, "tinymobilenet.pth"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	home := t.TempDir()
	t.Setenv("TORCH_HOME", home)
	dir := filepath.Join(home, "hub", "checkpoints")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := "mobilenet_v2-" + hex.EncodeToString(sum[:])[:8] + ".pth"
	if err := os.WriteFile(filepath.Join(dir, good), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The real file name holds other content: the SHA check must refuse it.
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(MobileNetV2URL)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Lookup("mobilenet_v2")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Hub: weights.HubOptions{Offline: true}}
	if _, err := Pretrained(context.Background(), "mobilenet_v2", o); err == nil || !strings.Contains(err.Error(), "mobilenet_v2-b0353104.pth") {
		t.Fatalf("a cached file failing the SHA-256 check was accepted or not named: %v", err)
	}
	net, info, err := Open(context.Background(), "auto", "mobilenet_v2", o)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Random || !strings.Contains(info.Reason, "b0353104") || net.NumClasses() != 1000 {
		t.Fatalf("auto with a bad cache: %+v, %d classes", info, net.NumClasses())
	}
	net.Close()
	saved := a.URL
	a.URL = "https://download.pytorch.org/models/" + good
	defer func() { a.URL = saved }()
	net, err = Pretrained(context.Background(), "mobilenet_v2", o)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if net.Arch() != "mobilenet_v2" || net.NumClasses() != 10 {
		t.Fatalf("loaded %s with %d classes from the cache", net.Arch(), net.NumClasses())
	}
}

// TestDenseNetHubCache: densenet121's pretrained path reads timm's
// repository from the Hugging Face cache layout (refs/main → snapshots/<commit>/model.safetensors),
// offline; the narrowed fixture there is read, recognised and refused as
// not a densenet121, naming what it is.
func TestDenseNetHubCache(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(denseGolden, "tinydensenet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	commit := strings.Repeat("ab", 20)
	repo := filepath.Join(cache, "models--timm--densenet121.tv_in1k")
	snap := filepath.Join(repo, "snapshots", commit)
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "model.safetensors"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Pretrained(context.Background(), "densenet121", Options{Hub: weights.HubOptions{Offline: true}})
	if err == nil || !strings.Contains(err.Error(), "growth rate 8") || !strings.Contains(err.Error(), "densenet121") {
		t.Fatalf("a narrowed DenseNet in densenet121's hub cache: %v", err)
	}
}
