package models

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Weight layout conversions shared by the model builders: PyTorch keeps conv
// kernels as [O,I,3,3] and linear weights as [out,in]; the graphs use
// channels-last kernels [3,3,I,O] and PyTorch's own [out,in] for linear
// layers (Scope.Linear); [in,out] matrices appear in user graphs (custom,
// ONNX) and in the lab network's training.

// KernelOIHWToHWIO writes the [3,3,in,o] (HWIO) form of the PyTorch kernel k
// [o,in,3,3] into out (TransposeRows, in parallel).
func KernelOIHWToHWIO(out, k []float32, o, in int) { KernelToHWIO(out, k, o, in, 9) }

// KernelToHWIO writes the [kh,kw,in,o] (HWIO) form of the PyTorch kernel k
// [o,in,kh,kw] into out, with kk = kh·kw (TransposeRows, in parallel).
func KernelToHWIO(out, k []float32, o, in, kk int) {
	rows := make([][]float32, in*kk)
	for r := range rows {
		rows[r] = out[r*o : (r+1)*o]
	}
	TransposeRows(rows, k, o, in, kk)
}

// TransposeRows writes the transpose of src, a row-major [out, c·pp] matrix,
// with its column axis reordered from (c, pp) to (pp, c) order: destination
// row s·c+ch (0 ≤ s < pp, 0 ≤ ch < c), column o, is src[o, ch·pp+s]. rows
// holds the c·pp destination rows, each at least out long (they may live in
// separate buffers: VGG's row chunks). pp = 1 is a plain transpose; a conv
// kernel [O,I,kh,kw] → HWIO is c = I, pp = kh·kw; VGG's classifier.0 (CHW
// flatten → HWC) is c = channels, pp = H·W.
//
// It works in tiles of 16 outputs × 64 channels: for each s, a 64×16 block is
// gathered from 16 rows of src into a small buffer, then written as 64 rows
// of 16 values (one 64-byte line each), so that both sides stay in cache and
// in the TLB; tiles are spread over GOMAXPROCS goroutines.
func TransposeRows(rows [][]float32, src []float32, out, c, pp int) {
	in := c * pp
	const ob, cb = 16, 64
	oTiles, cTiles := (out+ob-1)/ob, (c+cb-1)/cb
	tiles := oTiles * cTiles
	var next atomic.Int64
	var wg sync.WaitGroup
	for wk := min(runtime.GOMAXPROCS(0), tiles); wk > 0; wk-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [cb * ob]float32
			for {
				t := int(next.Add(1) - 1)
				if t >= tiles {
					return
				}
				o0, c0 := (t%oTiles)*ob, (t/oTiles)*cb
				no, nc := min(ob, out-o0), min(cb, c-c0)
				for s := 0; s < pp; s++ {
					for oo := 0; oo < no; oo++ {
						src := src[(o0+oo)*in+c0*pp+s:]
						for j := 0; j < nc; j++ {
							buf[j*ob+oo] = src[j*pp]
						}
					}
					for j := 0; j < nc; j++ {
						copy(rows[s*c+c0+j][o0:o0+no], buf[j*ob:j*ob+no])
					}
				}
			}
		}()
	}
	wg.Wait()
}

// KernelHWIOToOIHW returns the PyTorch [o,in,3,3] form of an HWIO [3,3,in,o] kernel.
func KernelHWIOToOIHW(k []float32, o, in int) []float32 {
	out := make([]float32, len(k))
	for oi := 0; oi < o; oi++ {
		for ii := 0; ii < in; ii++ {
			for p := 0; p < 9; p++ {
				out[(oi*in+ii)*9+p] = k[(p*in+ii)*o+oi]
			}
		}
	}
	return out
}

// Transpose2D returns the [cols,rows] transpose of a row-major [rows,cols]
// matrix, in 16×16 tiles (so each tile's reads and writes stay in cache)
// spread over the CPUs.
func Transpose2D(x []float32, rows, cols int) []float32 {
	out := make([]float32, len(x))
	const blk = 16
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		wg.Add(1)
		go func(wk int) {
			defer wg.Done()
			for r0 := wk * blk; r0 < rows; r0 += workers * blk {
				r1 := min(r0+blk, rows)
				for c0 := 0; c0 < cols; c0 += blk {
					c1 := min(c0+blk, cols)
					for r := r0; r < r1; r++ {
						row := x[r*cols : r*cols+cols]
						for c := c0; c < c1; c++ {
							out[c*rows+r] = row[c]
						}
					}
				}
			}
		}(wk)
	}
	wg.Wait()
	return out
}
