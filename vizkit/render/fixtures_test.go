package render

import (
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// fixtures mirrors testdata/render_fixtures.json, written by scripts/gen_render_fixtures.py
// (torch 1.13.1, OpenCV 4.6.0, matplotlib 3.6.3, numpy 1.24.2).
type fixtures struct {
	Resize struct {
		H, W  int
		In    []float32
		Cases []struct {
			Source       string
			H, W         int
			Mode         string
			AlignCorners bool `json:"align_corners"`
			Out          []float32
		}
	}
	Overlay struct {
		H, W  int
		Image []uint8
		Cases []struct {
			Name        string
			ImageWeight float64 `json:"image_weight"`
			MaskH       int     `json:"mask_h"`
			MaskW       int     `json:"mask_w"`
			Mask        []float32
			Out         []uint8
		}
	}
	ScaleCAM struct {
		H, W    int
		In, Out []float32
	} `json:"scale_cam"`
	Colorize struct {
		H, W  int
		In    []float32
		Cases []struct {
			Cmap     string
			Auto     bool
			Min, Max float64
			Out      []uint8
		}
	}
}

func loadFixtures(t *testing.T) *fixtures {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "render_fixtures.json"))
	if err != nil {
		t.Fatalf("reading fixtures (regenerate with scripts/gen_render_fixtures.py): %v", err)
	}
	var fx fixtures
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatalf("parsing fixtures: %v", err)
	}
	if len(fx.Resize.Cases) == 0 || len(fx.Overlay.Cases) == 0 || len(fx.Colorize.Cases) == 0 || len(fx.ScaleCAM.In) == 0 {
		t.Fatalf("fixtures incomplete")
	}
	return &fx
}

func TestResizeMatchesTorchAndOpenCV(t *testing.T) {
	fx := loadFixtures(t)
	src, err := heatmap.NewMap(fx.Resize.H, fx.Resize.W, fx.Resize.In)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.Resize.Cases {
		mode := heatmap.Bilinear
		if c.Mode == "nearest" {
			mode = heatmap.Nearest
		}
		got, err := heatmap.Resize(src, c.H, c.W, mode, c.AlignCorners)
		if err != nil {
			t.Fatalf("%s %dx%d: %v", c.Source, c.H, c.W, err)
		}
		if len(got.Data) != len(c.Out) {
			t.Fatalf("%s %dx%d: got %d values, want %d", c.Source, c.H, c.W, len(got.Data), len(c.Out))
		}
		for i, want := range c.Out {
			g := got.Data[i]
			tol := 2e-6 * math.Max(1, math.Abs(float64(want)))
			if mode == heatmap.Nearest {
				tol = 0 // copies, must be exact
			}
			if math.Abs(float64(g-want)) > tol {
				t.Errorf("%s %dx%d: [%d] = %v, want %v", c.Source, c.H, c.W, i, g, want)
			}
		}
	}
}

func fixtureImage(h, w int, rgb []uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		copy(img.Pix[4*p:4*p+3], rgb[3*p:3*p+3])
		img.Pix[4*p+3] = 255
	}
	return img
}

func TestOverlayMatchesShowCamOnImage(t *testing.T) {
	fx := loadFixtures(t)
	o := fx.Overlay
	// An offset origin checks that base bounds need not start at (0, 0).
	base := fixtureImage(o.H, o.W, o.Image).SubImage(image.Rect(0, 0, o.W, o.H)).(*image.RGBA)
	shifted := &image.RGBA{Pix: base.Pix, Stride: base.Stride, Rect: base.Rect.Add(image.Pt(3, -2))}
	for _, c := range o.Cases {
		mask, err := heatmap.NewMap(c.MaskH, c.MaskW, c.Mask)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string]image.Image{"origin": base, "shifted": shifted} {
			got, err := Overlay(b, mask, Jet, 1-c.ImageWeight)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			if got.Bounds() != image.Rect(0, 0, o.W, o.H) {
				t.Fatalf("%s: bounds %v", c.Name, got.Bounds())
			}
			bad := 0
			for p := 0; p < o.H*o.W; p++ {
				for ch := 0; ch < 3; ch++ {
					if g, w := got.Pix[4*p+ch], c.Out[3*p+ch]; g != w {
						if bad < 5 {
							t.Errorf("%s (%s): pixel %d channel %d = %d, want %d", c.Name, name, p, ch, g, w)
						}
						bad++
					}
				}
				if got.Pix[4*p+3] != 255 {
					t.Errorf("%s: pixel %d not opaque", c.Name, p)
				}
			}
			if bad > 0 {
				t.Errorf("%s (%s): %d channel values differ", c.Name, name, bad)
			}
		}
	}
}

func TestScaleCAMMatchesGradCam(t *testing.T) {
	fx := loadFixtures(t)
	m, err := heatmap.NewMap(fx.ScaleCAM.H, fx.ScaleCAM.W, fx.ScaleCAM.In)
	if err != nil {
		t.Fatal(err)
	}
	got, err := heatmap.ScaleCAM(m)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range fx.ScaleCAM.Out {
		if got.Data[i] != want { // same float32 operations as numpy: exact
			t.Errorf("[%d] = %v, want %v", i, got.Data[i], want)
		}
	}
	if &got.Data[0] == &m.Data[0] {
		t.Errorf("ScaleCAM modified its input's storage")
	}
}

func TestColorizeMatchesMatplotlib(t *testing.T) {
	fx := loadFixtures(t)
	m, err := heatmap.NewMap(fx.Colorize.H, fx.Colorize.W, fx.Colorize.In)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.Colorize.Cases {
		cmap, err := ColormapByName(c.Cmap)
		if err != nil {
			t.Fatal(err)
		}
		r := Range{}
		if !c.Auto {
			r = Range{Min: c.Min, Max: c.Max}
		}
		res, err := Colorize(m, cmap, r)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Range.Min-c.Min) > 1e-6 || math.Abs(res.Range.Max-c.Max) > 1e-6 {
			t.Errorf("%s: range %v, matplotlib used [%v, %v]", c.Cmap, res.Range, c.Min, c.Max)
		}
		for p := 0; p < m.H*m.W; p++ {
			for ch := 0; ch < 3; ch++ {
				if g, w := res.Image.Pix[4*p+ch], c.Out[3*p+ch]; g != w {
					t.Errorf("%s: pixel %d channel %d = %d, matplotlib %d", c.Cmap, p, ch, g, w)
				}
			}
		}
		if res.Flat || res.Note != "" {
			t.Errorf("%s: Flat=%v Note=%q for a varied map", c.Cmap, res.Flat, res.Note)
		}
	}
}
