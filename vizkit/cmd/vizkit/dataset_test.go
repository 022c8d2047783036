package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
)

var dsTinyWeights = filepath.Join(cliGolden, "tinyvgg11.safetensors")

// dsWriteImage writes a w×h picture with a bright square at (x0,y0), side s.
func dsWriteImage(t *testing.T, path string, w, h, x0, y0, s int, seed uint8) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(x*7) + seed, uint8(y*5) ^ seed, seed * 3, 255}
			if x >= x0 && x < x0+s && y >= y0 && y < y0+s {
				c = color.RGBA{250, 240 - seed, 20 + seed, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dsFixture is a folder with nested directories, 5 good images, a broken
// JPEG and a text file named .png.
func dsFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	dsWriteImage(t, filepath.Join(dir, "cat.png"), 64, 48, 5, 5, 20, 1)
	dsWriteImage(t, filepath.Join(dir, "a", "dog.jpg"), 48, 64, 20, 30, 16, 2)
	dsWriteImage(t, filepath.Join(dir, "a", "b", "fox.png"), 40, 40, 10, 10, 12, 3)
	dsWriteImage(t, filepath.Join(dir, "a", "b", "owl.png"), 50, 40, 30, 4, 14, 4)
	dsWriteImage(t, filepath.Join(dir, "z", "emu.png"), 36, 60, 2, 40, 18, 5)
	// A JPEG cut in the middle of its scan data (header intact).
	broken := filepath.Join(dir, "a", "broken.jpg")
	dsWriteImage(t, broken, 64, 64, 3, 3, 30, 6)
	whole, err := os.ReadFile(broken)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(broken, whole[:len(whole)*2/3], 0o644)
	os.WriteFile(filepath.Join(dir, "z", "notes.png"), []byte("this is text, not a PNG\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "z", "README.txt"), []byte("ignored: not an image extension\n"), 0o644)
	return dir
}

func dsExplain(ctx context.Context, t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--weights", dsTinyWeights}, args...)
	err := runExplain(ctx, args, &stdout, &stderr)
	return stderr.String(), err
}

func dsMustRun(t *testing.T, args ...string) string {
	t.Helper()
	log, err := dsExplain(context.Background(), t, args...)
	if err != nil {
		t.Fatalf("explain %v: %v\n%s", args, err, log)
	}
	return log
}

func dsReadSummary(t *testing.T, dir string) *summary {
	t.Helper()
	s, err := readSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dsSameRows compares two summaries' rows and skipped files, ignoring the
// timings and absolute paths; numbers to a relative 1e-5.
func dsSameRows(t *testing.T, what string, got, want *summary) {
	t.Helper()
	if len(got.Rows) != len(want.Rows) {
		t.Fatalf("%s: %d rows, want %d", what, len(got.Rows), len(want.Rows))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b)) }
	nearP := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || near(*a, *b)) }
	for i := range want.Rows {
		g, w := got.Rows[i], want.Rows[i]
		if g.Rel != w.Rel || g.Pred != w.Pred || g.Target != w.Target || g.Width != w.Width || !near(g.PredScore, w.PredScore) ||
			!near(g.TargetScore, w.TargetScore) || len(g.Methods) != len(w.Methods) || len(g.TopK) != len(w.TopK) {
			t.Fatalf("%s: row %d = %+v, want %+v", what, i, g, w)
		}
		for j := range w.Methods {
			gm, wm := g.Methods[j], w.Methods[j]
			if gm.Name != wm.Name || gm.Layer != wm.Layer || !nearP(gm.Deletion, wm.Deletion) || !nearP(gm.Insertion, wm.Insertion) ||
				!nearP(gm.ConfChange, wm.ConfChange) || !nearP(gm.ROAD, wm.ROAD) || !nearP(gm.Pointing, wm.Pointing) || !nearP(gm.Energy, wm.Energy) {
				t.Fatalf("%s: %s method %d = %+v, want %+v", what, w.Rel, j, gm, wm)
			}
		}
	}
	if len(got.Skipped) != len(want.Skipped) {
		t.Fatalf("%s: skipped %+v, want %+v", what, got.Skipped, want.Skipped)
	}
	for i := range want.Skipped {
		if got.Skipped[i].Rel != want.Skipped[i].Rel || got.Skipped[i].Reason != want.Skipped[i].Reason {
			t.Fatalf("%s: skipped %+v, want %+v", what, got.Skipped[i], want.Skipped[i])
		}
	}
}

