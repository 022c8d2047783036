package vizkit

import (
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
)

// A VGG11 a quarter wide has classifier weights split into several row
// chunks (classifier.0: 6272×1024 in 7 chunks, classifier.3 in 2): the Go
// lowering (gathered im2col, chunked linear layers with their custom
// gradient) and the native one (graph.Convolve, one product per linear
// layer) agree on logits, activations and gradients, for batches that are
// and are not multiples of the chunked product's 4-row groups.
func TestChunkedClassifierLoweringsAgree(t *testing.T) {
	m, err := vgg.NewRandom("vgg11", 10, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if n := len(m.ParamNames()); n <= 2*len(m.NamesOfKind(models.Conv2d))+6 {
		t.Fatalf("expected chunked classifier weights, got %d parameters: %v", n, m.ParamNames())
	}
	im2col, err := NewExplainer(m, Options{Lowering: models.LoweringIm2Col})
	if err != nil {
		t.Fatal(err)
	}
	defer im2col.Close()
	native, err := NewExplainer(m, Options{Lowering: models.LoweringNative})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	for _, n := range []int{1, 5} {
		x := randomArray(uint64(n), n, 3, 32, 32)
		req := Request{Taps: []string{"features.20", "classifier.1", "classifier.4"}, GradTaps: []string{"features.17", "classifier.2"},
			GradInput: true, Target: Class(3)}
		a, err := im2col.Run(x, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := native.Run(x, req)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "logits", a.Logits, b.Logits, 1e-4)
		for _, l := range req.Taps {
			assertClose(t, l, a.Acts[l], b.Acts[l], 1e-4)
		}
		for _, l := range req.GradTaps {
			assertClose(t, "grad "+l, a.Grads[l], b.Grads[l], 1e-4)
		}
		assertClose(t, "input grad", a.InputGrad, b.InputGrad, 1e-4)
	}
}

// Score-CAM evaluates each distinct activation map once (all-zero maps of
// dead channels, exact duplicates) and batches masked inputs across examples
// with one class per row: its weights equal a brute-force evaluation of every
// channel of every example on its own.
func TestScoreCAMDedupMatchesBruteForce(t *testing.T) {
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(21, 3, 3, 64, 64)
	classes := []int{3, 5, 3}
	var evals int
	r, err := ex.CAM(x, CAMOptions{Method: "scorecam", Target: Class(classes...), BatchSize: 5,
		Progress: func(p CAMProgress) { evals = p.Done }})
	if err != nil {
		t.Fatal(err)
	}
	layer := r.Layers[0]
	acts, err := ex.Run(x, Request{Taps: []string{layer}, Target: Class(classes...)})
	if err != nil {
		t.Fatal(err)
	}
	a := acts.Acts[layer]
	n, c, h, w := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	if evals != n*c {
		t.Fatalf("progress ended at %d of %d", evals, n*c)
	}
	distinct := 0
	for i := 0; i < n; i++ {
		for k, src := range distinctMaps(a.Index(i).Data, c, h*w) {
			if src == k {
				distinct++
			}
		}
	}
	if distinct == n*c {
		t.Fatalf("no duplicate maps among %d: the test needs dead channels", n*c)
	}
	t.Logf("%d distinct maps of %d", distinct, n*c)
	want := NewArray(n, c)
	for i := 0; i < n; i++ {
		xi := x.Index(i)
		scores := make([]float64, c)
		for k := 0; k < c; k++ {
			mask, err := scoreCAMMask(a.Index(i).Data[k*h*w:(k+1)*h*w], h, w, 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			xm := NewArray(1, 3, 64, 64)
			for q := 0; q < 3; q++ {
				for p, m := range mask {
					xm.Data[q*64*64+p] = xi.Data[q*64*64+p] * m
				}
			}
			res, err := ex.Run(xm, Request{Target: Class(classes[i])})
			if err != nil {
				t.Fatal(err)
			}
			scores[k] = float64(res.Scores[0])
		}
		softmaxInto(want.Index(i).Data, scores)
	}
	assertClose(t, "Score-CAM weights", r.Weights[layer], want, 1e-5)
}

// TestScoreCAMMemoryStaysFlat runs 100 Score-CAM calls (each 2 batches of
// masked inputs plus the activations run) on a small VGG: after warm-up,
// resident memory stays within 10% and the two executables stay cached.
func TestScoreCAMMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if rssBytes() == 0 {
		t.Skip("no /proc/self/status")
	}
	ex := goldenExplainer(t, "tinyvgg11.safetensors")
	x := randomArray(8, 2, 3, 32, 32)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := ex.CAM(x, CAMOptions{Method: "scorecam", Target: Class(i%10, (i+3)%10)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(10)
	before := settledRSS()
	run(100)
	after := settledRSS()
	growth := float64(after-before) / float64(before)
	t.Logf("RSS after warm-up %.1f MB, after 100 more Score-CAM calls %.1f MB (%+.1f%%)", float64(before)/1e6, float64(after)/1e6, 100*growth)
	if growth > 0.10 {
		t.Fatalf("resident memory grew %.1f%% over 100 Score-CAM calls", 100*growth)
	}
	if n := ex.NumExecutables(); n != 2 {
		t.Fatalf("%d executables cached for Score-CAM (want 2: activations, masked batch)", n)
	}
}

// TestCloseReleasesMemory: closing an Explainer drops its executables (later
// calls fail with a clear error), closing the model drops its parameters, and
// the memory comes back: five open–use–close cycles of a VGG11 a quarter wide
// (≈ 30 MB of parameters) leave the process where one cycle left it.
func TestCloseReleasesMemory(t *testing.T) {
	if rssBytes() == 0 {
		t.Skip("no /proc/self/status")
	}
	x := randomArray(2, 2, 3, 32, 32)
	cycle := func() {
		m, err := vgg.NewRandom("vgg11", 10, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := NewExplainer(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ex.CAM(x, CAMOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Saliency(x, SaliencyOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Run(x, Request{Target: Predicted()}); err != nil {
			t.Fatal(err)
		}
		if n := ex.NumExecutables(); n != 3 {
			t.Fatalf("%d executables cached, want 3", n)
		}
		ex.Close()
		if n := ex.NumExecutables(); n != 0 {
			t.Fatalf("%d executables left after Close", n)
		}
		if _, err := ex.Run(x, Request{Target: Predicted()}); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Run after Close: %v", err)
		}
		m.Close()
		if _, err := m.Params(ex.Backend()); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Params after Close: %v", err)
		}
		if _, _, err := m.Weight("classifier.0"); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Weight after Close: %v", err)
		}
	}
	base := settledRSS()
	cycle()
	one := settledRSS()
	for i := 0; i < 4; i++ {
		cycle()
	}
	five := settledRSS()
	t.Logf("RSS before %.1f MB, after 1 cycle %.1f MB, after 5 cycles %.1f MB", float64(base)/1e6, float64(one)/1e6, float64(five)/1e6)
	// A leak of the parameters alone would add ≈ 120 MB; allocator noise on a
	// ~40 MB process is a few MB (once 3.8 MB, 10.5%, in a full package run).
	if grew := float64(five) - float64(one); grew > max(0.10*float64(one), 16e6) {
		t.Fatalf("resident memory grew %.1f MB (%.1f%%) over 4 more open–use–close cycles (each allocates ≈ 30 MB of parameters)", grew/1e6, 100*grew/float64(one))
	}
}
