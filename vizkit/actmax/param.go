package actmax

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Image parameterisations and transforms for activation maximisation, each a
// map with its adjoint (transpose), so the engine's input gradient can be
// carried back to the parameters by the chain rule in Go:
//
//	θ ──param──► img (pixel space) ──transform T──► x = (T(img) − mean)/std ──network──► score
//	∂score/∂θ = Pᵀ( Tᵀ( ∂score/∂x / std ) )
//
// The Fourier map, the colour decorrelation and the transforms are linear, so
// their transposes are exact; the sigmoid's derivative is elementwise.

// colorCorrelationSVDSqrt is Lucid's square root of ImageNet's colour
// correlation matrix (lucid.optvis.param.color); it is divided by its largest
// column norm before use.
var colorCorrelationSVDSqrt = [3][3]float64{
	{0.26, 0.09, 0.02},
	{0.27, 0.00, -0.05},
	{0.27, -0.09, 0.03},
}

// colorCorrelationNormalized returns colorCorrelationSVDSqrt / max column norm,
// computed in float32 as Lucid does (np.float32 array).
func colorCorrelationNormalized() [3][3]float64 {
	var m [3][3]float32
	for i := range m {
		for j := range m[i] {
			m[i][j] = float32(colorCorrelationSVDSqrt[i][j])
		}
	}
	var maxNorm float32
	for j := 0; j < 3; j++ {
		s := float32(0)
		for i := 0; i < 3; i++ {
			s += m[i][j] * m[i][j]
		}
		maxNorm = max(maxNorm, float32(math.Sqrt(float64(s))))
	}
	var out [3][3]float64
	for i := range m {
		for j := range m[i] {
			out[i][j] = float64(m[i][j] / maxNorm)
		}
	}
	return out
}

// fftParam is Lucid's decorrelated Fourier image parameterisation
// (lucid.optvis.param: fft_image + to_valid_rgb(decorrelate=True,
// sigmoid=True)) for H×W images of C channels (M is Lucid's colour
// correlation for C = 3 RGB channels, the identity otherwise):
//
//	spectrum[c] = (θ_re + iθ_im)[c] · scale,  scale = √(HW) / max(f, 1/max(H,W))^decay
//	raw[c]      = irfft2(spectrum[c])[:H, :W] / 4
//	img[c]      = sigmoid( Σ_k M[c][k] · raw[k] )   (M: colour correlation, normalised)
//
// with f the frequency magnitude sqrt(fy² + fx²) of numpy's fftfreq, FH = H
// rows and FW = W/2+1 columns (W/2+2 for odd W, whose irfft of even length
// W+1 is then cropped, as Lucid). θ holds 2·C·FH·FW values per image, laid out
// (re/im, channel, row, column).
type fftParam struct {
	c, h, w, fh, fw, wl int // wl: length of the real inverse FFT along a row (2·(FW−1)).
	scale               []float64
	m                   [][]float64 // C×C colour basis.
	rowFFT              *fourier.FFT
	colFFT              *fourier.CmplxFFT
}

// newFFTParam builds the parameterisation of H×W images of c channels.
func newFFTParam(c, h, w int, decay float64) *fftParam {
	fw := w/2 + 1
	if w%2 == 1 {
		fw = w/2 + 2
	}
	m := make([][]float64, c)
	for i := range m {
		m[i] = make([]float64, c)
		m[i][i] = 1
	}
	if c == 3 {
		cc := colorCorrelationNormalized()
		for i := range m {
			copy(m[i], cc[i][:])
		}
	}
	p := &fftParam{c: c, h: h, w: w, fh: h, fw: fw, wl: 2 * (fw - 1), m: m}
	p.scale = make([]float64, h*fw)
	floor := 1 / float64(max(h, w))
	for y := 0; y < h; y++ {
		fy := fftFreq(y, h)
		for x := 0; x < fw; x++ {
			fx := fftFreq(x, w)
			f := math.Sqrt(fx*fx + fy*fy)
			p.scale[y*fw+x] = math.Sqrt(float64(w*h)) / math.Pow(math.Max(f, floor), decay)
		}
	}
	p.rowFFT = fourier.NewFFT(p.wl)
	p.colFFT = fourier.NewCmplxFFT(h)
	return p
}

