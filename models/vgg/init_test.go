package vgg

import (
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/models"
)

// NewRandom gives the same parameters for a seed whatever GOMAXPROCS is, and
// RandomWeights are exactly its weights in PyTorch layout.
func TestNewRandomDeterministic(t *testing.T) {
	var runs [][][]float32
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		m, err := NewRandom("vgg11_bn", 10, 4, 5)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		var flat [][]float32
		for _, l := range m.Layers() {
			if l.Kind == models.Conv2d || l.Kind == models.Linear {
				w, b, err := m.Weight(l.Name)
				if err != nil {
					t.Fatal(err)
				}
				flat = append(flat, w.Data, b)
			}
		}
		m.Close()
		runs = append(runs, flat)
	}
	for i := range runs[0] {
		if !slices.Equal(runs[0][i], runs[1][i]) {
			t.Fatalf("parameter %d differs between GOMAXPROCS 1 and 2", i)
		}
	}
	cfg, _ := StandardConfig("vgg11_bn", 10, 4)
	w, err := RandomWeights(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, l := range cfg.Layers() {
		if l.Kind == models.Conv2d || l.Kind == models.Linear {
			if !slices.Equal(w.Tensors[l.Name+".weight"].Data, runs[0][i]) || !slices.Equal(w.Tensors[l.Name+".bias"].Data, runs[0][i+1]) {
				t.Fatalf("RandomWeights %s differs from NewRandom's", l.Name)
			}
			i += 2
		}
	}
	other, err := RandomWeights(cfg, 6)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(other.Tensors["features.0.weight"].Data, w.Tensors["features.0.weight"].Data) {
		t.Fatal("seeds 5 and 6 give the same weights")
	}
	// Loading RandomWeights gives NewRandom's graph parameters, BN included.
	m, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := NewRandom("vgg11_bn", 10, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, l := range cfg.Layers() {
		if l.Kind == models.BatchNorm2d {
			a, _ := m.ModuleBias(l.Name)
			b, _ := r.ModuleBias(l.Name)
			if !slices.Equal(a, b) {
				t.Fatalf("%s shift differs", l.Name)
			}
		}
	}
}

// Full-size VGG11's random layers follow torchvision's rule: kaiming normal
// (fan_out) convolutions, N(0, 0.01²) linear layers, zero biases.
func TestNewRandomDistributions(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size VGG11")
	}
	m, err := NewRandom("vgg11", 1000, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range []struct {
		layer string
		std   float64
	}{{"features.0", math.Sqrt(2 / float64(64*9))}, {"features.18", math.Sqrt(2 / float64(512*9))}, {"classifier.3", 0.01}, {"classifier.0", 0.01}} {
		// Moments do not depend on the layout: read the graph parameters
		// (HWIO kernels, [out,in] linear weights) directly.
		f, _, err := m.set.Flat(c.layer + ".weight")
		if err != nil {
			t.Fatal(err)
		}
		var n, sum, sq float64 // Mean ≈ 0: one pass in float64 is exact enough.
		for _, v := range f {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n = float64(len(f))
		if l, _ := m.Layer(c.layer); int(n) != l.In*l.Out*map[bool]int{true: 9, false: 1}[l.Kind == models.Conv2d] {
			t.Fatalf("%s: %g weights", c.layer, n)
		}
		b, _, err := m.set.Flat(c.layer + ".bias")
		if err != nil {
			t.Fatal(err)
		}
		mean := sum / n
		sq = sq - n*mean*mean
		std := math.Sqrt(sq / n)
		if math.Abs(mean) > 5*c.std/math.Sqrt(n) || math.Abs(std-c.std) > 5*c.std/math.Sqrt(2*n)+1e-4*c.std {
			t.Errorf("%s: mean %g std %g over %g values; want 0, %g", c.layer, mean, std, n, c.std)
		}
		for _, v := range b {
			if v != 0 {
				t.Fatalf("%s: non-zero bias %g", c.layer, v)
			}
		}
	}
}
