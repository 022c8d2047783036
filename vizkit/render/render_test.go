package render

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

var (
	nan  = float32(math.NaN())
	pinf = float32(math.Inf(1))
	ninf = float32(math.Inf(-1))
)

func rgba(r, g, b uint8) color.RGBA { return color.RGBA{R: r, G: g, B: b, A: 255} }

func pixel(img *image.RGBA, x, y int) color.RGBA { return img.RGBAAt(x, y) }

func TestNewMapValidation(t *testing.T) {
	if _, err := heatmap.NewMap(2, 3, make([]float32, 6)); err != nil {
		t.Fatalf("valid map: %v", err)
	}
	for _, c := range []struct {
		h, w, n int
	}{{0, 3, 0}, {2, -1, 0}, {2, 3, 5}, {2, 3, 7}, {1 << 20, 1 << 20, 0}} {
		if _, err := heatmap.NewMap(c.h, c.w, make([]float32, c.n)); err == nil {
			t.Errorf("NewMap(%d, %d, len %d): no error", c.h, c.w, c.n)
		}
	}
	if _, err := heatmap.Zeros(0, 1); err == nil {
		t.Errorf("Zeros(0,1): no error")
	}
	m, err := heatmap.MapFromFloat64(1, 2, []float64{1.5, -2})
	if err != nil || m.At(0, 1) != -2 || m.At(0, 0) != 1.5 {
		t.Errorf("MapFromFloat64 = %v, %v", m, err)
	}
}

func TestRangeAndStatsIgnoreNonFinite(t *testing.T) {
	m, _ := heatmap.NewMap(2, 3, []float32{nan, 1, -2, pinf, 3, ninf})
	r, ok := m.Range()
	if !ok || r != (Range{Min: -2, Max: 3}) {
		t.Errorf("Range = %v, %v; want [-2, 3]", r, ok)
	}
	s := m.Stats()
	// Finite values 1, -2, 3: mean 2/3, population variance ((1/3)²+(8/3)²+(7/3)²)/3 = 38/9.
	if s.Finite != 3 || s.NaN != 1 || s.PosInf != 1 || s.NegInf != 1 || s.NonFinite() != 3 {
		t.Errorf("counts: %+v", s)
	}
	if s.Min != -2 || s.Max != 3 || math.Abs(s.Mean-2.0/3) > 1e-12 || math.Abs(s.Std-math.Sqrt(38.0/9)) > 1e-12 {
		t.Errorf("stats: %+v", s)
	}
	allNaN, _ := heatmap.NewMap(1, 2, []float32{nan, pinf})
	if r, ok := allNaN.Range(); ok || !r.IsAuto() {
		t.Errorf("all non-finite Range = %v, %v", r, ok)
	}
	if s := allNaN.Stats(); s.Min != 0 || s.Max != 0 || s.Mean != 0 || s.Std != 0 || s.Finite != 0 {
		t.Errorf("all non-finite Stats = %+v", s)
	}
	if got := heatmap.Diverging(m); got != (Range{Min: -3, Max: 3}) {
		t.Errorf("Diverging = %v, want [-3, 3]", got)
	}
	zeros, _ := heatmap.Zeros(2, 2)
	if got := heatmap.Diverging(zeros); got != (Range{Min: -1, Max: 1}) {
		t.Errorf("Diverging(zeros) = %v, want [-1, 1]", got)
	}
	if (Range{Min: 1, Max: 0}).Validate() == nil || (Range{Min: math.NaN(), Max: 1}).Validate() == nil ||
		(Range{Min: 0, Max: math.Inf(1)}).Validate() == nil || (Range{Min: 2, Max: 2}).Validate() != nil {
		t.Errorf("Range.Validate misjudges")
	}
	r = Range{Min: -1, Max: 3}
	for v, want := range map[float64]float64{-1: 0, 3: 1, 1: 0.5, -7: 0, 9: 1} {
		if got := r.Norm(v); got != want {
			t.Errorf("Norm(%v) = %v, want %v", v, got, want)
		}
	}
	if got := (Range{Min: 2, Max: 2}).Norm(5); got != 0 {
		t.Errorf("degenerate Norm = %v, want 0", got)
	}
	if got := r.String(); got != "[-1, 3]" {
		t.Errorf("String = %q", got)
	}
}

