package zoo

import (
	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/onnx"
)

// ONNX graphs open through Open (the CLI's --weights FILE.onnx): the
// network's Arch is "onnx:<file name without extension>".
func init() {
	RegisterFileLoader(".onnx", func(path string) (models.Network, error) {
		m, err := onnx.Load(path)
		if err != nil {
			return nil, err
		}
		return m, nil
	})
}
