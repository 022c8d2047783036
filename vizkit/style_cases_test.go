package vizkit

import (
	"image"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

type styleKernelCase struct {
	name string
	make func(models.Network) (*KernelsResult, error)
}

func styleKernelCases() []styleKernelCase {
	return []styleKernelCase{
		{"default features.0", func(m models.Network) (*KernelsResult, error) { return KernelsOf(m, "features.0", KernelOptions{}) }},
		{"default features.3", func(m models.Network) (*KernelsResult, error) { return KernelsOf(m, "features.3", KernelOptions{}) }},
		{"styled features.0", func(m models.Network) (*KernelsResult, error) {
			k, err := KernelsOf(m, "features.0", KernelOptions{SortByNorm: true, MaxOut: 6})
			if err != nil {
				return nil, err
			}
			return k.WithStyle(KernelStyle{Norm: NormShared, Diverging: true, Scale: 5, Pad: 3, Cols: 4, Title: "t"}), nil
		}},
		{"styled features.3", func(m models.Network) (*KernelsResult, error) {
			k, err := KernelsOf(m, "features.3", KernelOptions{View: KernelViewL2, MaxOut: 10})
			if err != nil {
				return nil, err
			}
			k.Style = KernelStyle{Colormap: render.Magma, Pad: -1, Cols: 5, NoCaptions: true}
			return k, nil
		}},
	}
}

type styleFeatureCase struct {
	name string
	make func(*engine.Explainer, *Array) (*FeatureMapsResult, error)
}

func styleFeatureCases(base image.Image) []styleFeatureCase {
	layers := []string{"features.1", "features.9"}
	return []styleFeatureCase{
		{"default", func(ex *engine.Explainer, x *Array) (*FeatureMapsResult, error) {
			r, err := FeatureMapsOf(ex, x, layers, FeatureOptions{})
			if err != nil {
				return nil, err
			}
			r.Image = base
			return r, nil
		}},
		{"styled", func(ex *engine.Explainer, x *Array) (*FeatureMapsResult, error) {
			r, err := FeatureMapsOf(ex, x, layers, FeatureOptions{Select: SelectTopMean, N: 5})
			if err != nil {
				return nil, err
			}
			r.Image = base
			return r.WithStyle(FeatureStyle{Norm: NormShared, Colormap: render.Magma, Scale: 2, Pad: -1, Cols: 3, NoCaptions: true, Alpha: 0.3}), nil
		}},
	}
}
