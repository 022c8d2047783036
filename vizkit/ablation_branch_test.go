package vizkit

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/densenet"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// Ablation-CAM re-runs the network's tail from the target module's output
// (StartAfter) where every path goes through that module, and scales the
// module's output inside the whole network (ScaleLayer) where a dense or
// residual connection bypasses it. Both mechanisms must give the definition
// w_c = (y − y_c)/y, and starting inside a dense block must be refused.
func TestAblationCAMOnBranches(t *testing.T) {
	w, err := weights.LoadSafetensors(filepath.Join(denseGoldenDir, "tinydensenet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	net, err := densenet.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ex, err := engine.NewExplainer(net, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	shape, data, err := npy.ReadFile(filepath.Join(denseGoldenDir, "tinydensenet", "input_b", "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	x := &Array{Shape: shape, Data: data}
	const inside = "features.denseblock2.denselayer1.conv2" // Concatenated with its block's input: not a cut.
	const cut = "features.transition2"                      // Everything after it reads only its output.
	res, err := ex.Run(x, engine.Request{Taps: []string{inside, cut}, Target: engine.Class(3)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ex.Run(res.Acts[inside], engine.Request{StartAfter: inside, StartInput: x.Shape, Target: engine.Class(3)})
	if err == nil || !strings.Contains(err.Error(), "cannot be started from this module's output alone") {
		t.Fatalf("StartAfter inside a dense block: %v", err)
	}
	y := float64(res.Scores[0])
	for _, layer := range []string{inside, cut} {
		cr, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "ablationcam", Layers: []string{layer}, Target: engine.Class(3), BatchSize: 8})
		if err != nil {
			t.Fatalf("%s: %v", layer, err)
		}
		got := cr.Weights[layer]
		c := got.Shape[1]
		// The definition, one channel at a time through ScaleLayer.
		for _, k := range []int{0, c / 2, c - 1} {
			scale := engine.NewArray(1, c)
			for j := range scale.Data {
				scale.Data[j] = 1
			}
			scale.Data[k] = 0
			rk, err := ex.RunWith(x, engine.Request{ScaleLayer: layer, Target: engine.Class(3)}, engine.RunOptions{Scale: scale})
			if err != nil {
				t.Fatal(err)
			}
			want := (y - float64(rk.Scores[0])) / y
			if d := math.Abs(float64(got.Data[k]) - want); d > 1e-4*(1+math.Abs(want)) {
				t.Errorf("%s channel %d: weight %v, want (y−y_c)/y = %v", layer, k, got.Data[k], want)
			}
		}
	}
}
