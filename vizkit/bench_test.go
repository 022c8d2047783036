package vizkit

import (
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// Full-size VGG11 (random init) at 224×224, batch 1: the foundation's
// benchmarks. Run: go test ./vizkit -run XXX -bench VGG11 -benchtime 5x
func benchVGG11(b *testing.B, req engine.Request) {
	m, err := vgg.NewRandom("vgg11", 1000, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	x := vtest.RandomArray(1, 1, 3, 224, 224)
	if _, err := ex.Run(x, req); err != nil { // Compile outside the timing.
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ex.Run(x, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVGG11Forward(b *testing.B) { benchVGG11(b, engine.Request{}) }

// BenchmarkVGG11GradToLastConv is Grad-CAM's engine work: forward, the
// activations of the last conv block and the gradient of the top-1 logit with
// respect to them.
func BenchmarkVGG11GradToLastConv(b *testing.B) {
	benchVGG11(b, engine.Request{Taps: []string{"features.20"}, GradTaps: []string{"features.20"}, Target: engine.Predicted()})
}

// BenchmarkVGG11InputGradient is vanilla saliency's engine work.
func BenchmarkVGG11InputGradient(b *testing.B) {
	benchVGG11(b, engine.Request{GradInput: true, Target: engine.Predicted()})
}
