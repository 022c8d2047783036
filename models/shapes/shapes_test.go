package shapes

import (
	"image"
	"math"
	"strings"
	"testing"
)

func TestDeterministicAndBalanced(t *testing.T) {
	a, err := MakeBatch(Config{}, 7, 100, 25)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		s, err := Generate(Config{}, 7, 100+i)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != (100+i)%NumClasses || a.Labels[i] != s.Label {
			t.Fatalf("index %d: label %d / %d", 100+i, s.Label, a.Labels[i])
		}
		for j, v := range s.Image {
			if a.Samples[i].Image[j] != v {
				t.Fatalf("index %d: the batch and Generate differ at %d", 100+i, j)
			}
			want := (v - Mean[j/(64*64)]) / Std[j/(64*64)]
			if a.Images[i*3*64*64+j] != want {
				t.Fatalf("index %d: normalised value %g, want %g", 100+i, a.Images[i*3*64*64+j], want)
			}
		}
	}
	b, _ := Generate(Config{}, 8, 100)
	same := true
	for j, v := range b.Image {
		same = same && a.Samples[0].Image[j] == v
	}
	if same {
		t.Fatal("seeds 7 and 8 gave the same image")
	}
}

// TestGroundTruth checks every sample's mask and box against the geometry:
// the box is the mask's tight bounding box, inside the image; the mask area
// matches the shape's analytic area; pixel values are in [0,1].
func TestGroundTruth(t *testing.T) {
	cfg := DefaultConfig()
	area := map[string]func(r float64) float64{
		"circle":   func(r float64) float64 { return math.Pi * r * r },
		"square":   func(r float64) float64 { return 2 * r * r },
		"triangle": func(r float64) float64 { return 3 * math.Sqrt(3) / 4 * r * r },
		"cross": func(r float64) float64 {
			a := r / math.Sqrt(1.09)
			return 2*(2*a*0.6*a) - (0.6*a)*(0.6*a)
		},
		"ring": func(r float64) float64 { return math.Pi * r * r * (1 - 0.55*0.55) },
	}
	lowContrast := 0
	for i := 0; i < 200; i++ {
		s, err := Generate(cfg, 3, i)
		if err != nil {
			t.Fatal(err)
		}
		n := s.Size
		if !s.Box.In(image.Rect(0, 0, n, n)) || s.Box.Empty() {
			t.Fatalf("sample %d: box %v outside the %d×%d image", i, s.Box, n, n)
		}
		cnt := 0
		tight := image.Rectangle{Min: image.Pt(n, n)}
		for p, m := range s.Mask {
			if m {
				cnt++
				tight = tight.Union(image.Rect(p%n, p/n, p%n+1, p/n+1))
			}
		}
		if tight != s.Box {
			t.Fatalf("sample %d: box %v, mask bounds %v", i, s.Box, tight)
		}
		want := area[s.Class()](s.Radius)
		if math.Abs(float64(cnt)-want) > 0.12*want+4 {
			t.Fatalf("sample %d (%s, r %.1f): mask of %d pixels, analytic area %.1f", i, s.Class(), s.Radius, cnt, want)
		}
		if s.Radius < cfg.MinRadius || s.Radius > cfg.MaxRadius || s.Angle != 0 {
			t.Fatalf("sample %d: radius %g, angle %g", i, s.Radius, s.Angle)
		}
		for _, v := range s.Image {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("sample %d: pixel value %g", i, v)
			}
		}
		// The object is visible: its mean luma differs from that of the
		// background pixels of its box grown by 3 px.
		var in, out float64
		var nin, nout int
		grown := s.Box.Inset(-3).Intersect(image.Rect(0, 0, n, n))
		for y := grown.Min.Y; y < grown.Max.Y; y++ {
			for x := grown.Min.X; x < grown.Max.X; x++ {
				p := y*n + x
				l := 0.299*float64(s.Image[p]) + 0.587*float64(s.Image[n*n+p]) + 0.114*float64(s.Image[2*n*n+p])
				if s.Mask[p] {
					in, nin = in+l, nin+1
				} else {
					out, nout = out+l, nout+1
				}
			}
		}
		if c := math.Abs(in/float64(nin) - out/float64(nout)); c < 0.12 {
			lowContrast++
		}
	}
	if lowContrast > 4 {
		t.Fatalf("%d of 200 objects have a luma contrast below 0.12 with their surroundings", lowContrast)
	}
	// Rotation option.
	s, _ := Generate(Config{MaxRotation: 180}, 3, 2)
	if s.Angle == 0 || math.Abs(s.Angle) > math.Pi {
		t.Fatalf("rotated sample angle %g", s.Angle)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Size: 16}, "at least 32"},
		{Config{MinRadius: 20, MaxRadius: 10}, "radii"},
		{Config{MaxRadius: 40}, "radii"},
		{Config{Noise: 2}, "Noise"},
		{Config{MaxRotation: 200}, "MaxRotation"},
	} {
		if _, err := Generate(c.cfg, 1, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := Generate(Config{}, 1, -1); err == nil {
		t.Error("negative index accepted")
	}
	if _, err := MakeBatch(Config{}, 1, 0, 0); err == nil {
		t.Error("empty batch accepted")
	}
	if m := BoxMask(image.Rect(-2, 1, 2, 3), 4, 4); !m[1*4+0] || !m[2*4+1] || m[0] || m[1*4+2] {
		t.Errorf("BoxMask %v", m)
	}
}
