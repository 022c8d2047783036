package cam

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// A method added from outside through the WholeMap adapter runs through the
// shared pipeline: its raw map is exactly what its function returns (here
// the channel mean of the activations, computed independently from an engine
// tap), and it is offered as an engine attribution method under its name.
func TestWholeMapAdapterRegistered(t *testing.T) {
	mean := func(a, _ []float32, c, h, w int) []float32 {
		out := make([]float32, h*w)
		for ci := 0; ci < c; ci++ {
			for p := range out {
				out[p] += a[ci*h*w+p] / float32(c)
			}
		}
		return out
	}
	if err := Register(&WholeMap{Info{Name: "testchannelmean", Title: "Channel mean"}, mean}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(Names(), "testchannelmean") || !slices.Contains(engine.MethodNames(), "testchannelmean") {
		t.Fatalf("not registered: cam %v, engine %v", Names(), engine.MethodNames())
	}
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	x := vtest.RandomArray(3, 2, 3, 48, 40)
	const layer = "features.15"
	r, err := Compute(context.Background(), ex, x, Options{Method: "testchannelmean", Layers: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	checkCAMShapes(t, "testchannelmean", r, 2, 48, 40)
	res, err := ex.Run(x, engine.Request{Taps: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Acts[layer]
	c, hw := a.Shape[1], a.Shape[2]*a.Shape[3]
	for i := 0; i < 2; i++ {
		for p := 0; p < hw; p++ {
			want := 0.0
			for ci := 0; ci < c; ci++ {
				want += float64(a.Data[(i*c+ci)*hw+p])
			}
			want /= float64(c)
			if got := float64(r.Raw[layer].Data[i*hw+p]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("example %d position %d: raw %v, channel mean %v", i, p, got, want)
			}
		}
	}
	if _, err := Compute(context.Background(), ex, x, Options{Method: "testchannelmean", EigenSmooth: true}); err == nil {
		t.Fatal("EigenSmooth accepted for a whole-map method")
	}
	m, _, err := engine.NewMethod("testchannelmean", engine.Settings{Layers: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := m.Attribute(context.Background(), ex, x, engine.Predicted())
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.CheckAttribution(att, x); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(att.Maps.Data, r.Map.Data) || att.Detail.(*Result).Method != "testchannelmean" {
		t.Fatal("the engine attribution differs from Compute's map")
	}
}
