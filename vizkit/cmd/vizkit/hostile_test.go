package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// TestMain lets the test binary act as the vizkit command (VIZKIT_AS_CLI=1),
// so that the hostile-input table runs the real main in a child process:
// exit code, stderr and peak memory are those a user would see.
func TestMain(m *testing.M) {
	if os.Getenv("VIZKIT_AS_CLI") == "1" {
		os.Args = append([]string{"vizkit"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hostileMemCapKB is the peak resident memory a rejected input may cost
// (the process, the tiny model and the Go backend included).
const hostileMemCapKB = 1 << 20 // 1 GiB

// hostileFiles writes the bad inputs of the table into dir.
func hostileFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	pngOf := func(w, h int) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	npyOf := func(dict string, data []byte) []byte {
		h := dict + strings.Repeat(" ", (64-(10+len(dict)+1)%64)%64) + "\n"
		var b bytes.Buffer
		b.WriteString("\x93NUMPY\x01\x00")
		binary.Write(&b, binary.LittleEndian, uint16(len(h)))
		b.WriteString(h)
		b.Write(data)
		return b.Bytes()
	}
	write("strip_1x20000.png", pngOf(1, 20000))
	write("strip_3000x1.png", pngOf(3000, 1))
	write("empty.png", nil)
	good, _ := os.ReadFile(filepath.Join(cliGolden, "inputs", "input_a.npy"))
	write("truncated_header.npy", good[:40])
	write("empty.npy", nil)
	write("huge_shape.npy", npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 100000, 100000), }", make([]byte, 4096)))
	write("overflow_shape.npy", npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296, 3), }", make([]byte, 64)))
	write("expr_shape.npy", npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 8*8, 64), }", make([]byte, 64)))
	write("lying_size.npy", npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1000, 1000), }", make([]byte, 4096)))
	nan := make([]byte, 4*3*64*64)
	binary.LittleEndian.PutUint32(nan[40:], math.Float32bits(float32(math.NaN())))
	write("nan.npy", npyOf("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }", nan))
	var small bytes.Buffer
	if err := npy.Write(&small, []int{1, 3, 16, 16}, make([]float32, 3*16*16)); err != nil {
		t.Fatal(err)
	}
	write("too_small.npy", small.Bytes())

	weightsVariant := func(name string, edit func(*weights.Set)) {
		w, err := weights.LoadSafetensors(filepath.Join(cliGolden, "tinyvgg11.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		edit(w)
		p := filepath.Join(dir, name)
		if err := weights.SaveSafetensors(p, w); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	weightsVariant("zero_classes.safetensors", func(w *weights.Set) {
		c := w.Tensors["classifier.6.weight"].Shape[1]
		w.Tensors["classifier.6.weight"] = &weights.Tensor{Shape: []int{0, c}}
		w.Tensors["classifier.6.bias"] = &weights.Tensor{Shape: []int{0}}
	})
	weightsVariant("missing_features3.safetensors", func(w *weights.Set) { delete(w.Tensors, "features.3.weight") })
	weightsVariant("stray_running_mean.safetensors", func(w *weights.Set) {
		w.Tensors["features.1.running_mean"] = &weights.Tensor{Shape: []int{8}, Data: make([]float32, 8)}
	})
	// A VGG11 with a conv block dropped and renumbered: a valid vgg-custom.
	cfg, err := vgg.StandardConfig("vgg11", 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Blocks = append([]int{8, 0}, cfg.Blocks[4:]...)
	cw, err := vgg.RandomWeights(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	files["custom.safetensors"] = filepath.Join(dir, "custom.safetensors")
	if err := weights.SaveSafetensors(files["custom.safetensors"], cw); err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCLIHostileInputs runs vizkit explain on hostile inputs (generated here),
// one class of issue 16 per group. Each must exit with status 1 and a message
// naming the problem, stay under hostileMemCapKB of peak memory, and leave the
// output folder as it was: a previous result stays untouched and a new --out
// is not created.
func TestCLIHostileInputs(t *testing.T) {
	dir := t.TempDir()
	f := hostileFiles(t, dir)
	tiny := filepath.Join(cliGolden, "tinyvgg11.safetensors")
	in := filepath.Join(cliGolden, "inputs", "input_a.npy")
	cases := []struct {
		class, name string
		args        []string
		want        []string
	}{
		{"1 tiny image, huge resize", "1x20000 PNG", []string{"--weights", tiny, "--image", f["strip_1x20000.png"]},
			[]string{"strip_1x20000.png", "aspect ratio of 1:2e+04", "MaxWorkPixels", "Crop the image"}},
		{"1 tiny image, huge resize", "3000x1 PNG", []string{"--weights", tiny, "--image", f["strip_3000x1.png"]},
			[]string{"strip_3000x1.png", "aspect ratio of 1:3000", "allows aspect ratios up to 1:512"}},
		{"1 tiny image, huge resize", "empty PNG", []string{"--weights", tiny, "--image", f["empty.png"]},
			[]string{"empty.png", "empty input (0 bytes)"}},
		{"2 .npy reader", "truncated header", []string{"--weights", tiny, "--input-npy", f["truncated_header.npy"]},
			[]string{"truncated_header.npy", "truncated .npy file: the header declares 118 bytes but only 30 follow"}},
		{"2 .npy reader", "empty file", []string{"--weights", tiny, "--input-npy", f["empty.npy"]},
			[]string{"empty.npy", "empty input (0 bytes), not a .npy file"}},
		{"2 .npy reader", "120 GB declared over 4 KB", []string{"--weights", tiny, "--input-npy", f["huge_shape.npy"]},
			[]string{"huge_shape.npy", "shape [3 100000 100000] declares more than npy.MaxElements"}},
		{"2 .npy reader", "overflowing element count", []string{"--weights", tiny, "--input-npy", f["overflow_shape.npy"]},
			[]string{"overflow_shape.npy", "more than npy.MaxElements"}},
		{"2 .npy reader", "Python expression in shape", []string{"--weights", tiny, "--input-npy", f["expr_shape.npy"]},
			[]string{"expr_shape.npy", "'shape' must be a tuple of non-negative integers"}},
		{"2 .npy reader", "size larger than the file", []string{"--weights", tiny, "--input-npy", f["lying_size.npy"]},
			[]string{"lying_size.npy", "needs 12000000 data bytes but the file holds 4096"}},
		{"2 .npy reader", "NaN in the input", []string{"--weights", tiny, "--input-npy", f["nan.npy"]},
			[]string{"nan.npy", "NaN"}},
		{"3 degenerate model", "0 classes", []string{"--weights", f["zero_classes.safetensors"], "--input-npy", in},
			[]string{"classifier.6.weight", "0 classes; it needs at least 1"}},
		{"weak errors", "features.3.weight missing", []string{"--weights", f["missing_features3.safetensors"], "--input-npy", in},
			[]string{`tensor "features.3.weight" is missing`, "after the max-pool features.2"}},
		{"weak errors", "stray running_mean", []string{"--weights", f["stray_running_mean.safetensors"], "--input-npy", in},
			[]string{"features.1.running_mean", "expected a batch norm parameter of shape [8]"}},
		{"weak errors", "input below the minimum size", []string{"--weights", tiny, "--input-npy", f["too_small.npy"]},
			[]string{"at least 32×32 pixels (it has 5 max-pools), got 16×16"}},
		{"loose checks", "--model vgg11_bn, weights without BN", []string{"--model", "vgg11_bn", "--weights", tiny, "--input-npy", in},
			[]string{"--model vgg11_bn but the weights in", "tinyvgg11.safetensors"}},
		{"loose checks", "--model vgg11, a block dropped", []string{"--model", "vgg11", "--weights", f["custom.safetensors"], "--input-npy", in},
			[]string{"--model vgg11 but the weights in", "vgg-custom"}},
		{"CLI flags", `--methods ""`, []string{"--weights", tiny, "--input-npy", in, "--methods", ""},
			[]string{`--methods "" names no method`}},
		{"CLI flags", "--methods ,", []string{"--weights", tiny, "--input-npy", in, "--methods", ","},
			[]string{`--methods "," names no method`}},
		{"CLI flags", "duplicated method", []string{"--weights", tiny, "--input-npy", in, "--methods", "kernels,gradcam,Kernels"},
			[]string{`--methods: "kernels" is given twice`}},
		{"CLI flags", "--random-init -5", []string{"--random-init", "-5", "--input-npy", in},
			[]string{"random-init", "want a seed ≥ 0, got \"-5\""}},
		{"outputs", "--out is a file", []string{"--weights", tiny, "--input-npy", in, "--out", in},
			[]string{"exists and is not a folder"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			prev := filepath.Join(parent, "prev")
			fakePrevious(t, prev)
			before := snapshot(t, prev)
			for _, out := range []string{prev, filepath.Join(parent, "new")} {
				args := append([]string{"explain"}, c.args...)
				if !contains(c.args, "--out") {
					args = append(args, "--out", out)
				}
				stderr, code, rssKB := runCLI(t, args...)
				if code != 1 {
					t.Fatalf("exit status %d, want 1; stderr:\n%s", code, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(stderr, w) {
						t.Fatalf("stderr lacks %q:\n%s", w, stderr)
					}
				}
				if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
					t.Fatalf("crash:\n%s", stderr)
				}
				if rssKB > hostileMemCapKB {
					t.Fatalf("peak memory %d MB, cap %d MB", rssKB>>10, hostileMemCapKB>>10)
				}
				t.Logf("[%s] exit 1, %d MB peak: %s", c.class, rssKB>>10, lastLine(stderr))
			}
			if after := snapshot(t, prev); after != before {
				t.Fatalf("the previous result changed:\nbefore %s\nafter  %s", before, after)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("the run left %v next to the previous result (want only prev)", names)
			}
		})
	}
}

// A folder that is neither empty nor a vizkit result is refused untouched.
func TestCLIRefusesForeignOutFolder(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runExplain(context.Background(), []string{"--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"),
		"--input-npy", filepath.Join(cliGolden, "inputs", "input_a.npy"), "--methods", "kernels", "--out", out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "non-empty folder that holds no vizkit manifest.json") {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "notes.txt")); string(b) != "mine" {
		t.Fatal("notes.txt changed")
	}
}

// A run into a previous result replaces it whole: no stale file survives, and
// the manifest (written last) lists exactly the files present.
func TestCLIReplacesPreviousResult(t *testing.T) {
	out := filepath.Join(t.TempDir(), "res")
	fakePrevious(t, out)
	var stdout, stderr bytes.Buffer
	if err := runExplain(context.Background(), []string{"--weights", filepath.Join(cliGolden, "tinyvgg11.safetensors"),
		"--input-npy", filepath.Join(cliGolden, "inputs", "input_a.npy"), "--methods", "kernels", "--npy", "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "stale_from_old_run.npy")); err == nil {
		t.Fatal("a file of the previous run survived")
	}
	b, err := os.ReadFile(filepath.Join(out, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var present []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != manifestName {
			rel, _ := filepath.Rel(out, p)
			present = append(present, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(present)
	if strings.Join(present, ",") != strings.Join(m.Files, ",") || !contains(m.Files, "index.html") || !contains(m.Files, "logits.npy") ||
		m.Model == "" || m.Completed == "" || len(m.Methods) != 1 {
		t.Fatalf("manifest %+v, files present %v", m, present)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("staging left behind: %d entries next to the result", len(entries))
	}
}

// fakePrevious writes a previous vizkit result into dir.
func fakePrevious(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(manifest{Format: manifestFormat, Files: []string{"index.html", "stale_from_old_run.npy"}})
	for name, body := range map[string]string{"index.html": "OLD REPORT", "stale_from_old_run.npy": "x", manifestName: string(m)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot lists dir's files with their contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "missing: " + err.Error()
	}
	var parts []string
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		parts = append(parts, e.Name()+"="+string(b))
	}
	return strings.Join(parts, "; ")
}

// runCLI runs the test binary as vizkit and returns stderr, the exit status
// and the child's peak resident memory in KiB.
func runCLI(t *testing.T, args ...string) (string, int, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VIZKIT_AS_CLI=1", "HF_HUB_OFFLINE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return stderr.String(), code, rss
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// `vizkit layers` refuses the degenerate and mislabelled models too (it used
// to print a 0-class classifier).
func TestCLILayersHostileWeights(t *testing.T) {
	f := hostileFiles(t, t.TempDir())
	for name, want := range map[string]string{
		"zero_classes.safetensors":       "0 classes; it needs at least 1",
		"missing_features3.safetensors":  `tensor "features.3.weight" is missing`,
		"stray_running_mean.safetensors": "features.1.running_mean",
	} {
		stderr, code, rss := runCLI(t, "layers", "--weights", f[name])
		if code != 1 || !strings.Contains(stderr, want) || rss > hostileMemCapKB {
			t.Fatalf("layers --weights %s: exit %d, %d MB, stderr:\n%s", name, code, rss>>10, stderr)
		}
	}
}
