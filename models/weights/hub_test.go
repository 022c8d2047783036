package weights

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testCommit = "0123456789abcdef0123456789abcdef01234567"

// makeHubCache lays files out as huggingface_hub does:
// <cache>/models--ORG--NAME/blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>
// and, if ref != "", refs/<ref> holding the commit.
func makeHubCache(t *testing.T, cache, repo, ref string, files map[string][]byte) string {
	t.Helper()
	repoDir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	for name, data := range files {
		sum := sha256.Sum256(data)
		blob := filepath.Join(repoDir, "blobs", hex.EncodeToString(sum[:]))
		snap := filepath.Join(repoDir, "snapshots", testCommit, filepath.FromSlash(name))
		for _, d := range []string{filepath.Dir(blob), filepath.Dir(snap)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(blob, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(filepath.Dir(snap), blob)
		if err := os.Symlink(rel, snap); err != nil {
			t.Fatal(err)
		}
	}
	if ref != "" {
		if err := os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repoDir, "refs", ref), []byte(testCommit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return repoDir
}

// noNetwork points HF_ENDPOINT at a server that fails the test if contacted.
func noNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected hub request: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HF_ENDPOINT", srv.URL)
}

func clearHubEnv(t *testing.T) {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

func TestHubCacheDir(t *testing.T) {
	clearHubEnv(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	steps := []struct{ key, value, want string }{
		{"", "", filepath.Join(home, ".cache", "huggingface", "hub")},
		{"XDG_CACHE_HOME", "/x", "/x/huggingface/hub"},
		{"HF_HOME", "/h", "/h/hub"},
		{"HUGGINGFACE_HUB_CACHE", "/legacy", "/legacy"},
		{"HF_HUB_CACHE", "~/hc", filepath.Join(home, "hc")},
	}
	for _, s := range steps { // each step takes precedence over the previous ones
		if s.key != "" {
			t.Setenv(s.key, s.value)
		}
		if got := HubCacheDir(); got != s.want {
			t.Errorf("after %s=%s: HubCacheDir() = %q, want %q", s.key, s.value, got, s.want)
		}
	}
}

func TestHubOfflineFromEnv(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "TRUE": true, "yes": true, "On": true} {
		t.Setenv("HF_HUB_OFFLINE", v)
		if got := HubOfflineFromEnv(); got != want {
			t.Errorf("HF_HUB_OFFLINE=%q: %v, want %v", v, got, want)
		}
	}
}

func TestLoadHubFromCache(t *testing.T) {
	clearHubEnv(t)
	noNetwork(t) // cached files are used without contacting the hub, offline or not
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	makeHubCache(t, cache, "org/small", "main", map[string][]byte{
		"model.safetensors": readFixture(t, "small.safetensors"),
		"sub/weights.pth":   readFixture(t, "small.pth"),
	})
	makeHubCache(t, cache, "timm/vgg-mini.tv_in1k", "main", map[string][]byte{"model.safetensors": readFixture(t, "timm.safetensors")})
	ctx := context.Background()

	for _, offline := range []bool{true, false} {
		s, err := LoadHub(ctx, "org/small", HubOptions{Offline: offline})
		if err != nil {
			t.Fatal(err)
		}
		checkSmall(t, s)
		if s.Source != "hub:org/small/model.safetensors" {
			t.Errorf("Source = %q", s.Source)
		}
	}
	s, err := Load(ctx, "hub:org/small/sub/weights.pth", HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, s)
	if s.Source != "hub:org/small/sub/weights.pth" {
		t.Errorf("Source = %q", s.Source)
	}
	// timm naming is detected and converted.
	s, err = Load(ctx, "hub:timm/vgg-mini.tv_in1k", HubOptions{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	checkTimmConverted(t, s)
	// LoadMapped maps cached hub files (timm-named ones too) instead of
	// reading them: the same tensors, aliasing the cache's file until Close.
	for _, spec := range []string{"hub:org/small", "hub:timm/vgg-mini.tv_in1k"} {
		m, err := LoadMapped(ctx, spec, HubOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Mapped() {
			t.Errorf("LoadMapped(%s) read the file instead of mapping it", spec)
		}
		if spec == "hub:org/small" {
			checkSmall(t, m)
			if m.Source != "hub:org/small/model.safetensors" {
				t.Errorf("Source = %q", m.Source)
			}
		} else {
			checkTimmConverted(t, m)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A commit hash as revision needs no refs file.
	s, err = LoadHub(ctx, "org/small", HubOptions{Offline: true, Revision: testCommit})
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, s)
	if !strings.HasSuffix(s.Source, "@"+testCommit) {
		t.Errorf("Source = %q", s.Source)
	}
	// CacheDir overrides the environment.
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	if _, err := LoadHub(ctx, "org/small", HubOptions{Offline: true, CacheDir: cache}); err != nil {
		t.Error(err)
	}
}

func TestLoadHubGoHuggingfaceInfo(t *testing.T) {
	// go-huggingface records the commit in info/<revision> (JSON) rather than refs/.
	clearHubEnv(t)
	cache := t.TempDir()
	repoDir := makeHubCache(t, cache, "org/small", "", map[string][]byte{"model.safetensors": readFixture(t, "small.safetensors")})
	os.MkdirAll(filepath.Join(repoDir, "info"), 0o755)
	os.WriteFile(filepath.Join(repoDir, "info", "main"), []byte(`{"id":"org/small","sha":"`+testCommit+`"}`), 0o644)
	s, err := LoadHub(context.Background(), "org/small", HubOptions{Offline: true, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, s)
}

func TestLoadHubOfflineMissing(t *testing.T) {
	clearHubEnv(t)
	noNetwork(t)
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1") // offline through the environment only
	ctx := context.Background()
	repoDir := filepath.Join(cache, "models--timm--vgg11.tv_in1k")

	_, err := LoadHub(ctx, "timm/vgg11.tv_in1k", HubOptions{})
	wantErr(t, err, "hub:timm/vgg11.tv_in1k", "model.safetensors is not in the Hugging Face cache", "offline",
		filepath.Join(repoDir, "snapshots", "<commit>", "model.safetensors"),
		filepath.Join(repoDir, "refs", "main"),
		"huggingface-cli download timm/vgg11.tv_in1k model.safetensors", "--weights FILE")

	// With refs/main present but the file absent, the exact path is known.
	makeHubCache(t, cache, "timm/vgg11.tv_in1k", "main", map[string][]byte{"config.json": []byte("{}")})
	_, err = LoadHub(ctx, "timm/vgg11.tv_in1k", HubOptions{File: "open_clip_model.safetensors"})
	wantErr(t, err, filepath.Join(repoDir, "snapshots", testCommit, "open_clip_model.safetensors"), "--weights FILE")

	// A dangling snapshot link (blob deleted) counts as missing.
	os.Remove(filepath.Join(repoDir, "snapshots", testCommit, "config.json"))
	os.Symlink("../../blobs/gone", filepath.Join(repoDir, "snapshots", testCommit, "model.safetensors"))
	_, err = LoadHub(ctx, "timm/vgg11.tv_in1k", HubOptions{})
	wantErr(t, err, "not in the Hugging Face cache")
}

func TestLoadHubBadArguments(t *testing.T) {
	clearHubEnv(t)
	noNetwork(t)
	ctx := context.Background()
	cache := t.TempDir()
	for _, repo := range []string{"", "a/b/c", "../x", "a--b/c", "/abs", "a/.."} {
		_, err := LoadHub(ctx, repo, HubOptions{CacheDir: cache})
		wantErr(t, err, "invalid Hugging Face repository id")
	}
	for _, file := range []string{"../x.safetensors", "/etc/passwd", "a/../../b", "./x"} {
		_, err := LoadHub(ctx, "org/repo", HubOptions{CacheDir: cache, File: file})
		wantErr(t, err, "invalid file name")
	}
	_, err := LoadHub(ctx, "org/repo", HubOptions{CacheDir: cache, Revision: "../main"})
	wantErr(t, err, "invalid revision")
}

// fakeHub serves one repository the way huggingface.co does for go-huggingface:
// GET /api/models/ORG/NAME/revision/REV (repository info) and
// HEAD/GET /ORG/NAME/resolve/COMMIT/FILE (with an ETag).
type fakeHub struct {
	repo  string
	files map[string][]byte
	slow  bool // serve file bodies in two halves, 800 ms apart
	cut   bool // send only half of each file body, then drop the connection

	mu       sync.Mutex
	requests []string
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path)
	h.mu.Unlock()
	if r.URL.Path == "/api/models/"+h.repo+"/revision/main" {
		type sibling struct {
			Name string `json:"rfilename"`
			Size int    `json:"size"`
		}
		info := struct {
			ID       string    `json:"id"`
			SHA      string    `json:"sha"`
			Siblings []sibling `json:"siblings"`
		}{ID: h.repo, SHA: testCommit}
		for name, data := range h.files {
			info.Siblings = append(info.Siblings, sibling{name, len(data)})
		}
		json.NewEncoder(w).Encode(info)
		return
	}
	prefix := "/" + h.repo + "/resolve/" + testCommit + "/"
	data, ok := h.files[strings.TrimPrefix(r.URL.Path, prefix)]
	if !strings.HasPrefix(r.URL.Path, prefix) || !ok {
		http.Error(w, `{"error":"Entry not found"}`, http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("X-Repo-Commit", testCommit)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	if h.cut {
		w.Write(data[:len(data)/2])
		return // shorter than Content-Length: the server closes the connection
	}
	if !h.slow {
		w.Write(data)
		return
	}
	w.Write(data[:len(data)/2])
	w.(http.Flusher).Flush()
	time.Sleep(800 * time.Millisecond)
	w.Write(data[len(data)/2:])
}

func (h *fakeHub) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func TestLoadHubDownload(t *testing.T) {
	clearHubEnv(t)
	data := readFixture(t, "timm.safetensors")
	h := &fakeHub{repo: "timm/vgg-mini.tv_in1k", files: map[string][]byte{"model.safetensors": data, "README.md": []byte("hi")}, slow: true}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cache := t.TempDir()
	ctx := context.Background()

	var bar bytes.Buffer
	var mu sync.Mutex
	var calls [][2]int64
	opts := HubOptions{CacheDir: cache, Endpoint: srv.URL, Progress: &bar, OnProgress: func(done, total int64) {
		mu.Lock()
		calls = append(calls, [2]int64{done, total})
		mu.Unlock()
	}}
	s, err := LoadHub(ctx, "timm/vgg-mini.tv_in1k", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkTimmConverted(t, s)
	if n := h.count("GET /timm/vgg-mini.tv_in1k/resolve/"); n != 1 {
		t.Errorf("file downloaded %d times, want 1 (requests %v)", n, h.requests)
	}

	// Progress: a partial report while the body was stalled, then 100%.
	total := int64(len(data))
	mu.Lock()
	if len(calls) == 0 || calls[len(calls)-1] != [2]int64{total, total} {
		t.Errorf("OnProgress calls %v, want the last to be (%d, %d)", calls, total, total)
	}
	partial := false
	for _, c := range calls {
		partial = partial || (c[0] > 0 && c[0] < total && c[1] == total)
	}
	mu.Unlock()
	if !partial {
		t.Errorf("OnProgress never saw a partial download: %v", calls)
	}
	out := bar.String()
	if !strings.Contains(out, "\rdownloading hub:timm/vgg-mini.tv_in1k/model.safetensors: [") ||
		!strings.Contains(out, "100.0%") || !strings.HasSuffix(out, "\n") {
		t.Errorf("progress output %q", out)
	}

	// The cache now has huggingface_hub's layout, refs/main included.
	repoDir := filepath.Join(cache, "models--timm--vgg-mini.tv_in1k")
	if ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err != nil || string(ref) != testCommit {
		t.Errorf("refs/main = %q, %v; want %q", ref, err, testCommit)
	}
	snap := filepath.Join(repoDir, "snapshots", testCommit, "model.safetensors")
	if got, err := os.ReadFile(snap); err != nil || !bytes.Equal(got, data) {
		t.Errorf("snapshot %s: %v", snap, err)
	}

	// Later loads, offline or not, use the cache without any request.
	before := h.count("")
	for _, offline := range []bool{true, false} {
		opts := HubOptions{CacheDir: cache, Endpoint: srv.URL, Offline: offline}
		if _, err := LoadHub(ctx, "timm/vgg-mini.tv_in1k", opts); err != nil {
			t.Fatal(err)
		}
	}
	if after := h.count(""); after != before {
		t.Errorf("cached loads made %d requests: %v", after-before, h.requests[before:])
	}

	// A file the repository does not have.
	_, err = LoadHub(ctx, "timm/vgg-mini.tv_in1k", HubOptions{CacheDir: cache, Endpoint: srv.URL, File: "pytorch_model.bin"})
	wantErr(t, err, `has no file "pytorch_model.bin"`, "model.safetensors")
}

func TestLoadHubDownloadErrors(t *testing.T) {
	clearHubEnv(t)
	h := &fakeHub{repo: "org/other", files: map[string][]byte{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cache := t.TempDir()
	ctx := context.Background()
	// Unknown repository: the info request fails.
	_, err := LoadHub(ctx, "org/missing", HubOptions{CacheDir: cache, Endpoint: srv.URL})
	wantErr(t, err, "hub:org/missing/model.safetensors", "cannot look the repository up",
		filepath.Join(cache, "models--org--missing", "snapshots", "<commit>", "model.safetensors"), "--weights FILE")

	// Cancelled context: nothing is requested.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before := h.count("")
	_, err = LoadHub(cctx, "org/other", HubOptions{CacheDir: cache, Endpoint: srv.URL})
	wantErr(t, err, "context canceled")
	if h.count("") != before {
		t.Errorf("cancelled load made requests")
	}

	// A download cut short is an error (go-huggingface v0.4.6 reports success
	// in that case, leaving a dangling snapshot link), and is retried next time.
	h3 := &fakeHub{repo: "org/cut", files: map[string][]byte{"model.safetensors": readFixture(t, "small.safetensors")}, cut: true}
	srv3 := httptest.NewServer(h3)
	defer srv3.Close()
	_, err = LoadHub(ctx, "org/cut", HubOptions{CacheDir: cache, Endpoint: srv3.URL})
	wantErr(t, err, "hub:org/cut/model.safetensors", "download ended early")
	h3.cut = false
	s, err := LoadHub(ctx, "org/cut", HubOptions{CacheDir: cache, Endpoint: srv3.URL})
	if err != nil {
		t.Fatalf("retry after a cut download: %v", err)
	}
	checkSmall(t, s)

	// A downloaded file that is corrupt is reported with its cache path.
	h2 := &fakeHub{repo: "org/bad", files: map[string][]byte{"model.safetensors": []byte("not safetensors at all")}}
	srv2 := httptest.NewServer(h2)
	defer srv2.Close()
	_, err = LoadHub(ctx, "org/bad", HubOptions{CacheDir: cache, Endpoint: srv2.URL})
	wantErr(t, err, filepath.Join(cache, "models--org--bad", "snapshots", testCommit, "model.safetensors"))
}
