package vizkit

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

var goldenWeightFiles = []string{"tinyvgg11", "tinyvgg11_bn", "tinyvgg13"}

// TestKernelsGolden checks that the kernels of every conv layer are exactly
// the PyTorch weights, read independently from the .safetensors and .pth
// files PyTorch wrote, and that classifier.0's weight survives the model's
// flatten-order conversion (C,H,W ↔ H,W,C) exactly.
func TestKernelsGolden(t *testing.T) {
	for _, name := range goldenWeightFiles {
		t.Run(name, func(t *testing.T) {
			m := vtest.GoldenModel(t, name+".safetensors")
			defer m.Close()
			for _, file := range []string{name + ".safetensors", name + ".pth"} {
				var ref *weights.Set
				var err error
				if strings.HasSuffix(file, ".pth") {
					ref, err = weights.LoadPTH(filepath.Join(goldenDir, file))
				} else {
					ref, err = weights.LoadSafetensors(filepath.Join(goldenDir, file))
				}
				if err != nil {
					t.Fatal(err)
				}
				convs := 0
				for _, l := range m.Layers() {
					if l.Kind != models.Conv2d {
						continue
					}
					convs++
					k, err := KernelsOf(m, l.Name, KernelOptions{})
					if err != nil {
						t.Fatal(err)
					}
					want := ref.Tensors[l.Name+".weight"]
					if !slices.Equal(k.Weights.Shape, want.Shape) {
						t.Fatalf("%s %s: shape %v, want %v", file, l.Name, k.Weights.Shape, want.Shape)
					}
					for i := range want.Data {
						if k.Weights.Data[i] != want.Data[i] {
							t.Fatalf("%s %s: weight %d = %v, want %v (exact)", file, l.Name, i, k.Weights.Data[i], want.Data[i])
						}
					}
					wantBias := ref.Tensors[l.Name+".bias"].Data
					for i := range wantBias {
						if k.Bias[i] != wantBias[i] {
							t.Fatalf("%s %s: bias %d = %v, want %v", file, l.Name, i, k.Bias[i], wantBias[i])
						}
					}
					// Norms: independent float64 sums per output channel.
					per := want.Shape[1] * want.Shape[2] * want.Shape[3]
					for o := 0; o < want.Shape[0]; o++ {
						s := 0.0
						for _, v := range want.Data[o*per : (o+1)*per] {
							s += float64(v) * float64(v)
						}
						if d := math.Abs(float64(k.Norms[o]) - math.Sqrt(s)); d > 1e-6*math.Sqrt(s) {
							t.Fatalf("%s norm %d = %v, want %v", l.Name, o, k.Norms[o], math.Sqrt(s))
						}
					}
				}
				if convs < 8 {
					t.Fatalf("only %d conv layers checked", convs)
				}
				for _, lin := range []string{"classifier.0", "classifier.3", "classifier.6"} {
					w, bias, err := m.Weight(lin)
					if err != nil {
						t.Fatal(err)
					}
					want := ref.Tensors[lin+".weight"]
					if !slices.Equal(w.Shape, want.Shape) {
						t.Fatalf("%s: shape %v, want %v", lin, w.Shape, want.Shape)
					}
					for i := range want.Data {
						if w.Data[i] != want.Data[i] {
							t.Fatalf("%s %s: weight %d = %v, want %v (flatten-order round trip)", file, lin, i, w.Data[i], want.Data[i])
						}
					}
					for i, v := range ref.Tensors[lin+".bias"].Data {
						if bias[i] != v {
							t.Fatalf("%s bias %d = %v, want %v", lin, i, bias[i], v)
						}
					}
				}
			}
		})
	}
}

