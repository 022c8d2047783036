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
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestAttributionMatrixFamilies is the one method table: every registered
// attribution method (engine.Methods: the CAM family and the gradient and
// perturbation methods, through the one engine.Method contract) × model
// family (narrowed torchvision models with PyTorch fixtures) × batch {2 vs
// 1+1} × target kind {logit, softmax} on a non-square input: maps (N,H,W),
// finite, CAM maps in [0,1], each example of a batch equal to its
// single-image map, and a clear error where a method cannot apply (CAM needs
// a global-pooling head and a class logit).
func TestAttributionMatrixFamilies(t *testing.T) {
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
			ex, err := engine.NewExplainer(net, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			h, wd := 72, 64
			if strings.HasPrefix(net.Arch(), "alexnet") {
				h, wd = 150, 131 // AlexNet's last map is then 3×3, not 1×1.
			}
			x2 := vtest.RandomArray(5, 2, 3, h, wd)
			classes := []int{1, 4}
			for _, info := range engine.Methods() {
				m, _, err := engine.NewMethod(info.Name, engine.Settings{BatchSize: 64, Samples: 4, Steps: 8, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				for _, target := range []Target{engine.Class(classes...), engine.SoftmaxOf(classes...)} {
					what := fmt.Sprintf("%s %s %s", net.Arch(), info.Name, target)
					a2, err := m.Attribute(context.Background(), ex, x2, target)
					if err != nil {
						if strings.Contains(err.Error(), "global average pooling") || strings.Contains(err.Error(), "class logit") {
							continue // CAM needs a GAP + linear head and a logit target: a clear refusal.
						}
						t.Fatalf("%s: %v", what, err)
					}
					if err := engine.CheckAttribution(a2, x2); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if a2.Method != info.Name || a2.Classes[0] != 1 || a2.Classes[1] != 4 {
						t.Fatalf("%s: method %q, classes %v", what, a2.Method, a2.Classes)
					}
					if r, ok := a2.Detail.(*cam.Result); ok {
						checkCAMShapes(t, what, r, 2, h, wd)
					}
					for i := 0; i < 2; i++ {
						x1 := &Array{Shape: []int{1, 3, h, wd}, Data: x2.Index(i).Data}
						a1, err := m.Attribute(context.Background(), ex, x1, Target{Kind: target.Kind, Classes: []int{classes[i]}})
						if err != nil {
							t.Fatalf("%s single %d: %v", what, i, err)
						}
						vtest.AssertClose(t, what+fmt.Sprintf(" example %d vs batch", i), a1.Maps, &Array{Shape: []int{1, h, wd}, Data: a2.Maps.Index(i).Data}, 1e-4)
					}
				}
			}
		})
	}
}
