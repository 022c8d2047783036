package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/gomlx/gomlx/core/graph"
)

// TestNeuron: a Neuron target's value is the tapped activation at its
// position, and Unit reads ChannelMean and Neuron targets back (and nothing
// else).
func TestNeuron(t *testing.T) {
	m, err := vgg.NewRandom("vgg11", 10, 8, 7)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := NewExplainer(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(); m.Close() })
	x := NewArray(2, 3, 32, 32)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	const layer, ch, y, xx = "features.3", 2, 5, 9
	res, err := ex.Run(x, Request{Taps: []string{layer}, Target: Neuron(layer, ch, y, xx)})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Acts[layer]
	h, w := a.Shape[2], a.Shape[3]
	for i := 0; i < 2; i++ {
		want := a.Index(i).Data[(ch*h+y)*w+xx]
		if math.Abs(float64(res.Scores[i]-want)) > 1e-6 {
			t.Fatalf("example %d: Neuron %v, activation %v", i, res.Scores[i], want)
		}
	}
	for _, tc := range []struct {
		t    Target
		want Unit
		ok   bool
	}{
		{ChannelMean("features.3", 4), Unit{Layer: "features.3", Channel: 4}, true},
		{Neuron("layer4.1", 7, -1, 12), Unit{Layer: "layer4.1", Channel: 7, Neuron: true, Y: -1, X: 12}, true},
		{NamedFunc("features.3", "mean of features.3 channel 4", func(n *graph.Node) *graph.Node { return n }), Unit{}, false},
		{Class(3), Unit{}, false},
		{SoftmaxOf(1), Unit{}, false},
	} {
		got, ok := tc.t.Unit()
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: Unit %+v, %v; want %+v, %v", tc.t, got, ok, tc.want, tc.ok)
		}
	}
}