func TestKernelsErrors(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	for _, tc := range []struct {
		layer string
		opts  KernelOptions
		want  []string
	}{
		{"features.1", KernelOptions{}, []string{`"features.1" is a ReLU`, "features.0, features.3, features.6, features.8, features.11, features.13, features.16, features.18"}},
		{"classifier.0", KernelOptions{}, []string{`"classifier.0" is a Linear`, "features.0, features.3"}},
		{"avgpool", KernelOptions{}, []string{"AdaptiveAvgPool2d", "features.18"}},
		{"features.99", KernelOptions{}, []string{`no layer "features.99"`, "valid layers"}},
		{"features.3", KernelOptions{View: KernelViewRGB}, []string{"RGB view needs 3 input channels", "has 8"}},
		{"features.3", KernelOptions{View: KernelViewInput, Input: 8}, []string{"input channel 8 is out of range for features.3 with 8 input channels (valid: 0..7)"}},
		{"features.3", KernelOptions{View: KernelViewInput, Input: -1}, []string{"input channel -1 is out of range"}},
		{"features.3", KernelOptions{MaxOut: -1}, []string{"must not be negative"}},
		{"features.3", KernelOptions{View: KernelView(42)}, []string{"unknown view"}},
	} {
		_, err := KernelsOf(m, tc.layer, tc.opts)
		if err == nil {
			t.Fatalf("Kernels(%s, %+v): no error", tc.layer, tc.opts)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Kernels(%s): error %q lacks %q", tc.layer, err, w)
			}
		}
	}
	// A bad style is an error of the drawing calls.
	k, err := KernelsOf(m, "features.3", KernelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		style KernelStyle
		want  string
	}{
		{KernelStyle{Norm: Norm(7)}, "unknown normalisation"},
		{KernelStyle{Scale: -1}, "must not be negative"},
		{KernelStyle{Cols: -1}, "must not be negative"},
	} {
		if _, err := k.WithStyle(tc.style).Image(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Image with %+v: %v, want %q", tc.style, err, tc.want)
		}
		if _, err := k.WithStyle(tc.style).HTML(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HTML with %+v: %v, want %q", tc.style, err, tc.want)
		}
	}
	if _, err := KernelsOf(nil, "features.0", KernelOptions{}); err == nil {
		t.Fatal("nil network: no error")
	}
	if _, err := NewKernelsResult("x", &Array{Shape: []int{2, 3}, Data: make([]float32, 6)}, nil); err == nil {
		t.Fatal("rank-2 weights: no error")
	}
	if _, err := NewKernelsResult("x", &Array{Shape: []int{1, 1, 1, 2}, Data: []float32{0, float32(math.NaN())}}, nil); err == nil {
		t.Fatal("NaN weights: no error")
	}
	if _, err := NewKernelsResult("x", &Array{Shape: []int{1, 1, 1, 2}, Data: []float32{0, 1, 2}}, nil); err == nil {
		t.Fatal("size mismatch: no error")
	}
}

func grayPx(v uint8) color.RGBA { return color.RGBA{R: v, G: v, B: v, A: 255} }

// assertPixels compares img with a row-major table of expected colours.
func assertRGBAPixels(t *testing.T, img *image.RGBA, want [][]color.RGBA) {
	t.Helper()
	if b := img.Bounds(); b.Dy() != len(want) || b.Dx() != len(want[0]) {
		t.Fatalf("image is %dx%d, want %dx%d", b.Dx(), b.Dy(), len(want[0]), len(want))
	}
	for y, row := range want {
		for x, c := range row {
			if got := img.RGBAAt(x, y); got != c {
				t.Errorf("pixel (%d,%d) = %v, want %v", x, y, got, c)
			}
		}
	}
}

