// Package alexnet builds torchvision's AlexNet ("One weird trick" variant,
// torchvision.models.alexnet) as a GoMLX graph with torchvision's module
// names, in eval mode:
//
//	features.0  Conv2d(3, 64, 11, stride 4, padding 2)   features.1  ReLU
//	features.2  MaxPool2d(3, stride 2)
//	features.3  Conv2d(64, 192, 5, padding 2)            features.4  ReLU
//	features.5  MaxPool2d(3, stride 2)
//	features.6  Conv2d(192, 384, 3, padding 1)           features.7  ReLU
//	features.8  Conv2d(384, 256, 3, padding 1)           features.9  ReLU
//	features.10 Conv2d(256, 256, 3, padding 1)           features.11 ReLU
//	features.12 MaxPool2d(3, stride 2)
//	avgpool     AdaptiveAvgPool2d((6, 6));  torch.flatten(x, 1) (C,H,W order)
//	classifier.0 Dropout  .1 Linear(256·6·6, 4096)  .2 ReLU  .3 Dropout
//	classifier.4 Linear(4096, 4096)  .5 ReLU  .6 Linear(4096, 1000)
//
// The widths, hidden sizes and number of classes are read from the weights,
// so narrowed or fine-tuned AlexNets load without code changes.
package alexnet

import (
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	_ "github.com/gomlx/compute/gobackend" // models.TraceLayers builds (never runs) the graph on the pure-Go backend.
	. "github.com/gomlx/gomlx/core/graph"  //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// URL is torchvision's ImageNet checkpoint (cached by PyTorch in
// $TORCH_HOME/hub/checkpoints; "7be5be79" is a prefix of its SHA-256).
const URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"

// InputSize is the reference input size (224); MinInputSize the smallest
// height and width that leave the last max-pool a 1×1 output (63).
const (
	InputSize    = 224
	MinInputSize = 63
	// PoolSize is avgpool's output size (6×6).
	PoolSize = 6
)

// Config is an AlexNet's widths.
type Config struct {
	// Arch is "alexnet" for torchvision's widths, else "alexnet-narrow".
	Arch string
	// Convs are the output channels of features.0, 3, 6, 8, 10 (64, 192, 384, 256, 256).
	Convs [5]int
	// Hidden are the outputs of classifier.1 and classifier.4 (4096, 4096).
	Hidden [2]int
	// NumClasses is classifier.6's output size (1000).
	NumClasses int
}

// convIndex, kernels, strides and paddings of the five convolutions.
var (
	convIndex = [5]int{0, 3, 6, 8, 10}
	convK     = [5]int{11, 5, 3, 3, 3}
	convS     = [5]int{4, 1, 1, 1, 1}
	convP     = [5]int{2, 2, 1, 1, 1}
)

// StandardConfig is torchvision's AlexNet with numClasses outputs;
// widthDivisor ≥ 1 divides every width and hidden size (1 = the real network).
func StandardConfig(numClasses, widthDivisor int) (Config, error) {
	if numClasses < 1 || widthDivisor < 1 || 64%widthDivisor != 0 {
		return Config{}, fmt.Errorf("alexnet: invalid classes %d or width divisor %d (must divide 64)", numClasses, widthDivisor)
	}
	d := widthDivisor
	c := Config{Convs: [5]int{64 / d, 192 / d, 384 / d, 256 / d, 256 / d}, Hidden: [2]int{4096 / d, 4096 / d}, NumClasses: numClasses}
	c.Arch = c.name()
	return c, nil
}

func (c Config) name() string {
	if c.Convs == [5]int{64, 192, 384, 256, 256} && c.Hidden == [2]int{4096, 4096} {
		return "alexnet"
	}
	return "alexnet-narrow"
}

// Recognise reports whether w looks like a torchvision AlexNet state dict:
// features.0/3/6/8/10 and classifier.1/4/6 weights (VGG's classifier starts
// at classifier.0, and VGG has a convolution at features.2 or features.1).
func Recognise(w *weights.Set) bool {
	for _, n := range []string{"features.0.weight", "features.3.weight", "features.10.weight", "classifier.1.weight", "classifier.4.weight", "classifier.6.weight"} {
		if !w.Has(n) {
			return false
		}
	}
	return !w.Has("classifier.0.weight") && !w.Has("features.2.weight") && !w.Has("features.1.weight")
}

// ConfigFromWeights reads the widths from the kernels' and linear weights'
// shapes; a kernel of the wrong size or layout (e.g. transposed) is an error
// naming the tensor, the shape expected and the shape found.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	if !Recognise(w) {
		return Config{}, fmt.Errorf("weights %s: not a torchvision AlexNet (needs features.0/3/10 and classifier.1/4/6 weights)", w.Source)
	}
	var c Config
	in := 3
	for i, idx := range convIndex {
		name := fmt.Sprintf("features.%d.weight", idx)
		t := w.Tensors[name]
		if t == nil {
			return Config{}, fmt.Errorf("weights %s: tensor %q is missing (expected [C,%d,%d,%d])", w.Source, name, in, convK[i], convK[i])
		}
		if len(t.Shape) != 4 || t.Shape[1] != in || t.Shape[2] != convK[i] || t.Shape[3] != convK[i] {
			return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [C,%d,%d,%d] (PyTorch's [out,in,kh,kw] layout)", w.Source, name, t.Shape, in, convK[i], convK[i])
		}
		c.Convs[i] = t.Shape[0]
		in = t.Shape[0]
	}
	feat := in * PoolSize * PoolSize
	for i, idx := range []int{1, 4, 6} {
		name := fmt.Sprintf("classifier.%d.weight", idx)
		t := w.Tensors[name]
		if len(t.Shape) != 2 || t.Shape[1] != feat {
			return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [out,%d]", w.Source, name, t.Shape, feat)
		}
		if i < 2 {
			c.Hidden[i] = t.Shape[0]
		} else {
			c.NumClasses = t.Shape[0]
		}
		feat = t.Shape[0]
	}
	c.Arch = c.name()
	return c, nil
}

