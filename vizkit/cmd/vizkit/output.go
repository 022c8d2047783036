package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Output folders are written atomically:
//
//   - Nothing is created before every input (model, image or .npy, layers,
//     class, methods) has been validated.
//   - The run writes into a staging folder next to --out
//     (".NAME.vizkit-partial-XXXX"), removed on failure or interruption.
//   - manifest.json (files, input, model, completion time) is written last;
//     then the staging folder replaces --out in two renames. An interrupted
//     run therefore leaves --out as it was, never a mix of two runs.
//   - An existing --out is replaced only when it is empty or holds a previous
//     vizkit result (a manifest.json written by vizkit); any other non-empty
//     folder is refused, so a typo cannot delete unrelated files.

// manifestName is the file that marks a complete vizkit result folder.
const manifestName = "manifest.json"

// manifestFormat identifies vizkit manifests (and their version).
const manifestFormat = "cnnviz-vizkit-result/1"

// manifest describes one complete run; it is written last.
type manifest struct {
	Format    string            `json:"format"`
	Command   string            `json:"command"`
	Input     string            `json:"input"`
	Model     string            `json:"model"`
	Weights   string            `json:"weights"`
	Methods   []string          `json:"methods"`
	Class     int               `json:"class"`
	Files     []string          `json:"files"`
	Completed string            `json:"completed"`
	Extra     map[string]string `json:"extra,omitempty"`
}

// outputDir is a staged result folder.
type outputDir struct {
	final, stage string
	done         bool
}

// checkOutDir validates --out before anything is written: it must be absent,
// an empty folder, or a previous vizkit result (holding a vizkit manifest).
func checkOutDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("--out %s exists and is not a folder; choose a folder name", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if isVizkitResult(dir) {
		return nil
	}
	return fmt.Errorf("--out %s is a non-empty folder that holds no vizkit %s; vizkit replaces only its own previous results: choose a new or empty folder", dir, manifestName)
}

func isVizkitResult(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return false
	}
	var m manifest
	return json.Unmarshal(b, &m) == nil && m.Format == manifestFormat
}

// stageOut checks dir and creates the staging folder next to it (creating
// dir's parent folders if needed).
func stageOut(dir string) (*outputDir, error) {
	if err := checkOutDir(dir); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("--out %s: %w", dir, err)
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".vizkit-partial-")
	if err != nil {
		return nil, fmt.Errorf("--out %s: %w", dir, err)
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		os.RemoveAll(stage)
		return nil, err
	}
	return &outputDir{final: dir, stage: stage}, nil
}

// Abort removes the staging folder unless Commit succeeded.
func (o *outputDir) Abort() {
	if o != nil && !o.done {
		os.RemoveAll(o.stage)
	}
}

// Commit writes the manifest (listing every staged file) last and moves the
// staged folder to its final name, replacing a previous result.
func (o *outputDir) Commit(m manifest) error {
	var files []string
	err := filepath.WalkDir(o.stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(o.stage, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	m.Format, m.Files, m.Completed = manifestFormat, files, time.Now().UTC().Format(time.RFC3339)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.stage, manifestName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	// Check again: --out may have changed while the run computed.
	if err := checkOutDir(o.final); err != nil {
		return err
	}
	var old string
	if _, err := os.Stat(o.final); err == nil {
		old = o.stage + ".old"
		if err := os.Rename(o.final, old); err != nil {
			return fmt.Errorf("replacing the previous result in %s: %w", o.final, err)
		}
	}
	if err := os.Rename(o.stage, o.final); err != nil {
		if old != "" {
			os.Rename(old, o.final)
		}
		return fmt.Errorf("moving the result to %s: %w", o.final, err)
	}
	o.done = true
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}
