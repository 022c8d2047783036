package cam

import (
	"math"
	"sort"
)

// firstPrincipalProjection is pytorch-grad-cam's get_2d_projection for one
// example: t holds C channels of hw positions (row-major (C,hw)); each
// position is a sample and each channel a feature. The channels are centred
// over the positions, and the result (hw values) is the projection of every
// position onto the first principal direction (the first right singular
// vector of the centred (hw,C) matrix), i.e. the first principal component's
// scores.
//
// SVD leaves the sign of a singular vector arbitrary (NumPy's LAPACK picks one
// that depends on the build); here it is deterministic:
//
//  1. the projection is oriented to correlate positively with the channel sum
//     Σ_c t[c,p] (the map the method would show without eigen smoothing, so
//     "hot" stays hot);
//  2. if that correlation is exactly 0, the entry of largest magnitude (the
//     first one, row-major, on ties) is made positive.
//
// Computation is in float64 through the smaller Gram matrix (hw×hw or C×C)
// and its symmetric eigen-decomposition. All-zero or constant-per-channel
// input gives an all-zero projection (never NaN).
func firstPrincipalProjection(t []float32, c, hw int) []float32 {
	out := make([]float32, hw)
	if c <= 0 || hw <= 0 || len(t) != c*hw {
		return out
	}
	// x is (hw, C), centred per channel.
	x := make([]float64, hw*c)
	total := make([]float64, hw)
	for ci := 0; ci < c; ci++ {
		row := t[ci*hw : (ci+1)*hw]
		mean := 0.0
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(hw)
		for p, v := range row {
			x[p*c+ci] = float64(v) - mean
			total[p] += float64(v)
		}
	}
	proj := make([]float64, hw)
	if hw <= c {
		g := make([]float64, hw*hw)
		for p := 0; p < hw; p++ {
			xp := x[p*c : (p+1)*c]
			for q := 0; q <= p; q++ {
				xq := x[q*c : (q+1)*c]
				s := 0.0
				for k := range xp {
					s += xp[k] * xq[k]
				}
				g[p*hw+q], g[q*hw+p] = s, s
			}
		}
		vals, vecs := symmetricEigen(g, hw)
		lam := math.Max(vals[hw-1], 0)
		sigma := math.Sqrt(lam)
		for p := range proj {
			proj[p] = sigma * vecs[p*hw+hw-1]
		}
	} else {
		g := make([]float64, c*c)
		for p := 0; p < hw; p++ {
			xp := x[p*c : (p+1)*c]
			for i, vi := range xp {
				if vi == 0 {
					continue
				}
				gi := g[i*c : i*c+i+1]
				for j := range gi {
					gi[j] += vi * xp[j]
				}
			}
		}
		for i := 0; i < c; i++ {
			for j := 0; j < i; j++ {
				g[j*c+i] = g[i*c+j]
			}
		}
		vals, vecs := symmetricEigen(g, c)
		if vals[c-1] > 0 {
			for p := range proj {
				s := 0.0
				xp := x[p*c : (p+1)*c]
				for k, v := range xp {
					s += v * vecs[k*c+c-1]
				}
				proj[p] = s
			}
		}
	}
	corr := 0.0
	for p, v := range proj {
		corr += v * total[p]
	}
	flip := corr < 0
	if corr == 0 {
		best := 0
		for p, v := range proj {
			if math.Abs(v) > math.Abs(proj[best]) {
				best = p
			}
		}
		flip = proj[best] < 0
	}
	for p, v := range proj {
		if flip {
			v = -v
		}
		out[p] = float32(v)
	}
	return out
}

