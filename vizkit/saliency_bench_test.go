package vizkit

import (
	"context"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// Memory and time of the sampling attributions on full-size VGG11 (random
// init) at 224×224. Memory stays bounded by the batch size (BatchSize), not by the
// number of samples or steps. Measure the peak with
//
//	go test ./vizkit -c -o /tmp/vizkit.test
//	/usr/bin/time -v /tmp/vizkit.test -test.run XXX -test.bench 'SmoothGrad50|IG200' -test.benchtime 1x
func benchSampling(b *testing.B, run func(ex *engine.Explainer, x *Array) error) {
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := run(ex, x); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVGG11SmoothGrad50: 50 noisy gradients, engine.DefaultBatchSize per execution.
func BenchmarkVGG11SmoothGrad50(b *testing.B) {
	benchSampling(b, func(ex *engine.Explainer, x *Array) error {
		_, err := attr.SmoothGrad(context.Background(), ex, x, attr.SmoothGradOptions{Samples: 50})
		return err
	})
}

// BenchmarkVGG11IG200: Integrated Gradients with 200 steps, engine.DefaultBatchSize per
// execution.
func BenchmarkVGG11IG200(b *testing.B) {
	benchSampling(b, func(ex *engine.Explainer, x *Array) error {
		_, err := attr.IntegratedGradients(context.Background(), ex, x, attr.IGOptions{Steps: 200})
		return err
	})
}
