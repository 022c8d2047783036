package zoo

import (
	"fmt"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/alexnet"
	"github.com/cnnviz/cnnviz/models/weights"
)

// AlexNet: torchvision's checkpoint (alexnet.URL), cached where PyTorch caches
// it ($TORCH_HOME/hub/checkpoints). Its default CAM module is features.12, the
// last max-pool.
func init() {
	RegisterFamily(&Family{
		Name:      "alexnet",
		Recognise: alexnet.Recognise,
		Load: func(w *weights.Set, arch string) (models.Network, error) {
			m, err := alexnet.Load(w)
			if err != nil {
				return nil, err
			}
			if arch != "" && !strings.EqualFold(arch, m.Config.Arch) {
				got := m.Config.Arch
				m.Close()
				return nil, fmt.Errorf("--model %s but the weights in %s are an %s (widths %v, hidden %v)", arch, w.Source, got, m.Config.Convs, m.Config.Hidden)
			}
			return m, nil
		},
	})
	RegisterArch(&Arch{Name: "alexnet", Family: "alexnet", URL: alexnet.URL, CAMLayer: "features.12",
		Random: func(k int, seed uint64) (models.Network, error) { return alexnet.NewRandom(k, 1, seed) }})
}