// Sample entries, recorded from the tools themselves:
//   - matplotlib 3.6.3: matplotlib.colormaps[name](i)[:3] * 255, rounded
//     (e.g. viridis(0) = (0.267004, 0.004874, 0.329415), viridis(255) = (0.993248, 0.906157, 0.143936));
//   - OpenCV 4.6.0: cv2.applyColorMap(np.arange(256, dtype=np.uint8), cv2.COLORMAP_JET), BGR
//     reversed (e.g. entry 0 is BGR [128 0 0], entry 96 BGR [254 255 2]).
func TestColormapSamples(t *testing.T) {
	samples := []struct {
		cmap Colormap
		i    uint8
		want color.RGBA
	}{
		{Viridis, 0, rgba(68, 1, 84)}, {Viridis, 64, rgba(59, 82, 139)}, {Viridis, 128, rgba(33, 145, 140)}, {Viridis, 255, rgba(253, 231, 37)},
		{Magma, 0, rgba(0, 0, 4)}, {Magma, 64, rgba(81, 18, 124)}, {Magma, 128, rgba(183, 55, 121)}, {Magma, 255, rgba(252, 253, 191)},
		{Inferno, 0, rgba(0, 0, 4)}, {Inferno, 64, rgba(87, 16, 110)}, {Inferno, 128, rgba(188, 55, 84)}, {Inferno, 255, rgba(252, 255, 164)},
		{Plasma, 0, rgba(13, 8, 135)}, {Plasma, 64, rgba(126, 3, 168)}, {Plasma, 128, rgba(204, 71, 120)}, {Plasma, 255, rgba(240, 249, 33)},
		{Gray, 0, rgba(0, 0, 0)}, {Gray, 64, rgba(64, 64, 64)}, {Gray, 128, rgba(128, 128, 128)}, {Gray, 255, rgba(255, 255, 255)},
		{RdBuR, 0, rgba(5, 48, 97)}, {RdBuR, 64, rgba(107, 172, 209)}, {RdBuR, 128, rgba(247, 246, 246)}, {RdBuR, 255, rgba(103, 0, 31)},
		{Jet, 0, rgba(0, 0, 128)}, {Jet, 1, rgba(0, 0, 132)}, {Jet, 32, rgba(0, 0, 255)}, {Jet, 64, rgba(0, 128, 255)},
		{Jet, 96, rgba(2, 255, 254)}, {Jet, 127, rgba(126, 255, 130)}, {Jet, 128, rgba(130, 255, 126)},
		{Jet, 160, rgba(255, 252, 0)}, {Jet, 192, rgba(255, 124, 0)}, {Jet, 224, rgba(252, 0, 0)}, {Jet, 255, rgba(128, 0, 0)},
	}
	for _, s := range samples {
		if got := s.cmap.Index(s.i); got != s.want {
			t.Errorf("%s[%d] = %v, want %v", s.cmap.Name(), s.i, got, s.want)
		}
	}
	for i := 0; i < 256; i++ {
		if got := Gray.Index(uint8(i)); got != rgba(uint8(i), uint8(i), uint8(i)) {
			t.Fatalf("gray[%d] = %v", i, got)
		}
	}
}

func TestColormapIndexing(t *testing.T) {
	// matplotlib: floor(256 t), t = 1 → 255 (viridis(0.5) = entry 128, viridis(1/256) = entry 1).
	for t0, want := range map[float64]uint8{0: 0, 0.5: 128, 1: 255, 1.0 / 256: 1, 0.999: 255, 0.25: 64, -3: 0, 7: 255, math.Inf(1): 255, math.Inf(-1): 0} {
		if got := Viridis.At(t0); got != Viridis.Index(want) {
			t.Errorf("At(%v) = %v, want entry %d", t0, got, want)
		}
	}
	if got := Viridis.At(math.NaN()); got != Viridis.Bad() || got != Viridis.Index(0) {
		t.Errorf("At(NaN) = %v, want Bad = low end", got)
	}
	magenta := rgba(255, 0, 255)
	if got := Viridis.WithBad(magenta).At(math.NaN()); got != magenta {
		t.Errorf("WithBad: At(NaN) = %v", got)
	}
	// numpy: np.uint8(np.float32(255) * np.float32(t)).
	for t0, want := range map[float32]uint8{0: 0, 0.5: 127, 1: 255, 0.999: 254, 0.003: 0, 0.004: 1, -1: 0, 2: 255, nan: 0} {
		if got := QuantizeCV(t0); got != want {
			t.Errorf("QuantizeCV(%v) = %d, want %d", t0, got, want)
		}
	}
	if got := Jet.AtCV(0.5); got != Jet.Index(127) {
		t.Errorf("Jet.AtCV(0.5) = %v, want entry 127", got)
	}
	var zero Colormap
	if zero.Valid() || zero.At(0.5) != rgba(0, 0, 0) {
		t.Errorf("zero Colormap: Valid=%v At=%v", zero.Valid(), zero.At(0.5))
	}
	for _, name := range []string{"viridis", "Magma", "INFERNO", "plasma", "gray", "jet", "rdbu_r", " RdBu_r "} {
		if _, err := ColormapByName(name); err != nil {
			t.Errorf("ColormapByName(%q): %v", name, err)
		}
	}
	if _, err := ColormapByName("hot"); err == nil || !strings.Contains(err.Error(), "viridis") {
		t.Errorf("unknown colormap error = %v", err)
	}
	if got := len(ColormapNames()); got != 7 {
		t.Errorf("ColormapNames has %d entries", got)
	}
	custom := NewColormap("two", [256][3]uint8{0: {1, 2, 3}, 255: {4, 5, 6}})
	if custom.At(0) != rgba(1, 2, 3) || custom.At(1) != rgba(4, 5, 6) || custom.Bad() != rgba(1, 2, 3) {
		t.Errorf("custom colormap wrong")
	}
}