// Model is an AlexNet with its parameters converted to the graph's layouts
// (see models.ParamStore). It is safe for concurrent use.
type Model struct {
	// Config is the architecture, as read from the weights.
	Config Config
	// Source describes where the weights came from.
	Source string

	models.Stored
	layers []models.Layer
}

var (
	_ models.Network       = (*Model)(nil)
	_ models.ParamShaper   = (*Model)(nil)
	_ models.BiasedNetwork = (*Model)(nil)
)

// Load converts a torchvision-named AlexNet weight set (strict: a missing,
// mis-shaped or unknown tensor is an error naming it). Layouts held: conv
// [O,I,kh,kw] → HWIO, linear [out,in] kept as it is (row chunks on the
// pure-Go backend); see models.ParamStore.
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

func build(cfg Config, w *weights.Set) (*Model, error) {
	p := models.NewParamStore(w)
	in := 3
	for i, idx := range convIndex {
		m := fmt.Sprintf("features.%d", idx)
		if err := p.Conv(m, cfg.Convs[i], in, convK[i], convK[i], true); err != nil {
			return nil, err
		}
		p.SetConvIn(m, in)
		in = cfg.Convs[i]
	}
	feat := in * PoolSize * PoolSize
	for i, idx := range []int{1, 4, 6} {
		out := cfg.NumClasses
		if i < 2 {
			out = cfg.Hidden[i]
		}
		if err := p.Linear(fmt.Sprintf("classifier.%d", idx), out, feat); err != nil {
			return nil, err
		}
		feat = out
	}
	if err := p.CheckAllUsed(cfg.Arch); err != nil {
		return nil, err
	}
	p.Done()
	m := &Model{Config: cfg, Source: w.Source, Stored: models.StoredIn(p)}
	layers, err := models.TraceLayers(m, []int{1, 3, InputSize, InputSize}, p.Counts(), p.ConvIn())
	if err != nil {
		return nil, err
	}
	m.layers = layers
	return m, nil
}

// Arch is "alexnet" (or "alexnet-narrow" for other widths).
func (m *Model) Arch() string { return m.Config.Arch }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

// Layers lists the modules (features.0 … features.12, avgpool, classifier.0 …
// classifier.6) with output shapes for a 224×224 input.
func (m *Model) Layers() []models.Layer { return m.layers }

