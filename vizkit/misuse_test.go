package vizkit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
)

// badArrays are malformed *Array values a caller might pass.
func badArrays() map[string]*Array {
	return map[string]*Array{
		"nil":            nil,
		"short data":     {Shape: []int{1, 3, 8, 8}, Data: make([]float32, 10)},
		"long data":      {Shape: []int{1, 3, 8, 8}, Data: make([]float32, 1000)},
		"negative dim":   {Shape: []int{1, 3, -8, -8}, Data: make([]float32, 192)},
		"overflow shape": {Shape: []int{1 << 40, 1 << 40, 1 << 40, 3}, Data: make([]float32, 12)},
	}
}

// TestPublicEntryPointsCheckArrays calls every public function that takes an
// *Array with malformed arrays: each must return an error, never panic.
func TestPublicEntryPointsCheckArrays(t *testing.T) {
	g := newGAPNet(4, 3, 1, false)
	ex := gapExplainer(t, g)
	ctx := context.Background()
	good := engine.NewArray(1, 3, 8, 8)
	maps := engine.NewArray(1, 8, 8)
	region, err := BoxRegionFromMaps(8, 8)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(a *Array) error{
		"Run": func(a *Array) error { _, err := ex.Run(a, engine.Request{}); return err },
		"CAM": func(a *Array) error {
			_, err := cam.Compute(context.Background(), ex, a, cam.Options{Layers: []string{"features.4"}})
			return err
		},
		"FeatureMaps": func(a *Array) error {
			_, err := FeatureMapsOf(ex, a, []string{"features.0"}, FeatureOptions{})
			return err
		},
		"Saliency": func(a *Array) error {
			_, err := attr.Saliency(context.Background(), ex, a, attr.SaliencyOptions{})
			return err
		},
		"GuidedGradCAM": func(a *Array) error {
			_, err := attr.GuidedGradCAM(context.Background(), ex, a, attr.GuidedGradCAMOptions{})
			return err
		},
		"SmoothGrad": func(a *Array) error {
			_, err := attr.SmoothGrad(ctx, ex, a, attr.SmoothGradOptions{Samples: 2})
			return err
		},
		"IntegratedGradients": func(a *Array) error {
			_, err := attr.IntegratedGradients(ctx, ex, a, attr.IGOptions{Steps: 2})
			return err
		},
		"IG baseline": func(a *Array) error {
			_, err := attr.IntegratedGradients(ctx, ex, good, attr.IGOptions{Steps: 2, BaselineArray: a})
			return nonNilOnly(a, err)
		},
		"Occlusion": func(a *Array) error {
			_, err := attr.Occlusion(ctx, ex, a, attr.OcclusionOptions{})
			return err
		},
		"DeepDream": func(a *Array) error {
			_, err := actmax.DeepDream(ctx, ex, a, actmax.DreamOptions{})
			return err
		},
		"ActMax Init": func(a *Array) error { return actMaxInit(ex, a) },
		"Deletion x": func(a *Array) error {
			_, err := metrics.Deletion(ctx, ex, a, maps, metrics.CausalOptions{})
			return err
		},
		"Deletion maps": func(a *Array) error {
			_, err := metrics.Deletion(ctx, ex, good, a, metrics.CausalOptions{})
			return err
		},
		"Insertion x": func(a *Array) error {
			_, err := metrics.Insertion(ctx, ex, a, maps, metrics.CausalOptions{})
			return err
		},
		"ConfidenceChange": func(a *Array) error {
			_, err := metrics.ConfidenceChange(ctx, ex, a, maps, metrics.Options{})
			return err
		},
		"ConfidenceChange m": func(a *Array) error {
			_, err := metrics.ConfidenceChange(ctx, ex, good, a, metrics.Options{})
			return err
		},
		"ROAD x": func(a *Array) error {
			_, err := metrics.ROAD(ctx, ex, a, maps, metrics.ROADOptions{})
			return err
		},
		"ROAD maps": func(a *Array) error {
			_, err := metrics.ROAD(ctx, ex, good, a, metrics.ROADOptions{})
			return err
		},
		"PointingGame":     func(a *Array) error { _, err := metrics.PointingGame(a, region, 0); return err },
		"EnergyInRegion":   func(a *Array) error { _, err := metrics.EnergyInRegion(a, region); return err },
		"ScaleMaps":        func(a *Array) error { _, err := metrics.ScaleMaps(a); return err },
		"TotalVariation":   func(a *Array) error { _, err := actmax.TotalVariation(a); return err },
		"ChannelSum":       func(a *Array) error { _, err := engine.ChannelSum(a); return err },
		"ChannelAbsMax":    func(a *Array) error { _, err := engine.ChannelAbsMax(a); return err },
		"ChannelMax":       func(a *Array) error { _, err := engine.ChannelMax(a); return err },
		"StackArrays":      func(a *Array) error { _, err := engine.StackArrays(good, a); return err },
		"NewKernelsResult": func(a *Array) error { _, err := NewKernelsResult("features.0", a, nil); return err },
		"SelectChannels":   func(a *Array) error { _, err := SelectChannels(a, "features.0", FeatureOptions{}); return err },
		"NewFeatureMapsResult": func(a *Array) error {
			_, err := NewFeatureMapsResult(g.layers[:1], []*Array{a}, FeatureOptions{})
			return err
		},
	}
	for name, call := range calls {
		for bad, a := range badArrays() {
			t.Run(name+"/"+bad, func(t *testing.T) {
				err := func() (err error) {
					defer func() {
						if r := recover(); r != nil {
							err = fmt.Errorf("PANIC: %v", r)
						}
					}()
					return call(a)
				}()
				if err == nil {
					t.Fatalf("no error")
				}
				if strings.HasPrefix(err.Error(), "PANIC") {
					t.Fatal(err)
				}
			})
		}
	}
}

// nonNilOnly treats a nil optional array as valid (no error expected).
func nonNilOnly(a *Array, err error) error {
	if a == nil && err == nil {
		return fmt.Errorf("nil optional array accepted (fine)")
	}
	return err
}

func actMaxInit(ex *engine.Explainer, a *Array) error {
	if a == nil {
		return fmt.Errorf("nil Init means random (fine)")
	}
	_, err := actmax.Run(context.Background(), ex, []Target{engine.ChannelMean("fc", 0)}, actmax.Options{Init: a, Steps: 1})
	return err
}

// BoxRegionFromMaps is a whole-image region for the tests.
func BoxRegionFromMaps(h, w int) (metrics.Region, error) {
	m := make([]bool, h*w)
	m[0] = true
	return metrics.Region{H: h, W: w, Mask: m}, nil
}

// An input too large for the engine is refused before anything is allocated.
func TestRunRefusesHugeInput(t *testing.T) {
	ex := gapExplainer(t, newGAPNet(4, 3, 1, false))
	old := engine.MaxInputPixels
	engine.MaxInputPixels = 1000
	defer func() { engine.MaxInputPixels = old }()
	_, err := ex.Run(engine.NewArray(2, 3, 32, 32), engine.Request{})
	if err == nil || !strings.Contains(err.Error(), "2×32×32 = 2048 pixels (batch × height × width), more than vizkit.MaxInputPixels=1000") {
		t.Fatalf("error %v", err)
	}
}