func TestColorizeGrayExact(t *testing.T) {
	// Values 0..3, auto range [0,3]: t = 0, 1/3, 2/3, 1 → entries floor(256t) = 0, 85, 170, 255.
	m, _ := heatmap.NewMap(2, 2, []float32{0, 1, 2, 3})
	res, err := Colorize(m, Gray, Range{})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]interface{}{{image.Pt(0, 0), uint8(0)}, {image.Pt(1, 0), uint8(85)}, {image.Pt(0, 1), uint8(170)}, {image.Pt(1, 1), uint8(255)}}
	for _, w := range want {
		p, v := w[0].(image.Point), w[1].(uint8)
		if got := pixel(res.Image, p.X, p.Y); got != rgba(v, v, v) {
			t.Errorf("pixel %v = %v, want gray %d", p, got, v)
		}
	}
	if res.Image.Bounds() != image.Rect(0, 0, 2, 2) || res.Flat || res.NonFinite != 0 || res.Note != "" || res.Range != (Range{Min: 0, Max: 3}) {
		t.Errorf("result metadata: %+v", res)
	}
	// Explicit range [1, 2]: 0 clamps to black, 3 to white, 1 → 0, 2 → 255.
	res, _ = Colorize(m, Gray, Range{Min: 1, Max: 2})
	for i, v := range []uint8{0, 0, 255, 255} {
		if got := res.Image.Pix[4*i]; got != v {
			t.Errorf("explicit range: pixel %d = %d, want %d", i, got, v)
		}
	}
}

func TestColorizeFlatAndNonFinite(t *testing.T) {
	checkAll := func(name string, img *image.RGBA, want color.RGBA) {
		t.Helper()
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if got := pixel(img, x, y); got != want {
					t.Fatalf("%s: pixel (%d,%d) = %v, want %v", name, x, y, got, want)
				}
			}
		}
	}
	zeros, _ := heatmap.Zeros(3, 2)
	res, err := Colorize(zeros, Viridis, Range{})
	if err != nil {
		t.Fatal(err)
	}
	checkAll("zeros", res.Image, Viridis.Index(0))
	if !res.Flat || res.Note != "constant map (value 0)" {
		t.Errorf("zeros: Flat=%v Note=%q", res.Flat, res.Note)
	}
	sevens, _ := heatmap.NewMap(1, 3, []float32{7.25, 7.25, 7.25})
	res, _ = Colorize(sevens, Magma, Range{})
	checkAll("sevens", res.Image, Magma.Index(0))
	if !res.Flat || res.Note != "constant map (value 7.25)" {
		t.Errorf("sevens: Flat=%v Note=%q", res.Flat, res.Note)
	}
	// heatmap.Zeros with a diverging range land on the neutral middle, still flagged.
	res, _ = Colorize(zeros, RdBuR, heatmap.Diverging(zeros))
	checkAll("diverging zeros", res.Image, RdBuR.Index(128))
	if !res.Flat {
		t.Errorf("diverging zeros not Flat")
	}
	allBad, _ := heatmap.NewMap(2, 2, []float32{nan, pinf, ninf, nan})
	res, err = Colorize(allBad, Jet, Range{})
	if err != nil {
		t.Fatal(err)
	}
	checkAll("all non-finite", res.Image, Jet.Index(0))
	if !res.Flat || res.NonFinite != 4 || res.Note != "no finite values (2 NaN, 1 +Inf, 1 -Inf)" {
		t.Errorf("all non-finite: %+v", res)
	}
	mixed, _ := heatmap.NewMap(1, 4, []float32{0, nan, 1, pinf})
	res, _ = Colorize(mixed.Clone(), Gray.WithBad(rgba(255, 0, 255)), Range{})
	want := []color.RGBA{rgba(0, 0, 0), rgba(255, 0, 255), rgba(255, 255, 255), rgba(255, 0, 255)}
	for x, w := range want {
		if got := pixel(res.Image, x, 0); got != w {
			t.Errorf("mixed: pixel %d = %v, want %v", x, got, w)
		}
	}
	if res.Flat || res.NonFinite != 2 || res.Note != "1 NaN, 1 +Inf" || res.Range != (Range{Min: 0, Max: 1}) {
		t.Errorf("mixed: %+v", res)
	}
	varied, _ := heatmap.NewMap(1, 2, []float32{1, 5})
	res, _ = Colorize(varied, Gray, Range{Min: 3, Max: 3})
	checkAll("degenerate range", res.Image, rgba(0, 0, 0))
	if !res.Flat || res.Note != "degenerate range [3, 3]" {
		t.Errorf("degenerate: %+v", res)
	}
	for _, r := range []Range{{Min: 2, Max: 1}, {Min: math.NaN(), Max: 1}, {Min: 0, Max: math.Inf(1)}} {
		if _, err := Colorize(varied, Gray, r); err == nil {
			t.Errorf("range %v: no error", r)
		}
	}
	if _, err := Colorize(varied, Colormap{}, Range{}); err == nil {
		t.Errorf("zero Colormap: no error")
	}
	if _, err := Colorize(Map{H: 2, W: 2, Data: []float32{1}}, Gray, Range{}); err == nil {
		t.Errorf("bad map: no error")
	}
}

