package vizkit

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
)

// rssBytes reads the resident set size from /proc (Linux); 0 elsewhere.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func settledRSS() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return rssBytes()
}

// TestMemoryStaysFlat runs 1000 Grad-CAM calls on a small VGG in one process:
// after warm-up, resident memory must stay within 10% (no leaked executables,
// buffers or hooks), and only one executable is cached.
func TestMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if rssBytes() == 0 {
		t.Skip("no /proc/self/status")
	}
	m := vtest.GoldenModel(t, "tinyvgg11.safetensors")
	defer m.Close()
	ex, err := engine.NewExplainer(m, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	x := vtest.RandomArray(3, 2, 3, 64, 64)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Target: engine.Class(i % 10)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(100)
	before := settledRSS()
	run(1000)
	after := settledRSS()
	growth := float64(after-before) / float64(before)
	t.Logf("RSS after warm-up %.1f MB, after 1000 more Grad-CAM calls %.1f MB (%+.1f%%)", float64(before)/1e6, float64(after)/1e6, 100*growth)
	if growth > 0.10 {
		t.Fatalf("resident memory grew %.1f%% over 1000 Grad-CAM calls", 100*growth)
	}
	if n := ex.NumExecutables(); n != 1 {
		t.Fatalf("%d executables cached for one request kind", n)
	}
}
