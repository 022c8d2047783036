package mobilenet

import (
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// Container kinds (torchvision's module classes).
const (
	ConvNormActivation models.Kind = "Conv2dNormActivation"
	InvertedResidual   models.Kind = "InvertedResidual"
	Sequential         models.Kind = "Sequential"
)

// RefInputSize is the input size the layer table describes (ImageNet's 224).
const RefInputSize = 224

// Model is a MobileNet-V2 with its parameters converted to the graph's
// layouts (see models.ParamStore). It implements models.Network,
// models.ParamShaper and models.BiasedNetwork, and is safe for concurrent use.
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

// Load builds a MobileNet-V2 from torchvision-named weights (see
// ConfigFromWeights). Loading is strict: a missing, mis-shaped or
// non-finite tensor, or a tensor no module uses, is an error naming it
// (num_batches_tracked is accepted).
func Load(w *weights.Set) (*Model, error) {
	cfg, err := ConfigFromWeights(w)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}

func build(cfg Config, w *weights.Set) (*Model, error) {
	st := models.NewParamStore(w)
	for _, m := range cfg.modules() {
		var err error
		switch m.kind {
		case models.Conv2d:
			err = st.Conv(m.path, m.out, m.in, m.k, m.k, false)
			st.SetConvIn(m.path, m.in*m.groups)
		case models.BatchNorm2d:
			err = st.BatchNorm(m.path, m.out)
		case models.Linear:
			err = st.Linear(m.path, m.out, m.in)
		}
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", Arch, m.path, err)
		}
	}
	if err := st.CheckAllUsed(Arch); err != nil {
		return nil, err
	}
	st.Done()
	net := &Model{Config: cfg, Source: w.Source, Stored: models.StoredIn(st)}
	layers, err := models.TraceLayers(net, []int{1, 3, RefInputSize, RefInputSize}, st.Counts(), st.ConvIn())
	if err != nil {
		return nil, err
	}
	net.layers = layers
	return net, nil
}

// Arch is "mobilenet_v2".
func (m *Model) Arch() string { return Arch }

// Layers lists every module (leaves and containers) in output order, with
// shapes for a 224×224 input.
func (m *Model) Layers() []models.Layer { return m.layers }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

// CheckInput validates an NCHW input shape: (N,3,H,W) with N ≥ 1, H, W ≥ 1.
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 || dims[2] < 1 || dims[3] < 1 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N, H, W ≥ 1, got %v", Arch, dims)
	}
	return nil
}

// convBNAct is a Conv2dNormActivation at path (conv .0, BN .1, ReLU6 .2).
func convBNAct(s *models.Scope, path string, x *Node, spec models.ConvSpec) *Node {
	x = s.Conv(path+".0", x, spec)
	x = s.BatchNorm(path+".1", x)
	x = s.ReLU6(path+".2", x)
	return s.Out(path, ConvNormActivation, x)
}

// Build builds the network on x (channels-last [N,H,W,3], normalised) and
// returns the logits [N,NumClasses], naming every module output through s
// (see the package documentation for the paths). Activations are ReLU6
// modules (s.ReLU6: the scope's backward rule applies to each).
func (m *Model) Build(s *models.Scope, x *Node) *Node {
	c := m.Config
	x = convBNAct(s, "features.0", x, models.ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	for i, b := range c.Blocks {
		p := fmt.Sprintf("features.%d", i+1)
		e, dw, proj, bn := blockPaths(i+1, b)
		y := x
		if e != "" {
			y = convBNAct(s, e, y, models.ConvSpec{})
		}
		y = convBNAct(s, dw, y, models.ConvSpec{Stride: [2]int{b.Stride, b.Stride}, Padding: [2]int{1, 1}, Groups: b.Hidden})
		y = s.Conv(proj, y, models.ConvSpec{})
		y = s.BatchNorm(bn, y)
		y = s.Out(p+".conv", Sequential, y)
		if b.Residual() {
			y = Add(x, y)
		}
		x = s.Out(p, InvertedResidual, y)
	}
	x = convBNAct(s, fmt.Sprintf("features.%d", len(c.Blocks)+1), x, models.ConvSpec{})
	x = s.Out("features", Sequential, x)
	x = models.GlobalMeanPool(x)
	x = s.Out("classifier.0", models.Dropout, x)
	x = s.Linear("classifier.1", x)
	return s.Out("classifier", Sequential, x)
}

// RandomWeights returns torchvision-named weights for cfg drawn with
// torchvision's MobileNet-V2 initialisation:
//
//	conv:   kaiming_normal_(mode="fan_out"): N(0, 2/(O·kh·kw)) (depthwise too)
//	BN:     weight 1, bias 0, running_mean 0, running_var 1
//	linear: N(0, 0.01²); bias 0
//
// The same seed gives the same weights (models.Streams), not PyTorch's
// values.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 || cfg.Stem < 1 || cfg.Last < 1 || len(cfg.Blocks) != len(strides()) {
		return nil, fmt.Errorf("mobilenet_v2: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", Arch, seed))
	r := models.Streams{Seed: seed} // Tensor i drawn with stream i, in parallel.
	for _, m := range cfg.modules() {
		switch m.kind {
		case models.Conv2d:
			std := math.Sqrt(2 / float64(m.out*m.k*m.k))
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out, m.in, m.k, m.k}, Data: r.Normal(m.out*m.in*m.k*m.k, std)}
		case models.BatchNorm2d:
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out}, Data: models.OnesF32(m.out)}
			s.Tensors[m.path+".bias"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
			s.Tensors[m.path+".running_mean"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
			s.Tensors[m.path+".running_var"] = &weights.Tensor{Shape: []int{m.out}, Data: models.OnesF32(m.out)}
		case models.Linear:
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out, m.in}, Data: r.Normal(m.out*m.in, 0.01)}
			s.Tensors[m.path+".bias"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
		}
	}
	return s, nil
}

// NewRandom builds torchvision's mobilenet_v2(width_mult=width) with
// numClasses outputs and random weights (see RandomWeights).
func NewRandom(width float64, numClasses int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(width, numClasses)
	if err != nil {
		return nil, err
	}
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}