func TestResizeHandComputed(t *testing.T) {
	m, _ := heatmap.NewMap(1, 2, []float32{0, 1})
	// align_corners=False, 2→4: src = (d+0.5)/2 - 0.5 = -0.25→0, 0.25, 0.75, 1.25→index 1.
	checkResize(t, m, 1, 4, heatmap.Bilinear, false, []float32{0, 0.25, 0.75, 1})
	// align_corners=True, 2→3: src = d·1/2.
	checkResize(t, m, 1, 3, heatmap.Bilinear, true, []float32{0, 0.5, 1})
	// align_corners=True to a single column: src = 0.
	checkResize(t, m, 1, 1, heatmap.Bilinear, true, []float32{0})
	// align_corners=False to a single column: src = 0.5.
	checkResize(t, m, 1, 1, heatmap.Bilinear, false, []float32{0.5})
	sq, _ := heatmap.NewMap(2, 2, []float32{1, 2, 3, 4})
	checkResize(t, sq, 4, 4, heatmap.Nearest, false, []float32{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})
	checkResize(t, sq, 1, 1, heatmap.Nearest, false, []float32{1})
	// heatmap.Bilinear 2×2 → 3×3 with align_corners=True: centre is the mean.
	checkResize(t, sq, 3, 3, heatmap.Bilinear, true, []float32{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4})

	if _, err := heatmap.Resize(sq, 3, 3, heatmap.Nearest, true); err == nil {
		t.Errorf("nearest + alignCorners: no error")
	}
	if _, err := heatmap.Resize(sq, 0, 3, heatmap.Bilinear, false); err == nil {
		t.Errorf("zero height: no error")
	}
	if _, err := heatmap.Resize(sq, 3, 3, heatmap.Interp(9), false); err == nil {
		t.Errorf("unknown mode: no error")
	}
	if heatmap.Bilinear.String() != "bilinear" || heatmap.Nearest.String() != "nearest" {
		t.Errorf("Interp.String")
	}
}

func checkResize(t *testing.T, m Map, h, w int, mode heatmap.Interp, ac bool, want []float32) {
	t.Helper()
	got, err := heatmap.Resize(m, h, w, mode, ac)
	if err != nil {
		t.Fatal(err)
	}
	if got.H != h || got.W != w {
		t.Fatalf("size %dx%d", got.H, got.W)
	}
	for i := range want {
		if math.Abs(float64(got.Data[i]-want[i])) > 1e-6 {
			t.Errorf("%v ac=%v %dx%d→%dx%d: %v, want %v", mode, ac, m.H, m.W, h, w, got.Data, want)
			return
		}
	}
}

func TestOverlayEdgeCases(t *testing.T) {
	base := image.NewRGBA(image.Rect(0, 0, 2, 1))
	base.SetRGBA(0, 0, rgba(255, 255, 255))
	base.SetRGBA(1, 0, rgba(0, 0, 0))
	// alpha = 0 → cam = img, normalised by its max (1): the image itself.
	heat, _ := heatmap.NewMap(1, 2, []float32{0.3, 0.9})
	got, err := Overlay(base, heat, Jet, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pixel(got, 0, 0) != rgba(255, 255, 255) || pixel(got, 1, 0) != rgba(0, 0, 0) {
		t.Errorf("alpha 0: %v %v", pixel(got, 0, 0), pixel(got, 1, 0))
	}
	// alpha = 1 → cam = heatmap/255 normalised by the largest channel value; jet entry
	// uint8(255·0.3) = 76 has a 255 channel, so the max is 1 and each output channel is
	// the jet entry's channel (float32 division may lose 1).
	got, _ = Overlay(base, heat, Jet, 1)
	for x, q := range []uint8{76, 229} {
		w, g := Jet.Index(q), pixel(got, x, 0)
		for c, pair := range [][2]uint8{{g.R, w.R}, {g.G, w.G}, {g.B, w.B}} {
			if d := int(pair[1]) - int(pair[0]); d < 0 || d > 1 {
				t.Errorf("alpha 1: pixel %d channel %d = %d, jet[%d] has %d", x, c, pair[0], q, pair[1])
			}
		}
	}
	// NaN and out-of-range mask values behave like 0 and clamped values.
	weird, _ := heatmap.NewMap(1, 2, []float32{nan, 3})
	clean, _ := heatmap.NewMap(1, 2, []float32{0, 1})
	a, _ := Overlay(base, weird, Jet, 0.5)
	b, _ := Overlay(base, clean, Jet, 0.5)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Errorf("NaN/3 mask %v differs from 0/1 mask %v", a.Pix, b.Pix)
	}
	// All-black blend (black image, gray colormap, zero mask) gives black, not NaN garbage.
	black := image.NewRGBA(image.Rect(0, 0, 2, 2))
	zeros, _ := heatmap.Zeros(2, 2)
	got, err = Overlay(black, zeros, Gray, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if pixel(got, i%2, i/2) != rgba(0, 0, 0) {
			t.Errorf("all-black: pixel %d = %v", i, pixel(got, i%2, i/2))
		}
	}
	if _, err := Overlay(nil, heat, Jet, 0.5); err == nil {
		t.Errorf("nil base: no error")
	}
	for _, a := range []float64{-0.1, 1.1, math.NaN()} {
		if _, err := Overlay(base, heat, Jet, a); err == nil {
			t.Errorf("alpha %v: no error", a)
		}
	}
	if _, err := Overlay(base, Map{H: 1, W: 2}, Jet, 0.5); err == nil {
		t.Errorf("invalid heat: no error")
	}
	if _, err := Overlay(image.NewRGBA(image.Rectangle{}), heat, Jet, 0.5); err == nil {
		t.Errorf("empty base: no error")
	}
}