// pairsFixture is 2 outputs × 2 inputs of 2×2 kernels with hand-picked values:
//
//	(0,0) = [0 1; 2 3]   (0,1) = [-1 -1; 1 1]
//	(1,0) = [5 5; 5 5]   (1,1) = [0 10; 5 0]
func pairsFixture(t *testing.T) *KernelsResult {
	w, err := engine.ArrayFrom([]float32{
		0, 1, 2, 3, -1, -1, 1, 1,
		5, 5, 5, 5, 0, 10, 5, 0,
	}, 2, 2, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKernelsResult("conv", w, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// gridOf places four 2×2 tiles (row-major) on the 7×7 grid with 1 px padding.
func gridOf(tiles [4][4]color.RGBA) [][]color.RGBA {
	bg := kernelBackground
	out := make([][]color.RGBA, 7)
	for y := range out {
		out[y] = make([]color.RGBA, 7)
		for x := range out[y] {
			out[y][x] = bg
		}
	}
	for i, tile := range tiles {
		x0, y0 := 1+3*(i%2), 1+3*(i/2)
		for p, c := range tile {
			out[y0+p/2][x0+p%2] = c
		}
	}
	return out
}

// TestKernelGridPixels checks rendered pixels against values computed by hand
// (gray: floor(256·t) clamped to 255; RGB: floor(255·t + 0.5)).
func TestKernelGridPixels(t *testing.T) {
	k := pairsFixture(t)
	k.Options, k.Style = KernelOptions{View: KernelViewPairs}, KernelStyle{Scale: 1, Pad: 1, NoCaptions: true}
	img, err := k.Image()
	if err != nil {
		t.Fatal(err)
	}
	// Per tile: t = (v-min)/(max-min). (0,0): 0, 1/3, 2/3, 1 → 0, 85, 170, 255.
	// (1,0) is constant: the low colour, 0. (1,1): 0, 1, 0.5, 0 → 0, 255, 128, 0.
	assertRGBAPixels(t, img, gridOf([4][4]color.RGBA{
		{grayPx(0), grayPx(85), grayPx(170), grayPx(255)},
		{grayPx(0), grayPx(0), grayPx(255), grayPx(255)},
		{grayPx(0), grayPx(0), grayPx(0), grayPx(0)},
		{grayPx(0), grayPx(255), grayPx(128), grayPx(0)},
	}))

	// One shared range [-1, 10]: t = (v+1)/11.
	k.Style.Norm = NormShared
	img, err = k.Image()
	if err != nil {
		t.Fatal(err)
	}
	assertRGBAPixels(t, img, gridOf([4][4]color.RGBA{
		{grayPx(23), grayPx(46), grayPx(69), grayPx(93)},
		{grayPx(0), grayPx(0), grayPx(46), grayPx(46)},
		{grayPx(139), grayPx(139), grayPx(139), grayPx(139)},
		{grayPx(23), grayPx(255), grayPx(139), grayPx(23)},
	}))

	// Diverging, per tile: range ±max|v| on RdBu_r; (0,0): [-3,3] → t = 0.5, 2/3, 5/6, 1
	// → entries 128, 170, 213, 255; (1,0): [-5,5] → 1 → 255; (1,1): [-10,10] → 128, 255, 192, 128.
	k.Options, k.Style = KernelOptions{View: KernelViewPairs}, KernelStyle{Scale: 1, Pad: 1, NoCaptions: true, Diverging: true}
	img, err = k.Image()
	if err != nil {
		t.Fatal(err)
	}
	rb := render.RdBuR.Index
	assertRGBAPixels(t, img, gridOf([4][4]color.RGBA{
		{rb(128), rb(170), rb(213), rb(255)},
		{rb(0), rb(0), rb(255), rb(255)},
		{rb(255), rb(255), rb(255), rb(255)},
		{rb(128), rb(255), rb(192), rb(128)},
	}))

	// Mean view: per output, mean over inputs: out 0 = [-0.5 0; 1.5 2], out 1 = [2.5 7.5; 5 2.5];
	// one tile per output, Cols 2: a 7×4 image.
	k.Options, k.Style = KernelOptions{View: KernelViewMean}, KernelStyle{Scale: 1, Pad: 1, NoCaptions: true, Cols: 2}
	tiles, err := k.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	wantMean := [][]float32{{-0.5, 0, 1.5, 2}, {2.5, 7.5, 5, 2.5}}
	for o, tile := range tiles {
		for i, v := range wantMean[o] {
			if tile.Data[i] != v || tile.Out != o || tile.In != -1 {
				t.Fatalf("mean tile %d = %+v, want %v", o, tile, wantMean[o])
			}
		}
	}
	// L2 view: sqrt(Σ_i w²): out 0 = [1, √2, √5, √10].
	k.Options.View = KernelViewL2
	tiles, err = k.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{1, math.Sqrt2, math.Sqrt(5), math.Sqrt(10)} {
		if math.Abs(float64(tiles[0].Data[i])-v) > 1e-6 {
			t.Fatalf("L2 tile 0 = %v", tiles[0].Data)
		}
	}
	// Input view: input 1 of each output.
	k.Options = KernelOptions{View: KernelViewInput, Input: 1}
	tiles, err = k.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(tiles) != 2 || tiles[1].In != 1 || tiles[1].Data[1] != 10 || tiles[0].Data[0] != -1 {
		t.Fatalf("input view tiles %+v", tiles)
	}
}

func TestKernelRGBPixels(t *testing.T) {
	// Two 1×1 RGB kernels: (0.5, 0, -0.5) and (1, 0, -1).
	w, _ := engine.ArrayFrom([]float32{0.5, 0, -0.5, 1, 0, -1}, 2, 3, 1, 1)
	k, err := NewKernelsResult("rgb", w, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Style = KernelStyle{Scale: 1, Pad: 1, NoCaptions: true, Cols: 2}
	img, err := k.Image()
	if err != nil {
		t.Fatal(err)
	}
	bg := kernelBackground
	rgb := func(r, g, b uint8) color.RGBA { return color.RGBA{R: r, G: g, B: b, A: 255} }
	// Per tile min–max over the three colours: both → (255, 128, 0) (0 is the midpoint).
	assertRGBAPixels(t, img, [][]color.RGBA{
		{bg, bg, bg, bg, bg},
		{bg, rgb(255, 128, 0), bg, rgb(255, 128, 0), bg},
		{bg, bg, bg, bg, bg},
	})
	// Shared range [-1, 1]: the first tile is half as saturated: 0.5 → 191, -0.5 → 64.
	k.Style.Norm = NormShared
	img, err = k.Image()
	if err != nil {
		t.Fatal(err)
	}
	assertRGBAPixels(t, img, [][]color.RGBA{
		{bg, bg, bg, bg, bg},
		{bg, rgb(191, 128, 64), bg, rgb(255, 128, 0), bg},
		{bg, bg, bg, bg, bg},
	})
	// Scale 3 enlarges by pixel replication.
	k.Options, k.Style = KernelOptions{MaxOut: 1}, KernelStyle{Scale: 3, Pad: -1, NoCaptions: true, Cols: 2}
	img, err = k.Image()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 3 || b.Dy() != 3 {
		t.Fatalf("scaled single tile is %v, want 3×3", b)
	}
	for y := 0; y < 3; y++ {
		for x := 0; x < 3; x++ {
			if img.RGBAAt(x, y) != rgb(255, 128, 0) {
				t.Fatalf("scaled pixel (%d,%d) = %v", x, y, img.RGBAAt(x, y))
			}
		}
	}
}

func TestKernelSelection(t *testing.T) {
	w := vtest.RandomArray(3, 20, 5, 3, 3)
	k, err := NewKernelsResult("conv", w, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.Options = KernelOptions{View: KernelViewMean, MaxOut: 6, SortByNorm: true}
	tiles, err := k.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(tiles) != 6 {
		t.Fatalf("%d tiles, want 6", len(tiles))
	}
	chosen := map[int]bool{}
	for i, tile := range tiles {
		chosen[tile.Out] = true
		if i > 0 && k.Norms[tile.Out] > k.Norms[tiles[i-1].Out] {
			t.Fatalf("not sorted by norm: %d after %d", tile.Out, tiles[i-1].Out)
		}
	}
	for o := 0; o < 20; o++ {
		if !chosen[o] && k.Norms[o] > k.Norms[tiles[5].Out] {
			t.Fatalf("output %d (norm %v) left out but %d (norm %v) shown", o, k.Norms[o], tiles[5].Out, k.Norms[tiles[5].Out])
		}
	}
	// Pairs defaults: 16 outputs × min(8, I=5) inputs, grid of 5 columns.
	k.Options = KernelOptions{}
	tiles, err = k.Tiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(tiles) != 16*5 || tiles[7].Out != 1 || tiles[7].In != 2 {
		t.Fatalf("pairs defaults: %d tiles, tile 7 = (%d,%d)", len(tiles), tiles[7].Out, tiles[7].In)
	}
	// MaxOut larger than O is clamped.
	k.Options = KernelOptions{View: KernelViewL2, MaxOut: 1000}
	if tiles, err = k.Tiles(); err != nil || len(tiles) != 20 {
		t.Fatalf("clamped MaxOut: %d tiles, %v", len(tiles), err)
	}
}

func TestKernelsHTML(t *testing.T) {
	k := pairsFixture(t)
	k.Options, k.Style = KernelOptions{View: KernelViewPairs}, KernelStyle{Diverging: true, Title: "ignored in HTML"}
	html, err := k.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Kernels of conv (2×2×2×2)", "data:image/png;base64,", "image-rendering:pixelated",
		"1 of 4 tiles are constant", "1,0", "RdBu_r", "[-1, 10]"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	var _ HTMLer = k
	var nilK *KernelsResult
	if _, err := nilK.HTML(); err == nil {
		t.Fatal("nil result: no error")
	}
}
