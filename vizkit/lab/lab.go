// Package lab is cnnviz's teaching lab: a small CNN trained offline in a
// couple of minutes on procedural shapes (models/shapes, models/smallcnn),
// where the right answer of every explanation is known — the object's mask
// and box — so class activation maps and gradients can be checked, not just
// looked at. It lives in vizkit (not models) because it glues the model and
// data set to the explanation methods, the faithfulness metrics
// (package vizkit/metrics) and the renderer; the data set and the network stay in
// models/ so that training never depends on vizkit.
//
// A notebook needs a few lines:
//
//	l, _ := lab.Open()                                   // committed weights (embedded)
//	defer l.Close()
//	test, _ := lab.TestSet(200)                          // held-out images, masks and boxes
//	acc, _ := l.Accuracy(test)                           // ≈ 0.99
//	img, _ := lab.SampleGrid(test.Samples[:20], 10, 2)   // images with their true boxes
//	cam, _ := l.CAMGrid(ctx, test, "gradcam", 6, 3, 2)   // Grad-CAM overlays with boxes
//	tab, _ := l.MetricsTable(ctx, test, lab.TableOptions{PerturbImages: 50})
//	html, _ := tab.HTML()                                // every CAM and gradient method compared
//
// Training from scratch takes about two minutes on two CPU cores:
//
//	res, _ := smallcnn.Train(ctx, smallcnn.TrainOptions{
//		Progress: func(p smallcnn.TrainProgress) { /* update a bar, plot p.SmoothedLoss */ }})
//	l, _ := lab.New(res.Model, engine.Options{})         // res.Losses holds every step's loss

package lab

import (
	"errors"
	"fmt"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Lab is a trained shapes classifier with its explainer.
type Lab struct {
	// Model is the network; Ex explains it.
	Model *smallcnn.Model
	Ex    *engine.Explainer
	// Data is the image configuration the model was trained on.
	Data shapes.Config
	// Source describes the weights.
	Source string

	owned bool // Close closes Model.
}

// Open loads the committed lab weights (smallcnn.Pretrained, embedded in the
// binary) on the default backend ($GOMLX_BACKEND, else the pure-Go one).
func Open() (*Lab, error) {
	m, err := smallcnn.Pretrained()
	if err != nil {
		return nil, err
	}
	l, err := New(m, engine.Options{})
	if err != nil {
		m.Close()
		return nil, err
	}
	l.owned = true
	return l, nil
}

// New wraps a trained model (e.g. smallcnn.TrainResult.Model); the caller
// keeps ownership of m and closes it after l.Close.
func New(m *smallcnn.Model, opts engine.Options) (*Lab, error) {
	if m == nil {
		return nil, errors.New("lab.New: model is nil")
	}
	if m.NumClasses() != shapes.NumClasses {
		return nil, fmt.Errorf("lab.New: the model has %d classes, the shapes data set %d", m.NumClasses(), shapes.NumClasses)
	}
	ex, err := engine.NewExplainer(m, opts)
	if err != nil {
		return nil, err
	}
	return &Lab{Model: m, Ex: ex, Data: shapes.DefaultConfig(), Source: m.Source}, nil
}

// Close releases the explainer (and the model, for Open).
func (l *Lab) Close() {
	l.Ex.Close()
	if l.owned {
		l.Model.Close()
	}
}

// TestSet generates n held-out images: indices 0 … n−1 of the shapes data
// set with seed smallcnn.DefaultTestSeed (never seen in training).
func TestSet(n int) (*shapes.Batch, error) {
	return shapes.MakeBatch(shapes.Config{}, smallcnn.DefaultTestSeed, 0, n)
}

// Input returns a batch's normalised images as an engine input (N,3,H,W)
// (sharing the batch's data).
func Input(b *shapes.Batch) (*vizkit.Array, error) {
	if b == nil {
		return nil, errors.New("lab: batch is nil")
	}
	return engine.ArrayFrom(b.Images, b.Shape()...)
}

// Predict returns the softmax probabilities (N,K) and top-1 classes of a
// batch.
func (l *Lab) Predict(b *shapes.Batch) (probs *vizkit.Array, classes []int, err error) {
	x, err := Input(b)
	if err != nil {
		return nil, nil, err
	}
	probs = engine.NewArray(b.N, shapes.NumClasses)
	classes = make([]int, b.N)
	const chunk = 100
	for lo := 0; lo < b.N; lo += chunk {
		hi := min(lo+chunk, b.N)
		xs, _ := engine.ArrayFrom(x.Data[lo*x.Size()/b.N:hi*x.Size()/b.N], hi-lo, 3, b.Size, b.Size)
		res, err := l.Ex.Run(xs, engine.Request{Target: engine.SoftmaxOf()})
		if err != nil {
			return nil, nil, err
		}
		k := shapes.NumClasses
		for i := 0; i < hi-lo; i++ {
			row := res.Logits.Data[i*k : (i+1)*k]
			softmax(probs.Index(lo+i).Data, row)
			classes[lo+i] = res.Classes[i]
		}
	}
	return probs, classes, nil
}

// Accuracy is the fraction of the batch classified correctly.
func (l *Lab) Accuracy(b *shapes.Batch) (float64, error) {
	_, pred, err := l.Predict(b)
	if err != nil {
		return 0, err
	}
	ok := 0
	for i, p := range pred {
		if p == b.Labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(b.N), nil
}

func softmax(dst, logits []float32) {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	s := float32(0)
	for i, v := range logits {
		dst[i] = exp32(v - mx)
		s += dst[i]
	}
	for i := range dst {
		dst[i] /= s
	}
}
