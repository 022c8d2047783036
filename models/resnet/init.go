package resnet

import (
	"fmt"
	"math"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// StateDictShapes lists the tensors of cfg's torchvision state_dict in
// torchvision's order (names and PyTorch shapes; num_batches_tracked has
// shape []).
func StateDictShapes(cfg Config) (names []string, shapes map[string][]int) {
	shapes = map[string][]int{}
	add := func(n string, d ...int) {
		names = append(names, n)
		shapes[n] = d
	}
	conv := func(m string, o, in, groups, k int) { add(m+".weight", o, in/groups, k, k) }
	bn := func(m string, c int) {
		for _, f := range []string{"weight", "bias", "running_mean", "running_var"} {
			add(m+"."+f, c)
		}
		add(m + ".num_batches_tracked")
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
	add("fc.weight", cfg.NumClasses, cfg.Features())
	add("fc.bias", cfg.NumClasses)
	return names, shapes
}

// RandomWeights returns freshly initialised weights for cfg, in torchvision's
// names and layouts, with torchvision's ResNet initialisation:
//
//	conv:   kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2/(O·kh·kw))
//	BN:     weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0
//	fc:     nn.Linear's default: weight and bias U(−1/√F, 1/√F)
//
// (zero_init_residual=False, torchvision's default). The same seed gives the
// same weights (state-dict tensor number i is drawn by models.FillNormal or
// FillUniform with stream i, in parallel chunks), not the values PyTorch
// would draw.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 || cfg.Stem < 1 || len(cfg.Stages[3]) == 0 {
		return nil, fmt.Errorf("resnet: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	names, shapes := StateDictShapes(cfg)
	bound := 1 / math.Sqrt(float64(cfg.Features()))
	for i, n := range names {
		d := shapes[n]
		size := 1
		for _, k := range d {
			size *= k
		}
		data := make([]float32, size)
		switch {
		case strings.HasPrefix(n, "fc."):
			models.FillUniform(data, bound, seed, uint64(i))
		case len(d) == 4: // convolution
			models.FillNormal(data, math.Sqrt(2/float64(d[0]*d[2]*d[3])), seed, uint64(i))
		case strings.HasSuffix(n, ".weight"), strings.HasSuffix(n, ".running_var"): // BN: 1
			for j := range data {
				data[j] = 1
			}
		}
		s.Tensors[n] = &weights.Tensor{Shape: d, Data: data}
	}
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
