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
