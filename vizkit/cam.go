package vizkit

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// CAMMethod is one member of the class-activation-map family. Like
// pytorch-grad-cam's BaseCAM subclasses, a method only says how a layer's
// activations A and gradients G (each (C,h,w), one example) become a raw map;
// the shared pipeline (CAM) does the rest.
type CAMMethod struct {
	// Name is the CLI/display name ("gradcam", "hirescam", …).
	Name string
	// Title is the display title ("Grad-CAM").
	Title string
	// NeedsGrads is false for gradient-free methods (EigenCAM).
	NeedsGrads bool
	// Weights returns per-channel weights w (C); the raw map is Σ_c w_c·A_c.
	// Exactly one of Weights and Raw is set.
	Weights func(acts, grads []float32, c, h, w int) []float32
	// Raw returns the raw (h·w) map directly (element-wise methods).
	Raw func(acts, grads []float32, c, h, w int) []float32
}

var camMethods = map[string]*CAMMethod{}

// RegisterCAMMethod adds a method to the registry used by CAM and the CLI.
func RegisterCAMMethod(m *CAMMethod) {
	if (m.Weights == nil) == (m.Raw == nil) {
		panic(fmt.Sprintf("CAM method %q must set exactly one of Weights and Raw", m.Name))
	}
	camMethods[m.Name] = m
}

// CAMMethodNames lists the registered methods.
func CAMMethodNames() []string { return SortedKeys(camMethods) }

// LookupCAMMethod returns a registered method or an error listing them.
func LookupCAMMethod(name string) (*CAMMethod, error) {
	m, ok := camMethods[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown CAM method %q; known: %s", name, strings.Join(CAMMethodNames(), ", "))
	}
	return m, nil
}

func init() {
	// Grad-CAM (Selvaraju et al.): channel weights are the spatial mean of the
	// gradients — pytorch-grad-cam's grad_cam.py, np.mean(grads, axis=(2, 3)).
	RegisterCAMMethod(&CAMMethod{Name: "gradcam", Title: "Grad-CAM", NeedsGrads: true,
		Weights: func(_, grads []float32, c, h, w int) []float32 {
			out := make([]float32, c)
			hw := h * w
			for ci := 0; ci < c; ci++ {
				s := float64(0)
				for _, g := range grads[ci*hw : (ci+1)*hw] {
					s += float64(g)
				}
				out[ci] = float32(s / float64(hw))
			}
			return out
		}})
}

// CAMOptions configures CAM.
type CAMOptions struct {
	// Method name (see CAMMethodNames); default "gradcam".
	Method string
	// Layers are the target layers; default: DefaultCAMLayer. With several, their
	// scaled maps are averaged (as pytorch-grad-cam does).
	Layers []string
	// Target is what is explained; default: each example's top-1 class logit.
	Target Target
}

// CAMResult is a class activation map for a batch. Maps are (N,H,W).
type CAMResult struct {
	// Method is the method's name, Title its display title.
	Method, Title string
	// Layers are the target layers used.
	Layers []string
	// Target is the explained target; Classes and Scores its resolved class and
	// value per example.
	Target  Target
	Classes []int
	Scores  []float32
	// Raw maps, per layer, the weighted sum before ReLU, (N,h,w).
	Raw map[string]*Array
	// Low maps, per layer, the low-resolution map after ReLU and min-max scaling (N,h,w).
	Low map[string]*Array
	// Weights maps, per layer, the channel weights (N,C) of weight-based methods.
	Weights map[string]*Array
	// Map is the final map at input resolution (N,H,W), values in [0,1].
	Map *Array
	// Flat marks examples whose map is constant (e.g. dead ReLUs on random
	// weights): their map is all zeros, never NaN.
	Flat []bool
}

// DefaultCAMLayer returns the layer CAM methods use when none is given: the
// output of the last convolutional block (the last spatial layer before the
// global pooling), e.g. "features.20" (VGG11's last max-pool), as
// pytorch-grad-cam recommends (model.features[-1]).
func DefaultCAMLayer(net models.Network) (string, error) {
	layers := net.Layers()
	last := ""
	for _, l := range layers {
		if !l.Spatial || l.Kind == models.AdaptiveAvgPool2d || l.Kind == models.GlobalAvgPool {
			break
		}
		last = l.Name
	}
	if last == "" {
		return "", fmt.Errorf("model %s has no spatial layer to compute a CAM on", net.Arch())
	}
	return last, nil
}

