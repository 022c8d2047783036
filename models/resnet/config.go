// Package resnet builds torchvision's ResNet family — ResNet-18/34/50/101/152,
// ResNeXt-50 32x4d / 101 32x8d / 101 64x4d and Wide ResNet-50-2 / 101-2 — as
// GoMLX graphs with torchvision's module names ("conv1", "bn1", "relu",
// "maxpool", "layer1" … "layer4", "layerS.K.{conv1,bn1,conv2,bn2,conv3,bn3,relu,
// downsample,downsample.0,downsample.1}", "avgpool", "fc"), in eval mode.
//
// The architecture (block type, blocks per stage, widths, groups, number of
// classes) is read from the weights' tensor names and shapes, so narrowed or
// fine-tuned ResNets load without code changes. Weights follow PyTorch's
// layouts and names (torchvision's state_dict; timm's "<arch>.tv_in1k" files
// use the same keys); the model converts them once, at load, with
// models.ParamStore.
package resnet

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Module kinds of the family's containers (PyTorch class names).
const (
	KindBasicBlock models.Kind = "BasicBlock"
	KindBottleneck models.Kind = "Bottleneck"
	KindSequential models.Kind = "Sequential"
)

// Block is one residual block (torchvision's BasicBlock or Bottleneck).
type Block struct {
	// In is the number of input channels, Width the inner width (the 3×3
	// convolution's channels), Out the output channels (Width for a
	// BasicBlock; planes·4 for a Bottleneck).
	In, Width, Out int
	// Stride of the block's first strided convolution (conv1 in a BasicBlock,
	// conv2 in a Bottleneck: torchvision's "ResNet V1.5") and of its
	// downsample. torchvision's rule: 2 for the first block of layer2–4, else 1.
	Stride int
	// Groups of the 3×3 convolution (ResNeXt: 32 or 64).
	Groups int
	// Downsample is true when the shortcut is downsample.0 (1×1 conv, stride)
	// + downsample.1 (BatchNorm2d): torchvision adds it when Stride ≠ 1 or
	// In ≠ Out.
	Downsample bool
}

// Config is a ResNet architecture.
type Config struct {
	// Arch is the torchvision name ("resnet50", "resnext50_32x4d", …) when the
	// layout is exactly one of them, "<name>-narrow" when only the widths
	// differ (base width ≠ 64), else "resnet<depth>-custom".
	Arch string
	// Bottleneck is true for Bottleneck blocks (ResNet-50 and deeper, ResNeXt,
	// Wide ResNet), false for BasicBlocks (ResNet-18/34).
	Bottleneck bool
	// Stem is conv1's number of output channels (64 in torchvision).
	Stem int
	// Stages holds layer1 … layer4's blocks.
	Stages [4][]Block
	// NumClasses is fc's output size (1000 for ImageNet).
	NumClasses int
}

// Depth is the conventional depth: the number of convolution and linear
// layers on the main path (18, 34, 50, 101, 152).
func (c Config) Depth() int {
	per := 2
	if c.Bottleneck {
		per = 3
	}
	n := 0
	for _, s := range c.Stages {
		n += len(s)
	}
	return 2 + per*n
}

// Features is the width of the last stage's output (fc's input).
func (c Config) Features() int {
	s := c.Stages[3]
	return s[len(s)-1].Out
}

func (c Config) blockKind() models.Kind {
	if c.Bottleneck {
		return KindBottleneck
	}
	return KindBasicBlock
}

// Describe states the architecture in words (for error messages).
func (c Config) Describe() string {
	depths := make([]string, 4)
	for i, s := range c.Stages {
		depths[i] = strconv.Itoa(len(s))
	}
	g, w := 1, 0
	if len(c.Stages[0]) > 0 {
		g, w = c.Stages[0][0].Groups, c.Stages[0][0].Width
	}
	return fmt.Sprintf("%s (%s blocks %s, groups %d, stem %d, layer1 width %d)", c.Arch, c.blockKind(), strings.Join(depths, ","), g, c.Stem, w)
}

type std struct {
	bottleneck    bool
	depths        [4]int
	groups, width int // width per group
}

var standard = map[string]std{
	"resnet18":         {false, [4]int{2, 2, 2, 2}, 1, 64},
	"resnet34":         {false, [4]int{3, 4, 6, 3}, 1, 64},
	"resnet50":         {true, [4]int{3, 4, 6, 3}, 1, 64},
	"resnet101":        {true, [4]int{3, 4, 23, 3}, 1, 64},
	"resnet152":        {true, [4]int{3, 8, 36, 3}, 1, 64},
	"resnext50_32x4d":  {true, [4]int{3, 4, 6, 3}, 32, 4},
	"resnext101_32x8d": {true, [4]int{3, 4, 23, 3}, 32, 8},
	"resnext101_64x4d": {true, [4]int{3, 4, 23, 3}, 64, 4},
	"wide_resnet50_2":  {true, [4]int{3, 4, 6, 3}, 1, 128},
	"wide_resnet101_2": {true, [4]int{3, 4, 23, 3}, 1, 128},
}

