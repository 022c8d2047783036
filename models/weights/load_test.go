package weights

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadDispatch(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string // file written under this name
		fixture string
	}{
		{"w.safetensors", "small.safetensors"},
		{"w.SAFETENSORS", "small_f16.safetensors"},
		{"w.pth", "small.pth"},
		{"w.pt", "small_legacy.pth"},
		{"pytorch_model.bin", "wrapped_state_dict.pth"},
		// Unknown extensions: sniffed from the first bytes.
		{"weights.dat", "small.safetensors"},
		{"zipped.weights", "small.pth"},
		{"legacy", "small_legacy_v1.pth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, c.name, readFixture(t, c.fixture))
			s, err := Load(ctx, p, HubOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkSmall(t, s)
			if s.Source != p {
				t.Errorf("Source = %q, want %q", s.Source, p)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "vgg16.safetensors")
	_, err := Load(ctx, missing, HubOptions{})
	wantErr(t, err, "file "+missing+" does not exist")

	_, err = Load(ctx, dir, HubOptions{})
	wantErr(t, err, dir, "is a directory")

	p := writeTemp(t, "notes.txt", []byte("these are not weights"))
	_, err = Load(ctx, p, HubOptions{})
	wantErr(t, err, p, "unrecognized file format")

	// A .pth extension forces the PyTorch reader even on a safetensors file.
	p = writeTemp(t, "wrong.pth", readFixture(t, "small.safetensors"))
	_, err = Load(ctx, p, HubOptions{})
	wantErr(t, err, p, "not a PyTorch checkpoint")

	_, err = Load(ctx, "", HubOptions{})
	wantErr(t, err, "empty weights spec")

	for _, spec := range []string{"hub:", "hub:timm/vgg11/", "hub:../etc", "hub:a--b/c", "hub:a/b c"} {
		_, err = Load(ctx, spec, HubOptions{Offline: true, CacheDir: dir})
		wantErr(t, err, "weights:")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("invalid hub specs touched the cache: %v", entries)
	}
}

func TestParseHubSpec(t *testing.T) {
	for _, c := range []struct{ spec, repo, file string }{
		{"timm/vgg11.tv_in1k", "timm/vgg11.tv_in1k", ""},
		{"gpt2", "gpt2", ""},
		{"timm/vgg11.tv_in1k/model.safetensors", "timm/vgg11.tv_in1k", "model.safetensors"},
		{"org/repo/sub/dir/pytorch_model.bin", "org/repo", "sub/dir/pytorch_model.bin"},
	} {
		repo, file, err := parseHubSpec(c.spec)
		if err != nil || repo != c.repo || file != c.file {
			t.Errorf("parseHubSpec(%q) = %q, %q, %v; want %q, %q", c.spec, repo, file, err, c.repo, c.file)
		}
	}
}
