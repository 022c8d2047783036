package metrics

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

func TestPointingGameAndEnergy(t *testing.T) {
	const h, w = 6, 5
	mask := make([]bool, h*w)
	for _, p := range [][2]int{{1, 1}, {1, 2}, {2, 1}, {2, 2}} { // (y, x)
		mask[p[0]*w+p[1]] = true
	}
	r, err := MaskRegion(h, w, mask)
	if err != nil {
		t.Fatal(err)
	}
	vtest.Approx(t, "Area", r.Area(), 4.0/30, 1e-12)
	m := engine.NewArray(h, w)
	for i, v := range mask {
		if v {
			m.Data[i] = 1
		}
	}
	pg, err := PointingGame(m, r, 0)
	if err != nil || !pg.Hit || pg.Ties != 4 || pg.InRegion != 4 || pg.X != 1 || pg.Y != 1 {
		t.Fatalf("map = mask: %+v %v", pg, err)
	}
	e, err := EnergyInRegion(m, r)
	if err != nil {
		t.Fatal(err)
	}
	vtest.Approx(t, "energy of the mask itself", e, 1, 1e-12)

	// Peak outside at (x=4, y=4): Chebyshev distance 2 from the mask pixel (2,2).
	m = engine.NewArray(h, w)
	m.Data[4*w+4] = 5
	for tol, want := range []bool{false, false, true, true} {
		pg, _ := PointingGame(m, r, tol)
		if pg.Hit != want {
			t.Fatalf("peak outside, tolerance %d: hit %v, want %v", tol, pg.Hit, want)
		}
	}
	// Ties: 1 of 3 maxima inside misses, 2 of 3 hit.
	m = engine.NewArray(h, w)
	m.Data[1*w+1], m.Data[5*w+4], m.Data[0*w+4] = 2, 2, 2
	if pg, _ := PointingGame(m, r, 0); pg.Hit || pg.Ties != 3 || pg.InRegion != 1 {
		t.Fatalf("1 of 3 ties inside: %+v", pg)
	}
	m.Data[2*w+2] = 2
	m.Data[0*w+4] = 0
	if pg, _ := PointingGame(m, r, 0); !pg.Hit {
		t.Fatalf("2 of 3 ties inside: %+v", pg)
	}
	// A flat map points nowhere.
	if pg, _ := PointingGame(engine.NewArray(h, w), r, 3); pg.Hit || !pg.Flat {
		t.Fatalf("flat map: %+v", pg)
	}
	// Energy counts positive mass only: +3 inside, +1 outside, −1 elsewhere.
	m = engine.NewArray(h, w)
	for i := range m.Data {
		m.Data[i] = -1
	}
	m.Data[1*w+2], m.Data[5*w+0] = 3, 1
	e, _ = EnergyInRegion(m, r)
	vtest.Approx(t, "energy with negative values", e, 0.75, 1e-12)
	if e, _ := EnergyInRegion(engine.NewArray(h, w), r); e != 0 {
		t.Fatalf("energy of a zero map %g, want 0", e)
	}
	// A uniformly random map puts about Area of its mass in the region.
	big, _ := BoxRegion(64, 64, image.Rect(10, 20, 40, 44))
	vtest.Approx(t, "box area", big.Area(), 30*24/4096.0, 1e-12)
	rm := RandomMaps(20, 64, 64, 3)
	sum := 0.0
	for i := 0; i < 20; i++ {
		e, _ := EnergyInRegion(rm.Index(i), big)
		sum += e / 20
	}
	vtest.Approx(t, "random map energy", sum, big.Area(), 0.01)

	// Errors.
	if _, err := PointingGame(engine.NewArray(5, 6), r, 0); err == nil || !strings.Contains(err.Error(), "region of 6×5") {
		t.Fatalf("shape mismatch: %v", err)
	}
	nan := engine.NewArray(h, w)
	nan.Data[3] = float32(math.NaN())
	if _, err := EnergyInRegion(nan, r); err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("NaN map: %v", err)
	}
	if _, err := PointingGame(m, r, -1); err == nil {
		t.Fatal("negative tolerance accepted")
	}
	if _, err := BoxRegion(8, 8, image.Rect(9, 9, 12, 12)); err == nil {
		t.Fatal("box outside the image accepted")
	}
	if b, err := BoxRegion(8, 8, image.Rect(-2, 6, 3, 20)); err != nil || b.Area() != 6.0/64 {
		t.Fatalf("clipped box: area %v, %v", b.Area(), err)
	}
	if _, err := MaskRegion(2, 2, make([]bool, 4)); err == nil {
		t.Fatal("empty mask accepted")
	}
}

