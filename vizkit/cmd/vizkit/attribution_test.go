package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// testGenericDetail is the Detail of a method the CLI has no writer for.
type testGenericDetail struct{ note string }

// testGenericMethod is registered from this test file: its map is
// Σ_c x[n,c] (signed), Detail a type of its own.
type testGenericMethod struct{}

func (testGenericMethod) Attribute(ctx context.Context, ex *engine.Explainer, x *engine.Array, t engine.Target) (*engine.Attribution, error) {
	res, err := ex.Run(x, engine.Request{Target: t})
	if err != nil {
		return nil, err
	}
	maps, err := engine.ChannelSum(x)
	if err != nil {
		return nil, err
	}
	return &engine.Attribution{Maps: maps, Signed: true, Target: t, Classes: res.Classes, Scores: res.Scores,
		Detail: &testGenericDetail{"made in a test"}}, nil
}

func init() {
	engine.MustRegister(engine.MethodInfo{Name: "clitestgeneric", Title: "Channel sum (test)", Family: "gradient",
		Help: "sum of the input channels (registered by the CLI tests)",
		New:  func(engine.Settings) (engine.Method, error) { return testGenericMethod{}, nil }})
}

// outputFiles lists dir's files with suffix ext, without those every run
// writes (input.png, logits.npy).
func outputFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ext) && n != "input.png" && n != "logits.npy" {
			out = append(out, n)
		}
	}
	return out
}

