package weights

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// TorchHubOptions configures LoadTorchHub.
type TorchHubOptions struct {
	// Dir is PyTorch's checkpoint cache. Default TorchHubCheckpointDir().
	Dir string
	// Offline forbids downloads: only the cache is used (also HF_HUB_OFFLINE).
	Offline bool
	// Progress, if non-nil, receives a one-line progress bar while downloading.
	Progress io.Writer
	// Client is the HTTP client (default: one with connect, TLS and
	// response-header timeouts, no limit on the download itself).
	Client *http.Client
}

// TorchHubCheckpointDir returns where PyTorch caches downloaded checkpoints,
// resolved as torch.hub does: $TORCH_HOME/hub/checkpoints, else
// $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints.
func TorchHubCheckpointDir() string {
	if d := os.Getenv("TORCH_HOME"); d != "" {
		return filepath.Join(expandHome(d), "hub", "checkpoints")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(expandHome(d), "torch", "hub", "checkpoints")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "torch", "hub", "checkpoints")
}

// hashPrefix is torch.hub's HASH_REGEX: the file name's "-<hex>." part is a
// prefix of the file's SHA-256.
var hashPrefix = regexp.MustCompile(`-([a-f0-9]*)\.`)

// LoadTorchHub loads a torchvision checkpoint by its URL (e.g.
// https://download.pytorch.org/models/alexnet-owt-7be5be79.pth) from PyTorch's
// checkpoint cache, downloading it there first when it is missing and
// downloads are allowed — so a machine that ran torchvision once needs no
// download. The SHA-256 prefix in the file name is checked (a cached file that
// fails the check is an error naming the file; a download that fails it is
// removed).
func LoadTorchHub(ctx context.Context, rawURL string, o TorchHubOptions) (*Set, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || path.Base(u.Path) == "" || path.Base(u.Path) == "/" {
		return nil, fmt.Errorf("torch hub: bad checkpoint URL %q", rawURL)
	}
	name := path.Base(u.Path)
	dir := o.Dir
	if dir == "" {
		dir = TorchHubCheckpointDir()
	}
	file := filepath.Join(dir, name)
	var want string
	if m := hashPrefix.FindStringSubmatch(name); m != nil {
		want = m[1]
	}
	if _, err := os.Stat(file); err != nil {
		if o.Offline || HubOfflineFromEnv() {
			return nil, fmt.Errorf("torch hub: %s is not in PyTorch's cache %s and downloads are off (offline)", name, dir)
		}
		if err := download(ctx, rawURL, file, o); err != nil {
			return nil, err
		}
		if err := checkSHA(file, want); err != nil {
			_ = os.Remove(file)
			return nil, err
		}
	} else if err := checkSHA(file, want); err != nil {
		return nil, err
	}
	return LoadPTH(file)
}

func checkSHA(file, prefix string) error {
	if prefix == "" {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("torch hub: reading %s: %w", file, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.HasPrefix(got, prefix) {
		return fmt.Errorf("torch hub: %s has SHA-256 %s…, but its name promises a hash starting %s: the file is corrupt or incomplete; delete it to download it again", file, got[:16], prefix)
	}
	return nil
}

func download(ctx context.Context, rawURL, file string, o TorchHubOptions) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	c := o.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("torch hub: downloading %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("torch hub: downloading %s: %s", rawURL, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var w io.Writer = tmp
	if o.Progress != nil {
		w = &progressWriter{w: tmp, out: o.Progress, total: resp.ContentLength, name: path.Base(rawURL)}
	}
	n, err := io.Copy(w, resp.Body)
	if o.Progress != nil {
		fmt.Fprintln(o.Progress)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("torch hub: downloading %s: %w", rawURL, err)
	}
	if resp.ContentLength > 0 && n != resp.ContentLength {
		return fmt.Errorf("torch hub: downloading %s: got %d of %d bytes", rawURL, n, resp.ContentLength)
	}
	return os.Rename(tmp.Name(), file)
}

// defaultClient bounds connecting, the TLS handshake and the wait for the
// response headers (a black-holed network fails in about a minute instead of
// hanging), but not the body: checkpoints are hundreds of megabytes.
var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
}}

type progressWriter struct {
	w           io.Writer
	out         io.Writer
	total, done int64
	name        string
	lastPct     int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	pct := int64(-1)
	if p.total > 0 {
		pct = p.done * 100 / p.total
	}
	if pct != p.lastPct {
		p.lastPct = pct
		fmt.Fprintf(p.out, "\r%s", progressLine(p.name, p.done, p.total))
	}
	return n, err
}