func TestScaleCAMNonFinite(t *testing.T) {
	m, _ := heatmap.NewMap(1, 4, []float32{2, nan, 4, 3})
	got, err := heatmap.ScaleCAM(m)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data[0] != 0 || !math.IsNaN(float64(got.Data[1])) || math.Abs(float64(got.Data[2])-1) > 1e-6 || math.Abs(float64(got.Data[3])-0.5) > 1e-6 {
		t.Errorf("ScaleCAM = %v", got.Data)
	}
	if m.Data[0] != 2 {
		t.Errorf("input modified")
	}
}

func TestSplitAndRGB(t *testing.T) {
	chw := []float32{1, 2, 3, 4, 5, 6} // C=3, H=1, W=2
	maps, err := heatmap.SplitCHW(chw, 3, 1, 2)
	if err != nil || len(maps) != 3 || maps[1].Data[0] != 3 || maps[2].Data[1] != 6 {
		t.Fatalf("SplitCHW = %v, %v", maps, err)
	}
	hwc := []float32{1, 2, 3, 4, 5, 6} // H=1, W=2, C=3
	maps, err = heatmap.SplitHWC(hwc, 1, 2, 3)
	if err != nil || maps[0].Data[1] != 4 || maps[2].Data[0] != 3 || maps[1].Data[1] != 5 {
		t.Fatalf("SplitHWC = %v, %v", maps, err)
	}
	if _, err := heatmap.SplitCHW(chw, 2, 1, 2); err == nil {
		t.Errorf("SplitCHW bad length: no error")
	}
	if _, err := heatmap.SplitHWC(hwc, 1, 2, 0); err == nil {
		t.Errorf("SplitHWC zero channels: no error")
	}
	// Range [1, 6]: v → round(255·(v−1)/5) = 0, 51, 102, 153, 204, 255.
	img, err := RGBFromCHW(chw, 1, 2, Range{})
	if err != nil {
		t.Fatal(err)
	}
	if pixel(img, 0, 0) != rgba(0, 102, 204) || pixel(img, 1, 0) != rgba(51, 153, 255) {
		t.Errorf("RGBFromCHW = %v %v", pixel(img, 0, 0), pixel(img, 1, 0))
	}
	img, _ = RGBFromCHW([]float32{nan, 1, 1, 1, 1, 1}, 1, 2, Range{})
	if pixel(img, 0, 0) != rgba(0, 0, 0) || pixel(img, 1, 0) != rgba(0, 0, 0) {
		t.Errorf("RGBFromCHW constant/NaN = %v %v", pixel(img, 0, 0), pixel(img, 1, 0))
	}
	if _, err := RGBFromCHW(chw, 2, 2, Range{}); err == nil {
		t.Errorf("RGBFromCHW bad length: no error")
	}
}

func solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		copy(img.Pix[4*i:], []uint8{c.R, c.G, c.B, c.A})
	}
	return img
}

func TestGridExactLayout(t *testing.T) {
	red, green, blue, white := rgba(255, 0, 0), rgba(0, 255, 0), rgba(0, 0, 255), rgba(255, 255, 255)
	bg := rgba(9, 9, 9)
	tiles := []image.Image{solid(1, 1, red), solid(1, 1, green), solid(1, 1, blue), solid(1, 1, white)}
	img, err := Grid(tiles, GridOptions{Cols: 2, Pad: 1, Background: bg})
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 5, 5) {
		t.Fatalf("bounds %v, want 5x5", img.Bounds())
	}
	want := map[image.Point]color.RGBA{{1, 1}: red, {3, 1}: green, {1, 3}: blue, {3, 3}: white}
	for y := 0; y < 5; y++ {
		for x := 0; x < 5; x++ {
			w, ok := want[image.Pt(x, y)]
			if !ok {
				w = bg
			}
			if got := pixel(img, x, y); got != w {
				t.Errorf("pixel (%d,%d) = %v, want %v", x, y, got, w)
			}
		}
	}
	// Default Cols = ceil(sqrt(4)) = 2, default background white, Pad 0 → 2×2.
	img, _ = Grid(tiles, GridOptions{})
	if img.Bounds() != image.Rect(0, 0, 2, 2) || pixel(img, 1, 0) != green || pixel(img, 0, 1) != blue {
		t.Errorf("default options layout wrong: %v", img.Bounds())
	}
	// Three tiles, 2 columns: the missing fourth cell is background.
	img, _ = Grid(tiles[:3], GridOptions{Cols: 2, Background: bg})
	if pixel(img, 1, 1) != bg || pixel(img, 0, 1) != blue {
		t.Errorf("partial last row wrong")
	}
}

