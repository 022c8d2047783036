package smallcnn

import (
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
)

// A classifier with no classes is refused at load, not at the first run.
func TestLoadRefusesZeroClasses(t *testing.T) {
	w, err := RandomWeights(DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	c := w.Tensors["fc.weight"].Shape[1]
	w.Tensors["fc.weight"] = &weights.Tensor{Shape: []int{0, c}}
	w.Tensors["fc.bias"] = &weights.Tensor{Shape: []int{0}}
	m, err := Load(w)
	if err == nil {
		m.Close()
		t.Fatal("a 0-class smallcnn loaded")
	}
	if !strings.Contains(err.Error(), "NumClasses must be ≥ 1, got 0") {
		t.Fatalf("error %v", err)
	}
}