// TestCLIEveryEngineMethod: every registered engine method (and every CLI
// alias of one) is a CLI method listed by `vizkit methods`, runs from
// explain on a narrowed ResNet-18 (global average pooling + one linear
// layer, so that CAM applies too) and writes at least one PNG and, with
// --npy, at least one .npy file of finite values.
func TestCLIEveryEngineMethod(t *testing.T) {
	weights := filepath.Join("..", "..", "..", "testdata", "golden_resnet", "resnet_basic.safetensors")
	in := filepath.Join(cliGolden, "inputs", "input_a.npy")
	var list bytes.Buffer
	listMethods(&list)
	all := cliMethods()
	var names []string
	for _, name := range engine.MethodNames() {
		m, ok := all[name]
		if !ok || m.Engine != name {
			t.Errorf("engine method %q is not a CLI method", name)
		}
		names = append(names, name)
	}
	for alias, name := range attributionAliases {
		if m, ok := all[alias]; !ok || m.Engine != name {
			t.Errorf("alias %s is not a CLI method for %s", alias, name)
		}
		names = append(names, alias)
	}
	for _, name := range names {
		if !strings.Contains(list.String(), "\n"+name+" ") && !strings.HasPrefix(list.String(), name+" ") {
			t.Errorf("`vizkit methods` does not list %s:\n%s", name, list.String())
		}
	}
	if !slices.Contains(names, "deconv") || !slices.Contains(names, "gradxinput") || !slices.Contains(names, "clitestgeneric") {
		t.Fatalf("methods %v", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			args := []string{"--weights", weights, "--input-npy", in, "--npy", "--out", out, "--methods", name}
			if err := runExplain(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("explain --methods %s: %v\n%s", name, err, stderr.String())
			}
			pngs, npys := outputFiles(t, out, ".png"), outputFiles(t, out, ".npy")
			if len(pngs) == 0 || len(npys) == 0 {
				t.Fatalf("--methods %s wrote PNGs %v and .npy files %v", name, pngs, npys)
			}
			for _, f := range pngs {
				cliCheckPNG(t, filepath.Join(out, f))
			}
			for _, f := range npys {
				a := gradReadNPY(t, filepath.Join(out, f))
				if err := a.CheckFinite(f); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(stderr.String(), "vizkit: "+name+" done in") {
				t.Errorf("log lacks the done line:\n%s", stderr.String())
			}
		})
	}
	// An alias and its engine name are one method.
	err := runExplain(context.Background(), []string{"--weights", weights, "--input-npy", in, "--out", t.TempDir(), "--methods", "ig,integratedgradients"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"ig" and "integratedgradients" are the same method`) {
		t.Errorf("ig,integratedgradients: %v", err)
	}
}

// TestCLIGenericWriter: a method registered with engine.Register whose
// Detail the CLI does not know is written by the generic writer:
// attr_<name>.png, its map over the input, attr_<name>.npy, the map (H,W)
// exactly as computed, and a report section titled with its Title. In a data
// set it is batched and gets metrics like any attribution.
func TestCLIGenericWriter(t *testing.T) {
	out, _ := runTinyExplain(t, "--methods", "clitestgeneric,gradxinput")
	shape, got := cliReadNPY(t, filepath.Join(out, "attr_clitestgeneric.npy"))
	xs, x := cliReadNPY(t, filepath.Join(cliGolden, "inputs", "input_a.npy"))
	h, w := xs[len(xs)-2], xs[len(xs)-1]
	if fmt.Sprint(shape) != fmt.Sprint([]int{h, w}) {
		t.Fatalf("attr_clitestgeneric.npy shape %v, want (H,W) = (%d,%d)", shape, h, w)
	}
	for p := range got {
		want := x[p] + x[h*w+p] + x[2*h*w+p]
		if d := got[p] - want; d > 1e-5 || d < -1e-5 {
			t.Fatalf("attr_clitestgeneric.npy[%d] = %v, want Σ_c x = %v", p, got[p], want)
		}
	}
	f, err := os.Open(filepath.Join(out, "attr_clitestgeneric.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("attr_clitestgeneric.png is %v, want the input's %d×%d", b, w, h)
	}
	if shape, _ := cliReadNPY(t, filepath.Join(out, "attr_gradxinput.npy")); fmt.Sprint(shape) != fmt.Sprint([]int{h, w}) {
		t.Errorf("attr_gradxinput.npy shape %v", shape)
	}
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	for _, s := range []string{"Channel sum (test)", "sum of the input channels (registered by the CLI tests)", "Gradient × input"} {
		if !strings.Contains(string(page), s) {
			t.Errorf("report lacks %q", s)
		}
	}

	data := dsFixture(t)
	ds := filepath.Join(t.TempDir(), "ds")
	if log, err := explainArgs(t, "--weights", tinyONNX(t), "--image", filepath.Join(data, "cat.png"), "--image", filepath.Join(data, "a", "dog.jpg"),
		"--methods", "clitestgeneric", "--npy", "--metrics", "--metric-steps", "2", "--out", ds); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	s := dsReadSummary(t, ds)
	for _, r := range s.Rows {
		if len(r.Methods) != 1 || r.Methods[0].Deletion == nil || r.Methods[0].ConfChange == nil || r.Methods[0].ROAD == nil {
			t.Errorf("%s: methods %+v, want clitestgeneric with metrics", r.Rel, r.Methods)
		}
		for _, f := range []string{"attr_clitestgeneric.png", "attr_clitestgeneric.npy", "thumb_clitestgeneric.png"} {
			if _, err := os.Stat(filepath.Join(ds, "images", filepath.FromSlash(r.Rel), f)); err != nil {
				t.Errorf("%s: %v", r.Rel, err)
			}
		}
	}
}

// TestDatasetBatchesAttributions: in a data set the gradient and
// perturbation methods run batched (two images per Attribute call) and
// write what explaining each image alone writes (.npy files equal within
// 1e-5 of their scale); --metrics fills their metric columns. The 28×28
// ONNX fixture keeps it fast.
func TestDatasetBatchesAttributions(t *testing.T) {
	model := tinyONNX(t)
	data := dsFixture(t)
	images := []string{"cat.png", filepath.Join("a", "dog.jpg")}
	methods := "saliency,smoothgrad,occlusion"
	ds := filepath.Join(t.TempDir(), "ds")
	if log, err := explainArgs(t, "--weights", model, "--image", filepath.Join(data, images[0]), "--image", filepath.Join(data, images[1]),
		"--methods", methods, "--npy", "--batch-size", "2", "--metrics", "--metric-steps", "2", "--out", ds); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	s := dsReadSummary(t, ds)
	if len(s.Rows) != 2 {
		t.Fatalf("%d rows", len(s.Rows))
	}
	for _, r := range s.Rows {
		if len(r.Methods) != 3 {
			t.Fatalf("%s: methods %+v", r.Rel, r.Methods)
		}
		for _, m := range r.Methods {
			if m.Deletion == nil || m.Insertion == nil || m.ConfChange == nil || m.ROAD == nil {
				t.Errorf("%s %s: no metrics %+v", r.Rel, m.Name, m)
			}
		}
	}
	csv, err := os.ReadFile(filepath.Join(ds, "summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"saliency_deletion_auc", "smoothgrad_insertion_auc", "occlusion_conf_change", "occlusion_road_combined"} {
		if !strings.Contains(string(csv), c) {
			t.Errorf("summary.csv lacks column %s", c)
		}
	}
	files := []string{"saliency_grad.npy", "saliency_absmax.npy", "saliency_max.npy", "saliency_gradxinput.npy",
		"smoothgrad.npy", "smoothgrad_sq.npy", "vargrad.npy", "occlusion.npy"}
	for _, img := range images {
		one := t.TempDir()
		var stdout, stderr bytes.Buffer
		if err := runExplain(context.Background(), []string{"--weights", model, "--image", filepath.Join(data, img),
			"--methods", methods, "--npy", "--out", one}, &stdout, &stderr); err != nil {
			t.Fatalf("%s alone: %v\n%s", img, err, stderr.String())
		}
		for _, f := range files {
			wshape, want := cliReadNPY(t, filepath.Join(one, f))
			gshape, got := cliReadNPY(t, filepath.Join(ds, "images", img, f))
			if fmt.Sprint(gshape) != fmt.Sprint(wshape) {
				t.Fatalf("%s %s: shape %v in the data set, %v alone", img, f, gshape, wshape)
			}
			cliCloseTo(t, img+" "+f, got, want, 1e-5)
			if !slices.ContainsFunc(want, func(v float32) bool { return v != 0 }) {
				t.Fatalf("%s %s is all zero: the comparison proves nothing", img, f)
			}
		}
		for _, f := range []string{"saliency.png", "smoothgrad.png", "occlusion.png"} {
			cliCheckPNG(t, filepath.Join(ds, "images", img, f))
		}
	}
}
