// Package models holds the networks cnnviz can explain and what they share:
// the one model protocol — a Network is a graph builder that names every
// module output through a Scope with torchvision's module paths, and the
// Scope's owner (the engine) decides per request what to return,
// differentiate, replace, and which backward rule activations apply — the
// module table derived by tracing a build (Trace, TraceLayers), the parameter
// store shared by the families (ParamStore), and the graph building blocks
// (convolutions of any geometry lowered per backend, pools with PyTorch's
// gradient tie rule, chunked linear layers). The families live in
// subpackages (vgg, resnet, alexnet, densenet, mobilenet, smallcnn, onnx,
// custom); models/zoo is their registry.
package models

import (
	"fmt"
	"os"
	"strings"
	"sync"

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
	ReLU6         Kind = "ReLU6"
	AvgPool2d     Kind = "AvgPool2d"
	Flatten2d     Kind = "Flatten"
)

// Layer describes one module of the network, in the order of its outputs
// (a container after its children).
type Layer struct {
	// Name is torchvision's module path, e.g. "features.19", "layer4.1" or
	// "layer4.1.conv2".
	Name string
	// Kind is the PyTorch module class ("Conv2d", "Bottleneck", "Sequential", …).
	Kind Kind
	// In and Out are the channel (or feature) counts entering and leaving the
	// module (In is 0 where the module's input is not one tensor of known width).
	In, Out int
	// Params is the number of learned values (weights, biases, BN affine terms;
	// BN running statistics are not counted, as in PyTorch's parameters()),
	// children's included for containers.
	Params int
	// Spatial is true when the output has spatial axes (N,C,H,W), false for a
	// flat feature vector (N,F).
	Spatial bool
	// Calls is how many times one forward pass applies the module (torchvision's
	// ResNet blocks apply their `relu` two or three times); 0 means 1.
	Calls int
	// Dims is the output shape (C,H,W) or (F) for the model's reference input
	// size (see Network.Input), without the batch axis; nil when unknown.
	Dims []int
}

// InputSpec describes what a network takes.
type InputSpec struct {
	// Channels of the input image (3 for RGB).
	Channels int
	// Size is the reference input size (H = W) used to describe the model
	// (e.g. 224 for torchvision's ImageNet models).
	Size int
	// MinSize is the smallest accepted height and width.
	MinSize int
}

// Network is a model cnnviz can explain: a graph builder that names its module
// outputs through a Scope. Inputs are NCHW images [N,C,H,W]; outputs are
// [N,NumClasses].
type Network interface {
	// Arch names the architecture, e.g. "vgg11" or "resnet50".
	Arch() string
	// Layers lists the modules in output order (see Layer).
	Layers() []Layer
	// NumClasses is the size of the output vector.
	NumClasses() int
	// CheckInput validates an NCHW input shape.
	CheckInput(dims []int) error
	// ParamNames names the parameter tensors in the order Params returns them.
	ParamNames() []string
	// Params returns the parameter tensors (on the backend's device).
	Params(backend compute.Backend) ([]*tensors.Tensor, error)
	// Build builds the network on x (channels-last [N,H,W,C], already
	// normalised) with the parameters bound in s, naming every module output
	// through s (see Scope), and returns the output [N,NumClasses].
	Build(s *Scope, x *graph.Node) *graph.Node
	// Weight returns a conv or linear layer's weight in PyTorch layout
	// ([O,I/groups,kh,kw] or [out,in]) and its bias (nil when it has none).
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
	// LoweringWinograd is LoweringIm2Col except for 3×3 stride-1 padding-1
	// dense convolutions, which use Winograd's F(2×2,3×3) (4 instead of 9
	// multiply-adds per output and input channel; see conv3x3Winograd).
	LoweringWinograd
	// LoweringWinograd4 is LoweringWinograd with F(4×4,3×3) (2.25 multiply-adds;
	// larger float32 rounding errors).
	LoweringWinograd4
)

// String names the lowering.
func (l Lowering) String() string {
	switch l {
	case LoweringAuto:
		return "auto"
	case LoweringIm2Col:
		return "im2col"
	case LoweringNative:
		return "native"
	case LoweringWinograd:
		return "winograd"
	case LoweringWinograd4:
		return "winograd4"
	}
	return fmt.Sprintf("Lowering(%d)", int(l))
}

