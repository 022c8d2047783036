package vizkit

import (
	"context"
	"image"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/actmax"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// TestGradientPictures renders every result type, checks panel sizes and
// that the HTML embeds the pictures.
func TestGradientPictures(t *testing.T) {
	ex, x, target := vtest.SaliencyFixture(t)
	ctx := context.Background()
	s0, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	sg0, err := attr.SmoothGrad(ctx, ex, x, attr.SmoothGradOptions{Target: target, Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	ig0, err := attr.IntegratedGradients(ctx, ex, x, attr.IGOptions{Target: target, Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	oc0, err := attr.Occlusion(ctx, ex, x, attr.OcclusionOptions{Target: target, Window: [2]int{8, 8}, Stride: [2]int{8, 8}})
	if err != nil {
		t.Fatal(err)
	}
	gg0, err := attr.GuidedGradCAM(context.Background(), ex, x, attr.GuidedGradCAMOptions{Target: target, Layers: []string{"features.9"}})
	if err != nil {
		t.Fatal(err)
	}
	s, sg, ig := &SaliencyResult{SaliencyResult: s0}, &SmoothGradResult{SmoothGradResult: sg0}, &IGResult{IGResult: ig0}
	oc, gg := &OcclusionResult{OcclusionResult: oc0}, &GuidedGradCAMResult{GuidedGradCAMResult: gg0}
	amr, err := actmax.Filters(ctx, ex, "features.3", 3, actmax.Options{Size: [2]int{32, 32}, Steps: 2})
	if err != nil {
		t.Fatal(err)
	}
	am := &ActMaxResult{Result: amr}
	for name, r := range map[string]interface {
		HTML() (string, error)
	}{"saliency": s, "smoothgrad": sg, "ig": ig, "occlusion": oc, "guided gradcam": gg, "actmax": am} {
		h, err := r.HTML()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := 2 // examples
		if name == "actmax" {
			want = 1
		}
		if n := strings.Count(h, "<img src=\"data:image/png;base64,"); n < want {
			t.Fatalf("%s: %d embedded images, want ≥ %d", name, n, want)
		}
	}
	for _, f := range []func(int) (int, error){
		func(i int) (int, error) { p, err := s.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := sg.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := ig.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := oc.Panel(i); return panelWidth(p), err },
		func(i int) (int, error) { p, err := gg.Panel(i); return panelWidth(p), err },
	} {
		w, err := f(1)
		if err != nil {
			t.Fatal(err)
		}
		if w < 3*32 {
			t.Fatalf("panel only %d px wide", w)
		}
		if _, err := f(2); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("panel of example 2 of 2: %v", err)
		}
	}
	g, err := am.Grid(0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Bounds().Dx() < 3*128 {
		t.Fatalf("actmax grid %v: tiles not enlarged to ≥128 px", g.Bounds())
	}
}

func panelWidth(p *image.RGBA) int {
	if p == nil {
		return 0
	}
	return p.Bounds().Dx()
}
