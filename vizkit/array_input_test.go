package vizkit

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// TestLoadArrayFourChannels: the façade explains the 4-channel model from a
// .npy input ((C,H,W) or (1,C,H,W)): Grad-CAM and saliency give the same
// maps as the engine-level calls on the same array, the picture is drawn
// from the display channels, and bad files are errors naming the file.
func TestLoadArrayFourChannels(t *testing.T) {
	net4, _ := fourNet(t)
	m, err := FromNetwork(net4, Backend("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := t.TempDir()
	x := wavyInput(4, 16, 16)
	chw := filepath.Join(dir, "x4.npy")
	if err := npy.WriteFile(chw, []int{4, 16, 16}, x.Data); err != nil {
		t.Fatal(err)
	}
	nchw := filepath.Join(dir, "x4_batch.npy")
	if err := npy.WriteFile(nchw, x.Shape, x.Data); err != nil {
		t.Fatal(err)
	}
	img, err := LoadArray(m, chw)
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "x4.npy" || img.Array == nil || img.Picture == nil {
		t.Fatalf("image %q, array %v, picture %v", img.Name, img.Array != nil, img.Picture != nil)
	}
	checkShape(t, "LoadArray's array", img.Array, 1, 4, 16, 16)
	vtest.AssertClose(t, "LoadArray's array", img.Array, x, 0)
	want, err := InputImage(x, 0, m.Norm(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(img.Picture.Pix) != string(want.Pix) || img.Picture.Bounds() != want.Bounds() {
		t.Fatal("LoadArray's picture is not InputImage of channels 0, 1, 2")
	}
	in, pic, err := m.Input(img)
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "Input of an array image", in, x, 0)
	if pic != img.Picture {
		t.Fatal("Input of an array image does not return its picture")
	}
	if img2, err := LoadArray(m, nchw); err != nil {
		t.Fatal(err)
	} else {
		vtest.AssertClose(t, "(1,C,H,W) file", img2.Array, x, 0)
	}
	// Display channels 3, 2, 1 draw another picture; a channel outside is an error.
	img321, err := LoadArray(m, chw, DisplayChannels(3, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	want, err = InputImage(x, 0, m.Norm(), []int{3, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(img321.Picture.Pix) != string(want.Pix) {
		t.Fatal("DisplayChannels(3, 2, 1): wrong picture")
	}
	if _, err := LoadArray(m, chw, DisplayChannels(4)); err == nil || !strings.Contains(err.Error(), "display channel 4 is out of range for an input with 4 channel(s)") {
		t.Errorf("DisplayChannels(4): %v", err)
	}
	if _, err := LoadArray(m, chw, AtLayer("conv1")); err == nil || !strings.Contains(err.Error(), "does not take the option AtLayer") {
		t.Errorf("LoadArray with AtLayer: %v", err)
	}

	// The façade's maps are the engine's.
	ctx := context.Background()
	g, err := GradCAM(m, img, AtLayer("relu2"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := cam.Compute(ctx, m.Ex, x, cam.Options{Method: "gradcam", Layers: []string{"relu2"}})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "façade Grad-CAM on a 4-channel array", g.Map, ref.Map, 0)
	if len(g.Images) != 1 || g.Images[0] != img.Picture {
		t.Fatal("Grad-CAM does not overlay on the array's picture")
	}
	if _, err := g.HTML(); err != nil {
		t.Fatal(err)
	}
	s, err := Saliency(m, img, DisplayChannels(3, 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	sref, err := attr.Saliency(ctx, m.Ex, x, attr.SaliencyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "façade saliency on a 4-channel array", s.Grad, sref.Grad, 0)
	if _, err := s.HTML(); err != nil {
		t.Fatal(err)
	}
	if fm, err := FeatureMaps(m, img, "relu1"); err != nil || fm.Image == nil {
		t.Fatalf("FeatureMaps on a 4-channel array: %v", err)
	}

	// Bad inputs: errors name the file (or the array's name) and what is wrong.
	write := func(name string, shape []int, data []float32) string {
		p := filepath.Join(dir, name)
		if err := npy.WriteFile(p, shape, data); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nan := wavyInput(4, 16, 16)
	nan.Data[17] = float32(math.NaN())
	full, err := os.ReadFile(chw)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.npy")
	if err := os.WriteFile(truncated, full[:len(full)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{write("three.npy", []int{3, 16, 16}, make([]float32, 3*16*16)), []string{"three.npy", "shape [1 3 16 16], want (4,H,W) or (1,4,H,W)", "takes 4 channel(s)"}},
		{write("batch2.npy", []int{2, 4, 16, 16}, make([]float32, 2*4*16*16)), []string{"batch2.npy", "shape [2 4 16 16]"}},
		{write("flat.npy", []int{4 * 16 * 16}, make([]float32, 4*16*16)), []string{"flat.npy", "shape [1024]"}},
		{write("nan.npy", []int{4, 16, 16}, nan.Data), []string{"nan.npy", "NaN", "flat index 17"}},
		{write("small.npy", []int{4, 2, 2}, make([]float32, 16)), []string{"small.npy", "H, W ≥ 4, got [1 4 2 2]"}},
		{truncated, []string{"truncated.npy", "needs 4096 data bytes"}},
		{filepath.Join(dir, "missing.npy"), []string{"missing.npy"}},
	} {
		_, err := LoadArray(m, tc.path)
		if err == nil {
			t.Errorf("%s: no error", filepath.Base(tc.path))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", filepath.Base(tc.path), err, w)
			}
		}
	}
	if _, err := ImageFromArray(m, "mine", nil); err == nil || !strings.Contains(err.Error(), "mine: nil array") {
		t.Errorf("nil array: %v", err)
	}
	if _, err := ImageFromArray(m, "mine", &Array{Shape: []int{4, 16, 16}, Data: make([]float32, 10)}); err == nil || !strings.Contains(err.Error(), "mine: shape [1 4 16 16] needs 1024 values, got 10") {
		t.Errorf("short array: %v", err)
	}
	if _, err := LoadArray(nil, chw); err == nil {
		t.Error("nil model: no error")
	}
	// An array image made for the 4-channel model does not fit a 1-channel one.
	net1, _ := tinyNet(t)
	m1, err := FromNetwork(net1, Backend("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	if _, err := Saliency(m1, img); err == nil || !strings.Contains(err.Error(), "x4.npy: shape [1 4 16 16], want (1,H,W)") {
		t.Errorf("4-channel array on a 1-channel model: %v", err)
	}
	// Pictures still refuse 4-channel models, pointing to LoadArray.
	if _, _, err := m.Input(&Image{Name: "p", Picture: img.Picture}); err == nil || !strings.Contains(err.Error(), "vizkit.LoadArray") {
		t.Errorf("picture for a 4-channel model: %v", err)
	}
}
