package zoo

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/densenet"
	"github.com/cnnviz/cnnviz/models/weights"
)

// DenseNet: torchvision's weights as timm republishes them on the hub
// (timm/densenet121.tv_in1k, …). timm's DenseNet keeps torchvision's module
// names (its _filter_torchvision_pretrained only renames torchvision's
// old-style "denselayerN.norm.1.weight" keys, as torchvision's own loader
// does), so no FromTimm is needed; densenet.Load accepts both key styles.
// Default CAM module: features.norm5 (pytorch-grad-cam's choice; see the
// densenet package doc for how its in-place ReLU changes what that tool sees).
func init() {
	RegisterFamily(&Family{
		Name:      "densenet",
		Recognise: isDenseNet,
		Load: func(w *weights.Set, arch string) (models.Network, error) {
			m, err := densenet.Load(w)
			if err != nil {
				return nil, err
			}
			if arch != "" && m.Config.Arch != arch {
				got := m.Config.Arch
				m.Close()
				return nil, fmt.Errorf("--model %s but the weights in %s are a %s (growth rate %d, blocks %v, %d initial features)",
					arch, w.Source, got, m.Config.GrowthRate, m.Config.BlockConfig, m.Config.InitFeatures)
			}
			return m, nil
		},
	})
	for _, a := range densenet.Archs() {
		a := a
		RegisterArch(&Arch{Name: a, Family: "densenet", Hub: "timm/" + a + ".tv_in1k", CAMLayer: "features.norm5",
			Random: func(k int, seed uint64) (models.Network, error) { return densenet.NewRandom(a, k, seed) }})
	}
}

// isDenseNet recognises torchvision DenseNet weights (new- or old-style keys).
func isDenseNet(w *weights.Set) bool {
	return w.Has("features.conv0.weight") && w.Has("features.norm5.weight") &&
		(w.Has("features.denseblock1.denselayer1.norm1.weight") || w.Has("features.denseblock1.denselayer1.norm.1.weight"))
}