func TestWantsDataset(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.png")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--image", file, "--out", "o"}, false},
		{[]string{"-image=" + file}, false},
		{[]string{"--image", filepath.Join(dir, "missing.png")}, false}, // single-image error path
		{[]string{"--input-npy", "a.npy"}, false},
		{[]string{"--image", dir}, true},
		{[]string{"--image=" + filepath.Join(dir, "*.png")}, true},
		{[]string{"--image", file, "--image", file}, true},
		{[]string{"--list", "l.csv"}, true},
		{[]string{"--image", file, "--shard", "0/2"}, true},
		{[]string{"--image", file, "--metrics"}, true},
	} {
		if got := wantsDataset(c.args); got != c.want {
			t.Errorf("wantsDataset(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestReadListAndShard(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "l.csv")
	os.WriteFile(list, []byte("path,class,box\n# a comment\n\nx.png\n\"y,1.png\",3\nsub/z.jpg,,1 2 30.5 40\n"), 0o644)
	items, err := readList(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].Path != filepath.Join(dir, "x.png") || items[0].Class != -1 || items[1].Path != filepath.Join(dir, "y,1.png") ||
		items[1].Class != 3 || items[2].Box == nil || *items[2].Box != [4]float64{1, 2, 30.5, 40} || items[2].Missing != "no such file" {
		t.Fatalf("readList = %+v", items)
	}
	for _, bad := range []string{"a.png,x\n", "a.png,1,1 2 3\n", "a.png,1,5 5 2 9\n", "a.png,1,1 2 3 4,extra\n", ",1\n", "a.png,-2\n"} {
		os.WriteFile(list, []byte("ok.png\n"+bad), 0o644)
		if _, err := readList(list); err == nil || !strings.Contains(err.Error(), "l.csv:2") {
			t.Errorf("readList(%q) error %v, want one naming l.csv:2", bad, err)
		}
	}
	var s shardSpec
	for _, bad := range []string{"2/2", "-1/3", "1", "a/b", "0/0"} {
		if s.Set(bad) == nil {
			t.Errorf("--shard %q accepted", bad)
		}
	}
	counts := make([]int, 4)
	for i := 0; i < 400; i++ {
		counts[shardOf("img/"+strconv.Itoa(i)+".png", 4)]++
	}
	for k, c := range counts {
		if c < 60 {
			t.Errorf("shard %d of 4 got %d of 400 paths", k, c)
		}
	}
}

// TestDataset runs the data-set mode on a folder with nested folders, a
// broken JPEG, a text file named .png and a duplicate path, then checks
// resuming after an interruption and sharding + merging against that run.
func TestDataset(t *testing.T) {
	data := dsFixture(t)
	base := []string{"--image", data, "--image", filepath.Join(data, "a", "dog.jpg"), "--methods", "gradcam", "--batch-size", "2"}
	full := filepath.Join(t.TempDir(), "full")
	log := dsMustRun(t, append(base, "--out", full)...)
	want := dsReadSummary(t, full)

	t.Run("folder", func(t *testing.T) {
		var rels []string
		for _, r := range want.Rows {
			rels = append(rels, r.Rel)
		}
		if got := strings.Join(rels, " "); got != "a/b/fox.png a/b/owl.png a/dog.jpg cat.png z/emu.png" {
			t.Fatalf("rows %s", got)
		}
		if len(want.Skipped) != 2 || want.Skipped[0].Rel != "a/broken.jpg" || want.Skipped[1].Rel != "z/notes.png" ||
			!(strings.Contains(want.Skipped[0].Reason, "jpeg") || strings.Contains(want.Skipped[0].Reason, "truncated")) || !strings.Contains(want.Skipped[1].Reason, "unknown image format") {
			t.Fatalf("skipped %+v", want.Skipped)
		}
		if !strings.Contains(log, "] 7/7 images (100%)") || !strings.Contains(log, "img/s") || !strings.Contains(log, "left, 2 skipped") {
			t.Errorf("no progress bar in the log:\n%s", log)
		}
		if !strings.Contains(log, "dog.jpg given more than once") {
			t.Errorf("duplicate not reported:\n%s", log)
		}
		for _, r := range want.Rows {
			d := filepath.Join(full, "images", filepath.FromSlash(r.Rel))
			for _, f := range []string{"index.html", "input.png", "cam_gradcam_features.20.png", "thumb_input.png", "thumb_gradcam.png", "result.json"} {
				if _, err := os.Stat(filepath.Join(d, f)); err != nil {
					t.Errorf("%s: %v", r.Rel, err)
				}
			}
			if len(r.Methods) != 1 || r.Methods[0].Layer != "features.20" || !(r.Methods[0].Ms > 0) || r.TopK[0].Class != r.Pred {
				t.Errorf("row %+v", r)
			}
		}
		partials, _ := filepath.Glob(filepath.Join(full, "images", "*", "*.partial"))
		if len(partials) > 0 {
			t.Errorf("left-over partial folders %v", partials)
		}
		page, err := os.ReadFile(filepath.Join(full, "gallery.html"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"images/a/b/fox.png/index.html", "data:image/png;base64,", "Skipped files (2)", "notes.png", "Aggregates", "gradcam_ms"} {
			if !bytes.Contains(page, []byte(s)) {
				t.Errorf("gallery lacks %q", s)
			}
		}
		if bytes.Contains(page, []byte("src=\"http")) || bytes.Contains(page, []byte("<script")) {
			t.Error("gallery is not self-contained")
		}
		f, _ := os.Open(filepath.Join(full, "summary.csv"))
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(recs) != 6 || recs[0][0] != "path" || recs[3][1] != "a/dog.jpg" {
			t.Fatalf("summary.csv: %v %v", err, recs)
		}
	})

	t.Run("resume", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		ctx, cancel := context.WithCancel(context.Background())
		dsTestHookAfterImage = func(done int) {
			if done >= 1 {
				cancel() // killed after the first image of the first batch
			}
		}
		_, err := dsExplain(ctx, t, append(base, "--out", out)...)
		dsTestHookAfterImage = nil
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: err %v, want context.Canceled", err)
		}
		if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
			t.Fatal("an interrupted run wrote summary.json")
		}
		results, _ := filepath.Glob(filepath.Join(out, "images", "a", "b", "*", "result.json"))
		if len(results) != 1 {
			t.Fatalf("after the interruption %d finished image folders, want 1", len(results))
		}
		// A crash mid-image leaves a .partial folder: it must be redone, never trusted.
		stale := filepath.Join(out, "images", "a", "dog.jpg.partial")
		os.MkdirAll(stale, 0o755)
		os.WriteFile(filepath.Join(stale, "input.png"), []byte("half"), 0o644)
		log := dsMustRun(t, append(base, "--out", out)...)
		if !strings.Contains(log, "resuming: 1 images already done, 6 to go") {
			t.Errorf("restart did not resume:\n%s", log)
		}
		dsSameRows(t, "resumed run", dsReadSummary(t, out), want)
		if _, err := os.Stat(stale); err == nil {
			t.Error("stale .partial folder left behind")
		}
		// A second restart has nothing to do.
		log = dsMustRun(t, append(base, "--out", out)...)
		if !strings.Contains(log, "resuming: 5 images already done, 2 to go") {
			t.Errorf("second restart:\n%s", log)
		}
	})

	t.Run("shards", func(t *testing.T) {
		tmp := t.TempDir()
		var dirs []string
		for i := 0; i < 2; i++ {
			d := filepath.Join(tmp, "shard"+strconv.Itoa(i))
			dsMustRun(t, append(base, "--shard", strconv.Itoa(i)+"/2", "--out", d)...)
			if n := len(dsReadSummary(t, d).Rows); n == 0 || n == 5 {
				t.Fatalf("shard %d has %d of 5 images; the test needs both shards non-empty", i, n)
			}
			dirs = append(dirs, d)
		}
		merged := filepath.Join(tmp, "merged")
		var stdout, stderr bytes.Buffer
		if err := runMerge(append([]string{merged}, dirs...), &stdout, &stderr); err != nil {
			t.Fatalf("merge: %v\n%s", err, stderr.String())
		}
		m := dsReadSummary(t, merged)
		dsSameRows(t, "merged shards", m, want)
		if m.MergedFrom != 2 {
			t.Errorf("merged_from %d", m.MergedFrom)
		}
		for _, r := range m.Rows {
			if _, err := os.Stat(filepath.Join(merged, "images", filepath.FromSlash(r.Rel), "index.html")); err != nil {
				t.Error(err)
			}
		}
		// Shards made with other settings do not merge.
		other := filepath.Join(tmp, "other")
		dsMustRun(t, "--image", filepath.Join(data, "cat.png"), "--image", filepath.Join(data, "z"), "--methods", "gradcampp", "--out", other)
		if err := runMerge([]string{filepath.Join(tmp, "bad"), dirs[0], other}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "other settings") {
			t.Errorf("merging different settings: %v", err)
		}
		if err := runMerge([]string{filepath.Join(tmp, "bad"), filepath.Join(tmp, "nothing")}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "nothing") {
			t.Errorf("merging a missing shard: %v", err)
		}
	})
}

