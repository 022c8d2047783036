package weights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/go-huggingface/hub"
)

// DefaultHubFile is the file LoadHub reads when HubOptions.File is empty.
const DefaultHubFile = "model.safetensors"

// HubOptions configures LoadHub (and Load for "hub:" specs). The zero value
// is ready to use.
type HubOptions struct {
	// File is the path of the weights file inside the repository. Default
	// DefaultHubFile ("model.safetensors"). Files ending in .pth/.pt/.bin are
	// read as PyTorch checkpoints.
	File string
	// Revision is a branch, tag or 40-hex commit hash. Default "main".
	Revision string
	// CacheDir is the Hugging Face hub cache, shared with Python's
	// huggingface_hub. Default HubCacheDir() (honours HF_HUB_CACHE, HF_HOME,
	// XDG_CACHE_HOME; usually ~/.cache/huggingface/hub).
	CacheDir string
	// Offline forbids network access: only the cache is used. Offline mode is
	// also on when the environment variable HF_HUB_OFFLINE is 1/true/yes/on.
	Offline bool
	// Token authenticates downloads (gated or private repositories). Default:
	// the HF_TOKEN environment variable; empty means anonymous.
	Token string
	// Endpoint is the hub's base URL. Default: HF_ENDPOINT or
	// https://huggingface.co (as go-huggingface resolves it).
	Endpoint string
	// Progress, if non-nil, receives a one-line text progress bar (redrawn with
	// '\r', ended with '\n') while a file downloads. Default nil: silent.
	Progress io.Writer
	// OnProgress, if non-nil, is called about five times a second while a file
	// downloads, with the bytes downloaded so far and the file size (0 if
	// unknown), and once more when the download ends.
	OnProgress func(downloaded, total int64)
}

// HubCacheDir returns the Hugging Face hub cache directory, resolved as
// Python's huggingface_hub does: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE,
// else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. A leading "~/" is expanded.
func HubCacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return expandHome(d)
	}
	if d := os.Getenv("HUGGINGFACE_HUB_CACHE"); d != "" {
		return expandHome(d)
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(expandHome(d), "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(expandHome(d), "huggingface", "hub")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "~"
	}
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// HubOfflineFromEnv reports whether HF_HUB_OFFLINE asks for offline mode
// (1, true, yes or on, any case).
func HubOfflineFromEnv() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("HF_HUB_OFFLINE"))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

