package main

// Input enumeration for `vizkit explain` on many images: repeated --image
// values (files, folders walked recursively, globs) and a --list file; the
// canonical path, duplicate removal, the mirrored output path and sharding.

import (
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// imageExts are the extensions a folder walk or a glob picks up (case
// insensitive). Files named explicitly (--image FILE, a --list line) are
// tried whatever their extension.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".bmp": true}

// dsItem is one input image of a data-set run.
type dsItem struct {
	// Path is the canonical path: absolute and cleaned (symbolic links are
	// not resolved). Duplicates are detected on it.
	Path string
	// Rel is the path relative to the common folder of all inputs, with
	// forward slashes: the image's outputs go to OUT/images/<Rel>/ and the
	// shard assignment hashes it.
	Rel string
	// Class is the target class from the --list file (-1: none).
	Class int
	// Box is the object's box from the --list file in pixels of the original
	// image (x0, y0, x1, y1; x1, y1 exclusive), or nil.
	Box *[4]float64
	// Origin says where the path came from, for messages ("--image", "list.csv:12").
	Origin string
	// Missing is set when the path does not exist or is not a regular file;
	// the item is then skipped (reported in the summary) rather than fatal.
	Missing string
}

// isGlob reports whether s has glob metacharacters (filepath.Match syntax).
func isGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

func canonical(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.Clean(a), nil
}

// expandImageArg expands one --image value: a folder (walked recursively;
// files with an image extension, hidden entries skipped), a glob (matches
// with an image extension, folders among them walked) or a file (kept
// whatever it is; a missing one becomes a skipped item). A glob that matches
// nothing is an error.
func expandImageArg(arg string) ([]dsItem, error) {
	if arg == "" {
		return nil, errors.New("--image: empty path")
	}
	if st, err := os.Stat(arg); err == nil {
		if st.IsDir() {
			return walkImages(arg, "--image "+arg)
		}
		return []dsItem{{Path: arg, Class: -1, Origin: "--image"}}, nil
	}
	if isGlob(arg) {
		matches, err := filepath.Glob(arg)
		if err != nil {
			return nil, fmt.Errorf("--image %q: bad pattern: %w", arg, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("--image %q: the pattern matches no file", arg)
		}
		var out []dsItem
		for _, m := range matches {
			st, err := os.Stat(m)
			switch {
			case err == nil && st.IsDir():
				items, err := walkImages(m, "--image "+arg)
				if err != nil {
					return nil, err
				}
				out = append(out, items...)
			case imageExts[strings.ToLower(filepath.Ext(m))]:
				out = append(out, dsItem{Path: m, Class: -1, Origin: "--image " + arg})
			}
		}
		return out, nil
	}
	return []dsItem{{Path: arg, Class: -1, Origin: "--image", Missing: "no such file"}}, nil
}

// walkImages lists the image files under dir, recursively, in lexical order.
// Entries whose name starts with "." are skipped, and so are unreadable
// sub-folders (the walk goes on).
func walkImages(dir, origin string) ([]dsItem, error) {
	var out []dsItem
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // unreadable entry below the root: skip it
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			if imageExts[strings.ToLower(filepath.Ext(p))] {
				out = append(out, dsItem{Path: p, Class: -1, Origin: origin})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	return out, nil
}

// readList parses a --list file. Format (UTF-8, comma-separated, RFC 4180
// quoting for paths that contain commas or quotes):
//
//	# comment lines and blank lines are ignored
//	path                      (one path per line)
//	path,class                (target class index; empty = the top-1 prediction)
//	path,class,x0 y0 x1 y1    (plus the object's box in pixels of the original
//	                           image, x1 and y1 exclusive, numbers separated by spaces)
//
// A first line whose first field is "path" is a header and ignored. Relative
// paths are relative to the list file's folder. A malformed line is an error
// naming the file and line.
func readList(name string) ([]dsItem, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--list: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	base := filepath.Dir(name)
	var out []dsItem
	for first := true; ; first = false {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		where := fmt.Sprintf("%s:%d", name, line)
		if err != nil {
			return nil, fmt.Errorf("--list %s: %w", name, err)
		}
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "path") {
			continue
		}
		if len(rec) > 3 {
			return nil, fmt.Errorf("--list %s: %d fields, want path[,class][,x0 y0 x1 y1]", where, len(rec))
		}
		p := strings.TrimSpace(rec[0])
		if p == "" {
			return nil, fmt.Errorf("--list %s: empty path", where)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		it := dsItem{Path: p, Class: -1, Origin: where}
		if len(rec) >= 2 && strings.TrimSpace(rec[1]) != "" {
			c, err := strconv.Atoi(strings.TrimSpace(rec[1]))
			if err != nil || c < 0 {
				return nil, fmt.Errorf("--list %s: class %q is not a class index ≥ 0", where, rec[1])
			}
			it.Class = c
		}
		if len(rec) == 3 && strings.TrimSpace(rec[2]) != "" {
			b, err := parseBox(rec[2])
			if err != nil {
				return nil, fmt.Errorf("--list %s: %w", where, err)
			}
			it.Box = b
		}
		if st, err := os.Stat(p); err != nil {
			it.Missing = "no such file"
			if !errors.Is(err, fs.ErrNotExist) {
				it.Missing = err.Error()
			}
		} else if st.IsDir() {
			it.Missing = "a folder, not an image (list folders with --image)"
		}
		out = append(out, it)
	}
	return out, nil
}

// parseBox parses "x0 y0 x1 y1" (pixels; 0 ≤ x0 < x1, 0 ≤ y0 < y1).
func parseBox(s string) (*[4]float64, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return nil, fmt.Errorf("box %q: want 4 numbers \"x0 y0 x1 y1\" separated by spaces", s)
	}
	var b [4]float64
	for i, v := range f {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x != x || x > 1e9 {
			return nil, fmt.Errorf("box %q: %q is not a pixel coordinate ≥ 0", s, v)
		}
		b[i] = x
	}
	if b[2] <= b[0] || b[3] <= b[1] {
		return nil, fmt.Errorf("box %q: want x0 < x1 and y0 < y1", s)
	}
	return &b, nil
}

// collectInputs expands every --image value and the --list file, makes the
// paths canonical, drops duplicates (the first occurrence is kept, with a
// class and box taken from a later --list line when it has none; the
// duplicates are returned in dups), sorts by canonical path and sets Rel.
func collectInputs(images []string, list string) (items []dsItem, dups []string, err error) {
	var all []dsItem
	for _, a := range images {
		got, err := expandImageArg(a)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, got...)
	}
	if list != "" {
		got, err := readList(list)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, got...)
	}
	seen := map[string]int{}
	for _, it := range all {
		c, err := canonical(it.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", it.Origin, it.Path, err)
		}
		if k, ok := seen[c]; ok {
			// A duplicate adds what the first occurrence lacks (a --list class or box).
			if items[k].Class < 0 {
				items[k].Class = it.Class
			}
			if items[k].Box == nil {
				items[k].Box = it.Box
			}
			dups = append(dups, c)
			continue
		}
		seen[c] = len(items)
		it.Path = c
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, dups, errors.New("no input images: the folders and patterns given hold no .png/.jpg/.jpeg/.gif/.webp/.bmp file")
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	root := commonDir(items)
	for i := range items {
		rel, err := filepath.Rel(root, items[i].Path)
		if err != nil {
			return nil, nil, err
		}
		items[i].Rel = filepath.ToSlash(rel)
	}
	return items, dups, nil
}

// commonDir is the deepest folder that contains every item's path.
func commonDir(items []dsItem) string {
	root := filepath.Dir(items[0].Path)
	for _, it := range items[1:] {
		for !within(root, it.Path) {
			parent := filepath.Dir(root)
			if parent == root {
				break
			}
			root = parent
		}
	}
	return root
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// shardSpec is --shard i/n: this run processes the items whose shardOf is i.
type shardSpec struct{ I, N int }

func (s *shardSpec) String() string {
	if s == nil || s.N == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

func (s *shardSpec) Set(v string) error {
	a, b, ok := strings.Cut(strings.TrimSpace(v), "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return fmt.Errorf("want i/n with 0 ≤ i < n (e.g. 0/4, the first of 4 shards), got %q", v)
	}
	s.I, s.N = i, n
	return nil
}

// shardOf is the shard (0 … n−1) of an item: FNV-1a (64 bit) of its Rel
// path (forward slashes, relative to the common folder of the inputs)
// modulo n. It depends on nothing but the relative path, so every machine
// that lists the same inputs, wherever they are mounted, agrees, and an
// image keeps its shard when others are added.
func shardOf(rel string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return int(h.Sum64() % uint64(n))
}
