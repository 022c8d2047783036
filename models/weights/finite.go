package weights

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// FirstNonFinite returns the index of the first NaN or ±Inf in data, or -1
// when every value is finite. Large slices are scanned in parallel (pieces
// of 1 Mi values over GOMAXPROCS goroutines); the result is the lowest such
// index whatever the number of goroutines.
func FirstNonFinite(data []float32) int {
	const grain = 1 << 20
	if len(data) <= grain || runtime.GOMAXPROCS(0) == 1 {
		return firstNonFinite(data, 0)
	}
	pieces := (len(data) + grain - 1) / grain
	found := make([]int, pieces)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := min(runtime.GOMAXPROCS(0), pieces); w > 0; w-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= pieces {
					return
				}
				a := i * grain
				found[i] = firstNonFinite(data[a:min(a+grain, len(data))], a)
			}
		}()
	}
	wg.Wait()
	for _, f := range found {
		if f >= 0 {
			return f
		}
	}
	return -1
}

// firstNonFinite scans data serially; the result is offset by base. A value
// is non-finite when its exponent bits are all ones; blocks of 64 values keep
// the minimum of (exponent XOR all-ones), zero only for such a value, so that
// the common all-finite case runs without a branch per value.
func firstNonFinite(data []float32, base int) int {
	const exp = 0x7f800000
	for a := 0; a < len(data); a += 64 {
		blk := data[a:min(a+64, len(data))]
		m := uint32(exp)
		for _, x := range blk {
			m = min(m, math.Float32bits(x)&exp^exp)
		}
		if m == 0 {
			for j, x := range blk {
				if math.Float32bits(x)&exp == exp {
					return base + a + j
				}
			}
		}
	}
	return -1
}
