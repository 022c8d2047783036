// Package mobilenet builds torchvision's MobileNet-V2 from torchvision-named
// weights, with torchvision's module paths and state_dict keys and eval
// semantics:
//
//	features.0        Conv2dNormActivation: .0 Conv2d(3, C0, 3, stride 2, padding 1, no bias), .1 BatchNorm2d, .2 ReLU6
//	features.1 … .17  InvertedResidual (torchvision's inverted_residual_setting, 17 blocks), `conv` a Sequential of
//	                    expansion t ≠ 1: .conv.0 Conv2dNormActivation 1×1 (in → hidden),
//	                                     .conv.1 Conv2dNormActivation 3×3 depthwise (groups = hidden, stride s, padding 1),
//	                                     .conv.2 Conv2d 1×1 (hidden → out, the projection), .conv.3 BatchNorm2d
//	                    expansion t = 1 (features.1): .conv.0 depthwise Conv2dNormActivation, .conv.1 projection, .conv.2 BatchNorm2d
//	                  the block output is x + conv(x) where stride is 1 and in == out, else conv(x)
//	features.18       Conv2dNormActivation 1×1 (→ last channels, 1280), ReLU6
//	adaptive_avg_pool2d((1,1)) + flatten (functional)
//	classifier.0      Dropout (identity in eval) · classifier.1 Linear(last, NumClasses)
//
// Every module output passes through the scope, containers included
// (features.3.conv.1, features.3.conv, features.3, features, classifier).
// Channel counts (any width multiplier) are read from the weights; strides
// are torchvision's (2 at blocks 2, 4, 7 and 14), which need its 17 blocks.
package mobilenet

