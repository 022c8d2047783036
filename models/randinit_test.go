package models

import (
	"math"
	"runtime"
	"slices"
	"testing"
)

// The fillers' values depend on (seed, stream, index) only: not on
// GOMAXPROCS, and not on the slice length beyond the index.
func TestFillRandomDeterministic(t *testing.T) {
	n := 3*RandomChunk + 123
	for _, fill := range []struct {
		name string
		f    func([]float32, float64, uint64, uint64)
	}{{"normal", FillNormal}, {"uniform", FillUniform}} {
		var runs [][]float32
		for _, procs := range []int{1, 2, 5} {
			old := runtime.GOMAXPROCS(procs)
			d := make([]float32, n)
			fill.f(d, 0.5, 42, 7)
			runtime.GOMAXPROCS(old)
			runs = append(runs, d)
		}
		for i := 1; i < len(runs); i++ {
			if !slices.Equal(runs[0], runs[i]) {
				t.Fatalf("%s: values depend on GOMAXPROCS", fill.name)
			}
		}
		short := make([]float32, RandomChunk+5)
		fill.f(short, 0.5, 42, 7)
		if !slices.Equal(short, runs[0][:len(short)]) {
			t.Fatalf("%s: a prefix differs from the longer fill", fill.name)
		}
		other := make([]float32, n)
		fill.f(other, 0.5, 42, 8)
		same := 0
		for i := range other {
			if other[i] == runs[0][i] {
				same++
			}
		}
		if same > n/1000 {
			t.Fatalf("%s: streams 7 and 8 agree on %d of %d values", fill.name, same, n)
		}
		// Chunks of one stream are not copies of each other.
		if slices.Equal(runs[0][:64], runs[0][RandomChunk:RandomChunk+64]) {
			t.Fatalf("%s: chunk 1 repeats chunk 0", fill.name)
		}
	}
}

// moments returns the mean and standard deviation of d.
func moments(d []float32) (mean, std float64) {
	for _, v := range d {
		mean += float64(v)
	}
	mean /= float64(len(d))
	for _, v := range d {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(d)))
}

// Moments of a large draw match the distribution: kaiming normal (fan_out)
// of a 512→512 3×3 convolution, and U(−b, b) (std b/√3).
func TestFillRandomDistributions(t *testing.T) {
	n := 512 * 512 * 9
	d := make([]float32, n)
	std := math.Sqrt(2 / float64(512*9))
	FillNormal(d, std, 1, 1)
	mean, s := moments(d)
	// The sample mean's standard error is std/√n; the sample std's is
	// about std/√(2n). Allow 5 standard errors.
	if math.Abs(mean) > 5*std/math.Sqrt(float64(n)) || math.Abs(s-std) > 5*std/math.Sqrt(2*float64(n)) {
		t.Fatalf("normal: mean %g, std %g; want 0, %g", mean, s, std)
	}
	tails := 0
	for _, v := range d {
		if math.Abs(float64(v)) > 3*std {
			tails++
		}
	}
	// P(|Z| > 3) = 0.0027: the ziggurat's tails must be there.
	if p := float64(tails) / float64(n); math.Abs(p-0.0027) > 0.0004 {
		t.Fatalf("normal: %.5f of values beyond 3σ, want 0.0027", p)
	}
	b := 1 / math.Sqrt(4096)
	FillUniform(d, b, 1, 2)
	mean, s = moments(d)
	lo, hi := slices.Min(d), slices.Max(d)
	if math.Abs(mean) > 5*b/math.Sqrt(3*float64(n)) || math.Abs(s-b/math.Sqrt(3)) > 0.002*b || float64(lo) < -b || float64(hi) > b || float64(hi) < 0.999*b {
		t.Fatalf("uniform: mean %g, std %g, range [%g, %g]; want 0, %g, [−%g, %g]", mean, s, lo, hi, b/math.Sqrt(3), b, b)
	}
}
