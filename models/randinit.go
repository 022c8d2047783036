package models

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// RandomChunk is the number of values each independent random stream of
// FillNormal and FillUniform draws: chunk k of a slice (values
// [k·RandomChunk, (k+1)·RandomChunk)) is drawn from PCG(seed, mix(stream, k)).
// The values therefore depend only on (seed, stream, index), not on the
// number of goroutines (GOMAXPROCS) that fill the chunks in parallel.
const RandomChunk = 1 << 16

// FillNormal fills dst with independent draws of N(0, std²) (math/rand/v2's
// ziggurat NormFloat64, rounded to float32), deterministically for (seed,
// stream) — see RandomChunk — in parallel over GOMAXPROCS goroutines.
func FillNormal(dst []float32, std float64, seed, stream uint64) {
	fillRandom(dst, seed, stream, func(r *rand.Rand, out []float32) {
		for i := range out {
			out[i] = float32(r.NormFloat64() * std)
		}
	})
}

// FillUniform fills dst with independent draws of U(−bound, bound)
// (2·Float64()−1 scaled, rounded to float32), deterministically for (seed,
// stream) as FillNormal.
func FillUniform(dst []float32, bound float64, seed, stream uint64) {
	fillRandom(dst, seed, stream, func(r *rand.Rand, out []float32) {
		for i := range out {
			out[i] = float32((2*r.Float64() - 1) * bound)
		}
	})
}

// streamKey mixes a stream number and a chunk index into a PCG sequence
// (SplitMix64's finaliser: nearby inputs give unrelated streams).
func streamKey(stream, chunk uint64) uint64 {
	z := stream*0x9e3779b97f4a7c15 ^ (chunk + 0x632be59bd9b4e019)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func fillRandom(dst []float32, seed, stream uint64, draw func(*rand.Rand, []float32)) {
	chunks := (len(dst) + RandomChunk - 1) / RandomChunk
	one := func(k int) {
		r := rand.New(rand.NewPCG(seed, streamKey(stream, uint64(k))))
		draw(r, dst[k*RandomChunk:min((k+1)*RandomChunk, len(dst))])
	}
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for k := 0; k < chunks; k++ {
			one(k)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= chunks {
					return
				}
				one(k)
			}
		}()
	}
	wg.Wait()
}

// Streams draws the random tensors of a state dict one after the other:
// the i-th tensor drawn (Normal or Uniform) uses stream i of Seed, so a
// model's random weights depend only on the seed and the order of its
// tensors (and not on GOMAXPROCS).
type Streams struct {
	Seed uint64
	next uint64
}

// Normal returns n draws of N(0, std²) from the next stream (FillNormal).
func (s *Streams) Normal(n int, std float64) []float32 {
	out := make([]float32, n)
	FillNormal(out, std, s.Seed, s.next)
	s.next++
	return out
}

// Uniform returns n draws of U(−bound, bound) from the next stream
// (FillUniform).
func (s *Streams) Uniform(n int, bound float64) []float32 {
	out := make([]float32, n)
	FillUniform(out, bound, s.Seed, s.next)
	s.next++
	return out
}

// OnesF32 returns n ones (a BatchNorm's weight and running variance).
func OnesF32(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = 1
	}
	return out
}
