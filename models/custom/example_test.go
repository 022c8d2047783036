package custom_test

import (
	"context"
	"fmt"
	"iter"
	"log"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/custom"
	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// forward is the user's GoMLX model: x [N,H,W,3] channels-last → logits
// [N,5]. It names what cnnviz may explain through s; with
// custom.TrainingScope() those calls change nothing.
func forward(ms *model.Scope, s *models.Scope, x *graph.Node) *graph.Node {
	x = layers.Convolution(ms.In("conv1"), x).Channels(8).KernelSize(3).Strides(2).PadSame().Done() // [N,16,16,8]
	x = s.ReLU("relu1", s.Out("conv1", models.Conv2d, x))
	x = layers.Convolution(ms.In("conv2"), x).Channels(16).KernelSize(3).Strides(2).PadSame().Done() // [N,8,8,16]
	x = s.ReLU("relu2", s.Out("conv2", models.Conv2d, x))
	x = s.Out("pool", models.GlobalAvgPool, graph.ReduceMean(x, 1, 2)) // [N,16]
	return s.Out("fc", models.Linear, layers.Dense(ms.In("fc"), x, true, shapes.NumClasses))
}

// shapesStream yields batches of the procedural shapes data set, channels-last.
type shapesStream struct {
	cfg   shapes.Config
	batch int
}

func (d *shapesStream) Name() string { return "shapes" }

func (d *shapesStream) Iter() iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for start := 0; ; start += d.batch {
			b, err := shapes.MakeBatch(d.cfg, 1, start, d.batch)
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			n, sz := b.N, b.Size
			nhwc := make([]float32, len(b.Images))
			for i := 0; i < n; i++ {
				for c := 0; c < 3; c++ {
					for p := 0; p < sz*sz; p++ {
						nhwc[(i*sz*sz+p)*3+c] = b.Images[(i*3+c)*sz*sz+p]
					}
				}
			}
			labels := make([]int32, n)
			for i, l := range b.Labels {
				labels[i] = int32(l)
			}
			if !yield(train.Batch{
				Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(nhwc, n, sz, sz, 3)},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(labels, n, 1)},
			}, nil) {
				return
			}
		}
	}
}

// Trains a small GoMLX CNN (ml/layers) on the shapes data set and explains
// one test image with Grad-CAM, through custom.New: no cnnviz internals.
func Example() {
	b, err := backend.Shared("go")
	if err != nil {
		log.Fatal(err)
	}
	cfg := shapes.Config{Size: 32, Noise: -1, Clutter: -1}
	store := model.NewStore()
	if err := store.SetRNGStateFromSeed(1); err != nil {
		log.Fatal(err)
	}
	trainer := train.NewTrainer(b, store,
		func(ms *model.Scope, x *graph.Node) *graph.Node { return forward(ms, custom.TrainingScope(), x) },
		loss.SparseCategoricalCrossEntropyLogits, optimizer.Adam().LearningRate(0.01).Done(), nil, nil)
	loop := train.NewLoop(trainer)
	t0 := time.Now()
	if _, err := loop.RunSteps(&shapesStream{cfg: cfg, batch: 32}, 300); err != nil {
		log.Fatal(err)
	}

	log.Printf("training took %v", time.Since(t0))
	net, err := custom.New(custom.Spec{Arch: "my-cnn", InputSize: 32, Store: store, BuildModel: forward})
	if err != nil {
		log.Fatal(err)
	}
	defer net.Close()
	ex, err := engine.NewExplainer(net, engine.Options{BackendInstance: b})
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()

	test, err := shapes.MakeBatch(cfg, 2, 0, 64) // Held-out images (another seed).
	if err != nil {
		log.Fatal(err)
	}
	x := &vizkit.Array{Shape: test.Shape(), Data: test.Images}
	res, err := ex.Run(x, engine.Request{})
	if err != nil {
		log.Fatal(err)
	}
	correct := 0
	for i, c := range res.Classes {
		if c == test.Labels[i] {
			correct++
		}
	}
	log.Printf("accuracy %d/%d", correct, len(res.Classes))
	fmt.Println("accuracy above 40% (chance: 20%):", correct*100 > 40*len(res.Classes))

	cam, err := cam.Compute(context.Background(), ex, &vizkit.Array{Shape: []int{1, 3, 32, 32}, Data: test.Images[:3*32*32]}, cam.Options{Method: "gradcam"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Grad-CAM layer:", cam.Layers[0], "map:", cam.Map.Shape)
	w, _, err := net.Weight("conv1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("conv1 kernels:", w.Shape)
	_ = dtypes.Float32
	_ = context.Background
	// Output:
	// accuracy above 40% (chance: 20%): true
	// Grad-CAM layer: relu2 map: [1 32 32]
	// conv1 kernels: [8 3 3 3]
}
