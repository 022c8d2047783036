package zoo

import (
	"fmt"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/models/weights"
)

func init() {
	RegisterFamily(&Family{
		Name: "vgg",
		Recognise: func(w *weights.Set) bool {
			// features.N convs (not DenseNet's features.conv0 or MobileNet's
			// features.0.0) and a classifier that starts with a Linear at
			// classifier.0 (AlexNet's starts with a Dropout: classifier.1).
			return w.Has("features.0.weight") && !w.Has("features.conv0.weight") && !w.Has("features.0.0.weight") &&
				!w.Has("classifier.1.weight") && (w.Has("classifier.0.weight") || w.Has("classifier.6.weight"))
		},
		Load: func(w *weights.Set, arch string) (models.Network, error) {
			m, err := vgg.Load(w)
			if err != nil {
				return nil, err
			}
			if arch != "" && m.Config.Arch != arch {
				got := m.Config.Arch
				m.Close()
				return nil, fmt.Errorf("--model %s but the weights in %s are a %s", arch, w.Source, got)
			}
			return m, nil
		},
	})
	for _, a := range vgg.Archs() {
		a := a
		cam := ""
		if cfg, err := vgg.StandardConfig(a, 1000, 1); err == nil {
			for _, l := range cfg.Layers() {
				if l.Spatial && l.Kind != models.AdaptiveAvgPool2d {
					cam = l.Name // The last max-pool: pytorch-grad-cam's model.features[-1].
				}
			}
		}
		RegisterArch(&Arch{Name: a, Family: "vgg", Hub: "timm/" + a + ".tv_in1k", CAMLayer: cam,
			Random: func(k int, seed uint64) (models.Network, error) { return vgg.NewRandom(a, k, 1, seed) }})
	}
}
