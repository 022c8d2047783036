package vgg

import (
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// RandomWeights returns freshly initialised weights for cfg, in torchvision
// naming and layout: the weights of NewRandom's model for (cfg, seed), with
// torchvision's VGG initialisation rule:
//
//	conv:   kaiming_normal_(mode="fan_out", nonlinearity="relu"), i.e. N(0, 2/(O·3·3)); bias 0
//	BN:     weight 1, bias 0, running_mean 0, running_var 1
//	linear: N(0, 0.01²); bias 0
//
// The same seed gives the same weights, but not the values PyTorch would
// draw. Use it to explore mechanics offline: the pictures of a random network
// show how a method works, not what a trained network sees.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	m, err := newRandom(cfg, seed)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	s := weights.NewSet(m.Source)
	fill := func(n int, v float32) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d, models.Linear:
			w, b, err := m.Weight(l.Name)
			if err != nil {
				return nil, err
			}
			s.Tensors[l.Name+".weight"] = w
			s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: b}
		case models.BatchNorm2d:
			s.Tensors[l.Name+".weight"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 1)}
			s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
			s.Tensors[l.Name+".running_mean"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 0)}
			s.Tensors[l.Name+".running_var"] = &weights.Tensor{Shape: []int{l.Out}, Data: fill(l.Out, 1)}
		}
	}
	return s, nil
}

// NewRandom builds a model of a standard architecture ("vgg11", "vgg16_bn", …)
// with random weights (see RandomWeights). widthDivisor narrows it (1 = full size).
func NewRandom(arch string, numClasses, widthDivisor int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(arch, numClasses, widthDivisor)
	if err != nil {
		return nil, err
	}
	return newRandom(cfg, seed)
}

// newRandom draws the parameters of cfg straight into their graph layouts
// (see Load): parameter tensor number i (in ParamNames order) is filled with
// models.FillNormal(…, seed, stream i+1) in its own memory order — HWIO for
// convolutions, [out,in] for linear layers — so that no PyTorch-layout copy
// is made or transposed. Biases are 0; BN layers hold
// the folded identity (scale 1/√(1+ε), shift 0).
func newRandom(cfg Config, seed uint64) (*Model, error) {
	if cfg.NumClasses < 1 || len(cfg.Blocks) == 0 {
		return nil, fmt.Errorf("vgg: invalid configuration %+v", cfg)
	}
	m := newModel(cfg, fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	stream := func() uint64 { return uint64(m.set.Len()) } // The next parameter's number, +1 after add.
	bnScale := float32(1 / math.Sqrt(1+BatchNormEps))      // As Load folds weight 1, running_var 1.
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d:
			k := m.add(l.Name+".weight", 3, 3, l.In, l.Out)
			models.FillNormal(k, math.Sqrt(2/float64(l.Out*9)), seed, stream())
			m.add(l.Name+".bias", l.Out)
		case models.BatchNorm2d:
			scale := m.add(l.Name+".scale", l.Out)
			for i := range scale {
				scale[i] = bnScale
			}
			m.add(l.Name+".shift", l.Out)
		case models.Linear:
			w := m.add(l.Name+".weight", l.Out, l.In)
			m.set.MarkLinear(l.Name + ".weight")
			models.FillNormal(w, 0.01, seed, stream())
			m.add(l.Name+".bias", l.Out)
		}
	}
	return m, nil
}
