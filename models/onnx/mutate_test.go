package onnx

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

// TestMutatedModels loads 1000 randomly corrupted copies of a fixture: each
// must load or fail with an error within 5 s (no panic, hang or runaway
// allocation; the fuzz target explores further).
func TestMutatedModels(t *testing.T) {
	good := tinyBytes(t)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		b := append([]byte(nil), good...)
		for k := 0; k < 1+rng.Intn(4); k++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		t0 := time.Now()
		done := make(chan error, 1)
		go func() { _, err := LoadBytes(b, "x"); done <- err }()
		select {
		case err := <-done:
			if err != nil && strings.Contains(err.Error(), "runtime error") {
				t.Errorf("case %d: %v", i, err)
			}
			if d := time.Since(t0); d > time.Second {
				t.Logf("case %d took %v: %v", i, d, err)
			}
		case <-time.After(5 * time.Second):
			for j := range b {
				if b[j] != good[j] {
					t.Logf("byte %d: %d -> %d", j, good[j], b[j])
				}
			}
			t.Fatalf("case %d hangs", i)
		}
	}
}