func TestPixelOrderAndpercentile(t *testing.T) {
	got := pixelOrder([]float32{1, 3, 3, 0, 2})
	if fmt.Sprint(got) != "[1 2 4 0 3]" {
		t.Fatalf("PixelOrder %v", got)
	}
	// numpy.percentile([4,1,3,2], p): 50 → 2.5, 10 → 1.3, 0 → 1, 100 → 4, 90 → 3.7.
	for p, want := range map[float64]float64{50: 2.5, 10: 1.3, 0: 1, 100: 4, 90: 3.7} {
		vtest.Approx(t, fmt.Sprintf("percentile %g", p), percentile([]float32{4, 1, 3, 2}, p), want, 1e-6)
	}
}

// TestDeletionInsertionClosedForm: on a 2×2 linear toy whose pixel
// contributions are 4, 3, 2, 1, deletion (zero baseline, one pixel per step,
// map in contribution order) scores 10, 6, 3, 1, 0 → AUC 3.75; insertion
// 0, 4, 7, 9, 10 → AUC 6.25; the reversed map swaps them.
func TestDeletionInsertionClosedForm(t *testing.T) {
	wt := make([]float32, 12)
	copy(wt, []float32{4, 3, 2, 1}) // Red channel only.
	ex, _ := vtest.LinearExplainer(t, 2, 2, wt)
	x := engine.NewArray(1, 3, 2, 2)
	for i := range x.Data {
		x.Data[i] = 1
	}
	good := &engine.Array{Shape: []int{1, 2, 2}, Data: []float32{4, 3, 2, 1}}
	bad := &engine.Array{Shape: []int{1, 2, 2}, Data: []float32{1, 2, 3, 4}}
	opts := CausalOptions{Steps: 4, Baseline: "zero", Options: Options{Score: ScoreLogit, Classes: []int{0}}}
	ctx := context.Background()
	del, err := Deletion(ctx, ex, x, good, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(del.Curves.Data) != "[10 6 3 1 0]" || fmt.Sprint(del.Fractions) != "[0 0.25 0.5 0.75 1]" {
		t.Fatalf("deletion curve %v at %v", del.Curves.Data, del.Fractions)
	}
	vtest.Approx(t, "deletion AUC", del.AUC[0], 3.75, 1e-6)
	ins, err := Insertion(ctx, ex, x, good, opts)
	if err != nil {
		t.Fatal(err)
	}
	vtest.Approx(t, "insertion AUC", ins.AUC[0], 6.25, 1e-6)
	if d, _ := Deletion(ctx, ex, x, bad, opts); d.AUC[0] != 6.25 {
		t.Fatalf("deletion AUC of the reversed map %v, want 6.25", d.AUC)
	}
	// Two pixels per step: 10, 3, 0 at 0, ½, 1 → AUC 4.
	opts.Steps = 2
	if d, _ := Deletion(ctx, ex, x, good, opts); math.Abs(d.AUC[0]-4) > 1e-6 || len(d.Fractions) != 3 {
		t.Fatalf("2-step deletion %v AUC %v", d.Curves.Data, d.AUC)
	}
}

// TestCausalIdentityLinear: for a linear score, every pixel is at x in one
// curve and at the baseline in the other, so deletion_k + insertion_k =
// f(x) + f(b) at every step, and the AUCs add up to the same — for any map,
// baseline, step count and chunking.
func TestCausalIdentityLinear(t *testing.T) {
	const n, h, w = 3, 7, 6
	rng := rand.New(rand.NewPCG(1, 2))
	wt := make([]float32, 3*h*w)
	for i := range wt {
		wt[i] = float32(rng.NormFloat64())
	}
	ex, net := vtest.LinearExplainer(t, h, w, wt)
	x := engine.NewArray(n, 3, h, w)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	maps := RandomMaps(n, h, w, 9)
	for _, baseline := range []string{"zero", "blur"} {
		opts := CausalOptions{Steps: 11, Baseline: baseline, BlurSigma: 1.5,
			Options: Options{Score: ScoreLogit, Classes: []int{0}, BatchSize: 5}}
		del, err := Deletion(context.Background(), ex, x, maps, opts)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := Insertion(context.Background(), ex, x, maps, opts)
		if err != nil {
			t.Fatal(err)
		}
		base, _, _ := perturbBaseline(x, baseline, nil, 1.5, "test")
		for i := 0; i < n; i++ {
			want := net.F(x.Index(i).Data) + net.F(base.Index(i).Data)
			for k := range del.Fractions {
				vtest.Approx(t, fmt.Sprintf("%s: del+ins at step %d of example %d", baseline, k, i),
					float64(del.Curves.Index(i).Data[k]+ins.Curves.Index(i).Data[k]), want, 1e-3)
			}
			vtest.Approx(t, baseline+": AUC sum", del.AUC[i]+ins.AUC[i], want, 1e-3)
			vtest.Approx(t, "deletion starts at f(x)", float64(del.Curves.Index(i).Data[0]), net.F(x.Index(i).Data), 1e-3)
		}
	}
}

func TestConfidenceChangeLinear(t *testing.T) {
	const h, w = 4, 3
	rng := rand.New(rand.NewPCG(3, 4))
	wt := make([]float32, 3*h*w)
	for i := range wt {
		wt[i] = float32(rng.NormFloat64())
	}
	ex, net := vtest.LinearExplainer(t, h, w, wt)
	x := engine.NewArray(2, 3, h, w)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	maps := RandomMaps(2, h, w, 5)
	res, err := ConfidenceChange(context.Background(), ex, x, maps, Options{Score: ScoreLogit, Classes: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		// Δ = Σ w·x·(m − 1).
		want := 0.0
		img, m := x.Index(i).Data, maps.Index(i).Data
		for c := 0; c < 3; c++ {
			for p := 0; p < h*w; p++ {
				want += float64(wt[c*h*w+p]) * float64(img[c*h*w+p]) * (float64(m[p]) - 1)
			}
		}
		vtest.Approx(t, "confidence change", float64(res.Change[i]), want, 1e-4)
		vtest.Approx(t, "before", float64(res.Before[i]), net.F(img), 1e-4)
	}
	// Softmax probability: the toy's p(class 0) = σ(f).
	sm, err := ConfidenceChange(context.Background(), ex, x, maps, Options{Classes: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	vtest.Approx(t, "softmax before", float64(sm.Before[0]), sig(net.F(x.Index(0).Data)), 1e-5)
	maps.Data[3] = 1.5
	if _, err := ConfidenceChange(context.Background(), ex, x, maps, Options{}); err == nil || !strings.Contains(err.Error(), "[0,1]") {
		t.Fatalf("map value 1.5: %v", err)
	}
}

// TestROADLinear recomputes ROAD on the toy by hand (noise off): each entry
// is f(impute(x, keep)) − f(x) with the library's keep rules.
func TestROADLinear(t *testing.T) {
	const h, w = 6, 7
	rng := rand.New(rand.NewPCG(5, 6))
	wt := make([]float32, 3*h*w)
	for i := range wt {
		wt[i] = float32(rng.NormFloat64())
	}
	ex, net := vtest.LinearExplainer(t, h, w, wt)
	x := engine.NewArray(2, 3, h, w)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	maps := RandomMaps(2, h, w, 7)
	pcts := []float64{20, 50, 80}
	res, err := ROAD(context.Background(), ex, x, maps, ROADOptions{Percentiles: pcts, Noise: -1,
		Options: Options{Score: ScoreLogit, Classes: []int{0}, BatchSize: 4}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		img, m := x.Index(i).Data, maps.Index(i).Data
		var morfMean, lerfMean float64
		for pi, p := range pcts {
			inv := make([]float32, len(m))
			for j, v := range m {
				inv[j] = 1 - v
			}
			for order, vals := range [][]float32{m, inv} {
				thr := percentile(vals, p)
				keep := make([]bool, len(vals))
				removed := 0
				for j, v := range vals {
					keep[j] = float64(v) < thr
					if !keep[j] {
						removed++
					}
				}
				// MoRF at percentile p removes the top (100−p) % of pixels.
				if order == 0 && math.Abs(float64(removed)-float64(h*w)*(100-p)/100) > 1 {
					t.Fatalf("MoRF %g%% removed %d of %d pixels", p, removed, h*w)
				}
				out, err := NoisyLinearImpute(img, 3, h, w, keep, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := net.F(out) - net.F(img)
				got := res.MoRF.Index(i).Data[pi]
				if order == 1 {
					got = res.LeRF.Index(i).Data[pi]
					lerfMean += want / 3
				} else {
					morfMean += want / 3
				}
				vtest.Approx(t, fmt.Sprintf("example %d percentile %g order %d", i, p, order), float64(got), want, 1e-3)
			}
		}
		vtest.Approx(t, "combined", res.Combined[i], (lerfMean-morfMean)/2, 1e-3)
	}
	if res.AllImputed != 0 {
		t.Fatalf("AllImputed %d on a random map", res.AllImputed)
	}
	// A map of zeros ties everything at the threshold: every MoRF case imputes
	// all pixels (the library's singular system) — counted, mean-filled.
	zero := engine.NewArray(2, h, w)
	res, err = ROAD(context.Background(), ex, x, zero, ROADOptions{Percentiles: pcts, Noise: -1,
		Options: Options{Score: ScoreLogit, Classes: []int{0}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.AllImputed != 2*2*3 {
		t.Fatalf("AllImputed %d for zero maps, want 12", res.AllImputed)
	}
	vtest.Approx(t, "fully imputed image scores f(0) − f(x)", float64(res.MoRF.Data[0]), -net.F(x.Index(0).Data), 1e-3)
}

func TestNoisyLinearImputeGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "lab", "golden")
	img := vtest.LoadNPY(t, filepath.Join(dir, "impute_img.npy"))
	keeps := vtest.LoadNPY(t, filepath.Join(dir, "impute_keep.npy"))
	want := vtest.LoadNPY(t, filepath.Join(dir, "impute_out.npy"))
	mp := vtest.LoadNPY(t, filepath.Join(dir, "impute_map.npy"))
	c, h, w := img.Shape[0], img.Shape[1], img.Shape[2]
	for k := 0; k < 2; k++ {
		keep := make([]bool, h*w)
		for i, v := range keeps.Index(k).Data {
			keep[i] = v > 0.5
		}
		if k == 1 { // The fixture's mask is ROAD MoRF at 70: recompute it from the map.
			thr := percentile(mp.Data, 70)
			for i, v := range mp.Data {
				if (float64(v) < thr) != keep[i] {
					t.Fatalf("MoRF keep rule differs from numpy at pixel %d", i)
				}
			}
		}
		got, err := NoisyLinearImpute(img.Data, c, h, w, keep, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		vtest.AssertClose(t, fmt.Sprintf("imputation case %d vs scipy spsolve", k), &engine.Array{Shape: []int{c, h, w}, Data: got}, want.Index(k), 1e-5)
	}
}

func TestNoisyLinearImputeProperties(t *testing.T) {
	const h, w = 12, 10
	// A linear ramp is its own weighted neighbour mean away from the border.
	img := make([]float32, 3*h*w)
	for c := 0; c < 3; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img[c*h*w+y*w+x] = float32(0.3*float64(y) - 0.2*float64(x) + float64(c))
			}
		}
	}
	keep := make([]bool, h*w)
	for i := range keep {
		y, x := i/w, i%w
		keep[i] = y < 2 || y >= h-2 || x < 2 || x >= w-2 || (x+y)%3 == 0
	}
	out, err := NoisyLinearImpute(img, 3, h, w, keep, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if math.Abs(float64(out[i]-img[i])) > 1e-4 {
			t.Fatalf("ramp not reproduced at %d: %g vs %g", i, out[i], img[i])
		}
	}
	// Noise: kept pixels unchanged, imputed ones get N(0, σ²) on top.
	rnd := make([]float32, 3*h*w)
	rng := rand.New(rand.NewPCG(8, 9))
	for i := range rnd {
		rnd[i] = float32(rng.NormFloat64())
	}
	clean, _ := NoisyLinearImpute(rnd, 3, h, w, keep, 0, nil)
	noisy, err := NoisyLinearImpute(rnd, 3, h, w, keep, 0.5, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	cnt := 0
	for c := 0; c < 3; c++ {
		for p, k := range keep {
			i := c*h*w + p
			if k {
				if noisy[i] != rnd[i] {
					t.Fatalf("kept pixel %d changed", i)
				}
				continue
			}
			d := float64(noisy[i] - clean[i])
			ss += d * d
			cnt++
		}
	}
	vtest.Approx(t, "noise σ", math.Sqrt(ss/float64(cnt)), 0.5, 0.1)
	if _, err := NoisyLinearImpute(rnd, 3, h, w, keep, 0.5, nil); err == nil {
		t.Fatal("noise without a generator accepted")
	}
	if _, err := NoisyLinearImpute(rnd, 3, h, w, keep[:5], 0, nil); err == nil {
		t.Fatal("short mask accepted")
	}
	all, _ := NoisyLinearImpute(rnd, 3, h, w, make([]bool, h*w), 0, nil)
	for _, v := range all {
		if v != 0 {
			t.Fatalf("all-imputed image should be the normalised zero, got %g", v)
		}
	}
}

func TestMetricErrors(t *testing.T) {
	ex, _ := vtest.LinearExplainer(t, 3, 3, make([]float32, 27))
	x := engine.NewArray(2, 3, 3, 3)
	ctx := context.Background()
	if _, err := Deletion(ctx, ex, x, engine.NewArray(2, 3, 4), CausalOptions{}); err == nil || !strings.Contains(err.Error(), "(N,H,W) = (2,3,3)") {
		t.Fatalf("bad map shape: %v", err)
	}
	if _, err := Deletion(ctx, ex, x, engine.NewArray(2, 3, 3), CausalOptions{Steps: -2}); err == nil {
		t.Fatal("negative steps accepted")
	}
	if _, err := Insertion(ctx, ex, x, engine.NewArray(2, 3, 3), CausalOptions{Baseline: "noise"}); err == nil || !strings.Contains(err.Error(), `unknown baseline "noise"`) {
		t.Fatalf("unknown baseline: %v", err)
	}
	if _, err := Deletion(ctx, ex, x, engine.NewArray(2, 3, 3), CausalOptions{Options: Options{Classes: []int{5}}}); err == nil || !strings.Contains(err.Error(), "class index 5") {
		t.Fatalf("bad class: %v", err)
	}
	if _, err := ROAD(ctx, ex, x, engine.NewArray(2, 3, 3), ROADOptions{Percentiles: []float64{120}}); err == nil {
		t.Fatal("percentile 120 accepted")
	}
	if _, err := Deletion(ctx, ex, x, engine.NewArray(2, 3, 3), CausalOptions{BaselineArray: engine.NewArray(3, 3, 3, 3)}); err == nil {
		t.Fatal("baseline of 3 examples for 2 accepted")
	}
	if _, err := ScaleMaps(engine.NewArray(2, 3)); err == nil {
		t.Fatal("ScaleMaps accepted a 2-D array")
	}
	s, err := ScaleMaps(&engine.Array{Shape: []int{1, 1, 3}, Data: []float32{-1, 1, 3}})
	if err != nil || math.Abs(float64(s.Data[1])-0.5) > 1e-6 || s.Data[0] != 0 {
		t.Fatalf("ScaleMaps %v %v", s, err)
	}
}
