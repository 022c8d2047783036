// Package vgg builds torchvision's VGG family (VGG11/13/16/19 and their _bn
// variants) as GoMLX graphs with torchvision's module names ("features.0" …
// "features.20", "avgpool", "classifier.0" … "classifier.6"), in eval mode.
//
// The architecture (depth, channel widths, classifier sizes, number of classes,
// batch norm) is read from the weights' tensor names and shapes, so narrowed or
// fine-tuned VGGs load without code changes. Weights follow PyTorch layouts in the
// weights.Set (conv kernels [out,in,3,3], linear [out,in]); the model converts
// them once, at load, to the layouts its graph uses (channels-last internally).
package vgg

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
)

// Config is a VGG architecture.
type Config struct {
	// Arch is the recognised torchvision name ("vgg11", "vgg16_bn", …), or
	// "vgg-custom"/"vgg-custom_bn" when the layout matches none of them.
	Arch string
	// Blocks lists, per convolutional layer, its output channels; a 0 entry
	// marks a max-pool ('M' in torchvision's cfgs).
	Blocks []int
	// BatchNorm is true for the _bn variants.
	BatchNorm bool
	// Hidden holds the two hidden sizes of the classifier (4096, 4096 in torchvision).
	Hidden [2]int
	// NumClasses is the classifier's output size (1000 for ImageNet).
	NumClasses int
	// PoolSize is the models.AdaptiveAvgPool2d output size (7 in torchvision).
	PoolSize int
}

// Standard torchvision configurations ("A", "B", "D", "E"); 0 marks a max-pool.
var standardBlocks = map[string][]int{
	"vgg11": {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0},
	"vgg13": {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0},
	"vgg16": {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0},
	"vgg19": {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0},
}

// Archs lists the architecture names accepted by StandardConfig.
func Archs() []string {
	var names []string
	for k := range standardBlocks {
		names = append(names, k, k+"_bn")
	}
	sort.Strings(names)
	return names
}

// StandardConfig returns torchvision's configuration for arch ("vgg11",
// "vgg11_bn", "vgg13", …, "vgg19_bn") with numClasses outputs. widthDivisor ≥ 1
// divides every channel width and hidden size (1 gives the real network; larger
// values give narrow models for fast experiments).
func StandardConfig(arch string, numClasses, widthDivisor int) (Config, error) {
	base := strings.TrimSuffix(arch, "_bn")
	blocks, ok := standardBlocks[base]
	if !ok {
		return Config{}, fmt.Errorf("vgg: unknown architecture %q (known: %s)", arch, strings.Join(Archs(), ", "))
	}
	if numClasses < 1 {
		return Config{}, fmt.Errorf("vgg: number of classes must be ≥ 1, got %d", numClasses)
	}
	if widthDivisor < 1 || 64%widthDivisor != 0 {
		return Config{}, fmt.Errorf("vgg: width divisor must divide 64, got %d", widthDivisor)
	}
	cfg := Config{Arch: arch, BatchNorm: base != arch, NumClasses: numClasses, PoolSize: 7,
		Hidden: [2]int{4096 / widthDivisor, 4096 / widthDivisor}}
	for _, b := range blocks {
		cfg.Blocks = append(cfg.Blocks, b/widthDivisor)
	}
	return cfg, nil
}

// Layers returns the network's modules in execution order with torchvision names.
func (c Config) Layers() []models.Layer {
	var layers []models.Layer
	idx := 0
	in := 3
	add := func(kind models.Kind, inC, outC, params int) {
		layers = append(layers, models.Layer{Name: fmt.Sprintf("features.%d", idx), Kind: kind, In: inC, Out: outC, Params: params, Spatial: true})
		idx++
	}
	for _, b := range c.Blocks {
		if b == 0 {
			add(models.MaxPool2d, in, in, 0)
			continue
		}
		add(models.Conv2d, in, b, in*b*9+b)
		if c.BatchNorm {
			add(models.BatchNorm2d, b, b, 2*b)
		}
		add(models.ReLU, b, b, 0)
		in = b
	}
	layers = append(layers, models.Layer{Name: "avgpool", Kind: models.AdaptiveAvgPool2d, In: in, Out: in, Spatial: true})
	flat := in * c.PoolSize * c.PoolSize
	h1, h2 := c.Hidden[0], c.Hidden[1]
	layers = append(layers,
		models.Layer{Name: "classifier.0", Kind: models.Linear, In: flat, Out: h1, Params: flat*h1 + h1},
		models.Layer{Name: "classifier.1", Kind: models.ReLU, In: h1, Out: h1},
		models.Layer{Name: "classifier.2", Kind: models.Dropout, In: h1, Out: h1},
		models.Layer{Name: "classifier.3", Kind: models.Linear, In: h1, Out: h2, Params: h1*h2 + h2},
		models.Layer{Name: "classifier.4", Kind: models.ReLU, In: h2, Out: h2},
		models.Layer{Name: "classifier.5", Kind: models.Dropout, In: h2, Out: h2},
		models.Layer{Name: "classifier.6", Kind: models.Linear, In: h2, Out: c.NumClasses, Params: h2*c.NumClasses + c.NumClasses},
	)
	return layers
}

