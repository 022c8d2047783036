package engine

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
)

// Targets beyond a class logit: heads that are a single logit, a regression
// value or an embedding, and sets of classes. Each is a Target of kind
// TargetFunc over the network's output [N,K]; all treat examples
// independently, so batches work as for class targets.

// BinaryTarget explains a single-logit binary classifier (output [N,1]):
// the positive class's evidence is the logit z itself, the negative class's
// is −z (the log-odds of the negative class), as pytorch-grad-cam's
// BinaryClassifierOutputTarget does.
func BinaryTarget(positive bool) Target {
	name := "positive class (logit)"
	sign := 1.0
	if !positive {
		name, sign = "negative class (−logit)", -1
	}
	return Target{Kind: TargetFunc, named: true, Name: name, outputs: 1, Func: func(out *graph.Node) *graph.Node {
		return graph.MulScalar(graph.Squeeze(graph.Slice(out, graph.AxisRange(), graph.AxisRange(0, 1)), 1), sign)
	}}
}

// RegressionMode says what a regression explanation explains.
type RegressionMode int

const (
	// RegressionValue explains the predicted value y (its gradient shows what
	// raises it; CAMs keep the positive part, the evidence for a larger value).
	RegressionValue RegressionMode = iota
	// RegressionIncrease explains what would increase y (the same scalar as
	// RegressionValue, named for clarity in reports).
	RegressionIncrease
	// RegressionDecrease explains what would decrease y: the target is −y.
	RegressionDecrease
)

// RegressionTarget explains output unit `output` of a regression head
// ([N,K], usually K = 1) in the given mode.
func RegressionTarget(output int, mode RegressionMode) Target {
	sign, what := 1.0, "value"
	switch mode {
	case RegressionIncrease:
		what = "increase"
	case RegressionDecrease:
		sign, what = -1, "decrease"
	}
	return Target{Kind: TargetFunc, named: true, Name: fmt.Sprintf("regression output %d (%s)", output, what), outputs: output + 1,
		Func: func(out *graph.Node) *graph.Node {
			return graph.MulScalar(graph.Squeeze(graph.Slice(out, graph.AxisRange(), graph.AxisRange(output, output+1)), 1), sign)
		}}
}

// SimilarityTarget explains an embedding head ([N,D]) by the cosine
// similarity of each example's embedding with ref (D values), as
// pytorch-grad-cam's SimilarityToConceptTarget: cos = ⟨e, r⟩ / (‖e‖·‖r‖).
// A zero or non-finite ref is rejected when the target is used.
func SimilarityTarget(ref []float32) Target {
	r := append([]float32(nil), ref...)
	h := fnv.New64a()
	norm := 0.0
	for _, v := range r {
		fmt.Fprintf(h, "%08x", math.Float32bits(v))
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	t := Target{Kind: TargetFunc, named: true, Name: fmt.Sprintf("cosine similarity to a reference embedding (D=%d, #%x)", len(r), h.Sum64()), outputs: len(r),
		Func: func(out *graph.Node) *graph.Node {
			g := out.Graph()
			rn := graph.Reshape(graph.Const(g, r), 1, len(r))
			dot := graph.ReduceSum(graph.Mul(out, rn), 1)
			en := graph.Sqrt(graph.AddScalar(graph.ReduceSum(graph.Square(out), 1), 1e-12))
			return graph.Div(dot, graph.MulScalar(en, norm))
		}}
	t.exactOutputs = true
	if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		t.invalid = "the reference embedding is zero or not finite"
	}
	return t
}

// ClassSetTarget explains the sum of the logits of a set of classes (e.g.
// every dog breed), one scalar per example.
func ClassSetTarget(classes ...int) Target {
	cs := append([]int(nil), classes...)
	names := make([]string, len(cs))
	mx := 0
	for i, c := range cs {
		names[i] = fmt.Sprint(c)
		mx = max(mx, c+1)
	}
	t := Target{Kind: TargetFunc, named: true, Name: "sum of the logits of classes " + strings.Join(names, ","), outputs: mx, setClasses: cs,
		Func: func(out *graph.Node) *graph.Node {
			var s *graph.Node
			for _, c := range cs {
				v := graph.Squeeze(graph.Slice(out, graph.AxisRange(), graph.AxisRange(c, c+1)), 1)
				if s == nil {
					s = v
				} else {
					s = graph.Add(s, v)
				}
			}
			return s
		}}
	if len(cs) == 0 {
		t.invalid = "the class set is empty"
	}
	for _, c := range cs {
		if c < 0 {
			t.invalid = fmt.Sprintf("class %d is negative", c)
		}
	}
	return t
}

// checkOutputs validates a target's needs against the network's output width k.
func (t Target) checkOutputs(k int) error {
	if t.invalid != "" {
		return fmt.Errorf("target %q: %s", t.Name, t.invalid)
	}
	if t.outputs == 0 {
		return nil
	}
	if t.exactOutputs && t.outputs != k {
		return fmt.Errorf("target %q needs a network output of %d values, the network gives %d", t.Name, t.outputs, k)
	}
	if t.outputs > k {
		if t.setClasses != nil {
			return fmt.Errorf("target %q: class %d is out of range for a network with %d outputs (valid: 0..%d)", t.Name, t.outputs-1, k, k-1)
		}
		return fmt.Errorf("target %q needs output %d, but the network gives %d value(s) per example", t.Name, t.outputs-1, k)
	}
	return nil
}
