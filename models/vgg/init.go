package vgg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// RandomWeights returns freshly initialised weights for cfg, in torchvision
// naming and layout, with torchvision's VGG initialisation rule:
//
//	conv:   kaiming_normal_(mode="fan_out", nonlinearity="relu"), i.e. N(0, 2/(O·3·3)); bias 0
//	BN:     weight 1, bias 0, running_mean 0, running_var 1
//	linear: N(0, 0.01²); bias 0
//
// The same seed gives the same weights (PCG generator), but not the values
// PyTorch would draw. Use it to explore mechanics offline: the pictures of a
// random network show how a method works, not what a trained network sees.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 || len(cfg.Blocks) == 0 {
		return nil, fmt.Errorf("vgg: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	// Each tensor draws from its own stream (seed, tensor number), filled in
	// parallel: the result depends only on the seed.
	var wg sync.WaitGroup
	stream := uint64(0)
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		stream++
		rng := rand.New(rand.NewPCG(seed, 0x636e6e76697a+stream))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range out {
				out[i] = float32(rng.NormFloat64() * std)
			}
		}()
		return out
	}
	fill := func(n int, v float32) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, l := range cfg.Layers() {
		switch l.Kind {
		case models.Conv2d:
			s.Tensors[l.Name+".weight"] = &weights.Tensor{Shape: []int{l.Out, l.In, 3, 3}, Data: normal(l.Out*l.In*9, math.Sqrt(2/float64(l.Out*9)))}
			s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
		case models.BatchNorm2d:
			s.Tensors[l.Name+".weight"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 1)}
			s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
			s.Tensors[l.Name+".running_mean"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
			s.Tensors[l.Name+".running_var"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 1)}
		case models.Linear:
			s.Tensors[l.Name+".weight"] = &weights.Tensor{Shape: []int{l.Out, l.In}, Data: normal(l.Out*l.In, 0.01)}
			s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
		}
	}
	wg.Wait()
	return s, nil
}

// NewRandom builds a model of a standard architecture ("vgg11", "vgg16_bn", …)
// with random weights (see RandomWeights). widthDivisor narrows it (1 = full size).
func NewRandom(arch string, numClasses, widthDivisor int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(arch, numClasses, widthDivisor)
	if err != nil {
		return nil, err
	}
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return buildFrom(cfg, w, true) // w is ours: let its tensors go as they are converted.
}
