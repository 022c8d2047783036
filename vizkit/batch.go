package vizkit

import (
	"context"
	"fmt"

	"github.com/cnnviz/cnnviz/vizkit/engine"
)

// Transitional: the metrics and activation maximisation still batch through
// BatchOptions until they move to vizkit/metrics and vizkit/actmax with
// BatchSize and Progress options (as package attr has).

// DefaultChunk is engine.DefaultBatchSize.
const DefaultChunk = engine.DefaultBatchSize

// BatchOptions controls how perturbed inputs go through the engine.
type BatchOptions struct {
	// Chunk is the number of perturbed inputs per engine execution; default
	// DefaultChunk. Memory grows linearly with it.
	Chunk int
	// Progress, if set, is called after every chunk with the number of perturbed
	// inputs done and the total.
	Progress func(done, total int)
}

// runRows is engine.RunRows with BatchOptions.
func (e *Explainer) runRows(ctx context.Context, rows, c, h, w int, b BatchOptions, req func(r0, r1 int) engine.Request,
	fill func(dst *Array, r0, r1 int), consume func(res *engine.Result, r0, r1 int) error) error {
	var p func(engine.Progress)
	if b.Progress != nil {
		p = func(pr engine.Progress) { b.Progress(pr.Done, pr.Total) }
	}
	if b.Chunk < 0 {
		return fmt.Errorf("BatchOptions.Chunk %d must be ≥ 0 (0 means %d)", b.Chunk, DefaultChunk)
	}
	return e.RunRows(ctx, rows, c, h, w, b.Chunk, "perturbed inputs", p, req, fill, consume)
}
