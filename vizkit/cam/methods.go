package cam

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// The class-activation-map family, with pytorch-grad-cam's definitions
// (jacobgil/pytorch-grad-cam, pytorch_grad_cam/*.py). A and G are one
// example's activations and gradients of the target, (C,h,w); sums over p
// run over the h·w positions. All arithmetic is float64.
func init() {
	for _, m := range []Method{
		&ChannelWeights{Info{Name: "gradcam", Title: "Grad-CAM", NeedsGrads: true,
			Reference: "Selvaraju et al. 2017; grad_cam.py: w_c = mean_p G_c"},
			gradCAMWeights},
		&Elementwise{Info: Info{Name: "hirescam", Title: "HiResCAM", NeedsGrads: true,
			Reference: "Draelos & Carin 2020; hirescam.py: raw = Σ_c G_c⊙A_c"},
			Elems: func(a, g []float32, c, h, w int) []float32 { return mulElems(a, g, false) }},
		&Elementwise{Info: Info{Name: "gradcamelementwise", Title: "Grad-CAM element-wise", NeedsGrads: true,
			Reference: "grad_cam_elementwise.py: raw = Σ_c max(G_c⊙A_c, 0)"},
			Elems: func(a, g []float32, c, h, w int) []float32 { return mulElems(a, g, true) }},
		&ChannelWeights{Info{Name: "gradcampp", Title: "Grad-CAM++", NeedsGrads: true,
			Reference: "Chattopadhay et al. 2018, eq. 19; grad_cam_plusplus.py"},
			gradCAMPlusPlusWeights},
		&ChannelWeights{Info{Name: "xgradcam", Title: "XGrad-CAM", NeedsGrads: true,
			Reference: "Fu et al. 2020; xgrad_cam.py: w_c = Σ_p G_c A_c / (Σ_p A_c + 1e-7)"},
			xGradCAMWeights},
		&Elementwise{Info: Info{Name: "layercam", Title: "LayerCAM", NeedsGrads: true,
			Reference: "Jiang et al. 2021; layer_cam.py: raw = Σ_c max(G_c, 0)⊙A_c"},
			Elems: layerCAMElems},
		&Elementwise{Info: Info{Name: "eigencam", Title: "EigenCAM", NeedsGrads: false,
			Reference: "Muhammad & Yeasin 2020; eigen_cam.py: first principal component of A"},
			Project: true, Elems: func(a, _ []float32, c, h, w int) []float32 { return a }},
		&Elementwise{Info: Info{Name: "eigengradcam", Title: "EigenGrad-CAM", NeedsGrads: true,
			Reference: "eigen_grad_cam.py: first principal component of G⊙A"},
			Project: true, Elems: func(a, g []float32, c, h, w int) []float32 { return mulElems(a, g, false) }},
		&BatchWeights{Info{Name: "scorecam", Title: "Score-CAM", NeedsGrads: false, DefaultBatchSize: 16,
			Reference: "Wang et al. 2020; score_cam.py: w = softmax_c(score(x ⊙ norm(upsample(A_c))))"},
			scoreCAMWeights},
		&BatchWeights{Info{Name: "fasterscorecam", Title: "Faster Score-CAM (approximate)", NeedsGrads: false, DefaultBatchSize: 16,
			Reference: "tf-keras-vis ScoreCAM(max_N): Score-CAM on the ⌈C/8⌉ channels of largest variance; the others weigh 0"},
			func(r *Run) (*engine.Array, error) { return scoreCAMWeightsTop(r, fasterScoreCAMChannels) }},
		&BatchWeights{Info{Name: "ablationcam", Title: "Ablation-CAM", NeedsGrads: false, DefaultBatchSize: 32,
			Reference: "Desai & Ramaswamy 2020; ablation_cam.py: w_c = (y − y_{A_c=0}) / y"},
			ablationCAMWeights},
		&Custom{Info: Info{Name: "fullgrad", Title: "FullGrad", NeedsGrads: true,
			Reference: "Srinivas & Fleuret 2019; fullgrad_cam.py: |x⊙∇x| + Σ_layers Σ_c scale(|b_c·∇_c|)",
			Help:      "FullGrad map from the input gradient and every bias layer's gradient (--layer is ignored)"},
			LayerTag: "biases", Compute: fullGradCAM},
		&BatchWeights{Info{Name: "cam", Title: "CAM", NeedsGrads: false, Check: zhouCAMCheck,
			Reference: "Zhou et al. 2016: w_c = W_fc[class, c] of a network ending in GAP + one linear layer",
			Help:      "original CAM (Zhou et al.): only for networks ending in global average pooling + one linear layer (not VGG)"},
			zhouCAMWeights},
	} {
		mustRegister(m)
	}
}

