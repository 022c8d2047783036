package heatmap

import (
	"fmt"
)

// Interp selects the interpolation of [Resize].
type Interp int

const (
	// Bilinear matches torch.nn.functional.interpolate(mode="bilinear"). With
	// alignCorners=false the source coordinate of output index d is
	// (d+0.5)·in/out − 0.5, clamped below at 0 (half-pixel centres); this is also
	// cv2.resize(..., interpolation=INTER_LINEAR). With alignCorners=true it is
	// d·(in−1)/(out−1) (0 when out == 1).
	Bilinear Interp = iota
	// Nearest matches torch.nn.functional.interpolate(mode="nearest") and
	// cv2.INTER_NEAREST: output index d copies input index floor(d·in/out) (computed in
	// exact integer arithmetic). Integer upscaling repeats every value k×k times, which
	// keeps small kernels legible.
	Nearest
)

// String returns "bilinear" or "nearest".
func (i Interp) String() string {
	switch i {
	case Bilinear:
		return "bilinear"
	case Nearest:
		return "nearest"
	}
	return fmt.Sprintf("Interp(%d)", int(i))
}

// Resize returns m resampled to h×w. alignCorners applies to [Bilinear] only;
// passing it with [Nearest] is an error, as in PyTorch. Arithmetic is float64, rounded
// to float32 at the end (PyTorch's float32 kernel agrees to ~1e-6 relative).
// NaN/Inf inputs propagate to the outputs they contribute to.
func Resize(m Map, h, w int, mode Interp, alignCorners bool) (Map, error) {
	if err := m.Validate(); err != nil {
		return Map{}, fmt.Errorf("heatmap.Resize: %w", err)
	}
	if err := CheckSize(h, w); err != nil {
		return Map{}, fmt.Errorf("heatmap.Resize: output %w", err)
	}
	out := Map{H: h, W: w, Data: make([]float32, h*w)}
	switch mode {
	case Bilinear:
		ys := linearTaps(m.H, h, alignCorners)
		xs := linearTaps(m.W, w, alignCorners)
		for oy, ty := range ys {
			r0 := m.Data[ty.i0*m.W : (ty.i0+1)*m.W]
			r1 := m.Data[ty.i1*m.W : (ty.i1+1)*m.W]
			for ox, tx := range xs {
				top := tx.w0*float64(r0[tx.i0]) + tx.w1*float64(r0[tx.i1])
				bot := tx.w0*float64(r1[tx.i0]) + tx.w1*float64(r1[tx.i1])
				out.Data[oy*w+ox] = float32(ty.w0*top + ty.w1*bot)
			}
		}
	case Nearest:
		if alignCorners {
			return Map{}, fmt.Errorf("heatmap.Resize: alignCorners is only valid with Bilinear (PyTorch rejects it for nearest too)")
		}
		for oy := 0; oy < h; oy++ {
			sy := nearestIndex(oy, m.H, h)
			for ox := 0; ox < w; ox++ {
				out.Data[oy*w+ox] = m.Data[sy*m.W+nearestIndex(ox, m.W, w)]
			}
		}
	default:
		return Map{}, fmt.Errorf("heatmap.Resize: unknown interpolation %v", mode)
	}
	return out, nil
}

// tap is one output coordinate's two source indices and weights.
type tap struct {
	i0, i1 int
	w0, w1 float64
}

// linearTaps follows PyTorch's area_pixel_compute_source_index / upsample_bilinear2d.
func linearTaps(in, out int, alignCorners bool) []tap {
	taps := make([]tap, out)
	var scale float64
	if alignCorners {
		if out > 1 {
			scale = float64(in-1) / float64(out-1)
		}
	} else {
		scale = float64(in) / float64(out)
	}
	for d := range taps {
		var src float64
		if alignCorners {
			src = scale * float64(d)
		} else {
			src = scale*(float64(d)+0.5) - 0.5
			if src < 0 {
				src = 0
			}
		}
		i0 := int(src)
		if i0 > in-1 {
			i0 = in - 1
		}
		i1 := i0
		if i0 < in-1 {
			i1 = i0 + 1
		}
		l1 := clamp01(src - float64(i0))
		taps[d] = tap{i0: i0, i1: i1, w0: 1 - l1, w1: l1}
	}
	return taps
}

func nearestIndex(d, in, out int) int {
	s := d * in / out
	if s > in-1 {
		s = in - 1
	}
	return s
}
