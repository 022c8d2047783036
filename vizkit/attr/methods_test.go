package attr

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestRegisteredMethodsSettings: the registered methods keep their defaults
// (the lab's) for zero Settings and honour NoiseLevel, Baseline, Norm,
// Window and Stride; deconv uses the deconvnet rule and gradxinput has its
// own Detail.
func TestRegisteredMethodsSettings(t *testing.T) {
	ex, x, _ := vtest.SaliencyFixture(t)
	ctx := context.Background()
	attribute := func(name string, s engine.Settings) *engine.Attribution {
		t.Helper()
		m, _, err := engine.NewMethod(name, s)
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.Attribute(ctx, ex, x, engine.Predicted())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return a
	}
	if oc := attribute("occlusion", engine.Settings{}).Detail.(*OcclusionResult); oc.Window != [2]int{12, 12} || oc.Stride != [2]int{4, 4} {
		t.Errorf("occlusion default window %v stride %v, want 12×12 / 4", oc.Window, oc.Stride)
	}
	if oc := attribute("occlusion", engine.Settings{Window: [2]int{16, 8}, Stride: [2]int{8, 0}}).Detail.(*OcclusionResult); oc.Window != [2]int{16, 8} || oc.Stride != [2]int{8, 4} {
		t.Errorf("occlusion window %v stride %v, want 16×8 / (8,4)", oc.Window, oc.Stride)
	}
	if ig := attribute("integratedgradients", engine.Settings{Steps: 4}).Detail.(*IGResult); !strings.HasPrefix(ig.BaselineName, IGBaselineBlur) || ig.Steps != 4 {
		t.Errorf("integratedgradients default baseline %q (%d steps), want blur", ig.BaselineName, ig.Steps)
	}
	norm := engine.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}}
	ig := attribute("integratedgradients", engine.Settings{Steps: 4, Baseline: IGBaselineBlack, Norm: norm}).Detail.(*IGResult)
	if !strings.HasPrefix(ig.BaselineName, IGBaselineBlack) || ig.Baseline.Data[0] != -2 {
		t.Errorf("black baseline %q starts at %v, want −mean/std = −2", ig.BaselineName, ig.Baseline.Data[0])
	}
	if sg := attribute("smoothgrad", engine.Settings{Samples: 2}).Detail.(*SmoothGradResult); sg.Samples != 2 {
		t.Errorf("smoothgrad samples %d", sg.Samples)
	}
	sg1 := attribute("smoothgrad", engine.Settings{Samples: 2}).Detail.(*SmoothGradResult)
	sg2 := attribute("smoothgrad", engine.Settings{Samples: 2, NoiseLevel: 0.3}).Detail.(*SmoothGradResult)
	if math.Abs(sg2.Sigma[0]-2*sg1.Sigma[0]) > 1e-6*sg1.Sigma[0] {
		t.Errorf("NoiseLevel 0.3 gives σ %v, default 0.15 gives %v: want twice", sg2.Sigma[0], sg1.Sigma[0])
	}
	if s := attribute("deconv", engine.Settings{}).Detail.(*SaliencyResult); s.ReLU != models.ReLUDeconv {
		t.Errorf("deconv uses ReLU rule %v", s.ReLU)
	}
	a := attribute("gradxinput", engine.Settings{})
	if gx, ok := a.Detail.(*GradXInputResult); !ok || gx.Saliency == nil || gx.Attr == nil || gx.Saliency.ReLU != models.ReLUStandard {
		t.Errorf("gradxinput Detail %T", a.Detail)
	}
	var tasks []string
	attribute("occlusion", engine.Settings{Progress: func(p engine.Progress) { tasks = append(tasks, p.Task) }})
	if len(tasks) == 0 || tasks[0] != "occlusion" {
		t.Errorf("occlusion progress tasks %q", tasks)
	}
	for _, bad := range []engine.Settings{{Window: [2]int{-1, 2}}, {NoiseLevel: -0.1}, {NoiseLevel: math.NaN()}} {
		if _, _, err := engine.NewMethod("occlusion", bad); err == nil {
			t.Errorf("NewMethod accepted %+v", bad)
		}
	}
}
