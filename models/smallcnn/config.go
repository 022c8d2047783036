// Package smallcnn is a small convolutional network for the teaching lab: a
// few 3×3 conv + ReLU blocks with 2×2 max-pools, global average pooling and
// one linear layer — the architecture on which the original CAM (Zhou et al.
// 2016) is defined — with torchvision-style module names. DefaultConfig:
//
//	features.0   Conv2d 3→8     features.1  ReLU   features.2  MaxPool2d  (64→32)
//	features.3   Conv2d 8→32    features.4  ReLU   features.5  MaxPool2d  (32→16)
//	features.6   Conv2d 32→32   features.7  ReLU                         (16×16)
//	features.8   Conv2d 32→32   features.9  ReLU                         (16×16)
//	features.10  Conv2d 32→64   features.11 ReLU                         (16×16)
//	pool         GlobalAvgPool  (N,64,16,16) → (N,64)
//	fc           Linear 64→5
//
// The last three convolutions keep 16×16 pixels, so class activation maps
// have 4-pixel cells on 64×64 images, while their receptive field (34 px)
// covers the largest objects. It implements models.Network, so every vizkit
// method (CAMs, saliency, metrics) runs on it unchanged. Train trains it on
// the procedural shapes data set (package models/shapes) with GoMLX's
// training loop and Adam on any backend; Pretrained loads the committed
// weights trained that way (go run ./models/smallcnn/cmd/train).
//
// Weights use PyTorch layouts and names in a weights.Set ("features.0.weight"
// [O,I,3,3], "fc.weight" [K,C]), so the same file loads into an equivalent
// torch.nn.Module (see scripts/gen_lab_golden.py).
package smallcnn

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Arch is the architecture name reported by Model.Arch.
const Arch = "smallcnn"

// Config is a smallcnn architecture.
type Config struct {
	// Blocks lists the feature layers as in torchvision's VGG configurations:
	// a positive entry is a 3×3 conv (padding 1) with that many output
	// channels followed by a ReLU; 0 is a 2×2 max-pool. It must start and end
	// with a conv.
	Blocks []int
	// NumClasses is the size of the logits.
	NumClasses int
}

// DefaultConfig is the lab network: Blocks {8, 0, 32, 0, 32, 32, 64} and
// shapes.NumClasses classes (39,877 parameters).
func DefaultConfig() Config {
	return Config{Blocks: []int{8, 0, 32, 0, 32, 32, 64}, NumClasses: shapes.NumClasses}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.Blocks) == 0 || c.Blocks[0] <= 0 || c.Blocks[len(c.Blocks)-1] <= 0 {
		return fmt.Errorf("smallcnn: Config.Blocks must start and end with a conv (a positive channel count), got %v", c.Blocks)
	}
	for i, ch := range c.Blocks {
		if ch < 0 {
			return fmt.Errorf("smallcnn: Config.Blocks[%d] is %d; use a positive channel count or 0 for a max-pool", i, ch)
		}
	}
	if c.NumClasses < 1 {
		return fmt.Errorf("smallcnn: NumClasses must be ≥ 1, got %d", c.NumClasses)
	}
	return nil
}

// NumPools is the number of 2×2 max-pools.
func (c Config) NumPools() int {
	n := 0
	for _, b := range c.Blocks {
		if b == 0 {
			n++
		}
	}
	return n
}

// LastChannels is the channel count entering the global average pool.
func (c Config) LastChannels() int { return c.Blocks[len(c.Blocks)-1] }

// Layers lists the modules in execution order (see the package comment).
func (c Config) Layers() []models.Layer {
	var layers []models.Layer
	in := 3
	add := func(kind models.Kind, inC, outC, params int) {
		layers = append(layers, models.Layer{Name: fmt.Sprintf("features.%d", len(layers)), Kind: kind, In: inC, Out: outC, Params: params, Spatial: true})
	}
	for _, ch := range c.Blocks {
		if ch == 0 {
			add(models.MaxPool2d, in, in, 0)
			continue
		}
		add(models.Conv2d, in, ch, in*ch*9+ch)
		add(models.ReLU, ch, ch, 0)
		in = ch
	}
	return append(layers,
		models.Layer{Name: "pool", Kind: models.GlobalAvgPool, In: in, Out: in},
		models.Layer{Name: "fc", Kind: models.Linear, In: in, Out: c.NumClasses, Params: in*c.NumClasses + c.NumClasses})
}

// ConfigFromWeights infers the architecture from torchvision-style tensors:
// conv kernels "features.N.weight" [O,I,3,3] (the first at N = 0; a gap of 2
// to the next conv means conv+ReLU, a gap of 3 conv+ReLU+max-pool) and
// "fc.weight" [K,C]. Errors name the tensor that does not fit.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	var idx []int
	for name, t := range w.Tensors {
		rest, ok := strings.CutPrefix(name, "features.")
		if !ok {
			continue
		}
		num, field, ok := strings.Cut(rest, ".")
		if !ok || field != "weight" {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 {
			return Config{}, fmt.Errorf("weights %s: tensor %q has a bad layer index", w.Source, name)
		}
		if len(t.Shape) != 4 {
			return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v; a smallcnn conv kernel is [O,I,3,3]", w.Source, name, t.Shape)
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return Config{}, fmt.Errorf("weights %s: no conv kernels named features.N.weight (found: %s) — not a smallcnn checkpoint", w.Source, strings.Join(w.Names(), ", "))
	}
	sort.Ints(idx)
	var cfg Config
	in := 3
	for k, i := range idx {
		if k == 0 && i != 0 {
			return Config{}, fmt.Errorf("weights %s: the first conv kernel is features.%d; smallcnn starts with a conv at features.0", w.Source, i)
		}
		if k > 0 {
			switch i - idx[k-1] {
			case 2:
			case 3:
				cfg.Blocks = append(cfg.Blocks, 0)
			default:
				return Config{}, fmt.Errorf("weights %s: conv kernels features.%d and features.%d are %d layers apart; smallcnn has conv+ReLU (2) or conv+ReLU+max-pool (3) between them", w.Source, idx[k-1], i, i-idx[k-1])
			}
		}
		name := fmt.Sprintf("features.%d.weight", i)
		t := w.Tensors[name]
		if t.Shape[1] != in || t.Shape[2] != 3 || t.Shape[3] != 3 {
			return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [O,%d,3,3]", w.Source, name, t.Shape, in)
		}
		cfg.Blocks = append(cfg.Blocks, t.Shape[0])
		in = t.Shape[0]
	}
	fc, ok := w.Tensors["fc.weight"]
	if !ok {
		return Config{}, fmt.Errorf("weights %s: tensor \"fc.weight\" is missing", w.Source)
	}
	if len(fc.Shape) != 2 || fc.Shape[1] != in {
		return Config{}, fmt.Errorf("weights %s: tensor \"fc.weight\" has shape %v, expected [classes,%d]", w.Source, fc.Shape, in)
	}
	cfg.NumClasses = fc.Shape[0]
	return cfg, cfg.Validate()
}
