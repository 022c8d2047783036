package vizkit

import (
	"context"
	"testing"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// Full-size VGG11 (random init) at 224×224, batch 1, default layer
// features.20 (512 channels), top-1 target. Compilation happens outside the
// timing. Run:
//
//	go test ./vizkit -run XXX -bench 'CAM' -benchtime 1x
//
// scripts/bench_gradcam_torch.py times the same in PyTorch.
func benchCAM(b *testing.B, opts cam.Options) {
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
	if opts.Method == "scorecam" {
		// Compile both executables (activations; a batch of masked inputs)
		// without paying for 512 masked forwards.
		res, err := ex.Run(x, engine.Request{Taps: []string{"features.20"}, Target: engine.Predicted()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ex.Run(engine.NewArray(16, 3, 224, 224), engine.Request{Target: engine.Class(res.Classes[0])}); err != nil {
			b.Fatal(err)
		}
	} else if _, err := cam.Compute(context.Background(), ex, x, opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := cam.Compute(context.Background(), ex, x, opts)
		if err != nil {
			b.Fatal(err)
		}
		if r.Map.Shape[1] != 224 {
			b.Fatal(r.Map.Shape)
		}
	}
}

// BenchmarkCAMGradCAMVGG11: one forward + backward to features.20, then the
// CAM post-processing.
func BenchmarkCAMGradCAMVGG11(b *testing.B) { benchCAM(b, cam.Options{Method: "gradcam"}) }

// BenchmarkCAMScoreCAMVGG11: one forward for the activations, then 512
// masked forwards in batches of 16 (pytorch-grad-cam's default).
func BenchmarkCAMScoreCAMVGG11(b *testing.B) { benchCAM(b, cam.Options{Method: "scorecam"}) }
