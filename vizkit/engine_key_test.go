package vizkit

import (
	"math"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/gomlx/gomlx/core/graph"
)

// logitOf returns a target function that picks one class's logit.
func logitOf(class int) func(*graph.Node) *graph.Node {
	return func(l *graph.Node) *graph.Node {
		return graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(class, class+1)), 1)
	}
}

// Two target functions with the same Name must compile to two graphs and each
// give its own result (the cache once keyed a function by its Name).
func TestTargetFuncsWithTheSameNameAreNotConfused(t *testing.T) {
	ex := vtest.TinyExplainer(t, "vgg11")
	x := vtest.RandomArray(3, 2, 3, 32, 32)
	plain, err := ex.Run(x, engine.Request{})
	if err != nil {
		t.Fatal(err)
	}
	before := ex.NumExecutables()
	// Two closures of one function literal (same code, different captures)
	// and a distinct function, all named alike.
	targets := map[int]Target{
		2: {Kind: engine.TargetFunc, Name: "score", Func: logitOf(2)},
		7: {Kind: engine.TargetFunc, Name: "score", Func: logitOf(7)},
		4: {Kind: engine.TargetFunc, Name: "score", Func: func(l *graph.Node) *graph.Node {
			return graph.Squeeze(graph.Slice(l, graph.AxisRange(), graph.AxisRange(4, 5)), 1)
		}},
	}
	for _, class := range []int{2, 7, 4, 2} { // 2 again: its graph is reused
		res, err := ex.Run(x, engine.Request{Target: targets[class]})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range res.Scores {
			want := plain.Logits.Data[i*10+class]
			if math.Abs(float64(s-want)) > 1e-5 {
				t.Fatalf("target of class %d, example %d: score %v, want logit %v", class, i, s, want)
			}
		}
	}
	if got := ex.NumExecutables() - before; got != 3 {
		t.Fatalf("3 different target functions compiled %d new graphs, want 3", got)
	}
	// cnnviz's own constructors key by name: equal targets built twice share one graph.
	before = ex.NumExecutables()
	for range 2 {
		if _, err := ex.Run(x, engine.Request{Target: engine.ChannelMean("features.3", 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := ex.NumExecutables() - before; got != 1 {
		t.Fatalf("ChannelMean built twice compiled %d graphs, want 1", got)
	}
}
