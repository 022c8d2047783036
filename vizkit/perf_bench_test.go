package vizkit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/zoo"
	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/backend"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// The side-by-side benchmark rows (scripts/bench.sh runs each in its own
// process, next to the same work in PyTorch, scripts/bench_torch.py): a
// full-size network of the model zoo (random init, seed 1; $CNNVIZ_BENCH_ARCH,
// default vgg11 — the benchmark is skipped when the architecture is not
// registered) at 224×224, standard-normal input, batch 1 and 8. The CAM rows
// use the architecture's default CAM layer (VGG11: features.20).
//
//	sgemm     the machine's reference: one 2048×2048 by 2048×2048 float32
//	          product on the backend (17.2 GFLOP); reports "gflops" beside the
//	          times (b1 only; no network is built)
//	forward   logits only
//	gradcam   Explainer.CAM, method gradcam, features.20, top-1 class: the map
//	          at input resolution (N,224,224)
//	saliency  attr.Saliency, vanilla gradient w.r.t. the input
//	guided    attr.Saliency with guided-backprop ReLUs
//	scorecam  Explainer.CAM, method scorecam, features.20, batch 16
//
// Each benchmark reports, beside ns/op (the mean), "median-s" (median of
// the timed calls), "cpu-s" (user+system CPU seconds per call, all threads:
// steadier than wall time on a loaded machine), "first-s" (the first call: graph build, compilation and
// one execution; for scorecam the warm-up is the activations run plus one
// batch of 16 masked inputs, not a whole Score-CAM), "build-s" (random
// weights and their layout conversion) and "peak-MB" (the process's peak RSS
// from getrusage, which includes every earlier benchmark of the same process:
// run one row per process for a per-row figure). Run one row:
//
//	go test ./vizkit -run '^$' -bench 'Perf/gradcam/b1$' -benchtime 5x
func BenchmarkPerf(b *testing.B) {
	b.Run("sgemm/b1", benchSGEMM)
	for _, row := range perfRows {
		for _, n := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/b%d", row.name, n), func(b *testing.B) { runPerfRow(b, row, n) })
		}
	}
}

type perfRow struct {
	name string
	run  func(ex *engine.Explainer, x *Array) error
	// warm, if set, replaces run for the first (untimed) call.
	warm func(ex *engine.Explainer, x *Array) error
}

var perfRows = []perfRow{
	{name: "forward", run: func(ex *engine.Explainer, x *Array) error {
		_, err := ex.Run(x, engine.Request{Target: engine.Predicted()})
		return err
	}},
	{name: "gradcam", run: func(ex *engine.Explainer, x *Array) error {
		r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "gradcam"})
		if err == nil && !slices.Equal(r.Map.Shape, []int{x.Shape[0], x.Shape[2], x.Shape[3]}) {
			err = fmt.Errorf("Grad-CAM map shape %v", r.Map.Shape)
		}
		return err
	}},
	{name: "saliency", run: func(ex *engine.Explainer, x *Array) error {
		_, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{})
		return err
	}},
	{name: "guided", run: func(ex *engine.Explainer, x *Array) error {
		_, err := attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{ReLU: models.ReLUGuided})
		return err
	}},
	{name: "scorecam",
		run: func(ex *engine.Explainer, x *Array) error {
			_, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: "scorecam"})
			return err
		},
		warm: func(ex *engine.Explainer, x *Array) error {
			layer, err := cam.DefaultLayer(ex.Net())
			if err != nil {
				return err
			}
			res, err := ex.Run(x, engine.Request{Taps: []string{layer}, Target: engine.Predicted()})
			if err != nil {
				return err
			}
			_, err = ex.Run(engine.NewArray(16, 3, x.Shape[2], x.Shape[3]), engine.Request{Target: engine.Class(res.Classes[0])})
			return err
		}},
}

// perfArch is the benchmarked architecture: $CNNVIZ_BENCH_ARCH, default vgg11.
func perfArch() string {
	if a := os.Getenv("CNNVIZ_BENCH_ARCH"); a != "" {
		return a
	}
	return "vgg11"
}

// perfModel is one full-size network of perfArch shared by the benchmarks of
// a process (nil, nil when the architecture is not registered in models/zoo).
var perfModel = sync.OnceValues(func() (models.Network, error) {
	if _, err := zoo.Lookup(perfArch()); err != nil {
		return nil, nil
	}
	t0 := time.Now()
	m, err := zoo.Random(perfArch(), zoo.Options{Seed: 1})
	perfBuildSeconds = time.Since(t0).Seconds()
	return m, err
})

// perfNet returns perfModel or skips the benchmark when the architecture is
// not registered (so that scripts/bench.sh can list it as skipped).
func perfNet(b *testing.B) models.Network {
	m, err := perfModel()
	if err != nil {
		b.Fatal(err)
	}
	if m == nil {
		b.Skipf("architecture %q is not registered in models/zoo (registered: %v)", perfArch(), zoo.Archs())
	}
	return m
}

