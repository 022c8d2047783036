package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/core/graph"
)

// Neuron targets one unit of a layer, per example: channel ch at row y,
// column x of a spatial layer's output (N,C,H,W); for a flat layer (N,F),
// feature ch (y and x are then ignored). The channel is checked when the
// target runs; the position is not (actmax.Run checks it against the grid).
func Neuron(layer string, ch, y, x int) Target {
	return Target{Kind: TargetFunc, Layer: layer, Name: neuronName(layer, ch, y, x), named: true, channel: ch + 1,
		unit: &Unit{Layer: layer, Channel: ch, Neuron: true, Y: y, X: x},
		Func: func(act *graph.Node) *graph.Node {
			if act.Rank() == 2 {
				return graph.Squeeze(graph.Slice(act, graph.AxisRange(), graph.AxisRange(ch, ch+1)), 1)
			}
			d := act.Shape().Dimensions
			v := graph.Slice(act, graph.AxisRange(), graph.AxisRange(ch, ch+1), graph.AxisRange(y, y+1), graph.AxisRange(x, x+1))
			return graph.Reshape(v, d[0])
		}}
}

func neuronName(layer string, ch, y, x int) string {
	return fmt.Sprintf("%s channel %d at (%d,%d)", layer, ch, y, x)
}

// Unit is the unit a ChannelMean or Neuron target reads.
type Unit struct {
	Layer   string
	Channel int
	// Neuron is true for a Neuron target, whose position is (Y, X).
	Neuron bool
	Y, X   int
}

// Unit reports the layer unit t reads when t was built by ChannelMean or
// Neuron (ok false otherwise).
func (t Target) Unit() (u Unit, ok bool) {
	if t.unit == nil {
		return Unit{}, false
	}
	return *t.unit, true
}
