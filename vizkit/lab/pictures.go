package lab

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/metrics"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// SampleImage draws one sample (pixel values in [0,1]) with its true box
// outlined in render.BoxColor, enlarged scale× (nearest neighbour; scale ≥ 1).
func SampleImage(s *shapes.Sample, scale int) (*image.RGBA, error) {
	if s == nil {
		return nil, errors.New("lab.SampleImage: sample is nil")
	}
	img, err := render.RGBFromCHW(s.Image, s.Size, s.Size, render.Range{Min: 0, Max: 1})
	if err != nil {
		return nil, err
	}
	return boxed(img, s.Box, scale)
}

// boxed enlarges img and draws the box outline 1 pixel wide at the enlarged
// scale (so it does not hide small objects).
func boxed(img image.Image, box image.Rectangle, scale int) (*image.RGBA, error) {
	if scale < 1 {
		return nil, fmt.Errorf("lab: scale must be ≥ 1, got %d", scale)
	}
	big, err := render.UpscaleNearest(img, scale)
	if err != nil {
		return nil, err
	}
	r := image.Rect(box.Min.X*scale, box.Min.Y*scale, box.Max.X*scale, box.Max.Y*scale).Inset(-1)
	return render.DrawBox(big, r, render.BoxColor, 1)
}

// SampleGrid draws samples with their true boxes and class names, cols per
// row, each enlarged scale×.
func SampleGrid(samples []*shapes.Sample, cols, scale int) (*image.RGBA, error) {
	if len(samples) == 0 {
		return nil, errors.New("lab.SampleGrid: no samples")
	}
	tiles := make([]image.Image, len(samples))
	caps := make([]string, len(samples))
	for i, s := range samples {
		img, err := SampleImage(s, scale)
		if err != nil {
			return nil, err
		}
		tiles[i], caps[i] = img, s.Class()
	}
	return render.Grid(tiles, render.GridOptions{Cols: cols, Pad: 4, Captions: caps,
		Title: "shapes: true boxes in green"})
}

// CAMGrid explains the first n images of b with a method of Methods() (e.g.
// "gradcam") for each image's predicted class and draws, per image, the input
// and the map overlaid (jet, pytorch-grad-cam's show_cam_on_image), both with
// the true box and the map's maximum (white square). Captions give the true
// class, the prediction and its probability. cols counts image pairs per row.
func (l *Lab) CAMGrid(ctx context.Context, b *shapes.Batch, method string, n, cols, scale int) (*image.RGBA, error) {
	if b == nil || n < 1 || n > b.N {
		return nil, fmt.Errorf("lab.CAMGrid: n must be in 1..%d", batchLen(b))
	}
	m, err := LookupMethod(method)
	if err != nil {
		return nil, err
	}
	x, err := Input(b)
	if err != nil {
		return nil, err
	}
	hw := b.Size * b.Size
	xs, _ := engine.ArrayFrom(x.Data[:n*3*hw], n, 3, b.Size, b.Size)
	maps, err := m.Maps(ctx, l.Ex, xs)
	if err != nil {
		return nil, err
	}
	if maps, err = metrics.ScaleMaps(maps); err != nil {
		return nil, err
	}
	probs, pred, err := l.Predict(&shapes.Batch{Images: xs.Data, N: n, Size: b.Size, Labels: b.Labels[:n], Samples: b.Samples[:n]})
	if err != nil {
		return nil, err
	}
	var tiles []image.Image
	var caps []string
	for i := 0; i < n; i++ {
		s := b.Samples[i]
		base, err := render.RGBFromCHW(s.Image, s.Size, s.Size, render.Range{Min: 0, Max: 1})
		if err != nil {
			return nil, err
		}
		mp := maps.Index(i)
		ov, err := render.Overlay(base, render.Map{H: b.Size, W: b.Size, Data: mp.Data}, render.Jet, 0.5)
		if err != nil {
			return nil, err
		}
		left, err := boxed(base, s.Box, scale)
		if err != nil {
			return nil, err
		}
		right, err := boxed(ov, s.Box, scale)
		if err != nil {
			return nil, err
		}
		pg, err := metrics.PointingGame(mp, metrics.Region{H: b.Size, W: b.Size, Mask: shapes.BoxMask(s.Box, b.Size, b.Size)}, 0)
		if err != nil {
			return nil, err
		}
		if !pg.Flat {
			c := scale*pg.X + scale/2
			r := scale*pg.Y + scale/2
			if right, err = render.DrawBox(right, image.Rect(c-3, r-3, c+4, r+4), whiteBox, 2); err != nil {
				return nil, err
			}
		}
		hit := "miss"
		if pg.Hit {
			hit = "hit"
		}
		tiles = append(tiles, left, right)
		caps = append(caps, s.Class(), fmt.Sprintf("%s %.2f %s", shapes.Classes[pred[i]], probs.Index(i).Data[pred[i]], hit))
	}
	return render.Grid(tiles, render.GridOptions{Cols: 2 * cols, Pad: 4, Captions: caps, MaxCaptionChars: 20,
		Title: fmt.Sprintf("%s of the predicted class; green: true box, white: map maximum", m.Title)})
}

// whiteBox marks the map maximum.
var whiteBox = color.RGBA{R: 255, G: 255, B: 255, A: 255}

func batchLen(b *shapes.Batch) int {
	if b == nil {
		return 0
	}
	return b.N
}

// FirstLayerKernels draws the first convolution's kernels as RGB tiles
// (vizkit.Kernels): after training they show the colour-opponent edge and
// corner detectors the network learnt.
func (l *Lab) FirstLayerKernels() (*image.RGBA, error) {
	k, err := vizkit.KernelsOf(l.Model, "features.0", vizkit.KernelOptions{})
	if err != nil {
		return nil, err
	}
	return k.WithStyle(vizkit.KernelStyle{Scale: 16, Cols: 8, Diverging: true, Title: "features.0 kernels (RGB, grey = 0)"}).Image()
}