// fftFreq is numpy.fft.fftfreq(n)[i] (for i ≥ n it keeps numpy's slicing rule
// of Lucid's odd-width case: index n/2+1 of fftfreq(n)).
func fftFreq(i, n int) float64 {
	if i <= (n-1)/2 {
		return float64(i) / float64(n)
	}
	return float64(i-n) / float64(n)
}

func (p *fftParam) size() int { return 2 * p.c * p.fh * p.fw }

// init draws θ ~ N(0, sd²) (Lucid's sd 0.01).
func (p *fftParam) init(rng *rand.Rand, sd float64) []float64 {
	th := make([]float64, p.size())
	for i := range th {
		th[i] = sd * rng.NormFloat64()
	}
	return th
}

// linear computes raw (C·H·W) from θ: the Fourier part, before decorrelation.
func (p *fftParam) linear(theta []float64) []float64 {
	h, w, fh, fw := p.h, p.w, p.fh, p.fw
	plane := fh * fw
	raw := make([]float64, p.c*h*w)
	col := make([]complex128, fh)
	spec := make([]complex128, fh*fw)
	row := make([]float64, p.wl)
	for c := 0; c < p.c; c++ {
		re := theta[c*plane : (c+1)*plane]
		im := theta[(p.c+c)*plane : (p.c+c+1)*plane]
		for k := 0; k < fw; k++ {
			for y := 0; y < fh; y++ {
				s := p.scale[y*fw+k]
				col[y] = complex(re[y*fw+k]*s, im[y*fw+k]*s)
			}
			p.colFFT.Sequence(col, col) // Unnormalised inverse: Σ_m S[m] e^{+2πimy/H}.
			for y := 0; y < fh; y++ {
				spec[y*fw+k] = col[y] / complex(float64(fh), 0)
			}
		}
		for y := 0; y < h; y++ {
			p.rowFFT.Sequence(row, spec[y*fw:(y+1)*fw])
			dst := raw[(c*h+y)*w : (c*h+y+1)*w]
			for x := 0; x < w; x++ {
				dst[x] = row[x] / float64(p.wl) / 4
			}
		}
	}
	return raw
}

// linearT is the transpose of linear: it maps a gradient with respect to raw
// (C·H·W) to one with respect to θ.
func (p *fftParam) linearT(g []float64) []float64 {
	h, w, fh, fw := p.h, p.w, p.fh, p.fw
	plane := fh * fw
	out := make([]float64, p.size())
	row := make([]float64, p.wl)
	coef := make([]complex128, fw)
	gy := make([]complex128, fh*fw)
	col := make([]complex128, fh)
	for c := 0; c < p.c; c++ {
		for y := 0; y < h; y++ {
			for x := range row {
				row[x] = 0
			}
			for x := 0; x < w; x++ {
				row[x] = g[(c*h+y)*w+x] / 4
			}
			p.rowFFT.Coefficients(coef, row) // Σ_n g[n] e^{−2πikn/W'}.
			for k := 0; k < fw; k++ {
				ck := 2.0
				if k == 0 || 2*k == p.wl {
					ck = 1
				}
				gy[y*fw+k] = coef[k] * complex(ck/float64(p.wl), 0)
			}
		}
		re := out[c*plane : (c+1)*plane]
		im := out[(p.c+c)*plane : (p.c+c+1)*plane]
		for k := 0; k < fw; k++ {
			for y := 0; y < fh; y++ {
				col[y] = gy[y*fw+k]
			}
			p.colFFT.Coefficients(col, col)
			for y := 0; y < fh; y++ {
				v := col[y] / complex(float64(fh), 0)
				s := p.scale[y*fw+k]
				re[y*fw+k] = real(v) * s
				im[y*fw+k] = imag(v) * s
			}
		}
	}
	return out
}

// image maps θ to the image in pixel space (C·H·W, values in (0,1)); it also
// returns the sigmoid output for the backward pass.
func (p *fftParam) image(theta []float64) []float64 {
	raw := p.linear(theta)
	hw := p.h * p.w
	img := make([]float64, p.c*hw)
	for q := 0; q < hw; q++ {
		for c := 0; c < p.c; c++ {
			t := 0.0
			for k := 0; k < p.c; k++ {
				t += p.m[c][k] * raw[k*hw+q]
			}
			img[c*hw+q] = 1 / (1 + math.Exp(-t))
		}
	}
	return img
}

