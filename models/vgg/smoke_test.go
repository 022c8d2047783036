package vgg

import (
	"testing"

	"github.com/cnnviz/cnnviz/models"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestSmokeForward(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewRandom("vgg11", 10, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	params, err := m.Params(b)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := NewExec(b, func(inputs []*Node) []*Node {
		x := inputs[0]
		logits := m.Forward(x, inputs[1:], models.ForwardOptions{ExactMaxPoolGrad: true})
		g := Gradient(ReduceAllSum(logits), x)
		return []*Node{logits, g[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.FromFlatDataAndDimensions(make([]float32, 2*3*64*48), 2, 3, 64, 48)
	args := []any{x}
	for _, p := range params {
		args = append(args, p)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out[0].Shape(), out[1].Shape())
}
