package vizkit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// LayerRow is one line of a layer table.
type LayerRow struct {
	// Name and Kind are the layer's torchvision name and PyTorch module class.
	Name string
	Kind models.Kind
	// Shape is the layer's output shape without the batch axis: (C,H,W) for
	// spatial layers, (F) for flat ones.
	Shape []int
	// Params is the number of learned values (as PyTorch's parameters()).
	Params int
}

// LayerTableResult is a network's layer summary for one input size.
type LayerTableResult struct {
	// Arch is the architecture name; InputH×InputW the input size assumed.
	Arch           string
	InputH, InputW int
	// Rows are the layers in execution order.
	Rows []LayerRow
	// TotalParams is the sum of Params.
	TotalParams int
}

// LayerTable summarises net's layers (name, kind, output shape for an input
// of 3×inputH×inputW, parameter count); see LayerShapes for the shape rules.
// The input size is checked with net.CheckInput.
func LayerTable(net models.Network, inputH, inputW int) (*LayerTableResult, error) {
	if net == nil {
		return nil, errors.New("vizkit.LayerTable: network is nil")
	}
	if err := net.CheckInput([]int{1, 3, inputH, inputW}); err != nil {
		return nil, err
	}
	return LayerShapes(net.Arch(), net.Layers(), inputH, inputW)
}

// LayerShapes computes the layer table from a layer list alone, with the
// geometry of torchvision's VGG modules (models.Layer carries no kernel sizes):
//
//	Conv2d            3×3, stride 1, padding 1: (Out, H, W)
//	BatchNorm2d, ReLU, Dropout: shape unchanged
//	MaxPool2d         2×2, stride 2, floor: (C, ⌊H/2⌋, ⌊W/2⌋)
//	AdaptiveAvgPool2d (C, P, P), P² = the next Linear's inputs / C
//	                  (7 for torchvision's VGG: 512·7·7 = 25088)
//	GlobalAvgPool     (C)
//	Linear            (Out); its In must equal the flattened previous output.
//
// Inconsistencies (a Linear whose inputs do not match, a map shrinking to 0)
// are errors naming the layer.
func LayerShapes(arch string, layers []models.Layer, inputH, inputW int) (*LayerTableResult, error) {
	if inputH < 1 || inputW < 1 {
		return nil, fmt.Errorf("layer table of %s: input size %d×%d must be positive", arch, inputH, inputW)
	}
	t := &LayerTableResult{Arch: arch, InputH: inputH, InputW: inputW}
	shape := []int{3, inputH, inputW}
	for i, l := range layers {
		switch l.Kind {
		case models.Conv2d:
			if len(shape) != 3 || shape[0] != l.In {
				return nil, fmt.Errorf("layer table of %s: %s (Conv2d) expects %d input channels, gets shape %v", arch, l.Name, l.In, shape)
			}
			shape = []int{l.Out, shape[1], shape[2]}
		case models.BatchNorm2d, models.ReLU, models.Dropout:
			shape = append([]int(nil), shape...)
		case models.MaxPool2d:
			if len(shape) != 3 {
				return nil, fmt.Errorf("layer table of %s: %s (MaxPool2d) needs a (C,H,W) input, gets %v", arch, l.Name, shape)
			}
			shape = []int{shape[0], shape[1] / 2, shape[2] / 2}
			if shape[1] == 0 || shape[2] == 0 {
				return nil, fmt.Errorf("layer table of %s: input %d×%d is too small: %s (MaxPool2d) would output %d×%d", arch, inputH, inputW, l.Name, shape[1], shape[2])
			}
		case models.AdaptiveAvgPool2d:
			if len(shape) != 3 {
				return nil, fmt.Errorf("layer table of %s: %s (AdaptiveAvgPool2d) needs a (C,H,W) input, gets %v", arch, l.Name, shape)
			}
			p, err := adaptivePoolSize(arch, layers, i, shape[0])
			if err != nil {
				return nil, err
			}
			shape = []int{shape[0], p, p}
		case models.GlobalAvgPool:
			shape = []int{shape[0]}
		case models.Linear:
			flat := 1
			for _, d := range shape {
				flat *= d
			}
			if flat != l.In {
				return nil, fmt.Errorf("layer table of %s: %s (Linear) expects %d inputs, the previous layer gives %v = %d", arch, l.Name, l.In, shape, flat)
			}
			shape = []int{l.Out}
		default:
			return nil, fmt.Errorf("layer table of %s: %s has kind %s, whose output shape is unknown", arch, l.Name, l.Kind)
		}
		t.Rows = append(t.Rows, LayerRow{Name: l.Name, Kind: l.Kind, Shape: shape, Params: l.Params})
		t.TotalParams += l.Params
	}
	return t, nil
}

// adaptivePoolSize infers an adaptive pool's output side from the next Linear.
func adaptivePoolSize(arch string, layers []models.Layer, i, c int) (int, error) {
	for _, l := range layers[i+1:] {
		if l.Kind != models.Linear {
			continue
		}
		pp := l.In / c
		p := int(math.Round(math.Sqrt(float64(pp))))
		if l.In%c != 0 || p*p != pp {
			return 0, fmt.Errorf("layer table of %s: cannot infer %s's output size: %s takes %d inputs, not %d channels × P × P",
				arch, layers[i].Name, l.Name, l.In, c)
		}
		return p, nil
	}
	return 0, fmt.Errorf("layer table of %s: cannot infer %s's output size: no Linear layer follows it", arch, layers[i].Name)
}

// ShapeString formats a row's output shape as "(64, 224, 224)".
func (r LayerRow) ShapeString() string {
	parts := make([]string, len(r.Shape))
	for i, d := range r.Shape {
		parts[i] = strconv.Itoa(d)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// String renders the table as aligned plain text, with a total line.
func (t *LayerTableResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, input 3×%d×%d (output shapes without the batch axis)\n", t.Arch, t.InputH, t.InputW)
	fmt.Fprintf(&b, "%-14s %-18s %-18s %12s\n", "layer", "kind", "output shape", "parameters")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "%-14s %-18s %-18s %12d\n", r.Name, r.Kind, r.ShapeString(), r.Params)
	}
	fmt.Fprintf(&b, "%-14s %-18s %-18s %12d\n", "total", "", "", t.TotalParams)
	return b.String()
}

// HTML renders the table as a self-contained fragment.
func (t *LayerTableResult) HTML() (string, error) {
	if t == nil {
		return "", errors.New("vizkit: nil LayerTableResult")
	}
	h := render.NewHTML()
	h.Heading(3, fmt.Sprintf("%s layers for a 3×%d×%d input", t.Arch, t.InputH, t.InputW))
	rows := make([][]string, 0, len(t.Rows)+1)
	for _, r := range t.Rows {
		rows = append(rows, []string{r.Name, string(r.Kind), r.ShapeString(), strconv.Itoa(r.Params)})
	}
	rows = append(rows, []string{"total", "", "", strconv.Itoa(t.TotalParams)})
	h.Table([]string{"layer", "kind", "output shape (no batch axis)", "parameters"}, rows)
	if err := h.Err(); err != nil {
		return "", err
	}
	return h.String(), nil
}