var (
	repoIDPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
	revisionPattern = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	commitPattern   = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// withDefaults fills in the documented defaults and validates the options.
func (o HubOptions) withDefaults() (HubOptions, error) {
	if o.File == "" {
		o.File = DefaultHubFile
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	if o.CacheDir == "" {
		o.CacheDir = HubCacheDir()
	}
	if HubOfflineFromEnv() {
		o.Offline = true
	}
	if o.Token == "" {
		o.Token = os.Getenv("HF_TOKEN")
	}
	if f := o.File; path.IsAbs(f) || strings.HasPrefix(f, "\\") || path.Clean(f) != f || strings.HasPrefix(f, "../") || f == ".." {
		return o, fmt.Errorf("invalid file name %q: must be a clean relative path inside the repository", f)
	}
	if !revisionPattern.MatchString(o.Revision) || strings.Contains(o.Revision, "..") {
		return o, fmt.Errorf("invalid revision %q", o.Revision)
	}
	return o, nil
}

// validateRepoID checks a Hugging Face repository id ("ORG/NAME" or "NAME").
func validateRepoID(repo string) error {
	if !repoIDPattern.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") || len(repo) > 96 {
		return fmt.Errorf("invalid Hugging Face repository id %q (expected ORG/NAME, e.g. timm/vgg11.tv_in1k)", repo)
	}
	return nil
}

// hubRepoDir is the cache folder of a model repository:
// <cache>/models--ORG--NAME (the layout huggingface_hub uses).
func hubRepoDir(cacheDir, repo string) string {
	return filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// cachedHubFile looks a file up in the hub cache without any network access,
// as huggingface_hub's try_to_load_from_cache does: the revision is resolved
// to a commit through refs/<revision> (or go-huggingface's info/<revision>),
// and the file must exist at snapshots/<commit>/<file>. commit is "" when the
// revision could not be resolved.
func cachedHubFile(cacheDir, repo string, o HubOptions) (p, commit string, ok bool) {
	repoDir := hubRepoDir(cacheDir, repo)
	switch {
	case commitPattern.MatchString(o.Revision):
		commit = o.Revision
	default:
		if b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(o.Revision))); err == nil {
			commit = strings.TrimSpace(string(b))
		} else if b, err := os.ReadFile(filepath.Join(repoDir, "info", filepath.FromSlash(o.Revision))); err == nil {
			var info struct {
				SHA string `json:"sha"`
			}
			if json.Unmarshal(b, &info) == nil {
				commit = info.SHA
			}
		}
	}
	if commit == "" || strings.ContainsAny(commit, `/\`) || commit == "." || commit == ".." {
		return "", "", false
	}
	p = filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(o.File))
	st, err := os.Stat(p) // follows the snapshot symlink into blobs/
	if err != nil || !st.Mode().IsRegular() {
		return p, commit, false
	}
	return p, commit, true
}

// LoadHub loads a weights file from a Hugging Face hub model repository
// ("ORG/NAME", e.g. "timm/vgg11.tv_in1k"), through the standard hub cache shared
// with Python (see HubOptions.CacheDir).
//
// A file already in the cache for the requested revision is used without any
// network access. Otherwise, unless offline, it is downloaded with
// go-huggingface's hub package into the cache (blobs/, snapshots/<commit>/) and
// refs/<revision> is written as huggingface_hub does, so later offline runs and
// Python find it. Offline with the file missing, the error says which file to
// download and the exact cache path to put it at, or to pass a local file.
//
// The file is read with LoadSafetensors or LoadPTH (by extension, else by its
// first bytes); timm-named VGG weights (IsTimm) are converted with FromTimm.
// Set.Source is "hub:ORG/NAME/FILE" (plus "@REVISION" when not "main").
func LoadHub(ctx context.Context, repo string, opts HubOptions) (*Set, error) {
	return loadHub(ctx, repo, opts, false)
}

// loadHub is LoadHub; with mapped, a .safetensors file is mapped
// (MapSafetensors, see LoadMapped) instead of read.
func loadHub(ctx context.Context, repo string, opts HubOptions, mapped bool) (*Set, error) {
	if err := validateRepoID(repo); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("weights hub:%s: %w", repo, err)
	}
	source := "hub:" + repo + "/" + o.File
	if o.Revision != "main" {
		source += "@" + o.Revision
	}
	p, err := resolveHubFile(ctx, repo, source, o)
	if err != nil {
		return nil, err
	}
	s, err := loadFile(p, mapped)
	if err != nil {
		return nil, err
	}
	s.Source = source
	return s, nil
}

// resolveHubFile returns the local path of the requested file, downloading it
// if needed and allowed.
func resolveHubFile(ctx context.Context, repo, source string, o HubOptions) (string, error) {
	p, commit, ok := cachedHubFile(o.CacheDir, repo, o)
	if ok {
		return p, nil
	}
	repoDir := hubRepoDir(o.CacheDir, repo)
	where := fmt.Sprintf("%s (with the commit hash in %s)",
		filepath.Join(repoDir, "snapshots", "<commit>", filepath.FromSlash(o.File)),
		filepath.Join(repoDir, "refs", filepath.FromSlash(o.Revision)))
	if commit != "" {
		where = p
	}
	fix := fmt.Sprintf("download it where there is network (huggingface-cli download %s %s --revision %s, or run once without offline mode) so that it is at %s, or pass a local file with --weights FILE (e.g. a .safetensors file)",
		repo, o.File, o.Revision, where)
	if o.Offline {
		return "", fmt.Errorf("weights %s: %s is not in the Hugging Face cache and offline mode is on (HF_HUB_OFFLINE or the offline option): %s", source, o.File, fix)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("weights %s: %w", source, err)
	}

	r := hub.New(repo).WithCacheDir(o.CacheDir).WithRevision(o.Revision).WithAuth(o.Token).WithProgressBar(false)
	if o.Endpoint != "" {
		r = r.WithEndpoint(strings.TrimSuffix(o.Endpoint, "/"))
	}
	r.Verbosity = 0 // go-huggingface would print its own progress to stdout
	if err := r.DownloadInfo(true); err != nil {
		return "", fmt.Errorf("weights %s: cannot look the repository up on the Hugging Face hub (%v); to work offline, %s", source, err, fix)
	}
	var total int64
	found := false
	var available []string
	for _, si := range r.Info().Siblings {
		if si.Name == o.File {
			found = true
			total = si.Size
			if si.LFS != nil && si.LFS.Size > 0 {
				total = si.LFS.Size
			}
		}
		if ext := strings.ToLower(path.Ext(si.Name)); ext == ".safetensors" || ext == ".pth" || ext == ".bin" || ext == ".pt" {
			available = append(available, si.Name)
		}
	}
	if !found {
		return "", fmt.Errorf("weights %s: repository %s (revision %s) has no file %q; its weight files: %v", source, repo, o.Revision, o.File, available)
	}

	stop := startProgress(filepath.Join(repoDir, "blobs"), source, total, o)
	local, err := r.DownloadFileCtx(ctx, o.File)
	stop(err == nil)
	if err != nil {
		return "", fmt.Errorf("weights %s: download failed: %v; %s", source, err, fix)
	}
	if st, err := os.Stat(local); err != nil || !st.Mode().IsRegular() {
		// go-huggingface v0.4.6 returns success when the connection drops
		// mid-body, leaving a dangling snapshot link (its next run retries).
		return "", fmt.Errorf("weights %s: the download ended early (%s is missing after it); run again to retry", source, local)
	}
	// go-huggingface records the revision's commit only in its own info/
	// folder; write refs/<revision> like huggingface_hub so that offline runs
	// (and Python) resolve the revision from the cache.
	if commit := r.Info().CommitHash; commit != "" && !commitPattern.MatchString(o.Revision) && !strings.ContainsAny(commit, `/\`) {
		if err := writeRef(filepath.Join(repoDir, "refs", filepath.FromSlash(o.Revision)), commit); err != nil {
			return "", fmt.Errorf("weights %s: downloaded to %s but could not record the revision: %w", source, local, err)
		}
	}
	return local, nil
}

// writeRef atomically writes a refs/<revision> file holding commit.
func writeRef(refPath, commit string) error {
	if b, err := os.ReadFile(refPath); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(refPath), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(refPath), ".ref.tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(commit)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), refPath)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// progressInterval is how often download progress is sampled.
const progressInterval = 200 * time.Millisecond

// startProgress reports download progress to o.Progress / o.OnProgress until
// the returned stop function is called (with whether the download succeeded).
//
// go-huggingface's hub package prints progress only to stdout and has no
// callback, so progress is measured from the outside: its downloader writes
// each file to blobs/<etag>.part before renaming it, and the sizes of the .part
// files in the repository's blobs folder are the bytes downloaded so far.
func startProgress(blobsDir, source string, total int64, o HubOptions) (stop func(ok bool)) {
	if o.Progress == nil && o.OnProgress == nil {
		return func(bool) {}
	}
	var (
		mu   sync.Mutex
		last int64
	)
	report := func(done int64, final bool) {
		mu.Lock()
		defer mu.Unlock()
		if done < last {
			done = last // a finished .part file was renamed away
		}
		last = done
		if o.OnProgress != nil {
			o.OnProgress(done, total)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "\r%s", progressLine(source, done, total))
			if final {
				fmt.Fprintln(o.Progress)
			}
		}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				report(partBytes(blobsDir), false)
			}
		}
	}()
	return func(ok bool) {
		close(quit)
		<-finished
		done := last
		if ok && total > 0 {
			done = total
		}
		report(done, true)
	}
}

// partBytes sums the sizes of the in-progress downloads (*.part) in dir.
func partBytes(dir string) int64 {
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".part") {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// progressLine renders "downloading SOURCE: [#####     ]  45.0% 12.3 MB / 27.3 MB".
func progressLine(source string, done, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("downloading %s: %s", source, humanBytes(done))
	}
	frac := float64(done) / float64(total)
	frac = max(0, min(frac, 1))
	const width = 30
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
	return fmt.Sprintf("downloading %s: [%s] %5.1f%% %s / %s", source, bar, 100*frac, humanBytes(done), humanBytes(total))
}

// humanBytes formats a byte count with a decimal unit (kB, MB, GB).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// isNotExist reports whether err means a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