// LastChannels is the channel count of the last convolution.
func (c Config) LastChannels() int {
	last := 3
	for _, b := range c.Blocks {
		if b > 0 {
			last = b
		}
	}
	return last
}

// ConfigFromWeights infers the architecture from tensor names and shapes in
// torchvision naming. It walks the features modules in order — convolution
// features.N (weight [out,in,3,3]), batch norm features.N+1 when the first
// convolution has one, a ReLU (no tensors), an optional max-pool (no tensors)
// — and checks that every tensor the architecture needs is present with a
// consistent shape; errors name the tensor, what was expected and what was
// found.
func ConfigFromWeights(w *weights.Set) (Config, error) {
	mods := map[int]map[string]*weights.Tensor{}
	maxIdx := -1
	for name, t := range w.Tensors {
		rest, ok := strings.CutPrefix(name, "features.")
		if !ok {
			continue
		}
		num, field, ok := strings.Cut(rest, ".")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || strings.TrimLeft(num, "0123456789") != "" || len(num) > 6 {
			return Config{}, fmt.Errorf("weights %s: tensor %q: expected features.N.FIELD with a module index N, as torchvision names VGG features", w.Source, name)
		}
		if mods[i] == nil {
			mods[i] = map[string]*weights.Tensor{}
		}
		mods[i][field] = t
		maxIdx = max(maxIdx, i)
	}
	if w0 := mods[0]["weight"]; w0 == nil || len(w0.Shape) != 4 {
		found := "no such tensor"
		if w0 != nil {
			found = fmt.Sprintf("shape %v", w0.Shape)
		}
		return Config{}, fmt.Errorf("weights %s: no convolution weight features.0.weight [out 3 3 3] found (%s; found %d tensors: %s) — is this a torchvision-style VGG checkpoint?",
			w.Source, found, len(w.Tensors), summarizeNames(w.Names()))
	}
	fields := func(i int) string {
		var f []string
		for k := range mods[i] {
			f = append(f, fmt.Sprintf("features.%d.%s", i, k))
		}
		sort.Strings(f)
		return strings.Join(f, ", ")
	}
	// later lists the module indices with tensors after i, for error messages.
	later := func(i int) string {
		var idx []int
		for k := range mods {
			if k > i {
				idx = append(idx, k)
			}
		}
		sort.Ints(idx)
		var names []string
		for _, k := range idx {
			names = append(names, fmt.Sprintf("features.%d", k))
		}
		if len(names) > 4 {
			names = append(names[:4], "…")
		}
		return strings.Join(names, ", ")
	}
	bn := len(mods[1]) > 0
	var cfg Config
	cfg.BatchNorm = bn
	cfg.PoolSize = 7
	in := 3
	prev := "the input"
	for pos := 0; ; {
		m := mods[pos]
		wt := m["weight"]
		switch {
		case len(m) == 0:
			return Config{}, fmt.Errorf("weights %s: tensor \"features.%d.weight\" is missing: after %s a convolution [out %d 3 3] is expected at features.%d, but the checkpoint's next modules are %s (a VGG has at most one max-pool between convolutions; was a layer removed without renumbering?)",
				w.Source, pos, prev, in, pos, later(pos))
		case wt == nil:
			return Config{}, fmt.Errorf("weights %s: tensor \"features.%d.weight\" is missing: after %s a convolution [out %d 3 3] is expected at features.%d, which has only %s",
				w.Source, pos, prev, in, pos, fields(pos))
		case len(wt.Shape) != 4 || wt.Shape[1] != in || wt.Shape[2] != 3 || wt.Shape[3] != 3 || wt.Shape[0] < 1:
			return Config{}, fmt.Errorf("weights %s: tensor \"features.%d.weight\" has shape %v; after %s a convolution kernel [out %d 3 3] with out ≥ 1 is expected there",
				w.Source, pos, wt.Shape, prev, in)
		}
		out := wt.Shape[0]
		cfg.Blocks = append(cfg.Blocks, out)
		in = out
		relu := pos + 1
		if bn {
			for _, f := range []string{"weight", "bias", "running_mean", "running_var"} {
				t := mods[pos+1][f]
				if t == nil || len(t.Shape) != 1 || t.Shape[0] != out {
					found := "it is missing"
					if t != nil {
						found = fmt.Sprintf("it has shape %v", t.Shape)
					}
					return Config{}, fmt.Errorf("weights %s: tensor \"features.%d.%s\": expected a batch norm parameter of shape [%d] after convolution features.%d, but %s (features.1 holds %s, so the checkpoint is read as a VGG with batch norm after every convolution)",
						w.Source, pos+1, f, out, pos, found, fields(1))
				}
			}
			relu++
		}
		if len(mods[relu]) > 0 {
			what := "the ReLU"
			if !bn && mods[relu]["running_mean"] != nil {
				what = "the ReLU (features.1 has no batch norm, so no convolution does)"
			}
			return Config{}, fmt.Errorf("weights %s: unexpected %s: features.%d should be %s after convolution features.%d and hold no tensors",
				w.Source, fields(relu), relu, what, pos)
		}
		prev = fmt.Sprintf("convolution features.%d", pos)
		next := relu + 1
		if len(mods[next]) > 0 {
			pos = next
			continue
		}
		cfg.Blocks = append(cfg.Blocks, 0) // features.next is a max-pool.
		if next >= maxIdx {
			break
		}
		prev = fmt.Sprintf("the max-pool features.%d", next)
		pos = next + 1
	}

	c0, err := w.Get("classifier.0.weight")
	if err != nil {
		return Config{}, err
	}
	if len(c0.Shape) != 2 || c0.Shape[0] < 1 {
		return Config{}, fmt.Errorf("weights %s: tensor \"classifier.0.weight\" has shape %v, expected [hidden %d] with hidden ≥ 1 (a models.Linear on %d channels × 7 × 7)", w.Source, c0.Shape, in*49, in)
	}
	if c0.Shape[1] != in*49 {
		return Config{}, fmt.Errorf("weights %s: tensor \"classifier.0.weight\" has shape %v, expected [%d %d] for %d channels × 7 × 7 from the last convolution",
			w.Source, c0.Shape, c0.Shape[0], in*49, in)
	}
	c3, err := w.Get("classifier.3.weight")
	if err != nil {
		return Config{}, err
	}
	c6, err := w.Get("classifier.6.weight")
	if err != nil {
		return Config{}, err
	}
	if len(c3.Shape) != 2 || c3.Shape[1] != c0.Shape[0] || c3.Shape[0] < 1 {
		return Config{}, fmt.Errorf("weights %s: tensor \"classifier.3.weight\" has shape %v, expected [hidden %d] with hidden ≥ 1", w.Source, c3.Shape, c0.Shape[0])
	}
	if len(c6.Shape) != 2 || c6.Shape[1] != c3.Shape[0] {
		return Config{}, fmt.Errorf("weights %s: tensor \"classifier.6.weight\" has shape %v, expected [classes %d]", w.Source, c6.Shape, c3.Shape[0])
	}
	if c6.Shape[0] < 1 {
		return Config{}, fmt.Errorf("weights %s: tensor \"classifier.6.weight\" has shape %v: a classifier with %d classes; it needs at least 1", w.Source, c6.Shape, c6.Shape[0])
	}
	cfg.Hidden = [2]int{c0.Shape[0], c3.Shape[0]}
	cfg.NumClasses = c6.Shape[0]
	cfg.Arch = recognise(cfg)
	return cfg, nil
}

func recognise(cfg Config) string {
	suffix := ""
	if cfg.BatchNorm {
		suffix = "_bn"
	}
	for name, blocks := range standardBlocks {
		if len(blocks) != len(cfg.Blocks) {
			continue
		}
		same := true
		for i := range blocks {
			if (blocks[i] == 0) != (cfg.Blocks[i] == 0) {
				same = false
				break
			}
		}
		if same {
			full := true
			for i := range blocks {
				full = full && blocks[i] == cfg.Blocks[i]
			}
			if full && cfg.Hidden == [2]int{4096, 4096} {
				return name + suffix
			}
			return name + suffix + "-narrow"
		}
	}
	return "vgg-custom" + suffix
}

func summarizeNames(names []string) string {
	if len(names) > 6 {
		return strings.Join(names[:6], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}
