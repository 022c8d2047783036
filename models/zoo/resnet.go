package zoo

import (
	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/resnet"
	"github.com/cnnviz/cnnviz/models/weights"
)

// The ResNet family: torchvision's ResNet-18/34/50/101/152, ResNeXt and Wide
// ResNet. Pretrained weights come from timm's republication of torchvision's
// ("timm/<arch>.tv_in1k"), whose state_dict keys are torchvision's own.
func init() {
	RegisterFamily(&Family{
		Name:      "resnet",
		Recognise: resnet.Recognise,
		Load: func(w *weights.Set, arch string) (models.Network, error) {
			m, err := resnet.LoadAs(w, arch)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
	})
	for _, a := range resnet.Archs() {
		a := a
		RegisterArch(&Arch{Name: a, Family: "resnet", Hub: "timm/" + a + ".tv_in1k", CAMLayer: "layer4",
			Random: func(k int, seed uint64) (models.Network, error) { return resnet.NewRandom(a, k, 1, seed) }})
	}
}
