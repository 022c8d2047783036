package smallcnn

import (
	_ "embed"

	"github.com/cnnviz/cnnviz/models/weights"
)

// shapesWeights are the committed lab weights: DefaultConfig trained with
// DefaultTrainOptions (go run ./models/smallcnn/cmd/train).
//
//go:embed shapes.safetensors
var shapesWeights []byte

// PretrainedFile is the committed weights' path relative to the repository root.
const PretrainedFile = "models/smallcnn/shapes.safetensors"

// Pretrained returns the lab model trained on the shapes data set, from the
// weights embedded in the binary (no file or network access). How it was
// trained is recorded in PretrainedWeights().Metadata.
func Pretrained() (*Model, error) {
	w, err := PretrainedWeights()
	if err != nil {
		return nil, err
	}
	return Load(w)
}

// PretrainedWeights returns the embedded lab weights (torchvision names,
// PyTorch layouts) with their training metadata.
func PretrainedWeights() (*weights.Set, error) {
	return weights.ParseSafetensors(shapesWeights, "smallcnn pretrained on shapes (embedded "+PretrainedFile+")")
}
