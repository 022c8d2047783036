// Package weights reads and writes named float32 tensors (model parameters) in the
// formats cnnviz supports: safetensors files (LoadSafetensors, SaveSafetensors),
// PyTorch .pth checkpoints (LoadPTH) and the Hugging Face hub (LoadHub); Load
// picks one from a spec string. Every dtype is converted to float32 on load.
// Names follow torchvision ("features.0.weight", "classifier.6.bias"; timm-named
// VGG weights are converted by FromTimm); layouts are PyTorch's (conv kernels
// [out,in,kh,kw], linear weights [out,in]), row-major.
package weights

import (
	"fmt"
	"sort"
)

// Tensor is a dense float32 array in row-major (C) order.
type Tensor struct {
	// Shape lists the dimensions, outermost first (PyTorch order).
	Shape []int
	// Data holds prod(Shape) values, row-major.
	Data []float32
	// DType is the element type the file stored, as the format spells it
	// ("F32", "I64", "torch.LongStorage"); empty when not read from a file.
	// Every type is converted to float32; see IsInteger.
	DType string
}

// IsInteger reports whether the tensor was stored with an integer or boolean
// element type (converted to float32 on load: a weight stored that way is
// suspicious, except counters such as BatchNorm's num_batches_tracked).
func (t *Tensor) IsInteger() bool {
	switch t.DType {
	case "", "F32", "F64", "F16", "BF16", "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage":
		return false
	}
	return true
}

// Size is the number of elements implied by Shape.
func (t *Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Set is a collection of named tensors read from one source.
type Set struct {
	// Tensors maps a parameter name (torchvision naming) to its value.
	Tensors map[string]*Tensor
	// Source describes where the tensors came from (a file path or "hub:REPO"),
	// used in error messages.
	Source string
	// Metadata holds free-form string metadata: the "__metadata__" of a
	// safetensors file when loaded, written back by SaveSafetensors. May be nil.
	Metadata map[string]string

	mapped   *mapping         // The file mapping some tensors alias (MapSafetensors), or nil.
	borrowed []*Tensor        // The tensors whose Data aliases mapped.
	kept     map[*Tensor]bool // Borrowed tensors whose data was taken with Keep.
}

// NewSet returns an empty set with the given source description.
func NewSet(source string) *Set {
	return &Set{Tensors: make(map[string]*Tensor), Source: source}
}

// Names returns the tensor names in sorted order.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.Tensors))
	for k := range s.Tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Has reports whether a tensor with this name exists.
func (s *Set) Has(name string) bool {
	_, ok := s.Tensors[name]
	return ok
}

// Get returns the named tensor. If shape is given, the tensor's shape must match it
// exactly; a missing tensor or a shape mismatch is an error naming the tensor, the
// source and the expected and found shapes.
func (s *Set) Get(name string, shape ...int) (*Tensor, error) {
	t, ok := s.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("weights %s: tensor %q is missing", s.Source, name)
	}
	if len(shape) > 0 && !sameShape(t.Shape, shape) {
		return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected %v", s.Source, name, t.Shape, shape)
	}
	if t.Size() != len(t.Data) {
		return nil, fmt.Errorf("weights %s: tensor %q has shape %v (%d values) but holds %d values", s.Source, name, t.Shape, t.Size(), len(t.Data))
	}
	return t, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
