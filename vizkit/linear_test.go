package vizkit

import (
	"fmt"
	"math"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// metricLinearNet is a toy model with logits (Σ w·x, 0) for inputs
// (N,3,H,W): every perturbation metric has a closed form on it.
type metricLinearNet struct {
	h, w int
	wt   []float32 // (3,H,W)
}

func (m *metricLinearNet) Arch() string    { return "linear-toy" }
func (m *metricLinearNet) NumClasses() int { return 2 }
func (m *metricLinearNet) Close()          {}
func (m *metricLinearNet) Layers() []models.Layer {
	return []models.Layer{{Name: "fc", Kind: models.Linear, In: 3 * m.h * m.w, Out: 2, Params: 3 * m.h * m.w}}
}
func (m *metricLinearNet) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 || dims[2] != m.h || dims[3] != m.w {
		return fmt.Errorf("linear-toy expects (N,3,%d,%d), got %v", m.h, m.w, dims)
	}
	return nil
}
func (m *metricLinearNet) Params(compute.Backend) ([]*tensors.Tensor, error) { return nil, nil }
func (m *metricLinearNet) Weight(string) (*weights.Tensor, []float32, error) {
	return nil, nil, fmt.Errorf("no weights")
}
func (m *metricLinearNet) ParamNames() []string { return nil }
func (m *metricLinearNet) ParamShapes() [][]int { return nil }
func (m *metricLinearNet) Build(sc *models.Scope, x *graph.Node) *graph.Node {
	n := x.Shape().Dimensions[0]
	flat := graph.Reshape(graph.TransposeAllDims(x, 0, 3, 1, 2), n, 3*m.h*m.w)
	wcol := graph.Reshape(graph.Const(x.Graph(), m.wt), 3*m.h*m.w, 1)
	s := graph.Dot(flat, wcol).Product() // (N,1)
	out := graph.Concatenate([]*graph.Node{s, graph.ZerosLike(s)}, 1)
	return sc.Out("fc", models.Linear, out)
}

// f is the toy's class-0 logit on one (3,H,W) image.
func (m *metricLinearNet) f(img []float32) float64 {
	s := 0.0
	for i, v := range img {
		s += float64(m.wt[i]) * float64(v)
	}
	return s
}

func newLinearExplainer(t *testing.T, h, w int, wt []float32) (*engine.Explainer, *metricLinearNet) {
	t.Helper()
	net := &metricLinearNet{h: h, w: w, wt: wt}
	ex, err := engine.NewExplainer(net, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.Close)
	return ex, net
}

func approx(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Fatalf("%s = %.6g, want %.6g (±%g)", what, got, want, tol)
	}
}
