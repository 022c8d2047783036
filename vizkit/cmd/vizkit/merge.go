package main

// `vizkit merge OUT SHARD_DIR...`: combines the --out folders of sharded
// data-set runs into one summary and gallery.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runMerge merges shard output folders: every SHARD_DIR must hold a finished
// run's summary.json, all made with the same settings (summary "config").
// Rows and skipped files are combined (an image present in several shards is
// kept once, from the first; a file skipped in one shard but explained in
// another counts as explained), each image's folder is copied to
// OUT/images/<rel>/ (hard links where the file system allows, else copies;
// written under a .partial name and renamed), and OUT gets summary.csv,
// summary.json, skipped.csv and the gallery, as one run over all shards'
// inputs would have written them.
func runMerge(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pageSize := fs.Int("page-size", dsDefaultPage, "images per gallery page")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vizkit merge [--page-size N] OUT SHARD_DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("merge: want OUT and at least one SHARD_DIR (the --out folders of the shard runs)")
	}
	if *pageSize < 1 || *pageSize > 10000 {
		return fmt.Errorf("--page-size must be between 1 and 10000, got %d", *pageSize)
	}
	out, shards := fs.Arg(0), fs.Args()[1:]
	var sums []*summary
	for _, d := range shards {
		s, err := readSummary(filepath.Join(d, "summary.json"))
		if err != nil {
			return fmt.Errorf("merge: shard %s: %w (is it the --out folder of a finished run?)", d, err)
		}
		if len(sums) > 0 && (s.Config != sums[0].Config || s.Model != sums[0].Model) {
			return fmt.Errorf("merge: shard %s was made with other settings than %s (model %q vs %q, config %s vs %s); merge only runs of the same command", d, shards[0], s.Model, sums[0].Model, s.Config, sums[0].Config)
		}
		sums = append(sums, s)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, dsImagesDir), 0o755); err != nil {
		return err
	}
	m := &summary{Version: summaryVersion, Model: sums[0].Model, Backend: sums[0].Backend, Config: sums[0].Config,
		Methods: sums[0].Methods, Metrics: sums[0].Metrics, MergedFrom: len(sums)}
	seen := map[string]bool{}
	for k, s := range sums {
		m.Random = m.Random || s.Random
		absShard, err := filepath.Abs(shards[k])
		if err != nil {
			return err
		}
		for _, row := range s.Rows {
			if seen[row.Rel] {
				fmt.Fprintf(stderr, "vizkit: merge: %s is in several shards; kept the first\n", row.Rel)
				continue
			}
			seen[row.Rel] = true
			if absShard != absOut {
				if err := copyImageDir(filepath.Join(shards[k], dsImagesDir, filepath.FromSlash(row.Rel)),
					filepath.Join(out, dsImagesDir, filepath.FromSlash(row.Rel))); err != nil {
					return fmt.Errorf("merge: shard %s: %w", shards[k], err)
				}
			}
			m.Rows = append(m.Rows, row)
		}
	}
	skipSeen := map[string]bool{}
	for _, s := range sums {
		for _, sk := range s.Skipped {
			if seen[sk.Rel] || skipSeen[sk.Rel] {
				continue
			}
			skipSeen[sk.Rel] = true
			m.Skipped = append(m.Skipped, sk)
		}
	}
	if err := writeSummary(out, m); err != nil {
		return err
	}
	pages, err := writeGallery(out, m, *pageSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "vizkit: merged %d shards: %d images, %d skipped\n", len(sums), len(m.Rows), len(m.Skipped))
	fmt.Fprintln(stdout, pages[0])
	return nil
}

// copyImageDir copies a finished image folder src (it must hold result.json)
// to dst via dst.partial and a rename; files are hard-linked when possible.
func copyImageDir(src, dst string) error {
	if _, err := os.Stat(filepath.Join(src, dsResultFile)); err != nil {
		return fmt.Errorf("image folder %s is incomplete (no %s)", src, dsResultFile)
	}
	tmp := dst + dsPartial
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(tmp, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if os.Link(p, target) == nil {
			return nil
		}
		return copyFile(p, target)
	})
	if err == nil {
		err = os.RemoveAll(dst)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
