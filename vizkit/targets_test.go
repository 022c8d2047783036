package vizkit

import (
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// The linear toy's outputs are (s, 0) with s = Σ w·x: every target below has
// a closed-form value and input gradient.
func TestTargetsBeyondLogits(t *testing.T) {
	const h, w = 2, 3
	wt := make([]float32, 3*h*w)
	x := engine.NewArray(2, 3, h, w)
	for i := range wt {
		wt[i] = float32(i%5) - 1.5
		x.Data[i] = float32(i%7) * 0.25
		x.Data[len(wt)+i] = -float32(i%3) * 0.5
	}
	ex, net := vtest.LinearExplainer(t, h, w, wt)
	s := []float64{net.F(x.Index(0).Data), net.F(x.Index(1).Data)}
	sign := func(v float64) float64 { return math.Copysign(1, v) }
	cases := []struct {
		target Target
		want   func(s float64) float64
		dwant  float64 // d target / d s
	}{
		{engine.BinaryTarget(true), func(s float64) float64 { return s }, 1},
		{engine.BinaryTarget(false), func(s float64) float64 { return -s }, -1},
		{engine.RegressionTarget(0, engine.RegressionValue), func(s float64) float64 { return s }, 1},
		{engine.RegressionTarget(0, engine.RegressionDecrease), func(s float64) float64 { return -s }, -1},
		{engine.RegressionTarget(1, engine.RegressionIncrease), func(float64) float64 { return 0 }, 0},
		{engine.ClassSetTarget(0, 1), func(s float64) float64 { return s }, 1},
		{engine.SimilarityTarget([]float32{3, 4}), func(s float64) float64 { return sign(s) * 3 / 5 }, 0},
	}
	for _, c := range cases {
		res, err := ex.Run(x, engine.Request{Target: c.target, GradInput: true})
		if err != nil {
			t.Fatalf("%s: %v", c.target.Name, err)
		}
		for i := range s {
			vtest.Approx(t, c.target.Name+" value", float64(res.Scores[i]), c.want(s[i]), 1e-4*(1+math.Abs(s[i])))
			for j, g := range res.InputGrad.Index(i).Data {
				vtest.Approx(t, c.target.Name+" gradient", float64(g), c.dwant*float64(wt[j]), 1e-4)
			}
		}
	}
	for _, c := range []struct {
		target Target
		msg    string
	}{
		{engine.ClassSetTarget(0, 5), "class 5 is out of range for a network with 2 outputs"},
		{engine.ClassSetTarget(), "the class set is empty"},
		{engine.SimilarityTarget([]float32{1, 2, 3}), "needs a network output of 3 values, the network gives 2"},
		{engine.SimilarityTarget([]float32{0, 0}), "zero or not finite"},
		{engine.RegressionTarget(4, engine.RegressionValue), "needs output 4"},
	} {
		_, err := ex.Run(x, engine.Request{Target: c.target})
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one containing %q", c.target.Name, err, c.msg)
		}
	}
}
