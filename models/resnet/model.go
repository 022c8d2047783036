package resnet

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	_ "github.com/gomlx/compute/gobackend" // models.TraceLayers builds (never runs) the graph on the pure-Go backend.
	. "github.com/gomlx/gomlx/core/graph"  //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// InputSize is the reference input size (torchvision's ImageNet models: 224).
const InputSize = 224

// Model is a ResNet with its parameters converted to the graph's layouts
// (see models.ParamStore). It is safe for concurrent use; Close releases the
// parameter buffers.
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

// Load converts a torchvision-named ResNet weight set into a Model; the
// architecture is read from the tensors (see ConfigFromWeights). Loading is
// strict: a missing or mis-shaped tensor is an error naming it with the shape
// expected and the shape found, and a tensor no module reads is an error
// naming it (BatchNorm's num_batches_tracked is accepted).
//
// Layouts held (PyTorch's on the left, see models.ParamStore):
//
//	conv [O,I/g,kh,kw] → HWIO [kh,kw,I/g,O] ("<m>.weight"; ResNet's convolutions have no bias)
//	BN   γ,β,μ,σ²      → "<m>.scale" = γ/√(σ²+ε), "<m>.shift" = β − μ·scale, each [C]
//	fc   [K,F]         → [K,F] as it is (row chunks on the pure-Go backend), bias [K]
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

// LoadAs is Load for a named architecture: weights of another architecture
// (say a ResNet-50 file asked to load as "resnet18") are an error saying what
// the file holds. An empty arch accepts any ResNet.
func LoadAs(w *weights.Set, arch string) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	if arch != "" && !strings.EqualFold(arch, cfg.Arch) {
		want := arch
		if ref, err := StandardConfig(arch, cfg.NumClasses, 1); err == nil {
			want = ref.Describe()
		}
		return nil, fmt.Errorf("weights %s hold %s, not %s", w.Source, cfg.Describe(), want)
	}
	return build(cfg, w)
}

