package custom_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/custom"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestParamsGradCAMAnalytic: for logits = mean_hw(A) · W with A the
// (named) input, Grad-CAM's weights are W[c,k]/(H·W), so the raw map is
// Σ_c W[c,k]·A_c/(H·W) — checked against the engine on a 2-channel input.
func TestParamsGradCAMAnalytic(t *testing.T) {
	const c, k, h, w = 2, 3, 4, 5
	wt := []float32{0.5, -1, 2, 1.5, 0.25, -0.75} // [C,K]
	net, err := custom.New(custom.Spec{
		Arch: "analytic", InputChannels: c, InputSize: 8,
		Params: map[string]*tensors.Tensor{"fc.weight": tensors.FromFlatDataAndDimensions(wt, c, k)},
		Build: func(s *models.Scope, x *graph.Node) *graph.Node {
			a := s.Out("feat", models.Kind("Identity"), x)
			p := s.Out("pool", models.GlobalAvgPool, models.GlobalMeanPool(a))
			return s.Out("fc", models.Linear, graph.Dot(p, s.Param("fc.weight")).Product())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if net.NumClasses() != k || len(net.Layers()) != 3 {
		t.Fatalf("NumClasses %d, layers %v", net.NumClasses(), net.Layers())
	}
	ex, err := engine.NewExplainer(net, engine.Options{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := engine.NewArray(1, c, h, w)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i)*0.7)) + 0.3
	}
	const class = 2
	cam, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam", Layers: []string{"feat"}, Target: engine.Class(class)})
	if err != nil {
		t.Fatal(err)
	}
	raw := cam.Raw["feat"]
	for p := 0; p < h*w; p++ {
		want := 0.0
		for ch := 0; ch < c; ch++ {
			want += float64(wt[ch*k+class]) * float64(x.Data[ch*h*w+p]) / (h * w)
		}
		if d := math.Abs(float64(raw.Data[p]) - want); d > 1e-6 {
			t.Fatalf("raw map at %d = %v, want %v", p, raw.Data[p], want)
		}
	}
	wf, _, err := net.Weight("fc")
	if err != nil || wf.Shape[0] != k || wf.Shape[1] != c || wf.Data[1] != wt[1*k+0] {
		t.Errorf("Weight(fc) = %v %v, %v", wf.Shape, wf.Data, err)
	}
	if err := net.CheckInput([]int{1, 3, 8, 8}); err == nil || !strings.Contains(err.Error(), "(N,2,H,W)") {
		t.Errorf("CheckInput with 3 channels: %v", err)
	}
}

func TestSpecErrors(t *testing.T) {
	if _, err := custom.New(custom.Spec{}); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("empty spec: %v", err)
	}
	_, err := custom.New(custom.Spec{Build: func(s *models.Scope, x *graph.Node) *graph.Node { return graph.ReduceMean(x, 1, 2) }})
	if err == nil || !strings.Contains(err.Error(), "names no outputs") {
		t.Errorf("no named outputs: %v", err)
	}
	_, err = custom.New(custom.Spec{Build: func(s *models.Scope, x *graph.Node) *graph.Node { return s.Param("missing") }})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing parameter: %v", err)
	}
}
