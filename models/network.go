// Package models holds the networks cnnviz can explain and what they share: the
// Network interface (a graph builder with named layers, PyTorch module names),
// layer descriptions, forward options (taps through hooks, ReLU backward rules)
// and the graph building blocks (3×3 convolutions lowered per backend, ReLU,
// max-pool with PyTorch's gradient tie rule, adaptive average pooling).
package models

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Kind is the type of a layer, named as the PyTorch module class.
type Kind string

// Layer kinds (PyTorch module classes).
const (
	Conv2d            Kind = "Conv2d"
	BatchNorm2d       Kind = "BatchNorm2d"
	ReLU              Kind = "ReLU"
	MaxPool2d         Kind = "MaxPool2d"
	AdaptiveAvgPool2d Kind = "AdaptiveAvgPool2d"
	Linear            Kind = "Linear"
	Dropout           Kind = "Dropout"
	// GlobalAvgPool is a global average pool with flatten ([N,C,H,W] → [N,C]),
	// as in networks that end in GAP + one linear layer (where CAM applies).
	GlobalAvgPool Kind = "GlobalAvgPool"
)

// Layer describes one module of the network, in execution order.
type Layer struct {
	// Name is torchvision's module name, e.g. "features.19" or "classifier.6".
	Name string
	// Kind is the PyTorch module class.
	Kind Kind
	// In and Out are the channel (or feature) counts entering and leaving the layer.
	In, Out int
	// Params is the number of learned values (weights, biases, BN affine terms;
	// BN running statistics are not counted, as in PyTorch's parameters()).
	Params int
	// Spatial is true when the output has spatial axes (N,C,H,W), false for a
	// flat feature vector (N,F).
	Spatial bool
}

// Network is a model cnnviz can explain: a graph builder whose layers have
// names. Inputs are NCHW images [N,3,H,W]; outputs are logits [N,NumClasses].
type Network interface {
	// Arch names the architecture, e.g. "vgg11".
	Arch() string
	// Layers lists the modules in execution order.
	Layers() []Layer
	// NumClasses is the size of the logits.
	NumClasses() int
	// CheckInput validates an NCHW input shape.
	CheckInput(dims []int) error
	// Params returns the parameter tensors (on the backend's device) in the order
	// Forward expects them.
	Params(backend compute.Backend) ([]*tensors.Tensor, error)
	// Forward builds the network on x (NCHW, or a layer's channels-last output when
	// opts.StartAfter is set) with params as graph nodes.
	Forward(x *graph.Node, params []*graph.Node, opts ForwardOptions) *graph.Node
	// Weight returns a conv or linear layer's weight in PyTorch layout
	// ([O,I,kh,kw] or [out,in]) and its bias.
	Weight(layer string) (*weights.Tensor, []float32, error)
	// Close releases parameter buffers.
	Close()
}

// FindLayer returns the named layer of layers, or an error listing valid names.
func FindLayer(arch string, layers []Layer, name string) (Layer, int, error) {
	for i, l := range layers {
		if l.Name == name {
			return l, i, nil
		}
	}
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = l.Name
	}
	return Layer{}, -1, fmt.Errorf("model %s has no layer %q; valid layers: %s", arch, name, strings.Join(names, ", "))
}

// ReLURule selects the backward rule of every ReLU in the network (features and
// classifier); the forward values are always max(x, 0).
type ReLURule int

const (
	// ReLUStandard is PyTorch's rule: the gradient passes where the input is > 0
	// (at exactly 0 it is blocked, as in PyTorch).
	ReLUStandard ReLURule = iota
	// ReLUGuided is guided backpropagation (Springenberg et al.): the gradient
	// passes where the input is > 0 and the incoming gradient is > 0.
	ReLUGuided
	// ReLUDeconv is the deconvnet rule (Zeiler & Fergus): the gradient passes where
	// the incoming gradient is > 0, whatever the input.
	ReLUDeconv
)

// String names the rule.
func (r ReLURule) String() string {
	switch r {
	case ReLUGuided:
		return "guided"
	case ReLUDeconv:
		return "deconv"
	default:
		return "standard"
	}
}

// ForwardOptions configures Forward.
type ForwardOptions struct {
	// Lowering of the convolutions; LoweringAuto picks by backend name.
	Lowering Lowering
	// ReLU is the backward rule of the ReLUs (default ReLUStandard).
	ReLU ReLURule
	// ExactMaxPoolGrad makes max-pool gradients go to the first maximum of each
	// 2×2 window (row-major), as PyTorch does, instead of to every tied maximum.
	// Ties are common after ReLUs (windows of zeros), so set it whenever gradients
	// with respect to layers before a pool are taken. It costs a few elementwise ops.
	ExactMaxPoolGrad bool
	// Hook, if set, is called with each layer's output in execution order and
	// returns the node to continue with (return x unchanged to only observe it).
	// Spatial outputs are channels-last [N,H,W,C]; classifier outputs are [N,F].
	Hook func(layer Layer, x *graph.Node) *graph.Node
	// StopAfter, if set, ends the forward pass after the named layer and returns
	// that layer's output (channels-last for spatial layers).
	StopAfter string
	// StartAfter, if set, starts the forward pass right after the named layer:
	// the input x of Forward is then that layer's output in channels-last layout
	// ([N,H,W,C]) or [N,F] for classifier layers.
	StartAfter string
	// NoGradThrough, if set, promises that no gradient will flow through the
	// layers up to and including the named one (e.g. the shallowest layer a
	// gradient is taken with respect to, or the last layer for a forward-only
	// graph). A builder may then give those layers cheaper forward-only forms
	// (plain max-pool without ExactMaxPoolGrad's tie rule, ReLU as max(x, 0));
	// the values computed are identical. Empty: every layer may be differentiated.
	NoGradThrough string
}

// Lowering selects how convolutions are expressed in the graph.
type Lowering int

const (
	// LoweringAuto picks Im2Col on the pure-Go backend and Native elsewhere.
	LoweringAuto Lowering = iota
	// LoweringIm2Col writes each 3×3 convolution as 9 shifted slices of the padded
	// input stacked into patches and one matrix product. On the pure-Go backend
	// this is 20–40× faster than its native convolution loop.
	LoweringIm2Col
	// LoweringNative uses graph.Convolve (the backend's own convolution; best on XLA).
	LoweringNative
)

// ResolveLowering picks the convolution lowering for a backend: Im2Col on the
// pure-Go backend, Native elsewhere.
func ResolveLowering(l Lowering, backend compute.Backend) Lowering {
	if l != LoweringAuto {
		return l
	}
	if IsGoBackend(backend) {
		return LoweringIm2Col
	}
	return LoweringNative
}

// IsGoBackend reports whether b is GoMLX's pure-Go backend (its Name() is "Go Backend").
func IsGoBackend(b compute.Backend) bool {
	if b == nil {
		return false
	}
	n := strings.ToLower(b.Name())
	return n == "go" || strings.HasPrefix(n, "go ") || n == "simplego"
}
