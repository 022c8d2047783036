package resnet

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/cnnviz/cnnviz/models/weights"
)

// RandomWeights returns freshly initialised weights for cfg, in torchvision's
// names and layouts, with torchvision's ResNet initialisation:
//
//	conv:   kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2/(O·kh·kw))
//	BN:     weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0
//	fc:     nn.Linear's default: weight and bias U(−1/√F, 1/√F)
//
// (zero_init_residual=False, torchvision's default). The same seed gives the
// same weights (a PCG stream per tensor), not the values PyTorch would draw.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 || cfg.Stem < 1 || len(cfg.Stages[3]) == 0 {
		return nil, fmt.Errorf("resnet: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	stream := uint64(0)
	rng := func() *rand.Rand {
		stream++
		return rand.New(rand.NewPCG(seed, 0x7265736e6574+stream))
	}
	conv := func(m string, o, in, groups, k int) {
		r := rng()
		std := math.Sqrt(2 / float64(o*k*k))
		d := make([]float32, o*(in/groups)*k*k)
		for i := range d {
			d[i] = float32(r.NormFloat64() * std)
		}
		s.Tensors[m+".weight"] = &weights.Tensor{Shape: []int{o, in / groups, k, k}, Data: d}
	}
	fill := func(n int, v float32) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = v
		}
		return d
	}
	bn := func(m string, c int) {
		s.Tensors[m+".weight"] = &weights.Tensor{Shape: []int{c}, Data: fill(c, 1)}
		s.Tensors[m+".bias"] = &weights.Tensor{Shape: []int{c}, Data: fill(c, 0)}
		s.Tensors[m+".running_mean"] = &weights.Tensor{Shape: []int{c}, Data: fill(c, 0)}
		s.Tensors[m+".running_var"] = &weights.Tensor{Shape: []int{c}, Data: fill(c, 1)}
		s.Tensors[m+".num_batches_tracked"] = &weights.Tensor{Shape: []int{}, Data: []float32{0}}
	}
	conv("conv1", cfg.Stem, 3, 1, 7)
	bn("bn1", cfg.Stem)
	for si, stage := range cfg.Stages {
		for b, blk := range stage {
			p := fmt.Sprintf("layer%d.%d.", si+1, b)
			if cfg.Bottleneck {
				conv(p+"conv1", blk.Width, blk.In, 1, 1)
				bn(p+"bn1", blk.Width)
				conv(p+"conv2", blk.Width, blk.Width, blk.Groups, 3)
				bn(p+"bn2", blk.Width)
				conv(p+"conv3", blk.Out, blk.Width, 1, 1)
				bn(p+"bn3", blk.Out)
			} else {
				conv(p+"conv1", blk.Width, blk.In, 1, 3)
				bn(p+"bn1", blk.Width)
				conv(p+"conv2", blk.Out, blk.Width, 1, 3)
				bn(p+"bn2", blk.Out)
			}
			if blk.Downsample {
				conv(p+"downsample.0", blk.Out, blk.In, 1, 1)
				bn(p+"downsample.1", blk.Out)
			}
		}
	}
	f := cfg.Features()
	bound := 1 / math.Sqrt(float64(f))
	uniform := func(n int) []float32 {
		r := rng()
		d := make([]float32, n)
		for i := range d {
			d[i] = float32((2*r.Float64() - 1) * bound)
		}
		return d
	}
	s.Tensors["fc.weight"] = &weights.Tensor{Shape: []int{cfg.NumClasses, f}, Data: uniform(cfg.NumClasses * f)}
	s.Tensors["fc.bias"] = &weights.Tensor{Shape: []int{cfg.NumClasses}, Data: uniform(cfg.NumClasses)}
	return s, nil
}

// NewRandom builds a torchvision architecture ("resnet18", "resnext50_32x4d",
// …) with random weights (see RandomWeights) and numClasses outputs;
// widthDivisor ≥ 1 divides the base width (1 = full size).
func NewRandom(arch string, numClasses, widthDivisor int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(arch, numClasses, widthDivisor)
	if err != nil {
		return nil, err
	}
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}
