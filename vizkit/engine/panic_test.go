package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/gomlx/gomlx/core/graph"
)

// A target whose function panics while the graph is built (e.g. slicing
// outside a layer's grid) is an error naming the problem, every time: the
// engine must not be left blocked for the next call with the same request.
func TestPanickingTargetIsAnErrorAndDoesNotBlock(t *testing.T) {
	m, err := vgg.NewRandom("vgg11", 10, 16, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ex, err := NewExplainer(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := NewArray(1, 3, 32, 32)
	bad := NamedFunc("features.3", "out of grid", func(a *graph.Node) *graph.Node {
		return graph.ReduceSum(graph.Slice(a, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(100, 101)), 1, 2, 3)
	})
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 2; i++ {
			if _, err := ex.Run(x, Request{GradInput: true, Target: bad}); err == nil {
				done <- nil
				return
			} else if i == 1 {
				done <- err
			}
		}
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "out of grid") {
			t.Fatalf("panicking target: %v, want an error naming the target", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the second run of a panicking target is blocked")
	}
	if _, err := ex.Run(x, Request{Target: Predicted()}); err != nil {
		t.Fatalf("a good request after the panics: %v", err)
	}
}