func TestGridCentringScaleAndNil(t *testing.T) {
	red, blue := rgba(255, 0, 0), rgba(0, 0, 255)
	bg := rgba(0, 0, 0)
	// Cell 3×3 (largest tile); the 1×1 tile sits at the cell centre (1,1).
	img, err := Grid([]image.Image{solid(1, 1, red), solid(3, 3, blue), nil}, GridOptions{Cols: 3, Background: bg})
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 9, 3) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	for y := 0; y < 3; y++ {
		for x := 0; x < 3; x++ {
			w := bg
			if x == 1 && y == 1 {
				w = red
			}
			if got := pixel(img, x, y); got != w {
				t.Errorf("cell 0 pixel (%d,%d) = %v, want %v", x, y, got, w)
			}
			if got := pixel(img, 3+x, y); got != blue {
				t.Errorf("cell 1 pixel (%d,%d) = %v", x, y, got)
			}
			if got := pixel(img, 6+x, y); got != bg {
				t.Errorf("nil cell pixel (%d,%d) = %v", x, y, got)
			}
		}
	}
	// Scale 2: a 2×1 tile becomes 4×2, pixel-replicated.
	two := image.NewRGBA(image.Rect(0, 0, 2, 1))
	two.SetRGBA(0, 0, red)
	two.SetRGBA(1, 0, blue)
	img, _ = Grid([]image.Image{two}, GridOptions{Scale: 2})
	if img.Bounds() != image.Rect(0, 0, 4, 2) || pixel(img, 1, 1) != red || pixel(img, 2, 0) != blue {
		t.Errorf("scaled tile wrong: %v", img.Bounds())
	}
	// Tiles whose bounds do not start at (0, 0).
	sub := solid(4, 4, red).SubImage(image.Rect(2, 2, 3, 3))
	img, _ = Grid([]image.Image{sub}, GridOptions{Pad: 1, Background: bg})
	if img.Bounds() != image.Rect(0, 0, 3, 3) || pixel(img, 1, 1) != red {
		t.Errorf("sub-image tile wrong")
	}
}

func TestGridCompact(t *testing.T) {
	a, b, c, d := rgba(255, 0, 0), rgba(0, 255, 0), rgba(0, 0, 255), rgba(255, 255, 0)
	bg := rgba(0, 0, 0)
	tiles := []image.Image{solid(1, 1, a), solid(3, 2, b), solid(2, 3, c), solid(1, 1, d)}
	// Uniform: cells 3×3 → 1+3+1+3+1 = 9 square.
	img, err := Grid(tiles, GridOptions{Cols: 2, Pad: 1, Background: bg})
	if err != nil || img.Bounds() != image.Rect(0, 0, 9, 9) {
		t.Fatalf("uniform bounds %v, %v", img.Bounds(), err)
	}
	// Compact: columns 2 and 3 wide, rows 2 and 3 tall → 8×8.
	img, err = Grid(tiles, GridOptions{Cols: 2, Pad: 1, Background: bg, Compact: true})
	if err != nil || img.Bounds() != image.Rect(0, 0, 8, 8) {
		t.Fatalf("compact bounds %v, %v", img.Bounds(), err)
	}
	want := map[image.Point]color.RGBA{{1, 1}: a, {4, 1}: b, {6, 2}: b, {1, 4}: c, {2, 6}: c, {5, 5}: d}
	for p, w := range want {
		if got := pixel(img, p.X, p.Y); got != w {
			t.Errorf("compact pixel %v = %v, want %v", p, got, w)
		}
	}
	ink := 0
	for _, v := range img.Pix {
		if v != 0 && v != 255 {
			t.Fatalf("unexpected channel value %d", v)
		}
	}
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			if pixel(img, x, y) != bg {
				ink++
			}
		}
	}
	if ink != 1+6+6+1 {
		t.Errorf("compact grid has %d tile pixels, want 14", ink)
	}
}

