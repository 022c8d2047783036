package vizkit

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestAttributionMethodsRegistered: importing package vizkit registers the
// methods of package attr (and cam) with the engine.
func TestAttributionMethodsRegistered(t *testing.T) {
	names := engine.MethodNames()
	for _, want := range []string{"saliency", "guidedbackprop", "gradxinput", "smoothgrad", "integratedgradients", "guidedgradcam", "occlusion", "gradcam"} {
		if !slices.Contains(names, want) {
			t.Errorf("engine.MethodNames() %v lacks %q", names, want)
		}
	}
}

// TestAttributionWrappersEmpty: the drawing wrappers refuse an empty result
// instead of panicking.
func TestAttributionWrappersEmpty(t *testing.T) {
	for name, f := range map[string]func() error{
		"saliency":      func() error { _, err := (&SaliencyResult{}).HTML(); return err },
		"guidedgradcam": func() error { _, err := (&GuidedGradCAMResult{}).Panel(0); return err },
		"smoothgrad":    func() error { _, err := (&SmoothGradResult{}).Panel(0); return err },
		"ig":            func() error { _, err := (&IGResult{}).HTML(); return err },
		"occlusion":     func() error { _, err := (*OcclusionResult)(nil).Panel(0); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: drawing an empty result gave no error", name)
		}
	}
}

func TestActMaxCancel(t *testing.T) {
	ex, _, _ := vtest.SaliencyFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := actmax.Run(ctx, ex, []Target{engine.ChannelMean("features.3", 0)}, actmax.Options{Size: [2]int{32, 32}, Steps: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ActMax: %v", err)
	}
}

func TestOutlierThreshold(t *testing.T) {
	v := make([]float32, 100)
	for i := range v {
		v[i] = float32(i + 1)
		if i%2 == 1 {
			v[i] = -v[i] // Signs do not matter.
		}
	}
	// Σ 1..100 = 5050; 98% = 4949; 1+…+99 = 4950 is the first cumulative sum ≥ 4949.
	if got := OutlierThreshold(v); got != 99 {
		t.Fatalf("threshold %v, want 99", got)
	}
	if got := OutlierThreshold([]float32{0, 0, float32(math.NaN())}); got != 0 {
		t.Fatalf("all-zero threshold %v, want 0", got)
	}
}