import (
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Arch is the architecture name (torchvision's constructor).
const Arch = "mobilenet_v2"

// Block is one InvertedResidual block.
type Block struct {
	// In, Hidden and Out are the channels entering, inside (after the
	// expansion; In when there is none) and leaving the block.
	In, Hidden, Out int
	// Stride of the depthwise convolution (1 or 2).
	Stride int
	// Expand is true when the block has the 1×1 expansion (t ≠ 1).
	Expand bool
}

// Residual reports whether the block adds its input to its output (stride 1, In == Out).
func (b Block) Residual() bool { return b.Stride == 1 && b.In == b.Out }

// Config is a MobileNet-V2 architecture.
type Config struct {
	// Stem is features.0's number of outputs (32 at width 1).
	Stem int
	// Blocks are features.1 … features.17.
	Blocks []Block
	// Last is features.18's number of outputs (1280).
	Last int
	// NumClasses is classifier.1's number of outputs.
	NumClasses int
}

// setting is torchvision's inverted_residual_setting: t, c, n, s.
var setting = [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}

// strides returns the stride of each of the 17 blocks of torchvision's setting.
func strides() []int {
	var out []int
	for _, st := range setting {
		for i := 0; i < st[2]; i++ {
			s := 1
			if i == 0 {
				s = st[3]
			}
			out = append(out, s)
		}
	}
	return out
}

// makeDivisible is torchvision's _make_divisible(v, 8).
func makeDivisible(v float64, d int) int {
	n := max(d, int(v+float64(d)/2)/d*d)
	if float64(n) < 0.9*v {
		n += d
	}
	return n
}

// StandardConfig is torchvision's mobilenet_v2(width_mult=width) with
// numClasses outputs (width 1: 32 stem channels, 1280 last).
func StandardConfig(width float64, numClasses int) (Config, error) {
	if !(width > 0) || math.IsInf(width, 0) {
		return Config{}, fmt.Errorf("mobilenet_v2: width multiplier must be positive, got %g", width)
	}
	if numClasses < 1 {
		return Config{}, fmt.Errorf("mobilenet_v2: number of classes must be at least 1, got %d", numClasses)
	}
	c := Config{Stem: makeDivisible(32*width, 8), Last: makeDivisible(1280*max(1, width), 8), NumClasses: numClasses}
	in := c.Stem
	for _, st := range setting {
		out := makeDivisible(float64(st[1])*width, 8)
		for i := 0; i < st[2]; i++ {
			s := 1
			if i == 0 {
				s = st[3]
			}
			c.Blocks = append(c.Blocks, Block{In: in, Hidden: in * st[0], Out: out, Stride: s, Expand: st[0] != 1})
			in = out
		}
	}
	return c, nil
}

// OutputSize is the spatial size of features.18 for an input of size in
// (one axis): five stride-2 convolutions (3×3, padding 1).
func (c Config) OutputSize(in int) int {
	s := models.ConvOutSize(in, 3, 2, 1)
	for _, b := range c.Blocks {
		s = models.ConvOutSize(s, 3, b.Stride, 1)
	}
	return s
}

// module is one parameterised module of the network, in execution order.
type module struct {
	path       string
	kind       models.Kind
	out, in, k int // in: input channels per group (convolutions); k: kernel size
	groups     int
}

// blockPaths returns the module paths of block i (1-based): expansion
// (empty when none), depthwise, projection conv and its batch norm.
func blockPaths(i int, b Block) (expand, dw, proj, bn string) {
	p := fmt.Sprintf("features.%d.conv.", i)
	if b.Expand {
		return p + "0", p + "1", p + "2", p + "3"
	}
	return "", p + "0", p + "1", p + "2"
}

// modules lists the parameterised modules of c in execution order.
func (c Config) modules() []module {
	convBN := func(path string, out, inPG, k, groups int) []module {
		return []module{{path: path + ".0", kind: models.Conv2d, out: out, in: inPG, k: k, groups: groups}, {path: path + ".1", kind: models.BatchNorm2d, out: out}}
	}
	ms := convBN("features.0", c.Stem, 3, 3, 1)
	for i, b := range c.Blocks {
		e, dw, proj, bn := blockPaths(i+1, b)
		if e != "" {
			ms = append(ms, convBN(e, b.Hidden, b.In, 1, 1)...)
		}
		ms = append(ms, convBN(dw, b.Hidden, 1, 3, b.Hidden)...)
		ms = append(ms, module{path: proj, kind: models.Conv2d, out: b.Out, in: b.Hidden, k: 1, groups: 1}, module{path: bn, kind: models.BatchNorm2d, out: b.Out})
	}
	in := c.Stem
	if len(c.Blocks) > 0 {
		in = c.Blocks[len(c.Blocks)-1].Out
	}
	ms = append(ms, convBN(fmt.Sprintf("features.%d", len(c.Blocks)+1), c.Last, in, 1, 1)...)
	return append(ms, module{path: "classifier.1", kind: models.Linear, out: c.NumClasses, in: c.Last})
}

// ConfigFromWeights reads the architecture from torchvision-named
// MobileNet-V2 weights: channels from the convolution weights of
// features.0 … features.18 (so any width multiplier), the layout of each
// block (with or without expansion) from its keys, NumClasses from
// classifier.1.weight. Strides are torchvision's, so the weights must have
// its 17 inverted residual blocks. Shapes are checked in full by Load.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	dims := func(name string) ([]int, error) {
		t, ok := w.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("weights %s: tensor %q is missing; is this a torchvision MobileNet-V2 checkpoint?", w.Source, name)
		}
		if len(t.Shape) != 4 && len(t.Shape) != 2 {
			return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a conv or linear weight", w.Source, name, t.Shape)
		}
		return t.Shape, nil
	}
	var c Config
	d, err := dims("features.0.0.weight")
	if err != nil {
		return c, err
	}
	c.Stem = d[0]
	st := strides()
	n := 0
	for w.Has(fmt.Sprintf("features.%d.conv.0.0.weight", n+1)) {
		n++
	}
	if n != len(st) {
		return c, fmt.Errorf("weights %s: %d inverted residual blocks (features.1 … features.%d); torchvision's MobileNet-V2 has %d, and the strides of other layouts are not in the weights", w.Source, n, n, len(st))
	}
	in := c.Stem
	for i := 1; i <= n; i++ {
		b := Block{In: in, Stride: st[i-1], Expand: w.Has(fmt.Sprintf("features.%d.conv.1.0.weight", i))}
		_, dw, proj, _ := blockPaths(i, b)
		dd, err := dims(dw + ".0.weight")
		if err != nil {
			return c, err
		}
		b.Hidden = dd[0]
		pd, err := dims(proj + ".weight")
		if err != nil {
			return c, err
		}
		b.Out = pd[0]
		c.Blocks = append(c.Blocks, b)
		in = b.Out
	}
	ld, err := dims(fmt.Sprintf("features.%d.0.weight", n+1))
	if err != nil {
		return c, err
	}
	c.Last = ld[0]
	k, err := dims("classifier.1.weight")
	if err != nil {
		return c, err
	}
	c.NumClasses = k[0]
	return c, nil
}
