package vizkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// compareRuns runs the same request on two explainers and checks every output
// agrees to 1e-4 relative.
func compareRuns(t *testing.T, a, b *engine.Explainer, what string) {
	x := vtest.LoadNPY(t, filepath.Join(goldenDir, "inputs", "input_b.npy"))
	req := engine.Request{Taps: []string{"features.3", "features.20", "classifier.1"}, GradTaps: []string{"features.19"}, GradInput: true, Target: engine.Class(3)}
	ra, err := a.Run(x, req)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Run(x, req)
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, what+" logits", rb.Logits, ra.Logits, 1e-4)
	for _, l := range req.Taps {
		vtest.AssertClose(t, what+" "+l, rb.Acts[l], ra.Acts[l], 1e-4)
	}
	vtest.AssertClose(t, what+" grad features.19", rb.Grads["features.19"], ra.Grads["features.19"], 1e-4)
	vtest.AssertClose(t, what+" input grad", rb.InputGrad, ra.InputGrad, 1e-4)
}

// The native convolution (what XLA uses), the Winograd lowerings and the
// im2col lowering (the Go backend's default) give the same results, gradients
// included.
func TestLoweringsAgree(t *testing.T) {
	m := vtest.GoldenModel(t, "tinyvgg11_bn.safetensors")
	defer m.Close()
	im2col, err := engine.NewExplainer(m, engine.Options{Lowering: models.LoweringIm2Col})
	if err != nil {
		t.Fatal(err)
	}
	defer im2col.Close()
	native, err := engine.NewExplainer(m, engine.Options{Lowering: models.LoweringNative})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	compareRuns(t, im2col, native, "native vs im2col")
	for _, l := range []models.Lowering{models.LoweringWinograd, models.LoweringWinograd4} {
		other, err := engine.NewExplainer(m, engine.Options{Lowering: l})
		if err != nil {
			t.Fatal(err)
		}
		compareRuns(t, im2col, other, l.String()+" vs im2col")
		other.Close()
	}
}

// TestXLAAgreesWithGo runs where an XLA PJRT plugin is installed (set
// CNNVIZ_TEST_XLA=xla:cpu or xla:cuda); elsewhere it is skipped.
func TestXLAAgreesWithGo(t *testing.T) {
	cfg := os.Getenv("CNNVIZ_TEST_XLA")
	if cfg == "" {
		t.Skip("set CNNVIZ_TEST_XLA=xla:cpu (or xla:cuda) where the XLA plugin is installed")
	}
	xb, err := backend.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	goModel := vtest.GoldenModel(t, "tinyvgg11_bn.safetensors")
	defer goModel.Close()
	xlaModel := vtest.GoldenModel(t, "tinyvgg11_bn.safetensors") // Parameters are bound to one backend.
	defer xlaModel.Close()
	g, err := engine.NewExplainer(goModel, engine.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x, err := engine.NewExplainer(xlaModel, engine.Options{BackendInstance: xb})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	compareRuns(t, g, x, cfg+" vs go")
}
