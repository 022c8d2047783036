package render

import (
	"math"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

// The maps this package draws are package heatmap's (the numerics live there,
// so that computing packages never import drawing code).
type (
	// Map is [heatmap.Map].
	Map = heatmap.Map
	// Range is [heatmap.Range].
	Range = heatmap.Range
)

// MaxPixels is [heatmap.MaxPixels]: the largest map or image (H·W) created.
const MaxPixels = heatmap.MaxPixels

func checkSize(h, w int) error { return heatmap.CheckSize(h, w) }

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func clamp01(t float64) float64 { return min(max(t, 0), 1) }
