package vgg

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
)

// MinInputSize is the smallest height/width accepted: every max-pool halves the
// size (flooring), and the last one needs at least 1×1 left.
func (c Config) MinInputSize() int {
	s := 1
	for _, b := range c.Blocks {
		if b == 0 && s < 1<<30 {
			s *= 2
		}
	}
	return s
}

// NumPools is the number of max-pools.
func (c Config) NumPools() int {
	n := 0
	for _, b := range c.Blocks {
		if b == 0 {
			n++
		}
	}
	return n
}

// CheckInput validates an NCHW input shape for this model.
func (m *Model) CheckInput(dims []int) error {
	if len(dims) != 4 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W), got shape %v", m.Config.Arch, dims)
	}
	if dims[0] < 1 || dims[1] != 3 {
		return fmt.Errorf("model %s expects an input of shape (N,3,H,W) with N ≥ 1 and 3 channels, got %v", m.Config.Arch, dims)
	}
	if min := m.Config.MinInputSize(); dims[2] < min || dims[3] < min {
		return fmt.Errorf("model %s needs inputs of at least %d×%d pixels (it has %d max-pools), got %d×%d",
			m.Config.Arch, min, min, m.Config.NumPools(), dims[2], dims[3])
	}
	return nil
}

// Build builds the network on x (channels-last [N,H,W,3], already
// normalised) with the parameters bound in s, naming every module output
// through s with torchvision's paths ("features.N", "avgpool",
// "classifier.N"). It returns the logits [N,NumClasses].
//
// Graph construction errors (bad shapes) panic inside the graph builder, as
// everywhere in GoMLX; callers validate shapes first with CheckInput.
func (m *Model) Build(s *models.Scope, x *Node) *Node {
	for _, l := range m.layers {
		switch l.Kind {
		case models.Conv2d:
			x = s.Out(l.Name, l.Kind, models.Conv3x3(x, s.Param(l.Name+".weight"), s.Param(l.Name+".bias"), s.Lowering))
		case models.BatchNorm2d:
			x = s.BatchNorm(l.Name, x)
		case models.ReLU:
			x = s.ReLU(l.Name, x)
		case models.MaxPool2d:
			x = s.Out(l.Name, l.Kind, models.MaxPool2x2(x, s.ExactMaxPoolGrad && s.Differentiable()))
		case models.AdaptiveAvgPool2d:
			x = s.Out(l.Name, l.Kind, models.AdaptiveAvgPool(x, m.Config.PoolSize))
		case models.Linear:
			if l.Name == "classifier.0" {
				x = models.Flatten(x) // torch.flatten's (C,H,W) order: the weight's own.
			}
			x = s.Linear(l.Name, x)
		case models.Dropout:
			x = s.Out(l.Name, l.Kind, x) // Eval mode: identity.
		}
	}
	return x
}

// ParamShapes returns the graph shapes of the parameters in ParamNames order.
func (m *Model) ParamShapes() [][]int { return m.set.Shapes() }

// ModuleBias returns a BatchNorm2d module's effective bias β − μ·γ/√(σ²+ε)
// (the folded shift) or a convolution's bias.
func (m *Model) ModuleBias(module string) ([]float32, error) {
	for _, name := range []string{module + ".shift", module + ".bias"} {
		d, ok, err := m.set.Flat(name)
		if err != nil && m.set.Closed() {
			return nil, fmt.Errorf("model %s was closed", m.Config.Arch)
		}
		if ok || err != nil {
			return d, err
		}
	}
	return nil, fmt.Errorf("module %q of %s has no bias", module, m.Config.Arch)
}

// WeightsSource says where the weights came from.
func (m *Model) WeightsSource() string { return m.Source }