// build converts w into a model of architecture cfg.
func build(cfg Config, w *weights.Set) (*Model, error) {
	p := models.NewParamStore(w)
	conv := func(m string, o, in, groups, k int) error {
		if err := p.Conv(m, o, in/groups, k, k, false); err != nil {
			return err
		}
		p.SetConvIn(m, in)
		return nil
	}
	if err := conv("conv1", cfg.Stem, 3, 1, 7); err != nil {
		return nil, err
	}
	if err := p.BatchNorm("bn1", cfg.Stem); err != nil {
		return nil, err
	}
	for s, stage := range cfg.Stages {
		for b, blk := range stage {
			pre := fmt.Sprintf("layer%d.%d.", s+1, b)
			var err error
			if cfg.Bottleneck {
				err = firstErr(
					func() error { return conv(pre+"conv1", blk.Width, blk.In, 1, 1) },
					func() error { return p.BatchNorm(pre+"bn1", blk.Width) },
					func() error { return conv(pre+"conv2", blk.Width, blk.Width, blk.Groups, 3) },
					func() error { return p.BatchNorm(pre+"bn2", blk.Width) },
					func() error { return conv(pre+"conv3", blk.Out, blk.Width, 1, 1) },
					func() error { return p.BatchNorm(pre+"bn3", blk.Out) })
			} else {
				err = firstErr(
					func() error { return conv(pre+"conv1", blk.Width, blk.In, 1, 3) },
					func() error { return p.BatchNorm(pre+"bn1", blk.Width) },
					func() error { return conv(pre+"conv2", blk.Out, blk.Width, 1, 3) },
					func() error { return p.BatchNorm(pre+"bn2", blk.Out) })
			}
			if err == nil && blk.Downsample {
				err = firstErr(
					func() error { return conv(pre+"downsample.0", blk.Out, blk.In, 1, 1) },
					func() error { return p.BatchNorm(pre+"downsample.1", blk.Out) })
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if err := p.Linear("fc", cfg.NumClasses, cfg.Features()); err != nil {
		return nil, err
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

func firstErr(fs ...func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Arch is the architecture name (see Config.Arch).
func (m *Model) Arch() string { return m.Config.Arch }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

// Layers lists every module in the order of its (last) output, containers
// after their children, with output shapes (Dims) for a 224×224 input; the
// blocks' shared "relu" modules have Calls 2 (BasicBlock) or 3 (Bottleneck).
func (m *Model) Layers() []models.Layer { return m.layers }

// Input describes the expected input: 3 channels, reference size 224.
func (m *Model) Input() models.InputSpec {
	return models.InputSpec{Channels: 3, Size: InputSize, MinSize: 1}
}

// CheckInput validates an NCHW input shape (N,3,H,W), N, H, W ≥ 1. Every
// stride-2 stage rounds up (⌈H/2⌉), so any size reaches layer4 with at least 1×1.
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 || dims[2] < 1 || dims[3] < 1 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N, H, W ≥ 1, got %v", m.Config.Arch, dims)
	}
	return nil
}

// Build builds the network on x (channels-last [N,H,W,3], already
// normalised) with the parameters bound in s, naming every module output
// through s with torchvision's paths, in PyTorch's call order: "conv1",
// "bn1", "relu", "maxpool"; per block "layerS.K.conv1", "bn1", "relu",
// "conv2", "bn2", "relu", ["conv3", "bn3"], ["downsample.0",
// "downsample.1", "downsample"], "relu" (the block's one ReLU module,
// applied 2 or 3 times), then "layerS.K" (the block) and after its last
// block "layerS"; "avgpool" ([N,1,1,C]) and "fc". It returns the logits
// [N,NumClasses].
func (m *Model) Build(s *models.Scope, x *Node) *Node {
	cfg := m.Config
	x = s.Conv("conv1", x, models.ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}})
	x = s.BatchNorm("bn1", x)
	x = s.ReLU("relu", x)
	x = s.MaxPool("maxpool", x, models.PoolSpec{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	for si, stage := range cfg.Stages {
		for b, blk := range stage {
			x = m.block(s, fmt.Sprintf("layer%d.%d", si+1, b), blk, x)
		}
		x = s.Out(fmt.Sprintf("layer%d", si+1), KindSequential, x)
	}
	d := x.Shape().Dimensions
	x = s.Out("avgpool", models.AdaptiveAvgPool2d, Reshape(models.GlobalMeanPool(x), d[0], 1, 1, d[3]))
	x = models.Flatten(x)
	return s.Linear("fc", x)
}

// block builds one BasicBlock or Bottleneck at path p.
func (m *Model) block(s *models.Scope, p string, blk Block, x *Node) *Node {
	st := [2]int{blk.Stride, blk.Stride}
	relu := p + ".relu"
	var y *Node
	if m.Config.Bottleneck {
		y = s.Conv(p+".conv1", x, models.ConvSpec{})
		y = s.ReLU(relu, s.BatchNorm(p+".bn1", y))
		y = s.Conv(p+".conv2", y, models.ConvSpec{Stride: st, Padding: [2]int{1, 1}, Groups: blk.Groups})
		y = s.ReLU(relu, s.BatchNorm(p+".bn2", y))
		y = s.Conv(p+".conv3", y, models.ConvSpec{})
		y = s.BatchNorm(p+".bn3", y)
	} else {
		y = s.Conv(p+".conv1", x, models.ConvSpec{Stride: st, Padding: [2]int{1, 1}})
		y = s.ReLU(relu, s.BatchNorm(p+".bn1", y))
		y = s.Conv(p+".conv2", y, models.ConvSpec{Padding: [2]int{1, 1}})
		y = s.BatchNorm(p+".bn2", y)
	}
	identity := x
	if blk.Downsample {
		identity = s.Conv(p+".downsample.0", x, models.ConvSpec{Stride: st})
		identity = s.BatchNorm(p+".downsample.1", identity)
		identity = s.Out(p+".downsample", KindSequential, identity)
	}
	y = s.ReLU(relu, Add(y, identity))
	return s.Out(p, m.Config.blockKind(), y)
}
