package vizkit

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// gapNet is a small CNN that ends in global average pooling + one linear
// layer (the architecture the original CAM needs), built from models.*
// blocks for the tests:
//
//	features.0 Conv2d 3→8, features.1 ReLU, features.2 MaxPool2d,
//	features.3 Conv2d 8→C, features.4 ReLU, pool GlobalAvgPool, fc Linear C→K.
type gapNet struct {
	layers  []models.Layer
	c, k    int
	host    map[string][]float32 // PyTorch layouts: conv [O,I,3,3], linear [out,in].
	names   []string
	mu      sync.Mutex
	params  []*tensors.Tensor
	backend compute.Backend
}

// newGAPNet draws Kaiming-like weights and biases from seed. With dead set,
// every conv weight is 0 and every conv bias −0.1, so all ReLU outputs are 0.
func newGAPNet(c, k int, seed uint64, dead bool) *gapNet {
	g := &gapNet{c: c, k: k, host: map[string][]float32{}}
	g.layers = []models.Layer{
		{Name: "features.0", Kind: models.Conv2d, In: 3, Out: 8, Params: 3*8*9 + 8, Spatial: true},
		{Name: "features.1", Kind: models.ReLU, In: 8, Out: 8, Spatial: true},
		{Name: "features.2", Kind: models.MaxPool2d, In: 8, Out: 8, Spatial: true},
		{Name: "features.3", Kind: models.Conv2d, In: 8, Out: c, Params: 8*c*9 + c, Spatial: true},
		{Name: "features.4", Kind: models.ReLU, In: c, Out: c, Spatial: true},
		{Name: "pool", Kind: models.GlobalAvgPool, In: c, Out: c},
		{Name: "fc", Kind: models.Linear, In: c, Out: k, Params: c*k + k},
	}
	r := rand.New(rand.NewPCG(seed, 3))
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64() * std)
		}
		return out
	}
	for _, l := range g.layers {
		switch l.Kind {
		case models.Conv2d:
			w, b := normal(l.Out*l.In*9, 0.5), normal(l.Out, 0.1)
			if dead {
				clear(w)
				for i := range b {
					b[i] = -0.1
				}
			}
			g.host[l.Name+".weight"], g.host[l.Name+".bias"] = w, b
		case models.Linear:
			g.host[l.Name+".weight"], g.host[l.Name+".bias"] = normal(l.Out*l.In, 0.5), normal(l.Out, 0.1)
		}
	}
	return g
}

func (g *gapNet) Arch() string           { return "gapnet" }
func (g *gapNet) Layers() []models.Layer { return g.layers }
func (g *gapNet) NumClasses() int        { return g.k }
func (g *gapNet) Close()                 {}
func (g *gapNet) layerIndex(n string) int {
	_, i, _ := models.FindLayer("gapnet", g.layers, n)
	return i
}

func (g *gapNet) CheckInput(dims []int) error {
	if len(dims) != 4 || dims[0] < 1 || dims[1] != 3 || dims[2] < 2 || dims[3] < 2 {
		return fmt.Errorf("gapnet expects (N,3,H,W) with H,W ≥ 2, got %v", dims)
	}
	return nil
}

func (g *gapNet) Params(b compute.Backend) ([]*tensors.Tensor, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.params != nil {
		if b != g.backend {
			return nil, fmt.Errorf("gapnet bound to another backend")
		}
		return g.params, nil
	}
	for _, l := range g.layers {
		switch l.Kind {
		case models.Conv2d:
			w := g.host[l.Name+".weight"]
			hwio := make([]float32, len(w))
			for o := 0; o < l.Out; o++ {
				for i := 0; i < l.In; i++ {
					for p := 0; p < 9; p++ {
						hwio[(p*l.In+i)*l.Out+o] = w[(o*l.In+i)*9+p]
					}
				}
			}
			g.params = append(g.params, tensors.FromFlatDataAndDimensions(hwio, 3, 3, l.In, l.Out),
				tensors.FromFlatDataAndDimensions(append([]float32(nil), g.host[l.Name+".bias"]...), l.Out))
		case models.Linear:
			// PyTorch's [out,in] is the graph layout (models.Scope.Linear).
			w := append([]float32(nil), g.host[l.Name+".weight"]...)
			g.params = append(g.params, tensors.FromFlatDataAndDimensions(w, l.Out, l.In),
				tensors.FromFlatDataAndDimensions(append([]float32(nil), g.host[l.Name+".bias"]...), l.Out))
		}
	}
	g.backend = b
	return g.params, nil
}

func (g *gapNet) ParamNames() []string {
	return []string{"features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias", "fc.weight", "fc.bias"}
}

func (g *gapNet) ParamShapes() [][]int {
	var out [][]int
	for _, l := range g.layers {
		switch l.Kind {
		case models.Conv2d:
			out = append(out, []int{3, 3, l.In, l.Out}, []int{l.Out})
		case models.Linear:
			out = append(out, []int{l.In, l.Out}, []int{l.Out})
		}
	}
	return out
}

func (g *gapNet) Build(s *models.Scope, x *graph.Node) *graph.Node {
	for _, l := range g.layers {
		switch l.Kind {
		case models.Conv2d:
			x = s.Out(l.Name, l.Kind, models.Conv3x3(x, s.Param(l.Name+".weight"), s.Param(l.Name+".bias"), s.Lowering))
		case models.ReLU:
			x = s.ReLU(l.Name, x)
		case models.MaxPool2d:
			x = s.Out(l.Name, l.Kind, models.MaxPool2x2(x, s.ExactMaxPoolGrad))
		case models.GlobalAvgPool:
			x = s.Out(l.Name, l.Kind, graph.ReduceMean(x, 1, 2))
		case models.Linear:
			x = s.Linear(l.Name, x)
		}
	}
	return x
}

func (g *gapNet) Weight(layer string) (*weights.Tensor, []float32, error) {
	i := g.layerIndex(layer)
	if i < 0 || (g.layers[i].Kind != models.Conv2d && g.layers[i].Kind != models.Linear) {
		return nil, nil, fmt.Errorf("gapnet: layer %q has no weight", layer)
	}
	l := g.layers[i]
	shape := []int{l.Out, l.In}
	if l.Kind == models.Conv2d {
		shape = []int{l.Out, l.In, 3, 3}
	}
	return &weights.Tensor{Shape: shape, Data: append([]float32(nil), g.host[layer+".weight"]...)},
		append([]float32(nil), g.host[layer+".bias"]...), nil
}
