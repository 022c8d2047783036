package densenet

import (
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// Container kinds (torchvision's module classes).
const (
	DenseLayer models.Kind = "_DenseLayer"
	DenseBlock models.Kind = "_DenseBlock"
	Transition models.Kind = "_Transition"
	Sequential models.Kind = "Sequential"
)

// RefInputSize is the input size the layer table describes (ImageNet's 224).
const RefInputSize = 224

// Model is a DenseNet with its parameters converted to the graph's layouts
// (see models.ParamStore). It implements models.Network,
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

// Load builds a DenseNet from torchvision-named weights (old-style keys
// accepted, see NormalizeKeys); the architecture is read from them (see
// ConfigFromWeights). Loading is strict: a missing, mis-shaped or
// non-finite tensor, or a tensor no module uses, is an error naming it
// (num_batches_tracked is accepted).
func Load(w *weights.Set) (*Model, error) {
	w, err := NormalizeKeys(w)
	if err != nil {
		return nil, err
	}
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
			st.SetConvIn(m.path, m.in)
		case models.BatchNorm2d:
			err = st.BatchNorm(m.path, m.out)
		case models.Linear:
			err = st.Linear(m.path, m.out, m.in)
		}
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", cfg.Arch, m.path, err)
		}
	}
	if err := st.CheckAllUsed(cfg.Arch); err != nil {
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

// Arch is the architecture name (Config.Arch).
func (m *Model) Arch() string { return m.Config.Arch }

// Layers lists every module (leaves and containers) in output order, with
// shapes for a 224×224 input.
func (m *Model) Layers() []models.Layer { return m.layers }

// NumClasses is the number of logits.
func (m *Model) NumClasses() int { return m.Config.NumClasses }

// CheckInput validates an NCHW input shape: (N,3,H,W) with N ≥ 1 and H, W at
// least Config.MinInputSize().
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N ≥ 1, got %v", m.Config.Arch, dims)
	}
	if s := m.Config.MinInputSize(); dims[2] < s || dims[3] < s {
		return fmt.Errorf("model %s needs inputs of at least %d×%d pixels, got %d×%d", m.Config.Arch, s, s, dims[2], dims[3])
	}
	return nil
}

// Build builds the network on x (channels-last [N,H,W,3], normalised) and
// returns the logits [N,NumClasses], naming every module output through s
// (see the package documentation for the paths).
//
// The functional ReLU torchvision applies after `features` has no module
// path, so it cannot be tapped, but it follows the scope's backward rule like
// every ReLU module (guided backpropagation through it is guided).
func (m *Model) Build(s *models.Scope, x *Node) *Node {
	c := m.Config
	x = s.Conv("features.conv0", x, models.ConvSpec{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}})
	x = s.BatchNorm("features.norm0", x)
	x = s.ReLU("features.relu0", x)
	x = s.MaxPool("features.pool0", x, models.PoolSpec{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	for b, n := range c.BlockConfig {
		bp := fmt.Sprintf("features.denseblock%d", b+1)
		feats := []*Node{x}
		for l := 0; l < n; l++ {
			p := fmt.Sprintf("%s.denselayer%d", bp, l+1)
			y := feats[0]
			if len(feats) > 1 {
				y = Concatenate(feats, 3)
			}
			y = s.BatchNorm(p+".norm1", y)
			y = s.ReLU(p+".relu1", y)
			y = s.Conv(p+".conv1", y, models.ConvSpec{})
			y = s.BatchNorm(p+".norm2", y)
			y = s.ReLU(p+".relu2", y)
			y = s.Conv(p+".conv2", y, models.ConvSpec{Padding: [2]int{1, 1}})
			feats = append(feats, s.Out(p, DenseLayer, y))
		}
		x = s.Out(bp, DenseBlock, Concatenate(feats, 3))
		if b < len(c.BlockConfig)-1 {
			p := fmt.Sprintf("features.transition%d", b+1)
			x = s.BatchNorm(p+".norm", x)
			x = s.ReLU(p+".relu", x)
			x = s.Conv(p+".conv", x, models.ConvSpec{})
			x = s.Out(p+".pool", models.AvgPool2d, models.AvgPool2D(x, models.PoolSpec{Kernel: [2]int{2, 2}}))
			x = s.Out(p, Transition, x)
		}
	}
	x = s.BatchNorm("features.norm5", x)
	x = s.Out("features", Sequential, x)
	if s.Differentiable() {
		x = models.ReLUWithRule(x, s.Rule)
	} else {
		x = MaxScalar(x, float32(0))
	}
	return s.Linear("classifier", models.GlobalMeanPool(x))
}

// RandomWeights returns torchvision-named weights for cfg drawn with
// torchvision's DenseNet initialisation:
//
//	conv:   kaiming_normal_ (fan_in, ReLU gain): N(0, 2/(I·kh·kw))
//	BN:     weight 1, bias 0, running_mean 0, running_var 1
//	linear: PyTorch's default weight U(−1/√in, 1/√in); bias 0
//
// The same seed gives the same weights (models.Streams), not PyTorch's
// values.
func RandomWeights(cfg Config, seed uint64) (*weights.Set, error) {
	if cfg.NumClasses < 1 || len(cfg.BlockConfig) == 0 || cfg.GrowthRate < 1 || cfg.InitFeatures < 1 || cfg.BnSize < 1 {
		return nil, fmt.Errorf("densenet: invalid configuration %+v", cfg)
	}
	s := weights.NewSet(fmt.Sprintf("random-init(%s, seed %d)", cfg.Arch, seed))
	r := models.Streams{Seed: seed} // Tensor i drawn with stream i, in parallel.
	for _, m := range cfg.modules() {
		switch m.kind {
		case models.Conv2d:
			std := math.Sqrt(2 / float64(m.in*m.k*m.k))
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out, m.in, m.k, m.k}, Data: r.Normal(m.out*m.in*m.k*m.k, std)}
		case models.BatchNorm2d:
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out}, Data: models.OnesF32(m.out)}
			s.Tensors[m.path+".bias"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
			s.Tensors[m.path+".running_mean"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
			s.Tensors[m.path+".running_var"] = &weights.Tensor{Shape: []int{m.out}, Data: models.OnesF32(m.out)}
		case models.Linear:
			s.Tensors[m.path+".weight"] = &weights.Tensor{Shape: []int{m.out, m.in}, Data: r.Uniform(m.out*m.in, 1/math.Sqrt(float64(m.in)))}
			s.Tensors[m.path+".bias"] = &weights.Tensor{Shape: []int{m.out}, Data: make([]float32, m.out)}
		}
	}
	return s, nil
}

// NewRandom builds torchvision's arch ("densenet121", …) with numClasses
// outputs and random weights (see RandomWeights).
func NewRandom(arch string, numClasses int, seed uint64) (*Model, error) {
	cfg, err := StandardConfig(arch, numClasses)
	if err != nil {
		return nil, err
	}
	w, err := RandomWeights(cfg, seed)
	if err != nil {
		return nil, err
	}
	return build(cfg, w)
}
