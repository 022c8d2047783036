// Package densenet builds torchvision's DenseNet-121/161/169/201 (and any
// DenseNet-BC of the same layout) from torchvision-named weights: module
// paths and state_dict keys are torchvision's ("features.conv0",
// "features.denseblock4.denselayer16.conv2", "features.transition3.pool",
// "features.norm5", "classifier"), eval semantics (batch norms use their
// running statistics, no dropout).
//
// The network, as torchvision's DenseNet.forward computes it:
//
//	features.conv0  Conv2d(3, F0, 7, stride 2, padding 3, no bias)
//	features.norm0  BatchNorm2d · features.relu0 ReLU
//	features.pool0  MaxPool2d(3, stride 2, padding 1)
//	features.denseblockB (B = 1…len(BlockConfig)), each of BlockConfig[B-1] layers
//	  .denselayerL    on the concatenation (channels) of the block input and
//	                  the outputs of layers 1…L-1:
//	                  norm1 → relu1 → conv1 (1×1, BnSize·Growth outputs) →
//	                  norm2 → relu2 → conv2 (3×3, padding 1, Growth outputs)
//	  block output    the concatenation of its input and every layer's output
//	features.transitionB (after every block but the last)
//	                  norm → relu → conv (1×1, C → C/2) → pool AvgPool2d(2, 2)
//	features.norm5  BatchNorm2d (the output of `features`)
//	F.relu          functional ReLU (no module: not named; the scope's
//	                backward rule still applies to it, see Model.Build)
//	adaptive_avg_pool2d((1,1)) + flatten → classifier Linear(C, NumClasses)
//
// Every module output passes through the scope, containers included
// (features.denseblock4.denselayer16, features.denseblock4,
// features.transition3, features).
//
// # features.norm5 and pytorch-grad-cam
//
// features.norm5 here is the batch norm's own output, negative values
// included. torchvision's forward applies F.relu(features, inplace=True) to
// that very tensor, so on CPU a forward hook that keeps the tensor (as
// pytorch-grad-cam's ActivationsAndGradients does for its default DenseNet
// target, features.norm5) sees relu(norm5) afterwards, while its gradient is
// still the one with respect to norm5's output. pytorch-grad-cam's Grad-CAM at
// features.norm5 is therefore relu(Σ_c w_c·relu(A_c)) with our A = norm5 and
// our w (the gradient is the same); the golden tests check both forms.
package densenet

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Config is a DenseNet-BC architecture.
type Config struct {
	// Arch is torchvision's constructor name ("densenet121") for the four
	// standard configurations, else "densenet".
	Arch string
	// GrowthRate is the number of channels each dense layer adds (32; 48 for DenseNet-161).
	GrowthRate int
	// BlockConfig lists the number of layers of each dense block ((6,12,24,16) for DenseNet-121).
	BlockConfig []int
	// InitFeatures is conv0's number of outputs (64; 96 for DenseNet-161).
	InitFeatures int
	// BnSize is the bottleneck factor: conv1 has BnSize·GrowthRate outputs (4).
	BnSize int
	// NumClasses is the classifier's number of outputs (1000 for ImageNet).
	NumClasses int
}

type standard struct {
	growth, init int
	blocks       []int
}

var standards = map[string]standard{
	"densenet121": {32, 64, []int{6, 12, 24, 16}},
	"densenet161": {48, 96, []int{6, 12, 36, 24}},
	"densenet169": {32, 64, []int{6, 12, 32, 32}},
	"densenet201": {32, 64, []int{6, 12, 48, 32}},
}

// Archs lists torchvision's DenseNet constructors.
func Archs() []string { return []string{"densenet121", "densenet161", "densenet169", "densenet201"} }

