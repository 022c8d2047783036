package weights

import (
	"fmt"
	"strings"
)

// timm's VGG (timm/models/vgg.py) keeps torchvision's "features.N.*" names but
// replaces torchvision's classifier with
//
//	pre_logits = ConvMlp: fc1 Conv2d(512, 4096, kernel 7) ← classifier.0 Linear(25088, 4096)
//	                      fc2 Conv2d(4096, 4096, kernel 1) ← classifier.3 Linear(4096, 4096)
//	head = ClassifierHead: fc Linear(4096, classes)        ← classifier.6
//
// Its pretrained filter (_filter_fn) builds the timm weights from torchvision's
// by renaming and reshaping classifier.0.weight to (-1, 512, 7, 7) and
// classifier.3.weight to (-1, 4096, 1, 1); FromTimm undoes exactly that.
var timmToTorchvision = map[string]string{
	"pre_logits.fc1.weight": "classifier.0.weight",
	"pre_logits.fc1.bias":   "classifier.0.bias",
	"pre_logits.fc2.weight": "classifier.3.weight",
	"pre_logits.fc2.bias":   "classifier.3.bias",
	"head.fc.weight":        "classifier.6.weight",
	"head.fc.bias":          "classifier.6.bias",
}

// IsTimm reports whether s uses timm's VGG naming: it has a "pre_logits.*" or
// "head.fc.*" tensor and no torchvision "classifier.*" tensor.
func IsTimm(s *Set) bool {
	if s == nil {
		return false
	}
	timm := false
	for name := range s.Tensors {
		if strings.HasPrefix(name, "classifier.") {
			return false
		}
		if strings.HasPrefix(name, "pre_logits.") || strings.HasPrefix(name, "head.fc.") {
			timm = true
		}
	}
	return timm
}

// FromTimm converts timm-named VGG weights to torchvision names and layouts,
// returning a new Set (tensor data is shared, not copied; Source and Metadata
// are kept):
//
//	features.N.*                         → unchanged
//	pre_logits.fc1.weight [O, C, kh, kw] → classifier.0.weight [O, C*kh*kw]
//	                                       (same data: timm's conv over the C×kh×kw
//	                                       input equals the Linear on its C,H,W flatten)
//	pre_logits.fc2.weight [O, I, 1, 1]   → classifier.3.weight [O, I]
//	head.fc.weight [classes, I]          → classifier.6.weight
//	pre_logits.fc1.bias, fc2.bias, head.fc.bias → classifier.0/3/6.bias
//
// A set that aliases a file mapping (MapSafetensors) hands the mapping over:
// the new set's tensors alias it, the new set's Close releases it, and the
// old set's Close does nothing more.
//
// Any other name is an error, as is a weight whose rank or shape does not match
// the table (fc2 must have a 1×1 kernel).
func FromTimm(s *Set) (*Set, error) {
	if s == nil {
		return nil, fmt.Errorf("weights: FromTimm: nil set")
	}
	out := &Set{Tensors: make(map[string]*Tensor, len(s.Tensors)), Source: s.Source, Metadata: s.Metadata}
	for _, name := range s.Names() {
		t := s.Tensors[name]
		if t == nil {
			return nil, fmt.Errorf("weights %s: FromTimm: tensor %q is nil", s.Source, name)
		}
		if strings.HasPrefix(name, "features.") {
			out.Tensors[name] = t
			continue
		}
		tv, ok := timmToTorchvision[name]
		if !ok {
			return nil, fmt.Errorf("weights %s: FromTimm: unexpected tensor %q in timm VGG weights (expected features.*, pre_logits.fc1/fc2.*, head.fc.*)", s.Source, name)
		}
		if t.Size() != len(t.Data) {
			return nil, fmt.Errorf("weights %s: tensor %q has shape %v (%d values) but holds %d values", s.Source, name, t.Shape, t.Size(), len(t.Data))
		}
		nt := t
		switch name {
		case "pre_logits.fc1.weight", "pre_logits.fc2.weight":
			if len(t.Shape) != 4 {
				return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a conv kernel [out, in, kh, kw]", s.Source, name, t.Shape)
			}
			if name == "pre_logits.fc2.weight" && (t.Shape[2] != 1 || t.Shape[3] != 1) {
				return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a 1×1 kernel [out, in, 1, 1]", s.Source, name, t.Shape)
			}
			nt = &Tensor{Shape: []int{t.Shape[0], t.Shape[1] * t.Shape[2] * t.Shape[3]}, Data: t.Data}
		case "head.fc.weight":
			if len(t.Shape) != 2 {
				return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a linear weight [classes, in]", s.Source, name, t.Shape)
			}
		default: // biases
			if len(t.Shape) != 1 {
				return nil, fmt.Errorf("weights %s: tensor %q has shape %v, expected a bias vector", s.Source, name, t.Shape)
			}
		}
		out.Tensors[tv] = nt
	}
	if s.mapped != nil {
		renamed := map[*Tensor]*Tensor{}
		for name, t := range s.Tensors {
			if tv, ok := timmToTorchvision[name]; ok {
				renamed[t] = out.Tensors[tv]
			} else {
				renamed[t] = t
			}
		}
		for _, b := range s.borrowed {
			out.borrowed = append(out.borrowed, renamed[b])
		}
		out.mapped, s.mapped, s.borrowed = s.mapped, nil, nil
	}
	return out, nil
}
