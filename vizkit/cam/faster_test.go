package cam

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// Faster Score-CAM (tf-keras-vis's max_N): the kept channels are those of
// largest variance, the others weigh exactly 0, the kept weights are a
// softmax (sum 1); with every channel kept it is exact Score-CAM bit for bit.
// Its agreement with exact Score-CAM on a photo is logged.
func TestFasterScoreCAM(t *testing.T) {
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	img, err := imageio.Load(filepath.Join("..", "..", "testdata", "images", "chelsea.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := imageio.DefaultImageNet().Apply(img)
	if err != nil {
		t.Fatal(err)
	}
	x := &engine.Array{Shape: []int{1, in.C, in.H, in.W}, Data: in.Data}
	exact, err := Compute(context.Background(), ex, x, Options{Method: "scorecam"})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := Compute(context.Background(), ex, x, Options{Method: "fasterscorecam"})
	if err != nil {
		t.Fatal(err)
	}
	layer := exact.Layers[0]
	res, err := ex.Run(x, engine.Request{Taps: []string{layer}, Target: engine.Predicted()})
	if err != nil {
		t.Fatal(err)
	}
	acts := res.Acts[layer]
	c, hw := acts.Shape[1], acts.Shape[2]*acts.Shape[3]
	k := fasterScoreCAMChannels(c)
	keep := topVarianceChannels(acts.Data, c, hw, k)
	variance := func(ch int) float64 {
		var s, s2 float64
		for _, v := range acts.Data[ch*hw : (ch+1)*hw] {
			s, s2 = s+float64(v), s2+float64(v)*float64(v)
		}
		return s2/float64(hw) - (s/float64(hw))*(s/float64(hw))
	}
	minKept, maxDropped := math.Inf(1), math.Inf(-1)
	w := fast.Weights[layer].Data
	sum := 0.0
	for ch := 0; ch < c; ch++ {
		if keep[ch] {
			minKept = math.Min(minKept, variance(ch))
			sum += float64(w[ch])
		} else {
			maxDropped = math.Max(maxDropped, variance(ch))
			if w[ch] != 0 {
				t.Errorf("channel %d is not among the top %d by variance but weighs %g", ch, k, w[ch])
			}
		}
	}
	if minKept < maxDropped {
		t.Errorf("kept channels' smallest variance %g < dropped channels' largest %g", minKept, maxDropped)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("kept weights sum to %g, want 1 (softmax)", sum)
	}
	r := pearson(exact.Map.Data, fast.Map.Data)
	t.Logf("Faster Score-CAM on %s (%d of %d channels) vs exact Score-CAM: Pearson r of the maps %.3f", layer, k, c, r)

	// All channels kept: exact Score-CAM.
	run := &Run{Ex: ex, Input: x, Target: engine.Class(res.Classes[0]), Layers: []string{layer}, Layer: layer,
		Result: res, Options: Options{BatchSize: 16}, prog: &camProgress{}}
	all, err := scoreCAMWeightsTop(run, func(c int) int { return c })
	if err != nil {
		t.Fatal(err)
	}
	for ch, v := range all.Data {
		if v != exact.Weights[layer].Data[ch] {
			t.Fatalf("with every channel kept, weight %d = %g, exact Score-CAM's %g", ch, v, exact.Weights[layer].Data[ch])
		}
	}
}