// CAM computes a class activation map with one engine execution: target
// layers' activations and gradients → method → weighted sum → ReLU → min-max
// scale (pytorch-grad-cam's (x − min)/(1e-7 + max)) → bilinear resize to the
// input size (align_corners=False, as cv2.resize) → average over layers → ReLU
// and scale again.
func (e *Explainer) CAM(x *Array, opts CAMOptions) (*CAMResult, error) {
	name := opts.Method
	if name == "" {
		name = "gradcam"
	}
	method, err := LookupCAMMethod(name)
	if err != nil {
		return nil, err
	}
	layers := opts.Layers
	if len(layers) == 0 {
		l, err := DefaultCAMLayer(e.net)
		if err != nil {
			return nil, err
		}
		layers = []string{l}
	}
	for _, l := range layers {
		layer, err := e.Layer(l)
		if err != nil {
			return nil, err
		}
		if !layer.Spatial {
			return nil, fmt.Errorf("CAM needs a layer with spatial extent (N,C,H,W); %q is a %s with output (N,%d)", l, layer.Kind, layer.Out)
		}
	}
	req := Request{Taps: layers, Target: opts.Target}
	if method.NeedsGrads {
		req.GradTaps = layers
	}
	res, err := e.Run(x, req)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) != 4 {
		return nil, errors.New("CAM needs an NCHW image input")
	}
	n, H, W := x.Shape[0], x.Shape[2], x.Shape[3]
	out := &CAMResult{Method: method.Name, Title: method.Title, Layers: layers, Target: opts.Target,
		Classes: res.Classes, Scores: res.Scores,
		Raw: map[string]*Array{}, Low: map[string]*Array{}, Weights: map[string]*Array{},
		Map: NewArray(n, H, W), Flat: make([]bool, n)}
	for _, l := range layers {
		acts := res.Acts[l]
		grads := res.Grads[l]
		c, h, w := acts.Shape[1], acts.Shape[2], acts.Shape[3]
		raw := NewArray(n, h, w)
		low := NewArray(n, h, w)
		var wts *Array
		if method.Weights != nil {
			wts = NewArray(n, c)
			out.Weights[l] = wts
		}
		for i := 0; i < n; i++ {
			a := acts.Index(i).Data
			var g []float32
			if grads != nil {
				g = grads.Index(i).Data
			}
			r := raw.Index(i).Data
			if method.Weights != nil {
				cw := method.Weights(a, g, c, h, w)
				copy(wts.Index(i).Data, cw)
				weightedSum(r, a, cw, c, h*w)
			} else {
				copy(r, method.Raw(a, g, c, h, w))
			}
			lo := low.Index(i).Data
			for j, v := range r {
				lo[j] = max(v, 0)
			}
			scaled, err := render.ScaleCAM(render.Map{H: h, W: w, Data: lo})
			if err != nil {
				return nil, err
			}
			copy(lo, scaled.Data)
			up, err := render.Resize(scaled, H, W, render.Bilinear, false)
			if err != nil {
				return nil, err
			}
			dst := out.Map.Index(i).Data
			for j, v := range up.Data {
				dst[j] += max(v, 0) / float32(len(layers))
			}
		}
		out.Raw[l] = raw
		out.Low[l] = low
	}
	for i := 0; i < n; i++ {
		m := out.Map.Index(i).Data
		scaled, err := render.ScaleCAM(render.Map{H: H, W: W, Data: m})
		if err != nil {
			return nil, err
		}
		copy(m, scaled.Data)
		lo, hi := m[0], m[0]
		for _, v := range m {
			lo, hi = min(lo, v), max(hi, v)
		}
		out.Flat[i] = hi-lo == 0
	}
	if err := out.Map.CheckFinite("CAM"); err != nil {
		return nil, fmt.Errorf("%s: %w (please report: this is a bug)", method.Name, err)
	}
	return out, nil
}

// weightedSum sets dst (hw) = Σ_c w[c]·a[c] for a (C,hw).
func weightedSum(dst, a, w []float32, c, hw int) {
	acc := make([]float64, hw)
	for ci := 0; ci < c; ci++ {
		wc := float64(w[ci])
		if wc == 0 {
			continue
		}
		for j, v := range a[ci*hw : (ci+1)*hw] {
			acc[j] += wc * float64(v)
		}
	}
	for j := range dst {
		dst[j] = float32(acc[j])
	}
}

// TopK returns the k largest entries of a logits row as (class, value) pairs,
// largest first.
func TopK(logits []float32, k int) []ClassScore {
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if k > len(idx) {
		k = len(idx)
	}
	out := make([]ClassScore, k)
	for i := 0; i < k; i++ {
		out[i] = ClassScore{Class: idx[i], Score: logits[idx[i]]}
	}
	return out
}

// ClassScore pairs a class index with a score.
type ClassScore struct {
	Class int
	Score float32
}
