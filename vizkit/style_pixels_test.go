package vizkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// pixHash identifies a picture by its size and pixels.
func pixHash(img *image.RGBA) string {
	h := sha256.New()
	fmt.Fprintf(h, "%v;", img.Bounds())
	h.Write(img.Pix)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// TestStylePixelsUnchanged pins the pictures of kernels and feature maps of
// tinyvgg11 on input_a, drawn with the default style and with a style that
// sets every field, to the hashes recorded before selection options and
// drawing styles were split (KernelOptions/KernelStyle,
// FeatureOptions/FeatureStyle): the split must not move a pixel.
func TestStylePixelsUnchanged(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", "input_a.npy"))
	base, err := InputImage(x, 0, engine.Normalization{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	put := func(name string, img *image.RGBA, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got[name] = pixHash(img)
	}
	// The HTML (text and embedded PNGs) is pinned too: the split must not
	// change what nb.Show displays.
	putHTML := func(name, html string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h := sha256.Sum256([]byte(html))
		got[name] = hex.EncodeToString(h[:])[:16]
	}
	for _, c := range styleKernelCases() {
		k, err := c.make(m)
		if err != nil {
			t.Fatalf("kernels %s: %v", c.name, err)
		}
		img, err := k.Image()
		put("kernels "+c.name, img, err)
		html, err := k.HTML()
		putHTML("kernels "+c.name+" HTML", html, err)
	}
	for _, c := range styleFeatureCases(base) {
		r, err := c.make(ex, x)
		if err != nil {
			t.Fatalf("features %s: %v", c.name, err)
		}
		for _, l := range []string{"features.1", "features.9"} {
			img, err := r.Grid(l)
			put(fmt.Sprintf("features %s grid %s", c.name, l), img, err)
			sum, err := r.SummaryImage(l)
			put(fmt.Sprintf("features %s summary %s", c.name, l), sum.Image, err)
			img, err = r.Overlay(l, -1, nil)
			put(fmt.Sprintf("features %s overlay %s", c.name, l), img, err)
		}
		html, err := r.HTML()
		putHTML("features "+c.name+" HTML", html, err)
	}
	want := map[string]string{
		"features default HTML":               "3c04d2e1d8644571",
		"features default grid features.1":    "13aa35a05db65505",
		"features default grid features.9":    "b91a04b9324330ff",
		"features default overlay features.1": "b34e9e096b032238",
		"features default overlay features.9": "38d7c883e5df6b8a",
		"features default summary features.1": "f863779f109bc56d",
		"features default summary features.9": "a57a011049a8915f",
		"features styled HTML":                "ae7767830f3eb432",
		"features styled grid features.1":     "99f231244afd2f52",
		"features styled grid features.9":     "35db1ae2ea62a845",
		"features styled overlay features.1":  "6c6ee3c5bf7f380d",
		"features styled overlay features.9":  "5223daaf3f0fc799",
		"features styled summary features.1":  "981bc6306bb4df25",
		"features styled summary features.9":  "475a87a432f9ae9f",
		"kernels default features.0 HTML":     "f146d9ed1ce5074a",
		"kernels default features.0":          "2325ab0c991e4e9f",
		"kernels default features.3 HTML":     "f8797fff5c89c100",
		"kernels default features.3":          "2ce9e6653ec6b0c2",
		"kernels styled features.0 HTML":      "07980e673f52c714",
		"kernels styled features.0":           "0eddbf7efbdc2592",
		"kernels styled features.3 HTML":      "b55f1037838b0d81",
		"kernels styled features.3":           "84e88d80c08a41aa",
	}
	if len(got) != len(want) {
		t.Errorf("%d pictures, want %d", len(got), len(want))
	}
	for name, h := range got {
		if want[name] != h {
			t.Errorf("%s: hash %s, want %s (the picture changed)", name, h, want[name])
		}
	}
}