// backward maps a gradient with respect to img to one with respect to θ, given
// img = image(θ).
func (p *fftParam) backward(img, g []float64) []float64 {
	hw := p.h * p.w
	graw := make([]float64, p.c*hw)
	gt := make([]float64, p.c)
	for q := 0; q < hw; q++ {
		for c := 0; c < p.c; c++ {
			s := img[c*hw+q]
			gt[c] = g[c*hw+q] * s * (1 - s)
		}
		for k := 0; k < p.c; k++ {
			t := 0.0
			for c := 0; c < p.c; c++ {
				t += p.m[c][k] * gt[c]
			}
			graw[k*hw+q] = t
		}
	}
	return p.linearT(graw)
}

// warp is a bilinear resampling of an H×W plane by an affine map (random
// jitter, scale and rotation about the centre), with out-of-image samples
// taking a constant pad value. For every output pixel it stores the four
// source pixels (−1 when outside) and their bilinear weights.
type warp struct {
	h, w int
	idx  []int32   // 4 per output pixel.
	wt   []float32 // 4 per output pixel.
}

// newWarp builds the resampling for output = input moved by (ty, tx) pixels,
// scaled by s and rotated by deg degrees about the image centre.
func newWarp(h, w int, ty, tx, s, deg float64) *warp {
	wp := &warp{h: h, w: w, idx: make([]int32, 4*h*w), wt: make([]float32, 4*h*w)}
	cy, cx := float64(h-1)/2, float64(w-1)/2
	sin, cos := math.Sincos(deg * math.Pi / 180)
	for oy := 0; oy < h; oy++ {
		for ox := 0; ox < w; ox++ {
			dy, dx := float64(oy)-cy-ty, float64(ox)-cx-tx
			sy := cy + (cos*dy+sin*dx)/s
			sx := cx + (-sin*dy+cos*dx)/s
			y0, x0 := math.Floor(sy), math.Floor(sx)
			fy, fx := sy-y0, sx-x0
			o := 4 * (oy*w + ox)
			corners := [4][3]float64{{y0, x0, (1 - fy) * (1 - fx)}, {y0, x0 + 1, (1 - fy) * fx}, {y0 + 1, x0, fy * (1 - fx)}, {y0 + 1, x0 + 1, fy * fx}}
			for k, c := range corners {
				yy, xx := int(c[0]), int(c[1])
				wp.wt[o+k] = float32(c[2])
				if yy < 0 || yy >= h || xx < 0 || xx >= w {
					wp.idx[o+k] = -1
				} else {
					wp.idx[o+k] = int32(yy*w + xx)
				}
			}
		}
	}
	return wp
}

// apply resamples one plane; pad is the value outside the image.
func (wp *warp) apply(dst, src []float64, pad float64) {
	for o := range dst {
		v := 0.0
		for k := 0; k < 4; k++ {
			wk := float64(wp.wt[4*o+k])
			if i := wp.idx[4*o+k]; i >= 0 {
				v += wk * src[i]
			} else {
				v += wk * pad
			}
		}
		dst[o] = v
	}
}

// applyT adds the transpose of apply (without the constant pad) of g to dst.
func (wp *warp) applyT(dst, g []float64) {
	for o, gv := range g {
		if gv == 0 {
			continue
		}
		for k := 0; k < 4; k++ {
			if i := wp.idx[4*o+k]; i >= 0 {
				dst[i] += float64(wp.wt[4*o+k]) * gv
			}
		}
	}
}

// totalVariation returns Σ |img[y+1,x]−img[y,x]| + |img[y,x+1]−img[y,x]| over
// the c planes of h×w (tf.image.total_variation) and adds weight × its
// subgradient to grad (if grad is not nil).
func totalVariation(img []float64, c, h, w int, grad []float64, weight float64) float64 {
	tv := 0.0
	for ch := 0; ch < c; ch++ {
		p := img[ch*h*w : (ch+1)*h*w]
		var g []float64
		if grad != nil {
			g = grad[ch*h*w : (ch+1)*h*w]
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := y*w + x
				for _, j := range [2]int{i + w, i + 1} {
					if (j == i+w && y+1 >= h) || (j == i+1 && x+1 >= w) {
						continue
					}
					d := p[j] - p[i]
					tv += math.Abs(d)
					if g != nil && d != 0 {
						s := weight
						if d < 0 {
							s = -weight
						}
						g[j] += s
						g[i] -= s
					}
				}
			}
		}
	}
	return tv
}
