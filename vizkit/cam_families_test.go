package vizkit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// TestCAMMatrixFamilies runs every CAM method × model family (narrowed
// torchvision models with PyTorch fixtures) × batch {2 vs 1+1} × target kind
// {logit, softmax} on a non-square input: right shapes, values in [0,1], no
// NaN, each example of a batch equal to its single-image map, and a clear
// error where a method cannot apply (CAM needs a global-pooling head).
func TestCAMMatrixFamilies(t *testing.T) {
	if testing.Short() {
		t.Skip("family matrix: long")
	}
	root := filepath.Join("..", "testdata")
	for _, f := range []string{
		"golden_resnet/resnet_basic.safetensors", "golden_resnet/resnext_bottleneck.safetensors", "golden_resnet/alexnet.safetensors",
		"golden_dense/tinydensenet.safetensors", "golden_dense/tinymobilenet.safetensors",
	} {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".safetensors"), func(t *testing.T) {
			w, err := weights.LoadSafetensors(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			net, err := zoo.LoadWeights(w, "")
			if err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			ex, err := NewExplainer(net, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			h, wd := 72, 64
			if strings.HasPrefix(net.Arch(), "alexnet") {
				h, wd = 150, 131 // AlexNet's last map is then 3×3, not 1×1.
			}
			x2 := randomArray(5, 2, 3, h, wd)
			classes := []int{1, 4}
			for _, name := range cam.Names() {
				for _, target := range []Target{engine.Class(classes...), engine.SoftmaxOf(classes...)} {
					what := fmt.Sprintf("%s %s %s", net.Arch(), name, target)
					opts := cam.Options{Method: name, Target: target, BatchSize: 64}
					r2, err := cam.Compute(context.Background(), ex.Explainer, x2, opts)
					if err != nil {
						if name == "cam" && (strings.Contains(err.Error(), "global average pooling") || strings.Contains(err.Error(), "class logit")) {
							continue // CAM needs a GAP + linear head and a logit target: a clear refusal.
						}
						t.Fatalf("%s: %v", what, err)
					}
					checkCAMShapes(t, what, r2, 2, h, wd)
					if r2.Classes[0] != 1 || r2.Classes[1] != 4 {
						t.Fatalf("%s: classes %v", what, r2.Classes)
					}
					for i := 0; i < 2; i++ {
						x1 := &Array{Shape: []int{1, 3, h, wd}, Data: x2.Index(i).Data}
						o1 := opts
						o1.Target = Target{Kind: target.Kind, Classes: []int{classes[i]}}
						r1, err := cam.Compute(context.Background(), ex.Explainer, x1, o1)
						if err != nil {
							t.Fatalf("%s single %d: %v", what, i, err)
						}
						assertClose(t, what+fmt.Sprintf(" example %d vs batch", i), r1.Map, &Array{Shape: []int{1, h, wd}, Data: r2.Map.Index(i).Data}, 1e-4)
					}
				}
			}
		})
	}
}