func TestGridCaptionsAndTitle(t *testing.T) {
	bg := rgba(255, 255, 255)
	tiles := []image.Image{solid(4, 4, rgba(255, 0, 0)), solid(4, 4, rgba(0, 0, 255))}
	img, err := Grid(tiles, GridOptions{Cols: 2, Pad: 2, Captions: []string{"ab", ""}})
	if err != nil {
		t.Fatal(err)
	}
	// Small tiles get the smallest caption size (11 px).
	capFace := faceAt(false, captionPx(4))
	cw, chh := max(4, capFace.width("ab")), 4+2+capFace.height
	if img.Bounds() != image.Rect(0, 0, 2+cw+2+cw+2, 2+chh+2) {
		t.Fatalf("bounds %v, want cells %d×%d", img.Bounds(), cw, chh)
	}
	// Tile 0 centred in its cell.
	tx := 2 + (cw-4)/2
	if pixel(img, tx, 2) != rgba(255, 0, 0) || pixel(img, tx-1, 2) != bg {
		t.Errorf("captioned tile not centred")
	}
	ink := func(x0, y0, x1, y1 int) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if pixel(img, x, y) != bg {
					n++
				}
			}
		}
		return n
	}
	if n := ink(2, 8, 2+cw, 2+chh); n == 0 {
		t.Errorf("caption 'ab' drew nothing")
	}
	if n := ink(4+cw, 8, 4+2*cw, 2+chh); n != 0 {
		t.Errorf("empty caption drew %d pixels", n)
	}
	// A long caption is cut with an ellipsis to the 16-character cap and never
	// widens the cell beyond it.
	img, _ = Grid(tiles[:1], GridOptions{Captions: []string{strings.Repeat("x", 40)}})
	if img.Bounds().Dx() != 16*capFace.em() {
		t.Errorf("long caption width %d, want %d", img.Bounds().Dx(), 16*capFace.em())
	}
	if s := capFace.fit(strings.Repeat("x", 40), 16*capFace.em()); !strings.HasSuffix(s, "…") || capFace.width(s) > 16*capFace.em() {
		t.Errorf("fitted caption %q (%d px)", s, capFace.width(s))
	}
	// Title adds a line and a 4 px gap and widens the image to fit (Pad 0 → 2 px margins).
	img, _ = Grid(tiles[:1], GridOptions{Title: "Layer conv1"})
	tf := faceAt(true, captionPx(4)+3)
	if want := image.Rect(0, 0, tf.width("Layer conv1")+4, tf.height+4+4); img.Bounds() != want {
		t.Errorf("title bounds %v, want %v", img.Bounds(), want)
	}
	// Tile centred horizontally under the wider title.
	if pixel(img, (img.Bounds().Dx()-4)/2, tf.height+4) != rgba(255, 0, 0) {
		t.Errorf("tile not centred under title")
	}
	// Dark background → white text by default.
	img, _ = Grid(tiles[:1], GridOptions{Captions: []string{"W"}, Background: rgba(0, 0, 0)})
	found := false
	for _, v := range img.Pix {
		if v == 255 {
			found = true
		}
	}
	if !found {
		t.Errorf("no white caption on black background")
	}
	for name, opts := range map[string]GridOptions{
		"too many captions": {Captions: []string{"a", "b", "c"}},
		"negative pad":      {Pad: -1},
		"negative cols":     {Cols: -2},
	} {
		if _, err := Grid(tiles, opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Grid(nil, GridOptions{}); err == nil {
		t.Errorf("no tiles: no error")
	}
	if _, err := Grid([]image.Image{nil}, GridOptions{}); err == nil {
		t.Errorf("only nil tiles: no error")
	}
}

func TestUpscaleNearest(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 2, 1))
	src.SetRGBA(0, 0, rgba(1, 2, 3))
	src.SetRGBA(1, 0, rgba(4, 5, 6))
	got, err := UpscaleNearest(src, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != image.Rect(0, 0, 6, 3) || pixel(got, 2, 2) != rgba(1, 2, 3) || pixel(got, 3, 0) != rgba(4, 5, 6) {
		t.Errorf("UpscaleNearest wrong: %v", got.Bounds())
	}
	if _, err := UpscaleNearest(src, 0); err == nil {
		t.Errorf("factor 0: no error")
	}
	if _, err := UpscaleNearest(nil, 2); err == nil {
		t.Errorf("nil: no error")
	}
	if _, err := UpscaleNearest(src, 1<<20); err == nil {
		t.Errorf("huge factor: no error")
	}
}