// StandardConfig returns torchvision's configuration of arch ("densenet121",
// "densenet161", "densenet169", "densenet201") with numClasses outputs (bn_size 4).
func StandardConfig(arch string, numClasses int) (Config, error) {
	s, ok := standards[arch]
	if !ok {
		return Config{}, fmt.Errorf("densenet: unknown architecture %q; known: %s", arch, strings.Join(Archs(), ", "))
	}
	if numClasses < 1 {
		return Config{}, fmt.Errorf("densenet: number of classes must be at least 1, got %d", numClasses)
	}
	return Config{Arch: arch, GrowthRate: s.growth, BlockConfig: append([]int(nil), s.blocks...), InitFeatures: s.init, BnSize: 4, NumClasses: numClasses}, nil
}

// archName names a configuration: torchvision's constructor when it is one of
// the four standard ones (any number of classes), else "densenet".
func (c Config) archName() string {
	for name, s := range standards {
		if c.GrowthRate == s.growth && c.InitFeatures == s.init && c.BnSize == 4 && equalInts(c.BlockConfig, s.blocks) {
			return name
		}
	}
	return "densenet"
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NumFeatures returns the channels after dense block b (0-based) and after
// its transition (the block's count halved; equal for the last block).
func (c Config) NumFeatures(b int) (afterBlock, afterTransition int) {
	f := c.InitFeatures
	for i := 0; i <= b; i++ {
		if i > 0 {
			f /= 2
		}
		f += c.BlockConfig[i] * c.GrowthRate
	}
	if b == len(c.BlockConfig)-1 {
		return f, f
	}
	return f, f / 2
}

// FinalFeatures is the number of channels of features.norm5 (1024 for DenseNet-121).
func (c Config) FinalFeatures() int { f, _ := c.NumFeatures(len(c.BlockConfig) - 1); return f }

// OutputSize is the spatial size of features.norm5 for an input of size in
// (one axis), or 0 when the input is too small.
func (c Config) OutputSize(in int) int {
	s := models.ConvOutSize(in, 7, 2, 3)
	if s < 1 {
		return 0
	}
	s = models.ConvOutSize(s, 3, 2, 1)
	for i := 1; i < len(c.BlockConfig); i++ {
		s /= 2
	}
	if s < 1 {
		return 0
	}
	return s
}

// MinInputSize is the smallest height and width the network accepts (29 with
// four blocks: conv0 and pool0 divide by 4, each of the three transitions by 2).
func (c Config) MinInputSize() int {
	for s := 1; ; s++ {
		if c.OutputSize(s) > 0 {
			return s
		}
	}
}

// module is one parameterised module of the network, in execution order.
type module struct {
	path string
	kind models.Kind
	out  int // Output channels (features for Linear).
	in   int // Input channels.
	k    int // Kernel size (convolutions).
}

// modules lists the parameterised modules of c in execution order.
func (c Config) modules() []module {
	ms := []module{{"features.conv0", models.Conv2d, c.InitFeatures, 3, 7}, {"features.norm0", models.BatchNorm2d, c.InitFeatures, c.InitFeatures, 0}}
	f := c.InitFeatures
	for b, n := range c.BlockConfig {
		for l := 0; l < n; l++ {
			p := fmt.Sprintf("features.denseblock%d.denselayer%d", b+1, l+1)
			in, mid := f+l*c.GrowthRate, c.BnSize*c.GrowthRate
			ms = append(ms, module{p + ".norm1", models.BatchNorm2d, in, in, 0}, module{p + ".conv1", models.Conv2d, mid, in, 1},
				module{p + ".norm2", models.BatchNorm2d, mid, mid, 0}, module{p + ".conv2", models.Conv2d, c.GrowthRate, mid, 3})
		}
		f += n * c.GrowthRate
		if b < len(c.BlockConfig)-1 {
			p := fmt.Sprintf("features.transition%d", b+1)
			ms = append(ms, module{p + ".norm", models.BatchNorm2d, f, f, 0}, module{p + ".conv", models.Conv2d, f / 2, f, 1})
			f /= 2
		}
	}
	return append(ms, module{"features.norm5", models.BatchNorm2d, f, f, 0}, module{"classifier", models.Linear, c.NumClasses, f, 0})
}

// oldKey matches the keys of torchvision's published DenseNet checkpoints
// ("denselayer1.norm.1.weight"), as torchvision's _load_state_dict does.
var oldKey = regexp.MustCompile(`^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$`)

// NormalizeKeys returns w with torchvision's old-style dense layer keys
// ("features.denseblock1.denselayer1.norm.1.weight", as in the published
// densenet121-a639ec97.pth) renamed to the module names
// ("…denselayer1.norm1.weight"), as torchvision's _load_state_dict (and
// timm's _filter_torchvision_pretrained) do. Tensors are shared, not copied;
// w itself is returned when no key is old-style. A key present in both forms
// is an error.
func NormalizeKeys(w *weights.Set) (*weights.Set, error) {
	old := false
	for name := range w.Tensors {
		if oldKey.MatchString(name) {
			old = true
			break
		}
	}
	if !old {
		return w, nil
	}
	out := &weights.Set{Tensors: make(map[string]*weights.Tensor, len(w.Tensors)), Source: w.Source, Metadata: w.Metadata}
	for name, t := range w.Tensors {
		if m := oldKey.FindStringSubmatch(name); m != nil {
			name = m[1] + m[2]
			if w.Has(name) {
				return nil, fmt.Errorf("weights %s: both %q and its old-style form %q are present", w.Source, name, m[0])
			}
		}
		out.Tensors[name] = t
	}
	return out, nil
}

// ConfigFromWeights reads the architecture from torchvision-named DenseNet
// weights (new-style keys; see NormalizeKeys): InitFeatures from
// features.conv0.weight, the blocks and their layers from the
// features.denseblockB.denselayerL keys, GrowthRate from a conv2's outputs,
// BnSize from a conv1's outputs, NumClasses from classifier.weight. Shapes
// are checked in full by Load.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	dims := func(name string, rank int) ([]int, error) {
		t, ok := w.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("weights %s: tensor %q is missing; is this a torchvision DenseNet checkpoint?", w.Source, name)
		}
		if len(t.Shape) != rank {
			return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected rank %d", w.Source, name, t.Shape, rank)
		}
		return t.Shape, nil
	}
	var c Config
	d, err := dims("features.conv0.weight", 4)
	if err != nil {
		return c, err
	}
	if d[1] != 3 || d[2] != 7 || d[3] != 7 {
		return c, fmt.Errorf("weights %s: features.conv0.weight has shape %v, expected [F,3,7,7]", w.Source, d)
	}
	c.InitFeatures = d[0]
	for b := 1; w.Has(fmt.Sprintf("features.denseblock%d.denselayer1.norm1.weight", b)); b++ {
		n := 0
		for w.Has(fmt.Sprintf("features.denseblock%d.denselayer%d.norm1.weight", b, n+1)) {
			n++
		}
		c.BlockConfig = append(c.BlockConfig, n)
	}
	if len(c.BlockConfig) == 0 {
		return c, fmt.Errorf("weights %s: no dense block (features.denseblock1.denselayer1.norm1.weight is missing)", w.Source)
	}
	g, err := dims("features.denseblock1.denselayer1.conv2.weight", 4)
	if err != nil {
		return c, err
	}
	c.GrowthRate = g[0]
	m, err := dims("features.denseblock1.denselayer1.conv1.weight", 4)
	if err != nil {
		return c, err
	}
	if c.GrowthRate < 1 || m[0]%c.GrowthRate != 0 {
		return c, fmt.Errorf("weights %s: conv1 has %d outputs, not a multiple of the growth rate %d", w.Source, m[0], c.GrowthRate)
	}
	c.BnSize = m[0] / c.GrowthRate
	k, err := dims("classifier.weight", 2)
	if err != nil {
		return c, err
	}
	c.NumClasses = k[0]
	c.Arch = c.archName()
	return c, nil
}
