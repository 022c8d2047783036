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
			return KernelsOf(m, "features.0", KernelOptions{SortByNorm: true, MaxOut: 6, Norm: NormShared, Diverging: true, Scale: 5, Pad: 3, Cols: 4, Title: "t"})
		}},
		{"styled features.3", func(m models.Network) (*KernelsResult, error) {
			return KernelsOf(m, "features.3", KernelOptions{View: KernelViewL2, MaxOut: 10, Colormap: render.Magma, Pad: -1, Cols: 5, NoCaptions: true})
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
			return FeatureMapsOf(ex, x, layers, FeatureOptions{Image: base})
		}},
		{"styled", func(ex *engine.Explainer, x *Array) (*FeatureMapsResult, error) {
			return FeatureMapsOf(ex, x, layers, FeatureOptions{Select: SelectTopMean, N: 5, Image: base,
				Norm: NormShared, Colormap: render.Magma, Scale: 2, Pad: -1, Cols: 3, NoCaptions: true, Alpha: 0.3})
		}},
	}
}
