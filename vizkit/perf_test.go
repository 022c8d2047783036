package vizkit

import (
	"context"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// A VGG11 a quarter wide has classifier weights split into several row
// chunks once bound to the Go backend (classifier.0: 1024×6272 in 7
// chunks, classifier.3 in 2): the Go lowering (gathered im2col, chunked
// linear layers) and the native one (graph.Convolve, one product per linear
// layer) agree on logits, activations and gradients, for batches that are
// and are not multiples of the chunked product's 4-row groups.
func TestChunkedClassifierLoweringsAgree(t *testing.T) {
	m, err := vgg.NewRandom("vgg11", 10, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	im2col, err := engine.NewExplainer(m, engine.Options{Lowering: models.LoweringIm2Col})
	if err != nil {
		t.Fatal(err)
	}
	defer im2col.Close()
	// Bound to the Go backend: the linear weights are row chunks.
	if n := len(m.ParamNames()); n <= 2*len(m.NamesOfKind(models.Conv2d))+6 {
		t.Fatalf("expected chunked classifier weights, got %d parameters: %v", n, m.ParamNames())
	}
	native, err := engine.NewExplainer(m, engine.Options{Lowering: models.LoweringNative})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	for _, n := range []int{1, 5} {
		x := vtest.RandomArray(uint64(n), n, 3, 32, 32)
		req := engine.Request{Taps: []string{"features.20", "classifier.1", "classifier.4"}, GradTaps: []string{"features.17", "classifier.2"},
			GradInput: true, Target: engine.Class(3)}
		a, err := im2col.Run(x, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := native.Run(x, req)
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, "logits", a.Logits, b.Logits, 1e-4)
		for _, l := range req.Taps {
			vtest.AssertClose(t, l, a.Acts[l], b.Acts[l], 1e-4)
		}
		for _, l := range req.GradTaps {
			vtest.AssertClose(t, "grad "+l, a.Grads[l], b.Grads[l], 1e-4)
		}
		vtest.AssertClose(t, "input grad", a.InputGrad, b.InputGrad, 1e-4)
	}
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
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(8, 2, 3, 32, 32)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "scorecam", Target: engine.Class(i%10, (i+3)%10)}); err != nil {
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
	x := vtest.RandomArray(2, 2, 3, 32, 32)
	cycle := func() {
		m, err := vgg.NewRandom("vgg11", 10, 4, 3)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := engine.NewExplainer(m, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cam.Compute(context.Background(), ex, x, cam.Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Run(x, engine.Request{Target: engine.Predicted()}); err != nil {
			t.Fatal(err)
		}
		if n := ex.NumExecutables(); n != 3 {
			t.Fatalf("%d executables cached, want 3", n)
		}
		ex.Close()
		if n := ex.NumExecutables(); n != 0 {
			t.Fatalf("%d executables left after Close", n)
		}
		if _, err := ex.Run(x, engine.Request{Target: engine.Predicted()}); err == nil || !strings.Contains(err.Error(), "closed") {
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
