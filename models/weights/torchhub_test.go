package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A checkpoint laid out as PyTorch caches it ($TORCH_HOME/hub/checkpoints/
// NAME-<sha256 prefix>.pth) loads without any network access; a file whose
// hash does not match its name is refused; a missing file offline is a clear
// error; a download lands in the cache and is checked.
func TestLoadTorchHub(t *testing.T) {
	src := filepath.Join("testdata", "small.pth")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Skipf("no .pth fixture: %v", err)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	home := t.TempDir()
	t.Setenv("TORCH_HOME", home)
	dir := filepath.Join(home, "hub", "checkpoints")
	if got := TorchHubCheckpointDir(); got != dir {
		t.Fatalf("TorchHubCheckpointDir() = %s, want %s", got, dir)
	}
	name := "tinynet-" + hash[:8] + ".pth"
	url := "https://download.pytorch.org/models/" + name
	ctx := context.Background()

	// Missing and offline.
	if _, err := LoadTorchHub(ctx, url, TorchHubOptions{Offline: true}); err == nil || !strings.Contains(err.Error(), "not in PyTorch's cache") {
		t.Fatalf("offline without the file: %v", err)
	}
	// Cached: loads.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := LoadTorchHub(ctx, url, TorchHubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := LoadPTH(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Tensors) != len(want.Tensors) || len(set.Tensors) == 0 {
		t.Fatalf("loaded %d tensors, want %d", len(set.Tensors), len(want.Tensors))
	}
	// A cached file whose hash does not match its name.
	bad := "tinynet-" + strings.Repeat("0", 8) + ".pth"
	if err := os.WriteFile(filepath.Join(dir, bad), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTorchHub(ctx, "https://download.pytorch.org/models/"+bad, TorchHubOptions{Offline: true}); err == nil || !strings.Contains(err.Error(), "corrupt or incomplete") {
		t.Fatalf("hash mismatch: %v", err)
	}
	// Download from a local server into the cache, then from the cache.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(data) }))
	defer srv.Close()
	dl := "other-" + hash[:10] + ".pth"
	if _, err := LoadTorchHub(ctx, srv.URL+"/models/"+dl, TorchHubOptions{Client: srv.Client()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, dl)); err != nil {
		t.Fatalf("download not cached: %v", err)
	}
	// A download whose content does not match the name is removed.
	wrong := "wrong-" + strings.Repeat("f", 8) + ".pth"
	if _, err := LoadTorchHub(ctx, srv.URL+"/models/"+wrong, TorchHubOptions{Client: srv.Client()}); err == nil {
		t.Fatal("a download with the wrong hash loaded")
	}
	if _, err := os.Stat(filepath.Join(dir, wrong)); !os.IsNotExist(err) {
		t.Fatalf("a download with the wrong hash stayed in the cache: %v", err)
	}
}
