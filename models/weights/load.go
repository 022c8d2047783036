package weights

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Load reads weights named by spec and returns them with torchvision names:
//
//   - "hub:ORG/NAME" loads DefaultHubFile (or opts.File) from that Hugging Face
//     repository with LoadHub; "hub:ORG/NAME/PATH/FILE" loads FILE (overriding
//     opts.File).
//   - a path ending in .safetensors is read with LoadSafetensors;
//   - a path ending in .pth, .pt, .bin or .ckpt with LoadPTH;
//   - any other existing file by its first bytes: a safetensors header, else a
//     zip archive or pickle (PyTorch checkpoint).
//
// A path that does not exist is an error naming it. Timm-named VGG weights
// (IsTimm) from any source are converted with FromTimm. opts only matters for
// hub specs.
func Load(ctx context.Context, spec string, opts HubOptions) (*Set, error) {
	return load(ctx, spec, opts, false)
}

// LoadMapped is Load, except that a .safetensors file (local, or a hub
// file in the cache) is mapped with MapSafetensors instead of copied: its
// F32 tensors alias the mapping until the caller calls Close on the returned
// Set, which it must do once it has converted the tensors (Close is a no-op
// for the other sources, which Load reads as usual). A timm-named file is
// mapped too and converted with FromTimm, which keeps the aliasing.
func LoadMapped(ctx context.Context, spec string, opts HubOptions) (*Set, error) {
	return load(ctx, spec, opts, true)
}

// load is Load, or LoadMapped with mapped.
func load(ctx context.Context, spec string, opts HubOptions, mapped bool) (*Set, error) {
	if rest, ok := strings.CutPrefix(spec, "hub:"); ok {
		repo, file, err := parseHubSpec(rest)
		if err != nil {
			return nil, err
		}
		if file != "" {
			opts.File = file
		}
		return loadHub(ctx, repo, opts, mapped)
	}
	if spec == "" {
		return nil, fmt.Errorf("weights: empty weights spec (expected a .safetensors/.pth file or hub:ORG/NAME)")
	}
	return loadFile(spec, mapped)
}

// loadFile reads (or, with mapped, maps: see LoadMapped) the local weight
// file path, converting timm names (FromTimm; the converted set takes a
// mapping over, and the set is closed if the conversion fails).
func loadFile(path string, mapped bool) (*Set, error) {
	var s *Set
	var err error
	if st, serr := os.Stat(path); mapped && serr == nil && st.Mode().IsRegular() && strings.ToLower(filepath.Ext(path)) == ".safetensors" {
		s, err = MapSafetensors(path)
	} else {
		s, err = loadLocal(path) // Its errors name what is wrong with path.
	}
	if err != nil || !IsTimm(s) {
		return s, err
	}
	t, err := FromTimm(s)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return t, nil
}

// parseHubSpec splits "ORG/NAME[/PATH/FILE]" (the part after "hub:").
func parseHubSpec(spec string) (repo, file string, err error) {
	parts := strings.SplitN(spec, "/", 3)
	switch len(parts) {
	case 1, 2:
		repo = spec
	default:
		repo, file = parts[0]+"/"+parts[1], parts[2]
		if file == "" {
			return "", "", fmt.Errorf("weights: hub spec %q ends with '/': expected hub:ORG/NAME or hub:ORG/NAME/FILE", "hub:"+spec)
		}
	}
	if err := validateRepoID(repo); err != nil {
		return "", "", fmt.Errorf("weights: hub spec %q: %w", "hub:"+spec, err)
	}
	return repo, file, nil
}

// loadLocal reads a local file, choosing the format by extension or content.
func loadLocal(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("weights: file %s does not exist", path)
		}
		return nil, fmt.Errorf("weights: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("weights: %s is a directory; expected a .safetensors or .pth file", path)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".safetensors":
		return LoadSafetensors(path)
	case ".pth", ".pt", ".bin", ".ckpt":
		return LoadPTH(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	head := make([]byte, 10)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("weights %s: reading: %w", path, err)
	}
	head = head[:n]
	switch {
	case looksLikeSafetensors(head, st.Size()):
		return LoadSafetensors(path)
	case bytes.HasPrefix(head, []byte("PK")), len(head) >= 2 && head[0] == 0x80 && head[1] <= 5:
		return LoadPTH(path)
	}
	return nil, fmt.Errorf("weights %s: unrecognized file format (not safetensors, not a PyTorch checkpoint); expected a .safetensors or .pth file", path)
}

// looksLikeSafetensors reports whether head (the first bytes of a file of the
// given size) starts like a safetensors file: a plausible header length
// followed by '{'.
func looksLikeSafetensors(head []byte, size int64) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	return n >= 2 && n <= maxSafetensorsHeader && int64(n) <= size-8 && head[8] == '{'
}