// Input describes the expected input: 3 channels, reference size 224, at least 63.
func (m *Model) Input() models.InputSpec {
	return models.InputSpec{Channels: 3, Size: InputSize, MinSize: MinInputSize}
}

// CheckInput validates an NCHW input shape (N,3,H,W) with H, W ≥ 63 (smaller
// inputs leave nothing for the third max-pool).
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N ≥ 1, got %v", m.Config.Arch, dims)
	}
	if dims[2] < MinInputSize || dims[3] < MinInputSize {
		return fmt.Errorf("model %s needs inputs of at least %d×%d pixels, got %d×%d", m.Config.Arch, MinInputSize, MinInputSize, dims[2], dims[3])
	}
	return nil
}

// Build builds AlexNet on x (channels-last [N,H,W,3], normalised), naming
// every module output through s with torchvision's paths, and returns the
// logits [N,NumClasses]. The Dropouts are identities (eval mode) but still
// named, as PyTorch's hooks see them.
func (m *Model) Build(s *models.Scope, x *Node) *Node {
	pool := models.PoolSpec{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}}
	for i, idx := range convIndex {
		x = s.Conv(fmt.Sprintf("features.%d", idx), x, models.ConvSpec{Stride: [2]int{convS[i], convS[i]}, Padding: [2]int{convP[i], convP[i]}})
		x = s.ReLU(fmt.Sprintf("features.%d", idx+1), x)
		if idx == 0 || idx == 3 || idx == 10 {
			x = s.MaxPool(fmt.Sprintf("features.%d", idx+2), x, pool)
		}
	}
	x = s.Out("avgpool", models.AdaptiveAvgPool2d, models.AdaptiveAvgPool(x, PoolSize))
	x = models.Flatten(x)
	x = s.Out("classifier.0", models.Dropout, x)
	x = s.Linear("classifier.1", x)
	x = s.ReLU("classifier.2", x)
	x = s.Out("classifier.3", models.Dropout, x)
	x = s.Linear("classifier.4", x)
	x = s.ReLU("classifier.5", x)
	return s.Linear("classifier.6", x)
}

// RandomWeights returns weights for cfg with torchvision's AlexNet
// initialisation — PyTorch's module defaults, as AlexNet sets none:
// Conv2d and Linear weights and biases U(−1/√fan_in, 1/√fan_in) (kaiming_uniform
// with a=√5), fan_in = I·kh·kw or in. Seeded (models.Streams: a stream per
// tensor, drawn in parallel); not the values PyTorch would draw.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 {
		return nil, fmt.Errorf("alexnet: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	r := models.Streams{Seed: seed}
	uniform := func(n, fanIn int) []float32 { return r.Uniform(n, 1/math.Sqrt(float64(fanIn))) }
	in := 3
	for i, idx := range convIndex {
		o, k := cfg.Convs[i], convK[i]
		fan := in * k * k
		s.Tensors[fmt.Sprintf("features.%d.weight", idx)] = &weights.Tensor{Shape: []int{o, in, k, k}, Data: uniform(o*in*k*k, fan)}
		s.Tensors[fmt.Sprintf("features.%d.bias", idx)] = &weights.Tensor{Shape: []int{o}, Data: uniform(o, fan)}
		in = o
	}
	feat := in * PoolSize * PoolSize
	for i, idx := range []int{1, 4, 6} {
		out := cfg.NumClasses
		if i < 2 {
			out = cfg.Hidden[i]
		}
		s.Tensors[fmt.Sprintf("classifier.%d.weight", idx)] = &weights.Tensor{Shape: []int{out, feat}, Data: uniform(out*feat, feat)}
		s.Tensors[fmt.Sprintf("classifier.%d.bias", idx)] = &weights.Tensor{Shape: []int{out}, Data: uniform(out, feat)}
		feat = out
	}
	return s, nil
}

// NewRandom builds AlexNet with random weights (see RandomWeights) and
// numClasses outputs; widthDivisor ≥ 1 divides every width (1 = full size).
func NewRandom(numClasses, widthDivisor int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(numClasses, widthDivisor)
	if err != nil {
		return nil, err
	}
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}
