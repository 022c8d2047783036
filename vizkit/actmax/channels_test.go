package actmax

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFFTParamChannels: the Fourier parameterisation's backward pass matches
// central differences for 1 and 4 channels (identity colour basis).
func TestFFTParamChannels(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []int{1, 4} {
		p := newFFTParam(c, 6, 7, 1)
		th := p.init(rng, 0.05)
		if len(th) != 2*c*6*p.fw {
			t.Fatalf("C=%d: %d parameters", c, len(th))
		}
		wt := make([]float64, c*6*7)
		for i := range wt {
			wt[i] = rng.NormFloat64()
		}
		grad := p.backward(p.image(th), wt)
		for _, i := range []int{0, 5, len(th) / 2, len(th) - 1} {
			const eps = 1e-6
			tp, tm := append([]float64(nil), th...), append([]float64(nil), th...)
			tp[i] += eps
			tm[i] -= eps
			fd := (dot64(p.image(tp), wt) - dot64(p.image(tm), wt)) / (2 * eps)
			if math.Abs(fd-grad[i]) > 1e-6*math.Max(1, math.Abs(fd)) {
				t.Fatalf("C=%d θ[%d]: backward %.10g, finite difference %.10g", c, i, grad[i], fd)
			}
		}
	}
}