// gradCAMWeights: w_c = mean_p G_c (pytorch-grad-cam's np.mean(grads, axis=(2, 3))).
func gradCAMWeights(_, grads []float32, c, h, w int) []float32 {
	out := make([]float32, c)
	hw := h * w
	for ci := 0; ci < c; ci++ {
		s := 0.0
		for _, g := range grads[ci*hw : (ci+1)*hw] {
			s += float64(g)
		}
		out[ci] = float32(s / float64(hw))
	}
	return out
}

// gradCAMPlusPlusWeights: with S_c = Σ_p A_c and g = G_c at p,
//
//	α = g² / (2g² + S_c·g³ + 1e-6)  (0 where g = 0),   w_c = Σ_p max(g, 0)·α.
//
// Where the denominator is exactly 0 the term is taken as 0 (NumPy would give
// NaN or ±Inf there).
func gradCAMPlusPlusWeights(acts, grads []float32, c, h, w int) []float32 {
	out := make([]float32, c)
	hw := h * w
	for ci := 0; ci < c; ci++ {
		a := acts[ci*hw : (ci+1)*hw]
		g := grads[ci*hw : (ci+1)*hw]
		sumA := 0.0
		for _, v := range a {
			sumA += float64(v)
		}
		s := 0.0
		for _, gv := range g {
			gg := float64(gv)
			if gg <= 0 {
				continue
			}
			g2 := gg * gg
			den := 2*g2 + sumA*g2*gg + 1e-6
			if den == 0 {
				continue
			}
			s += gg * g2 / den
		}
		out[ci] = float32(s)
	}
	return out
}

// xGradCAMWeights: w_c = Σ_p G_c·A_c / (Σ_p A_c + 1e-7) (0 if that denominator is exactly 0).
func xGradCAMWeights(acts, grads []float32, c, h, w int) []float32 {
	out := make([]float32, c)
	hw := h * w
	for ci := 0; ci < c; ci++ {
		a := acts[ci*hw : (ci+1)*hw]
		g := grads[ci*hw : (ci+1)*hw]
		sumA, sumGA := 0.0, 0.0
		for p, v := range a {
			sumA += float64(v)
			sumGA += float64(v) * float64(g[p])
		}
		if den := sumA + 1e-7; den != 0 {
			out[ci] = float32(sumGA / den)
		}
	}
	return out
}

// mulElems returns G⊙A, or max(G⊙A, 0) when relu.
func mulElems(a, g []float32, relu bool) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		p := v * g[i]
		if relu {
			p = max(p, 0)
		}
		out[i] = p
	}
	return out
}

// layerCAMElems: max(G, 0)⊙A.
func layerCAMElems(a, g []float32, c, h, w int) []float32 {
	out := make([]float32, len(a))
	for i, v := range a {
		out[i] = max(g[i], 0) * v
	}
	return out
}

