package heatmap

import "math"

// GaussianBlur blurs an h×w plane (row-major) with a separable Gaussian of σ
// pixels: kernel exp(−k²/2σ²) for |k| ≤ ceil(3σ), normalised to sum 1; pixels
// beyond the border repeat the border pixel. σ ≤ 0 returns a copy.
func GaussianBlur(src []float32, h, w int, sigma float64) []float32 {
	out := append([]float32(nil), src...)
	if !(sigma > 0) {
		return out
	}
	rad := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*rad+1)
	s := 0.0
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	tmp := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			acc := 0.0
			for i, kv := range k {
				xx := min(max(x+i-rad, 0), w-1)
				acc += kv * float64(src[y*w+xx])
			}
			tmp[y*w+x] = acc
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			acc := 0.0
			for i, kv := range k {
				yy := min(max(y+i-rad, 0), h-1)
				acc += kv * tmp[yy*w+x]
			}
			out[y*w+x] = float32(acc)
		}
	}
	return out
}
