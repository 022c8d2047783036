package zoo

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/mobilenet"
	"github.com/cnnviz/cnnviz/models/weights"
)

// MobileNetV2URL is torchvision's ImageNet checkpoint of mobilenet_v2
// (IMAGENET1K_V1), loaded through PyTorch's checkpoint cache.
const MobileNetV2URL = "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"

// MobileNet-V2: torchvision's checkpoint; default CAM module features.18
// (the last Conv2dNormActivation, pytorch-grad-cam's choice).
func init() {
	RegisterFamily(&Family{
		Name:      "mobilenet",
		Recognise: isMobileNetV2,
		Load: func(w *weights.Set, arch string) (models.Network, error) {
			if arch != "" && arch != mobilenet.Arch {
				return nil, fmt.Errorf("--model %s but the weights in %s are a %s", arch, w.Source, mobilenet.Arch)
			}
			return mobilenet.Load(w)
		},
	})
	RegisterArch(&Arch{Name: mobilenet.Arch, Family: "mobilenet", URL: MobileNetV2URL, CAMLayer: "features.18",
		Random: func(k int, seed uint64) (models.Network, error) { return mobilenet.NewRandom(1, k, seed) }})
}

// isMobileNetV2 recognises torchvision MobileNet-V2 weights.
func isMobileNetV2(w *weights.Set) bool {
	return w.Has("features.0.0.weight") && w.Has("features.1.conv.0.0.weight") && w.Has("classifier.1.weight")
}
