package vizkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cnnviz/cnnviz/vizkit/attr"
	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// TestCloseRacesWithCalls hammers one Explainer from many goroutines (CAM,
// FeatureMaps, Saliency, Run) while another goroutine closes it, then closes
// the network, as the CLI does. Every call must either succeed or return
// engine.ErrClosed; nothing may panic or crash the process. Run it under the race
// detector (scripts/test.sh does; see docs/robustness.md for the flags).
func TestCloseRacesWithCalls(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	totalOK, totalClosed := 0, 0
	defer func() {
		if !t.Failed() && (totalOK == 0 || totalClosed == 0) {
			t.Errorf("over all rounds %d calls succeeded and %d got engine.ErrClosed; the test needs both to exercise Close racing with calls", totalOK, totalClosed)
		}
	}()
	for round := 0; round < rounds; round++ {
		g := newGAPNet(4, 3, uint64(round), false)
		ex, err := engine.NewExplainer(g, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		x := engine.NewArray(1, 3, 8, 8)
		for i := range x.Data {
			x.Data[i] = float32(i%7) / 7
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, closed := 0, 0
		start := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				for i := 0; i < 20; i++ {
					var err error
					switch (w + i) % 4 {
					case 0:
						_, err = cam.Compute(context.Background(), ex, x, cam.Options{Layers: []string{"features.4"}})
					case 1:
						_, err = FeatureMapsOf(ex, x, []string{"features.1"}, FeatureOptions{})
					case 2:
						_, err = attr.Saliency(context.Background(), ex, x, attr.SaliencyOptions{})
					case 3:
						_, err = ex.Run(x, engine.Request{Taps: []string{"features.3"}})
					}
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, engine.ErrClosed):
						closed++
					default:
						mu.Unlock()
						t.Errorf("worker %d call %d: %v (want success or engine.ErrClosed)", w, i, err)
						return
					}
					mu.Unlock()
				}
			}(w)
		}
		close(start)
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		ex.Close()
		g.Close()  // after the Explainer, as the CLI does
		ex.Close() // twice is fine
		wg.Wait()
		if _, err := cam.Compute(context.Background(), ex, x, cam.Options{Layers: []string{"features.4"}}); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("CAM after Close: %v, want engine.ErrClosed", err)
		}
		t.Logf("round %d: %d calls succeeded, %d got engine.ErrClosed", round, ok, closed)
		totalOK, totalClosed = totalOK+ok, totalClosed+closed
	}
}

// A classifier with no classes is refused before anything runs.
func TestZeroClassNetworkRefused(t *testing.T) {
	g := newGAPNet(4, 0, 1, false)
	if ex, err := engine.NewExplainer(g, engine.Options{}); err == nil {
		ex.Close()
		t.Fatal("NewExplainer accepted a network with 0 classes")
	}
}