// benchSGEMM times one 2048³ float32 matrix product on the backend: the
// reference peak that scripts/bench.sh reports every row's rate against.
func benchSGEMM(b *testing.B) {
	const n = 2048
	be, err := backend.Shared("")
	if err != nil {
		b.Fatal(err)
	}
	a := vtest.RandomArray(3, n, n)
	x := tensors.FromFlatDataAndDimensions(a.Data, n, n)
	exec, err := graph.NewExec(be, func(x, y *graph.Node) *graph.Node { return graph.Dot(x, y).Product() })
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	t0 := time.Now()
	exec.MustExec(x, x)[0].FinalizeAll()
	first := time.Since(t0).Seconds()
	times := make([]float64, 0, b.N)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		exec.MustExec(x, x)[0].FinalizeAll()
		times = append(times, time.Since(t0).Seconds())
	}
	b.StopTimer()
	med := median(times)
	b.ReportMetric(med, "median-s")
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s")
	b.ReportMetric(first, "first-s")
	b.ReportMetric(2*n*n*n/med/1e9, "gflops")
	b.ReportMetric(float64(peakRSS())/1e6, "peak-MB")
}

func median(times []float64) float64 {
	slices.Sort(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	return med
}

var perfBuildSeconds float64

// perfState is a row's explainer, kept across the testing package's calls
// of the same benchmark (b.N = 1, then b.N = n), so the first call is paid
// and measured once.
type perfState struct {
	ex    *engine.Explainer
	x     *Array
	first float64
}

var (
	perfMu     sync.Mutex
	perfStates = map[string]*perfState{}
)

func runPerfRow(b *testing.B, row perfRow, n int) {
	m := perfNet(b)
	key := fmt.Sprintf("%s/%d", row.name, n)
	perfMu.Lock()
	st := perfStates[key]
	perfMu.Unlock()
	if st == nil {
		ex, err := engine.NewExplainer(m, engine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st = &perfState{ex: ex, x: perfInput(n)}
		warm := row.run
		if row.warm != nil {
			warm = row.warm
		}
		t0 := time.Now()
		if err := warm(ex, st.x); err != nil {
			b.Fatal(err)
		}
		st.first = time.Since(t0).Seconds()
		perfMu.Lock()
		perfStates[key] = st
		perfMu.Unlock()
	}
	times := make([]float64, 0, b.N)
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := row.run(st.ex, st.x); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0).Seconds())
	}
	b.StopTimer()
	cpu := (cpuSeconds() - cpu0) / float64(b.N)
	b.ReportMetric(median(times), "median-s")
	b.ReportMetric(cpu, "cpu-s")
	b.ReportMetric(st.first, "first-s")
	b.ReportMetric(perfBuildSeconds, "build-s")
	b.ReportMetric(float64(peakRSS())/1e6, "peak-MB")
}

// perfInput is a deterministic (n,3,224,224) batch of standard normal noise
// (the scale of a normalised input). Set CNNVIZ_BENCH_SEED to vary it.
func perfInput(n int) *Array {
	seed := uint64(7)
	if s, err := strconv.ParseUint(os.Getenv("CNNVIZ_BENCH_SEED"), 10, 64); err == nil {
		seed = s
	}
	return vtest.RandomArray(seed, n, 3, 224, 224)
}

// cpuSeconds is the process's user + system CPU time so far (getrusage).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// peakRSS is the process's peak resident set size in bytes (getrusage).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // Linux reports kB.
}

// BenchmarkGradCAM100VGG11: memory of 100 Grad-CAM calls on full-size VGG11
// (224×224, batch 1) in one process. After 10 warm-up calls, the resident set
// (after a GC) must stay within 10% over the 100 calls; reports rss-warm-MB,
// rss-after-MB, growth-% and the process's peak-MB. One op is 100 calls:
//
//	go test ./vizkit -run '^$' -bench GradCAM100VGG11 -benchtime 1x
func BenchmarkGradCAM100VGG11(b *testing.B) {
	m := perfNet(b)
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	x := perfInput(1)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Target: engine.Class(i % 1000)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	run(10)
	warm := settledRSS()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(100)
	}
	b.StopTimer()
	after := settledRSS()
	growth := 100 * float64(after-warm) / float64(warm)
	b.ReportMetric(float64(warm)/1e6, "rss-warm-MB")
	b.ReportMetric(float64(after)/1e6, "rss-after-MB")
	b.ReportMetric(growth, "growth-%")
	b.ReportMetric(float64(peakRSS())/1e6, "peak-MB")
	if growth > 10 {
		b.Errorf("resident memory grew %.1f%% over 100 Grad-CAM calls (%.0f → %.0f MB)", growth, float64(warm)/1e6, float64(after)/1e6)
	}
	if n := ex.NumExecutables(); n != 1 {
		b.Errorf("%d executables cached for one request kind", n)
	}
}

// TestBenchArch checks the benchmarked architecture ($CNNVIZ_BENCH_ARCH,
// default vgg11) before scripts/bench.sh spends minutes on it: skipped when
// models/zoo does not register it, failed when its entry cannot build a
// random network.
func TestBenchArch(t *testing.T) {
	a, err := zoo.Lookup(perfArch())
	if err != nil {
		t.Skipf("architecture %q is not registered in models/zoo (registered: %v)", perfArch(), zoo.Archs())
	}
	if a.Random == nil {
		t.Errorf("zoo entry %q has no Random builder: the benchmarks cannot build it", a.Name)
	}
}
