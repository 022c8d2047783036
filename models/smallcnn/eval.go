package smallcnn

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Logits runs the network forward on images (N,3,H,W), row-major NCHW and
// normalised as shapes.Normalize does, and returns the logits (N,K)
// row-major. b nil means the shared default backend (backend.Shared("")).
// The executable is compiled once per input shape and cached in the model.
func (m *Model) Logits(b compute.Backend, images []float32, shape []int) ([]float32, error) {
	if err := m.CheckInput(shape); err != nil {
		return nil, err
	}
	if len(images) != shape[0]*shape[1]*shape[2]*shape[3] {
		return nil, fmt.Errorf("smallcnn.Logits: %d values for shape %v", len(images), shape)
	}
	if b == nil {
		var err error
		if b, err = backend.Shared(""); err != nil {
			return nil, err
		}
	}
	params, err := m.Params(b)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.exec == nil {
		m.exec, err = graph.NewExec(b, func(inputs []*graph.Node) *graph.Node {
			return models.Forward(m, inputs[0], inputs[1:])
		})
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	ex := m.exec
	m.mu.Unlock()
	x := tensors.FromFlatDataAndDimensions(images, shape...)
	defer func() { _ = x.FinalizeAll() }()
	args := []any{x}
	for _, p := range params {
		args = append(args, p)
	}
	outs, err := ex.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("smallcnn.Logits on backend %s: %w", b.Name(), err)
	}
	defer func() {
		for _, o := range outs {
			_ = o.FinalizeAll()
		}
	}()
	return tensors.CopyFlatData[float32](outs[0])
}

// EvalResult is a model's accuracy on a generated test set.
type EvalResult struct {
	// N is the number of images, Correct how many were classified right.
	N, Correct int
	// Accuracy is Correct/N.
	Accuracy float64
	// Confusion[t][p] counts images of true class t predicted as p.
	Confusion [][]int
	// Predicted holds each image's top-1 class, in data set order.
	Predicted []int
}

// Evaluate classifies images start … start+n−1 of the shapes data set
// (data, seed) in batches of batch (default 64) and returns the accuracy.
// Use a seed the model was not trained on (training uses DefaultTrainSeed;
// the lab's held-out set is DefaultTestSeed). b nil means the shared default
// backend.
func Evaluate(m *Model, b compute.Backend, data shapes.Config, seed uint64, start, n, batch int) (*EvalResult, error) {
	if n < 1 {
		return nil, fmt.Errorf("smallcnn.Evaluate: n must be ≥ 1, got %d", n)
	}
	if batch <= 0 {
		batch = 64
	}
	k := m.NumClasses()
	res := &EvalResult{N: n, Confusion: make([][]int, k)}
	for i := range res.Confusion {
		res.Confusion[i] = make([]int, k)
	}
	for lo := 0; lo < n; lo += batch {
		cnt := min(batch, n-lo)
		bt, err := shapes.MakeBatch(data, seed, start+lo, cnt)
		if err != nil {
			return nil, err
		}
		logits, err := m.Logits(b, bt.Images, bt.Shape())
		if err != nil {
			return nil, err
		}
		for i := 0; i < cnt; i++ {
			row := logits[i*k : (i+1)*k]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			res.Predicted = append(res.Predicted, best)
			if t := bt.Labels[i]; t < k {
				res.Confusion[t][best]++
				if t == best {
					res.Correct++
				}
			}
		}
	}
	res.Accuracy = float64(res.Correct) / float64(n)
	return res, nil
}
