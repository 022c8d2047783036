package models

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// cpuSeconds is the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// vgg11Convs is VGG11's feature stack: (input channels, output channels,
// max-pool after).
var vgg11Convs = [][3]int{{3, 64, 1}, {64, 128, 1}, {128, 256, 0}, {256, 256, 1}, {256, 512, 0}, {512, 512, 1}, {512, 512, 0}, {512, 512, 1}}

// BenchmarkVGG11FeaturesLowering times VGG11's convolution stack (convs, bias,
// ReLU, 2×2 max-pools) at 224×224, batch 1, per lowering: forward only
// ("fwd") and forward plus the gradient with respect to the input ("grad").
//
//	go test ./models -run '^$' -bench VGG11FeaturesLowering -benchtime 5x
func BenchmarkVGG11FeaturesLowering(b *testing.B) {
	be, err := compute.NewWithConfig("go")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(randSlice(rng, 224*224*3), 1, 224, 224, 3)}
	for _, l := range vgg11Convs {
		k := randSlice(rng, 9*l[0]*l[1])
		for i := range k {
			k[i] *= 0.05
		}
		inputs = append(inputs, tensors.FromFlatDataAndDimensions(k, 3, 3, l[0], l[1]),
			tensors.FromFlatDataAndDimensions(randSlice(rng, l[1]), l[1]))
	}
	for _, mode := range []string{"fwd", "grad"} {
		for _, low := range []Lowering{LoweringIm2Col, LoweringWinograd, LoweringWinograd4} {
			b.Run(fmt.Sprintf("%s/%v", mode, low), func(b *testing.B) {
				exec := MustNewExec(be, func(ins []*Node) *Node {
					x := ins[0]
					y := x
					for i, l := range vgg11Convs {
						y = Conv3x3(y, ins[1+2*i], ins[2+2*i], low)
						y = Max(y, ZerosLike(y))
						if l[2] == 1 {
							y = MaxPool2x2(y, false)
						}
					}
					s := ReduceAllSum(y)
					if mode == "fwd" {
						return s
					}
					return ReduceAllSum(Gradient(s, x)[0])
				})
				defer exec.Finalize()
				exec.MustExec(inputs)
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuSeconds()
				for i := 0; i < b.N; i++ {
					exec.MustExec(inputs)
				}
				b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/op")
				b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			})
		}
	}
}

// BenchmarkWinogradProductBound is the optimistic bound of a Winograd lowering
// on the Go backend: the matrix products alone (input and output transforms
// taken as free) of VGG11's 3×3 convolutions 2–8 at 224×224, batch 1, timed
// as the backend's own GEMM runs them.
//
//   - im2col: one product per layer, [H·W, 9·C] × [9·C, O]
//   - f2x2: F(2×2,3×3), 16 products per layer, [H·W/4, C] × [C, O]
//     (2.25× fewer multiply-adds)
//   - f4x4: F(4×4,3×3), 36 products per layer, [H·W/16, C] × [C, O]
//     (4× fewer)
//
// The products of one layer are independent outputs of one executable, so
// the backend runs them in parallel. Metrics: s/op (all seven layers),
// GMAC/op and the achieved GMAC/s.
//
//	go test ./models -run '^$' -bench WinogradProductBound -benchtime 5x
func BenchmarkWinogradProductBound(b *testing.B) {
	be, err := compute.NewWithConfig("go")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// (map side, input channels, output channels) of VGG11's convs 2–8.
	layers := [][3]int{{112, 64, 128}, {56, 128, 256}, {56, 256, 256}, {28, 256, 512}, {28, 512, 512}, {14, 512, 512}, {14, 512, 512}}
	variants := []struct {
		name string
		// products returns the number of products and their (M, K, N).
		products func(h, c, o int) (n, m, k, nn int)
	}{
		{"im2col", func(h, c, o int) (int, int, int, int) { return 1, h * h, 9 * c, o }},
		{"f2x2", func(h, c, o int) (int, int, int, int) { return 16, h * h / 4, c, o }},
		{"f4x4", func(h, c, o int) (int, int, int, int) { return 36, h * h / 16, c, o }},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var total time.Duration
			var macs float64
			for _, l := range layers {
				np, m, k, n := v.products(l[0], l[1], l[2])
				macs += float64(np * m * k * n)
				var ins []*tensors.Tensor
				for i := 0; i < np; i++ {
					ins = append(ins, tensors.FromFlatDataAndDimensions(randSlice(rng, m*k), m, k),
						tensors.FromFlatDataAndDimensions(randSlice(rng, k*n), k, n))
				}
				exec := MustNewExec(be, func(xs []*Node) []*Node {
					outs := make([]*Node, np)
					for i := range outs {
						outs[i] = DotGeneral(xs[2*i], []int{1}, nil, xs[2*i+1], []int{0}, nil)
					}
					return outs
				})
				exec.MustExec(ins) // Compile and warm up.
				start := time.Now()
				for i := 0; i < b.N; i++ {
					exec.MustExec(ins)
				}
				total += time.Since(start)
				exec.Finalize()
			}
			sec := total.Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			b.ReportMetric(macs/1e9, "GMAC/op")
			b.ReportMetric(macs/1e9/sec, "GMAC/s")
		})
	}
}
