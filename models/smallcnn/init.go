package smallcnn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// RandomWeights returns freshly initialised weights for cfg (torchvision
// names, PyTorch layouts), drawn from a PCG generator seeded with seed, with
// PyTorch's default rule for nn.Conv2d and nn.Linear (kaiming_uniform_ with
// a=√5): weight and bias U(−1/√fan_in, 1/√fan_in), fan_in = I·3·3 for convs
// and C for the linear layer. (With batch normalisation during training these
// small weights matter: Adam's steps are then relatively larger, and training
// converges several times faster than from He-initialised weights.)
//
// The same seed gives the same weights (not the values PyTorch would draw).
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x736d616c6c636e6e))
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", Arch, seed))
	for _, l := range cfg.Layers() {
		if l.Kind != models.Conv2d && l.Kind != models.Linear {
			continue
		}
		fanIn := l.In
		shape := []int{l.Out, l.In}
		if l.Kind == models.Conv2d {
			fanIn, shape = l.In*9, []int{l.Out, l.In, 3, 3}
		}
		bound := 1 / math.Sqrt(float64(fanIn))
		u := func(n int) []float32 {
			out := make([]float32, n)
			for i := range out {
				out[i] = float32((2*rng.Float64() - 1) * bound)
			}
			return out
		}
		s.Tensors[l.Name+".weight"] = &weights.Tensor{Shape: shape, Data: u(l.Out * fanIn)}
		s.Tensors[l.Name+".bias"] = &weights.Tensor{Shape: []int{l.Out}, Data: u(l.Out)}
	}
	return s, nil
}

// NewRandom builds a model of cfg with RandomWeights(cfg, seed).
func NewRandom(cfg Config, seed uint64) (*Model, error) {
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}
