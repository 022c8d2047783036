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
		if b == 0 {
			s *= 2
		}
	}
	return s
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
			m.Config.Arch, min, min, min, dims[2], dims[3])
	}
	return nil
}

// Forward builds the network. x is the input image batch in NCHW layout
// [N,3,H,W] (PyTorch's), already normalised, unless opts.StartAfter is set.
// params are the graph nodes of Params() in ParamNames() order. It returns the
// logits [N,NumClasses], or the output of opts.StopAfter.
//
// Graph construction errors (bad shapes) panic inside the graph builder, as
// everywhere in GoMLX; callers validate shapes first with CheckInput.
func (m *Model) Forward(x *Node, params []*Node, opts models.ForwardOptions) *Node {
	p := func(name string) *Node { return params[m.index[name]] }
	start := 0
	if opts.StartAfter != "" {
		start = m.byName[opts.StartAfter] + 1
	} else {
		x = TransposeAllDims(x, 0, 2, 3, 1) // NCHW → NHWC.
	}
	lowering := opts.Lowering
	if lowering == models.LoweringAuto {
		lowering = models.ResolveLowering(lowering, x.Graph().Backend())
	}
	noGrad := -1 // Layers up to this index are never differentiated.
	if i, ok := m.byName[opts.NoGradThrough]; ok {
		noGrad = i
	}
	for li, l := range m.layers[start:] {
		diff := start+li > noGrad
		switch l.Kind {
		case models.Conv2d:
			x = models.Conv3x3(x, p(l.Name+".weight"), p(l.Name+".bias"), lowering)
		case models.BatchNorm2d:
			x = Add(Mul(x, Reshape(p(l.Name+".scale"), 1, 1, 1, l.Out)), Reshape(p(l.Name+".shift"), 1, 1, 1, l.Out))
		case models.ReLU:
			if diff {
				x = models.ReLUWithRule(x, opts.ReLU)
			} else {
				x = MaxScalar(x, float32(0)) // Same values; one pass, no mask.
			}
		case models.MaxPool2d:
			x = models.MaxPool2x2(x, opts.ExactMaxPoolGrad && diff)
		case models.AdaptiveAvgPool2d:
			x = models.AdaptiveAvgPool(x, m.Config.PoolSize)
		case models.Linear:
			if l.Name == "classifier.0" {
				dims := x.Shape().Dimensions
				x = Reshape(x, dims[0], dims[1]*dims[2]*dims[3])
			}
			chunks := make([]*Node, len(m.linear[l.Name]))
			for i, pi := range m.linear[l.Name] {
				chunks[i] = params[pi]
			}
			if lowering == models.LoweringNative || len(chunks) == 1 {
				w := chunks[0]
				if len(chunks) > 1 {
					w = Concatenate(chunks, 0) // One [in,out] product: XLA does it best.
				}
				x = Dot(x, w).Product()
			} else {
				x = models.LinearChunked(x, chunks) // The Go backend's small kernels (see there).
			}
			x = Add(x, Reshape(p(l.Name+".bias"), 1, l.Out))
		case models.Dropout:
			// Eval mode: identity.
		}
		if opts.Hook != nil {
			x = opts.Hook(l, x)
		}
		if l.Name == opts.StopAfter {
			return x
		}
	}
	return x
}