// scoreCAMWeights is pytorch-grad-cam's ScoreCAM.get_cam_weights: every
// channel A_c is upsampled to the input size (bilinear, align_corners=True,
// torch's UpsamplingBilinear2d), min-max normalised to
// (u − min)/(max − min + 1e-8), multiplied into the input (all 3 colour
// channels), and the target of the masked input is evaluated; the weights
// are the softmax over channels of those scores.
//
// Exact saving: channels whose (h,w) activation map is identical to an
// earlier channel's of the same example — above all the all-zero maps of dead
// ReLUs — give bit-identical masked inputs, so each distinct map is evaluated
// once and its score reused (pytorch-grad-cam evaluates all C). The masked
// inputs of all examples are evaluated in batches of Options.BatchSize, one
// target class per row; the last batch is padded so that one executable
// serves every batch.
func scoreCAMWeights(r *Run) (*engine.Array, error) { return scoreCAMWeightsTop(r, nil) }

// fasterScoreCAMChannels is the number of channels Faster Score-CAM
// evaluates out of c: ⌈c/8⌉ (64 of VGG's 512).
func fasterScoreCAMChannels(c int) int { return (c + 7) / 8 }

// topVarianceChannels returns a mask of the k channels of a (C,hw) whose
// maps have the largest variance over the hw positions (ties: lower index).
func topVarianceChannels(a []float32, c, hw, k int) []bool {
	v := make([]float64, c)
	for ch := 0; ch < c; ch++ {
		var s, s2 float64
		for _, x := range a[ch*hw : (ch+1)*hw] {
			s += float64(x)
			s2 += float64(x) * float64(x)
		}
		m := s / float64(hw)
		v[ch] = s2/float64(hw) - m*m
	}
	idx := make([]int, c)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return v[idx[i]] > v[idx[j]] })
	keep := make([]bool, c)
	for _, i := range idx[:min(k, c)] {
		keep[i] = true
	}
	return keep
}

