package models

import (
	"runtime"
	"sync"
)

// Weight layout conversions shared by the model builders: PyTorch keeps conv
// kernels as [O,I,3,3] and linear weights as [out,in]; the graphs use
// channels-last kernels [3,3,I,O] and [in,out] matrices.

// KernelOIHWToHWIO writes the [3,3,in,o] (HWIO) form of the PyTorch kernel k
// [o,in,3,3] into out.
func KernelOIHWToHWIO(out, k []float32, o, in int) {
	for oi := 0; oi < o; oi++ {
		for ii := 0; ii < in; ii++ {
			for p := 0; p < 9; p++ {
				out[(p*in+ii)*o+oi] = k[(oi*in+ii)*9+p]
			}
		}
	}
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