// ParseLowering parses a lowering name as String writes it ("auto",
// "im2col", "native", "winograd", "winograd4").
func ParseLowering(name string) (Lowering, error) {
	for l := LoweringAuto; l <= LoweringWinograd4; l++ {
		if strings.EqualFold(strings.TrimSpace(name), l.String()) {
			return l, nil
		}
	}
	return LoweringAuto, fmt.Errorf("unknown convolution lowering %q; valid: auto, im2col, native, winograd, winograd4", name)
}

// LoweringEnv is the environment variable that, when set to a lowering name,
// replaces LoweringAuto's choice on the pure-Go backend (to run the same code
// and tests with another lowering, e.g. CNNVIZ_LOWERING=winograd).
const LoweringEnv = "CNNVIZ_LOWERING"

// ResolveLowering picks the convolution lowering for a backend: Im2Col on the
// pure-Go backend (or the lowering named by $CNNVIZ_LOWERING there), Native
// elsewhere. An explicit lowering is returned as is. It panics on an invalid
// $CNNVIZ_LOWERING, naming the valid values.
func ResolveLowering(l Lowering, backend compute.Backend) Lowering {
	if l != LoweringAuto {
		return l
	}
	if env := os.Getenv(LoweringEnv); env != "" && IsGoBackend(backend) {
		el, err := ParseLowering(env)
		if err != nil {
			panic(fmt.Errorf("$%s: %w", LoweringEnv, err))
		}
		if el != LoweringAuto {
			return el
		}
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

// BiasedNetwork is implemented by networks that can give a batch norm's
// effective bias β − μ·γ/√(σ²+ε) (pytorch-grad-cam's get_bias_data), for
// FullGrad.
type BiasedNetwork interface {
	// ModuleBias returns the per-channel effective bias of a BatchNorm2d module.
	ModuleBias(module string) ([]float32, error)
}

// NumParams returns a network's number of learned values (PyTorch's
// parameters()): its NumParams method where it has one, else the sum over
// its leaf modules' Params.
func NumParams(net Network) int {
	if p, ok := net.(interface{ NumParams() int }); ok {
		return p.NumParams()
	}
	layers := net.Layers()
	n := 0
	for i, l := range layers {
		leaf := true
		for _, o := range layers[i+1:] {
			if strings.HasPrefix(o.Name, l.Name+".") {
				leaf = false
				break
			}
		}
		if leaf {
			n += l.Params
		}
	}
	return n
}

// SourceOf describes where a network's weights came from (its Source field
// or method), or "".
func SourceOf(net Network) string {
	if s, ok := net.(interface{ WeightsSource() string }); ok {
		return s.WeightsSource()
	}
	return ""
}

var camLayers sync.Map // arch → default CAM module

// RegisterCAMLayer records the default CAM module of an architecture (the
// registry in models/zoo does it for every architecture it knows).
func RegisterCAMLayer(arch, module string) { camLayers.Store(arch, module) }

// CAMLayerOf returns the registered default CAM module of arch, or "".
func CAMLayerOf(arch string) string {
	if v, ok := camLayers.Load(arch); ok {
		return v.(string)
	}
	return ""
}

// InputChannels returns how many channels net's input has: its
// InputChannels method where it has one (ONNX and custom models), else 3.
func InputChannels(net Network) int {
	if c, ok := net.(interface{ InputChannels() int }); ok && c.InputChannels() > 0 {
		return c.InputChannels()
	}
	return 3
}

// ReferenceSize returns the input height and width a network was made for,
// when it has a fixed one (an ONNX graph exported at one size: its
// ReferenceInput method), and ok false otherwise.
func ReferenceSize(net Network) (h, w int, ok bool) {
	if r, yes := net.(interface{ ReferenceInput() []int }); yes {
		if d := r.ReferenceInput(); len(d) == 4 && d[2] > 0 && d[3] > 0 {
			return d[2], d[3], true
		}
	}
	return 0, 0, false
}