// Archs lists the torchvision architectures of the family, sorted.
func Archs() []string {
	out := make([]string, 0, len(standard))
	for k := range standard {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NewConfig builds a torchvision-style ResNet: bottleneck or basic blocks,
// depths blocks per stage, groups and widthPerGroup of the 3×3 convolutions
// (torchvision's base_width; 64 for plain ResNets), base = conv1's width and
// layer1's planes (64 in torchvision; stage s has planes base·2^s), and
// numClasses outputs. Arch is set by matching the torchvision table.
func NewConfig(bottleneck bool, depths [4]int, groups, widthPerGroup, base, numClasses int) (Config, error) {
	c, err := layout(bottleneck, depths, groups, widthPerGroup, base, numClasses)
	if err != nil {
		return Config{}, err
	}
	c.Arch = c.match()
	return c, nil
}

// layout is NewConfig without the name.
func layout(bottleneck bool, depths [4]int, groups, widthPerGroup, base, numClasses int) (Config, error) {
	if groups < 1 || widthPerGroup < 1 || base < 1 || numClasses < 1 {
		return Config{}, fmt.Errorf("resnet: invalid configuration (groups %d, width per group %d, base %d, classes %d)", groups, widthPerGroup, base, numClasses)
	}
	if !bottleneck && (groups != 1 || widthPerGroup != 64) {
		return Config{}, fmt.Errorf("resnet: BasicBlock only supports groups=1 and width per group 64 (as torchvision)")
	}
	c := Config{Bottleneck: bottleneck, Stem: base, NumClasses: numClasses}
	exp := 1
	if bottleneck {
		exp = 4
	}
	in := base
	for s := 0; s < 4; s++ {
		if depths[s] < 1 {
			return Config{}, fmt.Errorf("resnet: stage layer%d needs at least one block, got %d", s+1, depths[s])
		}
		planes := base << s
		width := planes
		if bottleneck {
			width = int(float64(planes)*float64(widthPerGroup)/64) * groups
		}
		if width < groups || width%groups != 0 {
			return Config{}, fmt.Errorf("resnet: layer%d width %d does not split into %d groups", s+1, width, groups)
		}
		for b := 0; b < depths[s]; b++ {
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			blk := Block{In: in, Width: width, Out: planes * exp, Stride: stride, Groups: groups}
			blk.Downsample = stride != 1 || blk.In != blk.Out
			c.Stages[s] = append(c.Stages[s], blk)
			in = blk.Out
		}
	}
	return c, nil
}

// StandardConfig returns torchvision's configuration of arch with numClasses
// outputs; widthDivisor ≥ 1 divides the base width (1 = the real network).
func StandardConfig(arch string, numClasses, widthDivisor int) (Config, error) {
	s, ok := standard[strings.ToLower(arch)]
	if !ok {
		return Config{}, fmt.Errorf("resnet: unknown architecture %q; known: %s", arch, strings.Join(Archs(), ", "))
	}
	if widthDivisor < 1 || 64%widthDivisor != 0 {
		return Config{}, fmt.Errorf("resnet: width divisor %d must divide 64", widthDivisor)
	}
	return NewConfig(s.bottleneck, s.depths, s.groups, s.width, 64/widthDivisor, numClasses)
}

// match names the configuration: the torchvision architecture with exactly
// this layout; "<arch>-narrow" for its block type, depths, groups and width
// per group with other widths; else "resnet<depth>-custom".
func (c Config) match() string {
	for _, name := range Archs() {
		s := standard[name]
		if s.bottleneck != c.Bottleneck {
			continue
		}
		if ref, err := layout(s.bottleneck, s.depths, s.groups, s.width, 64, c.NumClasses); err == nil && c.Stem == 64 && sameStages(ref, c) {
			return name
		}
		ref, err := layout(s.bottleneck, s.depths, s.groups, s.width, c.Stem, c.NumClasses)
		if err == nil && sameStages(ref, c) {
			return name + "-narrow"
		}
	}
	return fmt.Sprintf("resnet%d-custom", c.Depth())
}

func sameStages(a, b Config) bool {
	for s := range a.Stages {
		if len(a.Stages[s]) != len(b.Stages[s]) {
			return false
		}
		for i := range a.Stages[s] {
			if a.Stages[s][i] != b.Stages[s][i] {
				return false
			}
		}
	}
	return true
}

// shape4 returns a 4-D tensor's shape, or an error naming it.
func shape4(w *weights.Set, name, what string) ([]int, error) {
	t, ok := w.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("weights %s: tensor %q is missing (%s)", w.Source, name, what)
	}
	if len(t.Shape) != 4 {
		return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a 4-D convolution kernel %s", w.Source, name, t.Shape, what)
	}
	return t.Shape, nil
}

// blockIndices returns the block indices present under "layerS." in w.
func blockIndices(w *weights.Set, s int) []int {
	prefix := fmt.Sprintf("layer%d.", s+1)
	seen := map[int]bool{}
	for name := range w.Tensors {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			continue
		}
		if k, err := strconv.Atoi(rest[:i]); err == nil && k >= 0 {
			seen[k] = true
		}
	}
	out := make([]int, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// Recognise reports whether w looks like a torchvision ResNet state dict
// (conv1, layer1.0.conv1 and fc weights).
func Recognise(w *weights.Set) bool {
	return w.Has("conv1.weight") && w.Has("layer1.0.conv1.weight") && w.Has("layer4.0.conv1.weight") && w.Has("fc.weight")
}

// ConfigFromWeights reads the architecture from a torchvision-named weight
// set: the block type from layer1.0.conv3's presence, the blocks per stage
// from the "layerS.K." names (a gap is an error naming the first missing
// block), the widths and groups from the kernels' shapes ([O,I/groups,kh,kw]),
// the classes from fc.weight [classes,features]. Shapes that contradict
// torchvision's wiring (a transposed kernel, a block whose input is not the
// previous block's output) are errors naming the tensor with what was
// expected and what was found.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	if !Recognise(w) {
		return Config{}, fmt.Errorf("weights %s: not a torchvision ResNet (needs conv1.weight, layer1.0.conv1.weight, layer4.0.conv1.weight and fc.weight)", w.Source)
	}
	c := Config{Bottleneck: w.Has("layer1.0.conv3.weight")}
	k, err := shape4(w, "conv1.weight", "[stem,3,7,7]")
	if err != nil {
		return Config{}, err
	}
	if k[1] != 3 || k[2] != 7 || k[3] != 7 {
		return Config{}, fmt.Errorf("weights %s: tensor \"conv1.weight\" has shape %v, expected [C,3,7,7] (PyTorch's [out,in,kh,kw] layout; a transposed kernel?)", w.Source, k)
	}
	c.Stem = k[0]
	in := c.Stem
	for s := 0; s < 4; s++ {
		idx := blockIndices(w, s)
		if len(idx) == 0 {
			return Config{}, fmt.Errorf("weights %s: stage layer%d has no blocks (tensor \"layer%d.0.conv1.weight\" is missing)", w.Source, s+1, s+1)
		}
		for i, k := range idx {
			if k != i {
				return Config{}, fmt.Errorf("weights %s: block layer%d.%d is missing (tensor \"layer%d.%d.conv1.weight\" not found, but layer%d.%d exists)", w.Source, s+1, i, s+1, i, s+1, k)
			}
		}
		for b := range idx {
			p := fmt.Sprintf("layer%d.%d.", s+1, b)
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			blk := Block{In: in, Stride: stride, Groups: 1}
			k1, err := shape4(w, p+"conv1.weight", "")
			if err != nil {
				return Config{}, err
			}
			if c.Bottleneck {
				if k1[1] != in || k1[2] != 1 || k1[3] != 1 {
					return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [width,%d,1,1] (the block's input has %d channels)", w.Source, p+"conv1.weight", k1, in, in)
				}
				blk.Width = k1[0]
				k2, err := shape4(w, p+"conv2.weight", "")
				if err != nil {
					return Config{}, err
				}
				if k2[0] != blk.Width || k2[1] < 1 || blk.Width%k2[1] != 0 || k2[2] != 3 || k2[3] != 3 {
					return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [%d,%d/groups,3,3]", w.Source, p+"conv2.weight", k2, blk.Width, blk.Width)
				}
				blk.Groups = blk.Width / k2[1]
				k3, err := shape4(w, p+"conv3.weight", "")
				if err != nil {
					return Config{}, err
				}
				if k3[1] != blk.Width || k3[2] != 1 || k3[3] != 1 {
					return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [out,%d,1,1]", w.Source, p+"conv3.weight", k3, blk.Width)
				}
				blk.Out = k3[0]
			} else {
				if k1[1] != in || k1[2] != 3 || k1[3] != 3 {
					return Config{}, fmt.Errorf("weights %s: tensor %q has shape %v, expected [width,%d,3,3] (the block's input has %d channels)", w.Source, p+"conv1.weight", k1, in, in)
				}
				blk.Width = k1[0]
				blk.Out = k1[0]
				if w.Has(p + "conv3.weight") {
					return Config{}, fmt.Errorf("weights %s: tensor %q belongs to a Bottleneck block, but layer1.0 is a BasicBlock (no layer1.0.conv3.weight)", w.Source, p+"conv3.weight")
				}
			}
			blk.Downsample = blk.Stride != 1 || blk.In != blk.Out
			c.Stages[s] = append(c.Stages[s], blk)
			in = blk.Out
		}
	}
	fc, ok := w.Tensors["fc.weight"]
	if !ok || len(fc.Shape) != 2 || fc.Shape[1] != in {
		var got any = "missing"
		if ok {
			got = fc.Shape
		}
		return Config{}, fmt.Errorf("weights %s: tensor \"fc.weight\" has shape %v, expected [classes,%d]", w.Source, got, in)
	}
	c.NumClasses = fc.Shape[0]
	c.Arch = c.match()
	return c, nil
}
