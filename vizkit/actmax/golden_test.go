package actmax

import (
	"context"
	"strconv"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestFFTParamGolden checks the Fourier parameterisation against Lucid's
// formulas evaluated with numpy, for an even and an odd width.
func TestFFTParamGolden(t *testing.T) {
	for _, sz := range [][2]int{{8, 10}, {7, 9}} {
		h, w := sz[0], sz[1]
		prefix := "fft_" + strconv.Itoa(h) + "x" + strconv.Itoa(w)
		theta := vtest.SaliencyGolden(t, prefix+"_theta.npy")
		p := newFFTParam(3, h, w, 1)
		if theta.Size() != p.size() {
			t.Fatalf("%s: θ has %d values, parameterisation %d", prefix, theta.Size(), p.size())
		}
		th := make([]float64, p.size())
		for i, v := range theta.Data {
			th[i] = float64(v)
		}
		got := &engine.Array{Shape: []int{1, 3, h, w}, Data: toFloat32(p.linear(th))}
		vtest.AssertClose(t, prefix+" raw", got, vtest.SaliencyGolden(t, prefix+"_raw.npy"), 1e-5)
		img := &engine.Array{Shape: []int{1, 3, h, w}, Data: toFloat32(p.image(th))}
		vtest.AssertClose(t, prefix+" image", img, vtest.SaliencyGolden(t, prefix+"_image.npy"), 1e-5)
	}
}

// TestActMaxFlashTorchGolden replays FlashTorch's GradientAscent._ascent (4
// steps on the mean of conv features.3 channel 5) from the same start.
func TestActMaxFlashTorchGolden(t *testing.T) {
	ex, _, _ := vtest.SaliencyFixture(t)
	x0 := vtest.SaliencyGolden(t, "actmax_x0.npy")
	res, err := Run(context.Background(), ex, []engine.Target{engine.ChannelMean("features.3", 5)}, Options{Init: x0, Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	vtest.AssertClose(t, "FlashTorch ascent after 4 steps", res.Input, vtest.SaliencyGolden(t, "actmax_x4.npy"), 1e-4)
	if !(res.Scores[0] > res.InitialScores[0]) {
		t.Fatalf("objective did not increase: %v → %v", res.InitialScores[0], res.Scores[0])
	}
}

func toFloat32(a []float64) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		out[i] = float32(v)
	}
	return out
}
