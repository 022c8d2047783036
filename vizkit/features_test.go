package vizkit

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// TestFeatureMapsGolden taps every spatial layer of tinyvgg11 on input_a in
// one engine execution and compares each with PyTorch's act_<layer>.npy.
func TestFeatureMapsGolden(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	dir := filepath.Join(goldenDir, "tinyvgg11", "input_a")
	x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", "input_a.npy"))
	var layers []string
	for _, l := range m.Layers() {
		if l.Spatial {
			layers = append(layers, l.Name)
		}
	}
	if len(layers) != 22 {
		t.Fatalf("%d spatial layers, want 22 (features.0..20, avgpool)", len(layers))
	}
	res, err := FeatureMapsOf(ex, x, layers, FeatureOptions{Select: SelectTopEnergy, N: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n := ex.NumExecutables(); n != 1 {
		t.Fatalf("%d executables after one FeatureMaps call, want 1", n)
	}
	if len(res.Layers) != len(layers) {
		t.Fatalf("%d layers in the result, want %d", len(res.Layers), len(layers))
	}
	for i, lf := range res.Layers {
		if lf.Layer.Name != layers[i] {
			t.Fatalf("layer %d is %s, want %s", i, lf.Layer.Name, layers[i])
		}
		want := vtest.LoadNPY(t, filepath.Join(dir, "act_"+layers[i]+".npy"))
		vtest.AssertClose(t, "feature maps of "+layers[i], lf.Acts, want, 1e-4)
		// Selection and statistics agree with the golden values (float64 here).
		c, hw := want.Shape[1], want.Shape[2]*want.Shape[3]
		energy := make([]float64, c)
		for ci := 0; ci < c; ci++ {
			for _, v := range want.Data[ci*hw : (ci+1)*hw] {
				energy[ci] += float64(v) * float64(v)
			}
			energy[ci] = math.Sqrt(energy[ci])
			if d := math.Abs(float64(lf.Energies[ci]) - energy[ci]); d > 1e-4*(1+energy[ci]) {
				t.Fatalf("%s energy %d = %v, want %v", layers[i], ci, lf.Energies[ci], energy[ci])
			}
		}
		order := make([]int, c)
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(a, b int) bool { return energy[order[a]] > energy[order[b]] })
		for j, ch := range lf.Channels {
			if math.Abs(energy[ch]-energy[order[j]]) > 1e-4*(1+energy[ch]) {
				t.Fatalf("%s: selected channel %d (energy %v) at rank %d, golden rank holds %d (energy %v)",
					layers[i], ch, energy[ch], j, order[j], energy[order[j]])
			}
		}
	}
	// The summary map is the channel mean of the golden activations.
	lf, err := res.Layer("features.4")
	if err != nil {
		t.Fatal(err)
	}
	want := vtest.LoadNPY(t, filepath.Join(dir, "act_features.4.npy"))
	c, hw := want.Shape[1], want.Shape[2]*want.Shape[3]
	for p := 0; p < hw; p++ {
		s := 0.0
		for ci := 0; ci < c; ci++ {
			s += float64(want.Data[ci*hw+p])
		}
		if d := math.Abs(float64(lf.Summary.Data[p]) - s/float64(c)); d > 1e-4 {
			t.Fatalf("summary pixel %d = %v, want %v", p, lf.Summary.Data[p], s/float64(c))
		}
	}
	// A second call with other layers and options reuses nothing it should
	// not: one more executable for the other tap set, none for the same one.
	if _, err := FeatureMapsOf(ex, x, layers, FeatureOptions{Channels: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if n := ex.NumExecutables(); n != 1 {
		t.Fatalf("%d executables after a repeated tap set, want 1", n)
	}
}

// TestFeatureMapsBatch checks example selection on the batch-of-2 fixture.
func TestFeatureMapsBatch(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", "input_c.npy"))
	want := vtest.LoadNPY(t, filepath.Join(goldenDir, "tinyvgg11", "input_c", "act_features.19.npy"))
	res, err := FeatureMapsOf(ex, x, []string{"features.19"}, FeatureOptions{Select: SelectTopMean, N: 5, Example: 1})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "features.19 batch", res.Layers[0].Acts, want, 1e-4)
	ex1 := want.Index(1)
	c, hw := ex1.Shape[0], ex1.Shape[1]*ex1.Shape[2]
	for ci := 0; ci < c; ci++ {
		s := 0.0
		for _, v := range ex1.Data[ci*hw : (ci+1)*hw] {
			s += float64(v)
		}
		if d := math.Abs(float64(res.Layers[0].Means[ci]) - s/float64(hw)); d > 1e-4 {
			t.Fatalf("example 1 mean of channel %d = %v, want %v", ci, res.Layers[0].Means[ci], s/float64(hw))
		}
	}
	r0, err := res.ForExample(0)
	if err != nil {
		t.Fatal(err)
	}
	if r0.Options.Example != 0 || res.Options.Example != 1 {
		t.Fatal("ForExample changed the original")
	}
	if fmt.Sprint(r0.Layers[0].Means) == fmt.Sprint(res.Layers[0].Means) {
		t.Fatal("examples 0 and 1 have identical channel means: ForExample did not switch")
	}
	if _, err := res.ForExample(2); err == nil || !strings.Contains(err.Error(), "example 2 is out of range for a batch of 2") {
		t.Fatalf("ForExample(2): %v", err)
	}
	if _, err := FeatureMapsOf(ex, x, []string{"features.19"}, FeatureOptions{Example: 5}); err == nil || !strings.Contains(err.Error(), "example 5 is out of range for a batch of 2 (valid: 0..1)") {
		t.Fatalf("Example 5: %v", err)
	}
}

func TestFeatureMapsErrors(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", "input_relu0.npy"))
	for _, tc := range []struct {
		layers []string
		opts   FeatureOptions
		want   string
	}{
		{[]string{"features.3"}, FeatureOptions{Channels: []int{70}}, "channel 70 is out of range for features.3 with 16 channels (valid: 0..15)"},
		{[]string{"features.0", "features.3"}, FeatureOptions{Channels: []int{1, 9}}, "channel 9 is out of range for features.0 with 8 channels"},
		{[]string{"features.3"}, FeatureOptions{Channels: []int{-1}}, "channel -1 is out of range for features.3"},
		{[]string{"features.3"}, FeatureOptions{Channels: []int{2, 2}}, "channel 2 is listed twice"},
		{[]string{"features.3"}, FeatureOptions{Select: SelectList}, "SelectList needs a non-empty Channels"},
		{[]string{"features.3"}, FeatureOptions{Select: SelectTopMean, Channels: []int{1}}, "use SelectList"},
		{[]string{"classifier.0"}, FeatureOptions{}, `"classifier.0" is a Linear with output (N,16)`},
		{[]string{"features.77"}, FeatureOptions{}, `no layer "features.77"`},
		{[]string{"features.3", "features.3"}, FeatureOptions{}, "listed twice"},
		{nil, FeatureOptions{}, "no layers"},
		{[]string{"features.3"}, FeatureOptions{N: -2}, "must not be negative"},
	} {
		_, err := FeatureMapsOf(ex, x, tc.layers, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FeatureMaps(%v, %+v): error %v, want it to contain %q", tc.layers, tc.opts, err, tc.want)
		}
	}
	if _, err := FeatureMapsOf(ex, &Array{Shape: []int{1, 4, 32, 32}, Data: make([]float32, 4*32*32)}, []string{"features.0"}, FeatureOptions{}); err == nil {
		t.Fatal("4-channel input: no error")
	}
	res, err := FeatureMapsOf(ex, x, []string{"features.1"}, FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Grid("features.4"); err == nil || !strings.Contains(err.Error(), "hold features.1") {
		t.Fatalf("Grid of a layer not in the result: %v", err)
	}
	if _, err := res.Overlay("features.1", 0, nil); err == nil || !strings.Contains(err.Error(), "no input image") {
		t.Fatalf("Overlay without image: %v", err)
	}
	// A bad style is an error of the drawing calls, naming the field.
	for _, tc := range []struct {
		style FeatureStyle
		want  string
	}{
		{FeatureStyle{Alpha: 1.5}, "Alpha"},
		{FeatureStyle{Scale: -1}, "must not be negative"},
		{FeatureStyle{Cols: -3}, "must not be negative"},
		{FeatureStyle{Norm: Norm(9)}, "unknown normalisation"},
	} {
		bad := res.WithStyle(tc.style)
		if _, err := bad.Grid("features.1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Grid with %+v: %v, want %q", tc.style, err, tc.want)
		}
		if _, err := bad.HTML(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HTML with %+v: %v, want %q", tc.style, err, tc.want)
		}
	}
	base := image.NewRGBA(image.Rect(0, 0, 32, 32))
	if _, err := res.Overlay("features.1", 8, base); err == nil || !strings.Contains(err.Error(), "channel 8 is out of range for features.1 with 8 channels") {
		t.Fatalf("Overlay channel 8: %v", err)
	}
}

// TestSelectChannelsProperties checks the selection rules on random arrays.
func TestSelectChannelsProperties(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		c := 1 + int(seed%13)
		a := vtest.RandomArray(seed, c, 3, 1+int(seed%4))
		means, energies := channelStats(a)
		for _, n := range []int{0, 1, 3, c, c + 5} {
			wantN := n
			if n == 0 {
				wantN = DefaultFeatureChannels
			}
			wantN = min(wantN, c)
			first, err := SelectChannels(a, "L", FeatureOptions{N: n})
			if err != nil {
				t.Fatal(err)
			}
			if len(first) != wantN {
				t.Fatalf("first %d of %d: got %d channels", n, c, len(first))
			}
			for i, ch := range first {
				if ch != i {
					t.Fatalf("first-N selection %v is not 0..N-1", first)
				}
			}
			for _, sel := range []ChannelSelection{SelectTopMean, SelectTopEnergy} {
				key := means
				if sel == SelectTopEnergy {
					key = energies
				}
				got, err := SelectChannels(a, "L", FeatureOptions{Select: sel, N: n})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != wantN {
					t.Fatalf("%s: %d channels, want %d", sel, len(got), wantN)
				}
				in := map[int]bool{}
				for i, ch := range got {
					if in[ch] || ch < 0 || ch >= c {
						t.Fatalf("%s: bad or repeated channel in %v", sel, got)
					}
					in[ch] = true
					if i > 0 && key[ch] > key[got[i-1]] {
						t.Fatalf("%s: %v not in decreasing order of %v", sel, got, key)
					}
				}
				lowest := key[got[len(got)-1]]
				for ch := 0; ch < c; ch++ {
					if !in[ch] && key[ch] > lowest {
						t.Fatalf("%s: channel %d (%v) left out but %v was chosen", sel, ch, key[ch], lowest)
					}
				}
			}
		}
		// Mean and energy against definitions.
		hw := a.Size() / c
		for ci := 0; ci < c; ci++ {
			s, ss := 0.0, 0.0
			for _, v := range a.Data[ci*hw : (ci+1)*hw] {
				s += float64(v)
				ss += float64(v) * float64(v)
			}
			if math.Abs(float64(means[ci])-s/float64(hw)) > 1e-6 || math.Abs(float64(energies[ci])-math.Sqrt(ss)) > 1e-5 {
				t.Fatalf("channel %d stats %v %v, want %v %v", ci, means[ci], energies[ci], s/float64(hw), math.Sqrt(ss))
			}
		}
	}
	// Ties keep index order; an explicit list is kept in the given order.
	a := &Array{Shape: []int{4, 1, 1}, Data: []float32{1, 2, 2, 1}}
	got, _ := SelectChannels(a, "L", FeatureOptions{Select: SelectTopMean, N: 3})
	if fmt.Sprint(got) != "[1 2 0]" {
		t.Fatalf("tie order %v, want [1 2 0]", got)
	}
	got, _ = SelectChannels(a, "L", FeatureOptions{Channels: []int{3, 0}})
	if fmt.Sprint(got) != "[3 0]" {
		t.Fatalf("list order %v", got)
	}
	if _, err := SelectChannels(&Array{Shape: []int{4}, Data: make([]float32, 4)}, "L", FeatureOptions{}); err == nil {
		t.Fatal("rank-1 activations: no error")
	}
}

// TestFeatureGridPixels renders two hand-made 1×2 maps and checks pixels.
func TestFeatureGridPixels(t *testing.T) {
	layer := models.Layer{Name: "L", Kind: models.ReLU, In: 2, Out: 2, Spatial: true}
	// Channel 0 = [0 4], channel 1 = [2 2] (constant).
	acts, _ := engine.ArrayFrom([]float32{0, 4, 2, 2}, 1, 2, 1, 2)
	res, err := NewFeatureMapsResult([]models.Layer{layer}, []*Array{acts}, FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Style = FeatureStyle{Colormap: render.Gray, Scale: 1, Pad: 1, NoCaptions: true, Cols: 2}
	img, err := res.Grid("L")
	if err != nil {
		t.Fatal(err)
	}
	w := color.RGBA{R: 255, G: 255, B: 255, A: 255}
	// Per map: channel 0 → 0, 255; channel 1 is constant → low colour 0.
	assertRGBAPixels(t, img, [][]color.RGBA{
		{w, w, w, w, w, w, w},
		{w, grayPx(0), grayPx(255), w, grayPx(0), grayPx(0), w},
		{w, w, w, w, w, w, w},
	})
	// Shared range [0, 4]: channel 1 = 2 → t = 0.5 → 128.
	res.Style.Norm = NormShared
	img, err = res.Grid("L")
	if err != nil {
		t.Fatal(err)
	}
	assertRGBAPixels(t, img, [][]color.RGBA{
		{w, w, w, w, w, w, w},
		{w, grayPx(0), grayPx(255), w, grayPx(128), grayPx(128), w},
		{w, w, w, w, w, w, w},
	})
	// Summary: mean over channels = [1 3] → min–max → 0, 255.
	sum, err := res.SummaryImage("L")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Image.RGBAAt(0, 0) != grayPx(0) || sum.Image.RGBAAt(1, 0) != grayPx(255) || sum.Range != (render.Range{Min: 1, Max: 3}) {
		t.Fatalf("summary %v %v range %v", sum.Image.RGBAAt(0, 0), sum.Image.RGBAAt(1, 0), sum.Range)
	}
	// Overlay of channel 0 on a 2×1 grey base: map scaled to [0, 1) → JET ends.
	base := image.NewRGBA(image.Rect(0, 0, 2, 1))
	for i := range base.Pix {
		base.Pix[i] = 128
	}
	ov, err := res.Overlay("L", 0, base)
	if err != nil {
		t.Fatal(err)
	}
	want, err := render.Overlay(base, render.Map{H: 1, W: 2, Data: []float32{0, float32(4 / (4 + 1e-7))}}, render.Jet, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if ov.RGBAAt(0, 0) != want.RGBAAt(0, 0) || ov.RGBAAt(1, 0) != want.RGBAAt(1, 0) {
		t.Fatalf("overlay %v %v, want %v %v", ov.RGBAAt(0, 0), ov.RGBAAt(1, 0), want.RGBAAt(0, 0), want.RGBAAt(1, 0))
	}
	if ov.RGBAAt(1, 0).R <= ov.RGBAAt(0, 0).R || ov.RGBAAt(0, 0).B <= ov.RGBAAt(1, 0).B {
		t.Fatalf("overlay hot pixel not redder: %v vs %v", ov.RGBAAt(1, 0), ov.RGBAAt(0, 0))
	}

	// HTML: sections, embedded images, value range, flat note, overlays with an image.
	res.Image = base
	html, err := res.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Feature maps of L (ReLU): 2 channels, 1×2", "data:image/png;base64,", "[0, 4]",
		"1 of 2 maps shown are constant", "1 (2)", "over the input", "mean over all 2 channels"} {
		if !strings.Contains(html, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	var _ HTMLer = res
	if _, err := NewFeatureMapsResult([]models.Layer{layer}, []*Array{acts}, FeatureOptions{Channels: []int{2}}); err == nil ||
		!strings.Contains(err.Error(), "channel 2 is out of range for L with 2 channels") {
		t.Fatalf("bad channel list: %v", err)
	}
	if _, err := NewFeatureMapsResult([]models.Layer{layer}, []*Array{{Shape: []int{1, 3, 1, 2}, Data: make([]float32, 6)}}, FeatureOptions{}); err == nil {
		t.Fatal("channel count mismatch: no error")
	}
	nan, _ := engine.ArrayFrom([]float32{0, float32(math.NaN()), 1, 1}, 1, 2, 1, 2)
	if _, err := NewFeatureMapsResult([]models.Layer{layer}, []*Array{nan}, FeatureOptions{}); err == nil {
		t.Fatal("NaN activations: no error")
	}
}