func TestColorbar(t *testing.T) {
	r := Range{Min: -2, Max: 2}
	img, err := Colorbar(RdBuR, r, 200, 60, "saliency")
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 200, 60) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	// Bar: frame [4,196)×[19, 60−17=43); gradient columns 5..194 (n = 190).
	if got := pixel(img, 5, 30); got != RdBuR.At(0) {
		t.Errorf("left end %v, want %v", got, RdBuR.At(0))
	}
	if got := pixel(img, 194, 30); got != RdBuR.At(1) {
		t.Errorf("right end %v, want %v", got, RdBuR.At(1))
	}
	if got := pixel(img, 4, 30); got != rgba(150, 150, 150) {
		t.Errorf("frame %v", got)
	}
	// Text: label above the bar, tick labels below, on white otherwise.
	white := rgba(255, 255, 255)
	inkIn := func(x0, y0, x1, y1 int) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if pixel(img, x, y) != white {
					n++
				}
			}
		}
		return n
	}
	if inkIn(0, 0, 200, 18) == 0 || inkIn(0, 46, 40, 60) == 0 || inkIn(160, 46, 200, 60) == 0 || inkIn(80, 46, 120, 60) == 0 {
		t.Errorf("missing label or tick labels")
	}
	// Without a label the bar starts at the top margin; degenerate ranges are allowed.
	img, err = Colorbar(Viridis, Range{Min: 5, Max: 5}, 60, 30, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pixel(img, 5, 5); got != Viridis.At(0) {
		t.Errorf("no-label bar top %v", got)
	}
	for name, f := range map[string]func() error{
		"too short":  func() error { _, err := Colorbar(Viridis, r, 200, 24, ""); return err },
		"too narrow": func() error { _, err := Colorbar(Viridis, Range{Min: -123.4, Max: 5678}, 40, 40, ""); return err },
		"bad range":  func() error { _, err := Colorbar(Viridis, Range{Min: 1, Max: 0}, 200, 40, ""); return err },
		"zero cmap":  func() error { _, err := Colorbar(Colormap{}, r, 200, 40, ""); return err },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPNG(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	src.SetRGBA(2, 1, rgba(10, 20, 30))
	data, err := EncodePNG(src)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := dec.At(2, 1).RGBA(); r>>8 != 10 || g>>8 != 20 || b>>8 != 30 {
		t.Errorf("round trip lost pixel")
	}
	uri, err := DataURI(src)
	if err != nil || !strings.HasPrefix(uri, "data:image/png;base64,") {
		t.Fatalf("DataURI = %.40q, %v", uri, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(uri, "data:image/png;base64,"))
	if err != nil || !bytes.Equal(raw, data) {
		t.Errorf("DataURI payload differs from EncodePNG")
	}
	path := filepath.Join(t.TempDir(), "x.png")
	if err := WritePNG(path, src); err != nil {
		t.Fatal(err)
	}
	if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, data) {
		t.Errorf("WritePNG content differs")
	}
	if _, err := EncodePNG(nil); err == nil {
		t.Errorf("nil: no error")
	}
	if _, err := DataURI(image.NewRGBA(image.Rectangle{})); err == nil {
		t.Errorf("empty: no error")
	}
	if err := WritePNG(filepath.Join(t.TempDir(), "no", "such", "dir.png"), src); err == nil {
		t.Errorf("bad path: no error")
	}
}

func TestHTML(t *testing.T) {
	tile := solid(4, 4, rgba(1, 2, 3))
	h := NewHTML().
		Heading(9, "Layer <conv1>").
		Paragraph("a & b\nnext").
		Image(tile, "kernel \"0\"", 64).
		Image(solid(100, 10, rgba(0, 0, 0)), "", 0).
		Figure([]FigureItem{{Image: tile, Caption: "c<1>", WidthPx: 32}, {Image: tile}}, FigureOptions{Title: "maps & more", Pixelated: true}).
		Table([]string{"name", "value"}, [][]string{{"<b>", "1.5"}, {"short"}}).
		Warning("model <untrusted> weights")
	if err := h.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
	frag := h.String()
	for _, want := range []string{
		`<h6 style="margin:14px 0 6px">Layer &lt;conv1&gt;</h6>`,
		`<p style="margin:6px 0">a &amp; b<br>next</p>`,
		`alt="kernel &#34;0&#34;"`,
		`width="64"`,
		"image-rendering:pixelated",
		"flex-wrap:wrap",
		"maps &amp; more",
		"<figcaption", "c&lt;1&gt;",
		"<th style=", ">name</th>",
		">&lt;b&gt;</td>",
		"text-align:right;font-variant-numeric:tabular-nums\">1.5</td>",
		`role="alert"`, "#fff3cd", "model &lt;untrusted&gt; weights",
		"data:image/png;base64,",
	} {
		if !strings.Contains(frag, want) {
			t.Errorf("fragment lacks %q", want)
		}
	}
	if !strings.HasPrefix(frag, `<div class="cnnviz"`) || strings.Contains(frag, "<b>") || strings.Contains(frag, "<untrusted>") {
		t.Errorf("fragment not wrapped or not escaped")
	}
	// Ragged row padded to 2 cells: "short" row has 2 <td>.
	if i := strings.Index(frag, ">short</td>"); i < 0 || !strings.HasPrefix(frag[i+len(">short</td>"):], "<td") {
		t.Errorf("ragged row not padded")
	}
	// The natural-size image is not pixelated: exactly 1 Image + 2 Figure items carry it.
	if n := strings.Count(frag, "image-rendering:pixelated"); n != 3 {
		t.Errorf("pixelated count %d, want 3", n)
	}
	page := h.Page("Report <1>")
	for _, want := range []string{"<!DOCTYPE html>", `<meta charset="utf-8">`, "<title>Report &lt;1&gt;</title>", "<style>", frag, "</html>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %.60q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<script", "<link", "@import", "//cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("page not self-contained: contains %q", banned)
		}
	}
	// Failures are visible and reported, not panics.
	bad := NewHTML().Image(nil, "missing", 10).Figure([]FigureItem{{Image: tile, WidthPx: -1}}, FigureOptions{}).Raw("<hr>")
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "nil image") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Err = %v", err)
	}
	if s := bad.String(); strings.Count(s, `role="alert"`) != 2 || !strings.Contains(s, "<hr>") {
		t.Errorf("failures not shown: %s", s)
	}
	var zero HTML
	if s := zero.Heading(1, "x").String(); !strings.Contains(s, "<h1") {
		t.Errorf("zero HTML unusable")
	}
}