// TestDatasetMetricsMatchAPI checks summary.csv's metrics against the API
// (vizkit/metrics.go) called directly on the same images, class and box.
func TestDatasetMetricsMatchAPI(t *testing.T) {
	dir := t.TempDir()
	// 256×256: Resize(256) keeps it, CenterCrop(224) cuts 16 px on each side,
	// so the box (48,40)-(148,120) is (32,24)-(132,104) in the network input.
	dsWriteImage(t, filepath.Join(dir, "one.png"), 256, 256, 60, 50, 60, 7)
	dsWriteImage(t, filepath.Join(dir, "two.png"), 256, 256, 120, 100, 80, 9)
	list := filepath.Join(dir, "list.csv")
	os.WriteFile(list, []byte("one.png,3,48 40 148 120\ntwo.png\n"), 0o644)
	out := filepath.Join(dir, "out")
	dsMustRun(t, "--list", list, "--metrics", "--metric-steps", "4", "--batch-size", "2", "--out", out)
	f, err := os.Open(filepath.Join(out, "summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 3 {
		t.Fatalf("summary.csv: %v, %d records", err, len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []string{"gradcam_deletion_auc", "gradcam_insertion_auc", "gradcam_conf_change", "gradcam_road_combined", "gradcam_pointing_hit", "gradcam_energy_in_box"} {
		if _, ok := col[c]; !ok {
			t.Fatalf("summary.csv has no column %s: %v", c, recs[0])
		}
	}

	net, _, err := zoo.Open(context.Background(), dsTinyWeights, "", zoo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ex, err := engine.NewExplainer(net, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	ctx := context.Background()
	for k, name := range []string{"one.png", "two.png"} {
		rec := recs[k+1]
		if rec[col["rel"]] != name {
			t.Fatalf("row %d is %s", k, rec[col["rel"]])
		}
		img, err := imageio.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		in, err := imageio.DefaultImageNet().Apply(img)
		if err != nil {
			t.Fatal(err)
		}
		x := &vizkit.Array{Shape: []int{1, 3, in.H, in.W}, Data: in.Data}
		target := engine.Predicted()
		if k == 0 {
			target = engine.Class(3)
		}
		cam, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Target: target})
		if err != nil {
			t.Fatal(err)
		}
		class := cam.Classes[0]
		if got := rec[col["target"]]; got != strconv.Itoa(class) {
			t.Fatalf("%s: target %s, want %d", name, got, class)
		}
		mo := metrics.Options{Classes: []int{class}}
		del, err := metrics.Deletion(ctx, ex, x, cam.Map, metrics.CausalOptions{Options: mo, Steps: 4})
		if err != nil {
			t.Fatal(err)
		}
		ins, err := metrics.Insertion(ctx, ex, x, cam.Map, metrics.CausalOptions{Options: mo, Steps: 4})
		if err != nil {
			t.Fatal(err)
		}
		conf, err := metrics.ConfidenceChange(ctx, ex, x, cam.Map, mo)
		if err != nil {
			t.Fatal(err)
		}
		road, err := metrics.ROAD(ctx, ex, x, cam.Map, metrics.ROADOptions{Options: mo, Seed: roadSeed(name)})
		if err != nil {
			t.Fatal(err)
		}
		check := func(c string, want float64) {
			t.Helper()
			got, err := strconv.ParseFloat(rec[col[c]], 64)
			if err != nil || math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("%s %s = %q, API gives %v", name, c, rec[col[c]], want)
			}
		}
		check("gradcam_deletion_auc", del.AUC[0])
		check("gradcam_insertion_auc", ins.AUC[0])
		check("gradcam_conf_change", float64(conf.Change[0]))
		check("gradcam_road_combined", road.Combined[0])
		if k == 1 {
			if rec[col["gradcam_pointing_hit"]] != "" || rec[col["gradcam_energy_in_box"]] != "" {
				t.Errorf("two.png has no box but box metrics %q %q", rec[col["gradcam_pointing_hit"]], rec[col["gradcam_energy_in_box"]])
			}
			continue
		}
		reg, err := metrics.BoxRegion(224, 224, image.Rect(32, 24, 132, 104))
		if err != nil {
			t.Fatal(err)
		}
		pg, err := metrics.PointingGame(cam.Map.Index(0), reg, 15)
		if err != nil {
			t.Fatal(err)
		}
		hit := 0.0
		if pg.Hit {
			hit = 1
		}
		e, err := metrics.EnergyInRegion(cam.Map.Index(0), reg)
		if err != nil {
			t.Fatal(err)
		}
		check("gradcam_pointing_hit", hit)
		check("gradcam_energy_in_box", e)
		if rec[col["box"]] != "48 40 148 120" {
			t.Errorf("box column %q", rec[col["box"]])
		}
	}
}

// TestDatasetBadInput checks that bad flags fail before --out is created.
func TestDatasetBadInput(t *testing.T) {
	data := dsFixture(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", data, "--batch-size", "0"}, "--batch-size"},
		{[]string{"--image", data, "--methods", "nope"}, "unknown method"},
		{[]string{"--image", filepath.Join(data, "*.gif")}, "matches no file"},
		{[]string{"--image", data, "--shard", "3/2"}, "shard"},
		{[]string{"--image", data, "--input-npy", "x.npy"}, "--input-npy"},
		{[]string{"--list", filepath.Join(data, "missing.csv")}, "--list"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		_, err := dsExplain(context.Background(), t, append(c.args, "--out", out)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one about %s", c.args, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: --out created despite the error", c.args)
		}
	}
}