// symmetricEigen returns the eigenvalues (ascending) and eigenvectors (the
// columns of the row-major n×n result) of the symmetric matrix a (row-major,
// n×n; not modified). Householder tridiagonalisation followed by the
// implicit QL algorithm (the EISPACK tred2/tql2 pair, as in JAMA).
func symmetricEigen(a []float64, n int) ([]float64, []float64) {
	v := append([]float64(nil), a...)
	d := make([]float64, n)
	e := make([]float64, n)
	at := func(i, j int) *float64 { return &v[i*n+j] }

	// tred2: reduce to tridiagonal form.
	for j := 0; j < n; j++ {
		d[j] = *at(n-1, j)
	}
	for i := n - 1; i > 0; i-- {
		scale, h := 0.0, 0.0
		for k := 0; k < i; k++ {
			scale += math.Abs(d[k])
		}
		if scale == 0 {
			e[i] = d[i-1]
			for j := 0; j < i; j++ {
				d[j] = *at(i-1, j)
				*at(i, j) = 0
				*at(j, i) = 0
			}
		} else {
			for k := 0; k < i; k++ {
				d[k] /= scale
				h += d[k] * d[k]
			}
			f := d[i-1]
			g := math.Sqrt(h)
			if f > 0 {
				g = -g
			}
			e[i] = scale * g
			h -= f * g
			d[i-1] = f - g
			for j := 0; j < i; j++ {
				e[j] = 0
			}
			for j := 0; j < i; j++ {
				f = d[j]
				*at(j, i) = f
				g = e[j] + *at(j, j)*f
				for k := j + 1; k <= i-1; k++ {
					g += *at(k, j) * d[k]
					e[k] += *at(k, j) * f
				}
				e[j] = g
			}
			f = 0
			for j := 0; j < i; j++ {
				e[j] /= h
				f += e[j] * d[j]
			}
			hh := f / (h + h)
			for j := 0; j < i; j++ {
				e[j] -= hh * d[j]
			}
			for j := 0; j < i; j++ {
				f = d[j]
				g = e[j]
				for k := j; k <= i-1; k++ {
					*at(k, j) -= f*e[k] + g*d[k]
				}
				d[j] = *at(i-1, j)
				*at(i, j) = 0
			}
		}
		d[i] = h
	}
	for i := 0; i < n-1; i++ {
		*at(n-1, i) = *at(i, i)
		*at(i, i) = 1
		h := d[i+1]
		if h != 0 {
			for k := 0; k <= i; k++ {
				d[k] = *at(k, i+1) / h
			}
			for j := 0; j <= i; j++ {
				g := 0.0
				for k := 0; k <= i; k++ {
					g += *at(k, i+1) * *at(k, j)
				}
				for k := 0; k <= i; k++ {
					*at(k, j) -= g * d[k]
				}
			}
		}
		for k := 0; k <= i; k++ {
			*at(k, i+1) = 0
		}
	}
	for j := 0; j < n; j++ {
		d[j] = *at(n-1, j)
		*at(n-1, j) = 0
	}
	*at(n-1, n-1) = 1
	e[0] = 0

	// tql2: diagonalise the tridiagonal matrix.
	for i := 1; i < n; i++ {
		e[i-1] = e[i]
	}
	e[n-1] = 0
	f, tst1 := 0.0, 0.0
	const eps = 0x1p-52
	for l := 0; l < n; l++ {
		tst1 = math.Max(tst1, math.Abs(d[l])+math.Abs(e[l]))
		m := l
		for m < n-1 && math.Abs(e[m]) > eps*tst1 {
			m++
		}
		if m > l {
			for iter := 0; iter < 100; iter++ {
				g := d[l]
				p := (d[l+1] - g) / (2 * e[l])
				r := math.Hypot(p, 1)
				if p < 0 {
					r = -r
				}
				d[l] = e[l] / (p + r)
				d[l+1] = e[l] * (p + r)
				dl1 := d[l+1]
				h := g - d[l]
				for i := l + 2; i < n; i++ {
					d[i] -= h
				}
				f += h
				p = d[m]
				c, c2, c3 := 1.0, 1.0, 1.0
				el1 := e[l+1]
				s, s2 := 0.0, 0.0
				for i := m - 1; i >= l; i-- {
					c3 = c2
					c2 = c
					s2 = s
					g = c * e[i]
					h = c * p
					r = math.Hypot(p, e[i])
					e[i+1] = s * r
					s = e[i] / r
					c = p / r
					p = c*d[i] - s*g
					d[i+1] = h + s*(c*g+s*d[i])
					for k := 0; k < n; k++ {
						h = *at(k, i+1)
						*at(k, i+1) = s**at(k, i) + c*h
						*at(k, i) = c**at(k, i) - s*h
					}
				}
				p = -s * s2 * c3 * el1 * e[l] / dl1
				e[l] = s * p
				d[l] = c * p
				if !(math.Abs(e[l]) > eps*tst1) {
					break
				}
			}
		}
		d[l] += f
		e[l] = 0
	}
	// Sort ascending, permuting the eigenvector columns alike.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return d[idx[a]] < d[idx[b]] })
	vals := make([]float64, n)
	vecs := make([]float64, n*n)
	for col, src := range idx {
		vals[col] = d[src]
		for k := 0; k < n; k++ {
			vecs[k*n+col] = v[k*n+src]
		}
	}
	return vals, vecs
}