// scoreCAMWeightsTop is scoreCAMWeights over all channels (top nil) or, for
// Faster Score-CAM (tf-keras-vis's max_N), over the top(C) channels of
// largest activation variance per example: only those are evaluated, the
// softmax runs over their scores, and every other channel weighs 0.
func scoreCAMWeightsTop(r *Run, top func(c int) int) (*engine.Array, error) {
	acts := r.Result.Acts[r.Layer]
	n, c, h, w := acts.Shape[0], acts.Shape[1], acts.Shape[2], acts.Shape[3]
	x := r.Input
	ch, H, W := x.Shape[1], x.Shape[2], x.Shape[3]
	plane := H * W
	type job struct{ example, channel int }
	var jobs []job
	source := make([][]int, n) // source[i][c]: the channel whose score channel c of example i reuses.
	keep := make([][]bool, n)  // keep[i][c]: channel c of example i is scored (all, unless top is set).
	for i := 0; i < n; i++ {
		ai := acts.Index(i).Data
		if top != nil {
			keep[i] = topVarianceChannels(ai, c, h*w, top(c))
			// Distinct maps among the kept channels only.
			source[i] = make([]int, c)
			for k := range source[i] {
				source[i][k] = k
			}
			var kept []int
			for k, ok := range keep[i] {
				if ok {
					kept = append(kept, k)
				}
			}
			sub := make([]float32, 0, len(kept)*h*w)
			for _, k := range kept {
				sub = append(sub, ai[k*h*w:(k+1)*h*w]...)
			}
			for j, src := range distinctMaps(sub, len(kept), h*w) {
				source[i][kept[j]] = kept[src]
			}
		} else {
			source[i] = distinctMaps(ai, c, h*w)
		}
		for k, src := range source[i] {
			if src == k && (keep[i] == nil || keep[i][k]) {
				jobs = append(jobs, job{i, k})
			}
		}
	}
	bs := min(r.Options.BatchSize, len(jobs))
	scores := make([][]float64, n)
	for i := range scores {
		scores[i] = make([]float64, c)
	}
	batch := engine.NewArray(bs, ch, H, W)
	classes := make([]int, bs)
	t := r.Target
	for j0 := 0; j0 < len(jobs); j0 += bs {
		rows := min(bs, len(jobs)-j0)
		for j := 0; j < rows; j++ {
			jb := jobs[j0+j]
			ai := acts.Index(jb.example).Data
			mask, err := scoreCAMMask(ai[jb.channel*h*w:(jb.channel+1)*h*w], h, w, H, W)
			if err != nil {
				return nil, err
			}
			xi := x.Index(jb.example).Data
			dst := batch.Index(j).Data
			for q := 0; q < ch; q++ {
				for p, m := range mask {
					dst[q*plane+p] = xi[q*plane+p] * m
				}
			}
			if t.Kind != engine.TargetFunc {
				classes[j] = r.ExampleTarget(jb.example).Classes[0]
			}
		}
		for j := rows; j < bs; j++ { // Pad the last batch: one executable for all.
			copy(batch.Index(j).Data, batch.Index(rows-1).Data)
			classes[j] = classes[rows-1]
		}
		bt := t
		if t.Kind != engine.TargetFunc {
			bt.Classes = classes
		}
		res, err := r.Ex.Run(batch, engine.Request{Target: bt})
		if err != nil {
			return nil, fmt.Errorf("Score-CAM on layer %q: %w", r.Layer, err)
		}
		for j := 0; j < rows; j++ {
			jb := jobs[j0+j]
			scores[jb.example][jb.channel] = float64(res.Scores[j])
		}
		if err := r.Step(rows); err != nil {
			return nil, err
		}
	}
	out := engine.NewArray(n, c)
	for i := 0; i < n; i++ {
		for k, src := range source[i] {
			scores[i][k] = scores[i][src]
		}
		if keep[i] == nil {
			softmaxInto(out.Index(i).Data, scores[i])
			continue
		}
		var ks []int
		var sc []float64
		for k, ok := range keep[i] {
			if ok {
				ks = append(ks, k)
				sc = append(sc, scores[i][k])
			}
		}
		wk := make([]float32, len(ks))
		softmaxInto(wk, sc)
		for j, k := range ks {
			out.Index(i).Data[k] = wk[j]
		}
	}
	if rest := n*c - len(jobs); rest > 0 {
		// Reused scores, and channels Faster Score-CAM skips, count as done.
		if err := r.Step(rest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// distinctMaps returns, for each of the c maps of hw values in a (C,hw), the
// index of the first map that is bit-for-bit identical to it (itself if none).
func distinctMaps(a []float32, c, hw int) []int {
	first := make(map[uint64][]int, c)
	src := make([]int, c)
	for k := 0; k < c; k++ {
		m := a[k*hw : (k+1)*hw]
		hsh := uint64(14695981039346656037) // FNV-1a over the bits.
		for _, v := range m {
			hsh = (hsh ^ uint64(math.Float32bits(v))) * 1099511628211
		}
		src[k] = k
		for _, j := range first[hsh] {
			if sameBits(a[j*hw:(j+1)*hw], m) {
				src[k] = j
				break
			}
		}
		if src[k] == k {
			first[hsh] = append(first[hsh], k)
		}
	}
	return src
}

// sameBits reports whether a and b hold the same bit patterns (exact, and
// NaN-safe).
func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// scoreCAMMask upsamples one (h,w) activation map to (H,W) with
// align_corners=True and normalises it to [0,1] as ScoreCAM does.
func scoreCAMMask(a []float32, h, w, H, W int) ([]float32, error) {
	up, err := heatmap.Resize(heatmap.Map{H: h, W: w, Data: a}, H, W, heatmap.Bilinear, true)
	if err != nil {
		return nil, err
	}
	lo, hi := up.Data[0], up.Data[0]
	for _, v := range up.Data {
		lo, hi = min(lo, v), max(hi, v)
	}
	den := hi - lo + 1e-8
	for i, v := range up.Data {
		up.Data[i] = (v - lo) / den
	}
	return up.Data, nil
}

func softmaxInto(dst []float32, x []float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, v)
	}
	s := 0.0
	e := make([]float64, len(x))
	for i, v := range x {
		e[i] = math.Exp(v - mx)
		s += e[i]
	}
	for i := range e {
		dst[i] = float32(e[i] / s)
	}
}

// ablationCAMWeights is pytorch-grad-cam's AblationCAM.get_cam_weights with
// all channels ablated (ratio_channels_to_ablate = 1): for every channel c,
// the network's tail (the layers after the target layer, Request.StartAfter)
// is re-run on the layer's activations with channel c set to 0, and
//
//	w_c = (y − y_c) / y
//
// where y is the target's value and y_c its value with channel c ablated.
// Each batch row ablates one channel; Options.BatchSize rows per execution.
// If y is exactly 0, w_c = y − y_c (a note says so).
//
// Deviation: pytorch-grad-cam's AblationLayer writes min(A) − 1e7 instead of
// 0 when the layer's minimum is not 0 (layers that can be negative); here the
// channel is always zeroed, the paper's definition. For ReLU and max-pool
// outputs (VGG's CAM layers), whose minimum is 0, both agree.
func ablationCAMWeights(r *Run) (*engine.Array, error) {
	acts := r.Result.Acts[r.Layer]
	n, c, h, w := acts.Shape[0], acts.Shape[1], acts.Shape[2], acts.Shape[3]
	hw := h * w
	bs := min(r.Options.BatchSize, c)
	out := engine.NewArray(n, c)
	batch := engine.NewArray(bs, c, h, w)
	for i := 0; i < n; i++ {
		a := acts.Index(i).Data
		for j := 0; j < bs; j++ {
			copy(batch.Index(j).Data, a)
		}
		y := float64(r.Result.Scores[i])
		if y == 0 {
			r.Note(fmt.Sprintf("Ablation-CAM: the target's value is exactly 0 for example %d, so its weights are y − y_c instead of (y − y_c)/y.", i))
		}
		t := r.ExampleTarget(i)
		wi := out.Index(i).Data
		for c0 := 0; c0 < c; c0 += bs {
			rows := min(bs, c-c0)
			for j := 0; j < rows; j++ {
				row := batch.Index(j).Data
				k := c0 + j
				clear(row[k*hw : (k+1)*hw])
			}
			res, err := r.Ex.Run(batch, engine.Request{StartAfter: r.Layer, StartInput: r.Input.Shape, Target: t})
			var cut engine.NotACutError
			if errors.As(err, &cut) {
				// A module inside a residual or parallel branch: the tail cannot
				// start from its output alone, so the whole network runs with the
				// channel scaled to 0 in the graph (slower, same definition).
				res, err = ablateByScaling(r, i, c0, rows, bs, c, t)
			}
			if err != nil {
				return nil, fmt.Errorf("Ablation-CAM on layer %q: %w", r.Layer, err)
			}
			for j := 0; j < rows; j++ {
				k := c0 + j
				d := y - float64(res.Scores[j])
				if y != 0 {
					d /= y
				}
				wi[k] = float32(d)
				row := batch.Index(j).Data
				copy(row[k*hw:(k+1)*hw], a[k*hw:(k+1)*hw])
			}
			if err := r.Step(rows); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// ablateByScaling runs the whole network on bs copies of example i's input
// with channel c0+j of the target layer multiplied by 0 in row j (rows rows).
func ablateByScaling(r *Run, i, c0, rows, bs, c int, t engine.Target) (*engine.Result, error) {
	x := r.Input.Index(i)
	in := engine.NewArray(append([]int{bs}, x.Shape...)...)
	scale := engine.NewArray(bs, c)
	for j := 0; j < bs; j++ {
		copy(in.Index(j).Data, x.Data)
		row := scale.Index(j).Data
		for k := range row {
			row[k] = 1
		}
		if j < rows {
			row[c0+j] = 0
		}
	}
	return r.Ex.RunWith(in, engine.Request{ScaleLayer: r.Layer, Target: t}, engine.RunOptions{Scale: scale})
}

// gapHead finds a "global average pooling + one linear layer" head: it returns
// the layer feeding the pool (CAM's layer) and the linear layer, or an error
// explaining why the network is not of that form.
func gapHead(e *engine.Explainer) (feat, fc string, err error) {
	layers := e.Layers()
	pool := -1
	for i, l := range layers {
		if l.Kind == models.GlobalAvgPool || l.Kind == models.AdaptiveAvgPool2d {
			pool = i
			break
		}
	}
	arch := e.Net().Arch()
	const why = "CAM (Zhou et al. 2016) needs a network that ends in global average pooling followed by a single linear layer, whose class weights then weigh the pooled channels"
	const alt = "Use gradcam instead: it generalises CAM to any architecture and gives the same map on such networks"
	if pool <= 0 {
		return "", "", fmt.Errorf("%s; model %s has no global average pooling layer. %s", why, arch, alt)
	}
	var linears, others []string
	alias, _ := e.Net().(interface{ LayerAlias(string) string })
	for _, l := range layers[pool+1:] {
		if alias != nil && alias.LayerAlias(l.Name) != "" {
			continue // Another name of a layer listed before (an ONNX module path).
		}
		switch l.Kind {
		case models.Linear:
			linears = append(linears, l.Name)
		case models.Dropout, models.Flatten2d:
		default:
			others = append(others, fmt.Sprintf("%s (%s)", l.Name, l.Kind))
		}
	}
	p := layers[pool]
	if len(linears) != 1 || len(others) > 0 {
		desc := fmt.Sprintf("%d linear layer(s) (%s)", len(linears), strings.Join(linears, ", "))
		if len(others) > 0 {
			desc += " with " + strings.Join(others, ", ") + " among them"
		}
		return "", "", fmt.Errorf("%s; model %s has %s (%s) followed by %s. %s", why, arch, p.Name, p.Kind, desc, alt)
	}
	l, _ := e.Layer(linears[0])
	if l.In != p.Out {
		return "", "", fmt.Errorf("%s; in model %s the linear layer %s takes %d features but %s (%s) gives %d channels, so it does not pool globally. %s",
			why, arch, l.Name, l.In, p.Name, p.Kind, p.Out, alt)
	}
	return layers[pool-1].Name, l.Name, nil
}

func zhouCAMCheck(e *engine.Explainer, layers []string, opts Options) error {
	feat, _, err := gapHead(e)
	if err != nil {
		return err
	}
	if len(layers) != 1 || layers[0] != feat {
		return fmt.Errorf("CAM is defined on the input of the global average pooling, layer %q of model %s; got layers %v", feat, e.Net().Arch(), layers)
	}
	if opts.Target.Kind != engine.TargetLogit {
		return fmt.Errorf("CAM explains a class logit with the linear layer's class weights; target %q is not a class logit (use Class(...) or Predicted(), or gradcam for other targets)", opts.Target.String())
	}
	return nil
}

// zhouCAMWeights: w_c = W[class, c] of the final linear layer (PyTorch layout [K,C]).
func zhouCAMWeights(r *Run) (*engine.Array, error) {
	_, fc, err := gapHead(r.Ex)
	if err != nil {
		return nil, err
	}
	wt, _, err := r.Ex.Net().Weight(fc)
	if err != nil {
		return nil, err
	}
	acts := r.Result.Acts[r.Layer]
	n, c := acts.Shape[0], acts.Shape[1]
	if len(wt.Shape) != 2 || wt.Shape[1] != c {
		return nil, fmt.Errorf("CAM: linear layer %q has weight shape %v, want [classes %d]", fc, wt.Shape, c)
	}
	out := engine.NewArray(n, c)
	for i := 0; i < n; i++ {
		k := r.Result.Classes[i]
		copy(out.Index(i).Data, wt.Data[k*c:(k+1)*c])
	}
	return out, nil
}

// biasLayer is a layer whose output carries a per-channel bias (FullGrad).
type biasLayer struct {
	name string
	bias []float32
}

// fullGradBiases returns every Conv2d and BatchNorm2d layer with a bias, in
// order, with its bias: a convolution's from Network.Weight, a batch norm's
// effective bias β − μ·γ/√(σ²+ε) (pytorch-grad-cam's get_bias_data) read as
// the layer's output for a zero input. skipped lists layers without a bias.
//
// ONNX exports in eval mode fold each batch norm into the convolution before
// it: the fused convolution's output is the batch norm's output and, for a
// convolution without a bias of its own (torchvision's conv+BN blocks), its
// bias is the batch norm's effective bias. FullGrad on the fused
// convolutions' biases then gives the same terms as pytorch-grad-cam's
// FullGrad on the unfolded model (which skips the bias-free convolutions);
// a convolution that had its own bias gives one fused term instead of two.
// A network with no bias at all is an error, never a map of the input term
// alone.
func fullGradBiases(e *engine.Explainer) (out []biasLayer, skipped []string, err error) {
	for _, l := range e.Layers() {
		switch l.Kind {
		case models.Conv2d:
			_, b, err := e.Net().Weight(l.Name)
			if err != nil {
				return nil, nil, fmt.Errorf("FullGrad: reading the bias of %q: %w", l.Name, err)
			}
			if b == nil {
				skipped = append(skipped, l.Name)
				continue
			}
			if len(b) != l.Out {
				return nil, nil, fmt.Errorf("FullGrad: layer %q has %d bias values for %d channels", l.Name, len(b), l.Out)
			}
			out = append(out, biasLayer{l.Name, b})
		case models.BatchNorm2d:
			bn, ok := e.Net().(models.BiasedNetwork)
			if !ok {
				skipped = append(skipped, l.Name)
				continue
			}
			b, err := bn.ModuleBias(l.Name)
			if err != nil {
				return nil, nil, fmt.Errorf("FullGrad: reading the effective bias of %q: %w", l.Name, err)
			}
			out = append(out, biasLayer{l.Name, b})
		}
	}
	return out, skipped, nil
}

// fullGradCAM is pytorch-grad-cam's FullGrad: one engine execution gives the
// gradient of the target with respect to the input and to the output of
// every layer with a bias (Conv2d, BatchNorm2d). Then
//
//	input term  : |x ⊙ ∇x|, each colour channel min-max scaled;
//	layer terms : |b_c · ∇_c| per channel c, each min-max scaled at the
//	              layer's resolution, resized to the input size and summed;
//	map         : sum of all terms (no ReLU: all are ≥ 0), scaled.
//
// With EigenSmooth the terms (3 input channels + one per layer) are each
// scaled, resized to (H/8, W/8), reduced to their first principal component,
// scaled and resized back, as in pytorch-grad-cam. Since resizing is linear,
// each layer's channels are summed before the resize (same result, C times
// fewer resizes). Result: Layers are the bias layers; Raw and Low hold each
// layer's summed term at its resolution and the input term under "input".
func fullGradCAM(r *Run) (*Result, error) {
	e := r.Ex
	x := r.Input
	n, ch, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	bl, skipped, err := fullGradBiases(e)
	if err != nil {
		return nil, err
	}
	if len(bl) == 0 {
		return nil, fmt.Errorf("FullGrad needs layers with biases (Conv2d or BatchNorm2d), and model %s has none: its map would be only |x⊙∇x|; use a saliency method for that", e.Net().Arch())
	}
	if len(skipped) > 0 {
		r.Note(fmt.Sprintf("FullGrad: layers without a bias were skipped: %s.", strings.Join(skipped, ", ")))
	}
	allZero := true
	names := make([]string, len(bl))
	for i, b := range bl {
		names[i] = b.name
		for _, v := range b.bias {
			allZero = allZero && v == 0
		}
	}
	if allZero {
		r.Note("FullGrad: every bias of the model is 0 (e.g. freshly initialised weights), so the map reduces to |x⊙∇x|.")
	}
	if r.Options.EigenSmooth && (H < 8 || W < 8) {
		return nil, fmt.Errorf("FullGrad with EigenSmooth works at 1/8 of the input size and needs an input of at least 8×8, got %d×%d", H, W)
	}
	res, err := e.Run(x, engine.Request{GradTaps: names, GradInput: true, Target: r.Target})
	if err != nil {
		return nil, err
	}
	out := &Result{Layers: names, Classes: res.Classes, Scores: res.Scores,
		Raw: map[string]*engine.Array{}, Low: map[string]*engine.Array{}, Weights: map[string]*engine.Array{}, Map: engine.NewArray(n, H, W)}
	// terms[i] holds example i's input-size terms: ch input channels, then one per layer.
	terms := make([][][]float32, n)
	plane := H * W
	inputRaw := engine.NewArray(n, H, W)
	for i := 0; i < n; i++ {
		xi, gi := x.Index(i).Data, res.InputGrad.Index(i).Data
		for k := 0; k < ch; k++ {
			m := make([]float32, plane)
			for p := range m {
				m[p] = float32(math.Abs(float64(xi[k*plane+p] * gi[k*plane+p])))
			}
			s, err := heatmap.ScaleCAM(heatmap.Map{H: H, W: W, Data: m})
			if err != nil {
				return nil, err
			}
			terms[i] = append(terms[i], s.Data)
			for p, v := range s.Data {
				inputRaw.Data[i*plane+p] += v
			}
		}
	}
	out.Raw["input"] = inputRaw
	if out.Low["input"], _, err = scaleAndResize(inputRaw, H, W); err != nil {
		return nil, err
	}
	for _, b := range bl {
		g := res.Grads[b.name]
		c, h, w := g.Shape[1], g.Shape[2], g.Shape[3]
		hw := h * w
		raw := engine.NewArray(n, h, w)
		for i := 0; i < n; i++ {
			gi := g.Index(i).Data
			ri := raw.Index(i).Data
			m := make([]float32, hw)
			for ci := 0; ci < c; ci++ {
				bc := b.bias[ci]
				for p := range m {
					m[p] = float32(math.Abs(float64(bc * gi[ci*hw+p])))
				}
				s, err := heatmap.ScaleCAM(heatmap.Map{H: h, W: w, Data: m})
				if err != nil {
					return nil, err
				}
				for p, v := range s.Data {
					ri[p] += v
				}
			}
			up, err := resizeMap(heatmap.Map{H: h, W: w, Data: ri}, H, W)
			if err != nil {
				return nil, err
			}
			terms[i] = append(terms[i], up.Data)
		}
		out.Raw[b.name] = raw
		if out.Low[b.name], _, err = scaleAndResize(raw, H, W); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		dst := out.Map.Index(i).Data
		if !r.Options.EigenSmooth {
			for _, t := range terms[i] {
				for p, v := range t {
					dst[p] += v
				}
			}
			continue
		}
		h8, w8 := H/8, W/8
		k := len(terms[i])
		small := make([]float32, k*h8*w8)
		for j, t := range terms[i] {
			s, err := heatmap.ScaleCAM(heatmap.Map{H: H, W: W, Data: t})
			if err != nil {
				return nil, err
			}
			d, err := resizeMap(s, h8, w8)
			if err != nil {
				return nil, err
			}
			copy(small[j*h8*w8:], d.Data)
		}
		proj := firstPrincipalProjection(small, k, h8*w8)
		s, err := heatmap.ScaleCAM(heatmap.Map{H: h8, W: w8, Data: proj})
		if err != nil {
			return nil, err
		}
		up, err := resizeMap(s, H, W)
		if err != nil {
			return nil, err
		}
		copy(dst, up.Data)
	}
	return out, nil
}
