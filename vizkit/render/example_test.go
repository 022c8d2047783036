package render

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/heatmap"
)

var examplesDir = flag.String("examples-dir", "", "if set, TestWriteExamples writes demo PNG and HTML files there")

// demoImage is a W×H synthetic "photo": a sky-to-ground gradient with a bright disc.
func demoImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fy := float64(y) / float64(h)
			c := color.RGBA{R: uint8(90 + 80*fy), G: uint8(140 + 60*(1-fy)), B: uint8(220 - 150*fy), A: 255}
			dx, dy := float64(x)-0.3*float64(w), float64(y)-0.6*float64(h)
			if dx*dx+dy*dy < 0.03*float64(w*h) {
				c = color.RGBA{R: 240, G: 200, B: 60, A: 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// demoMap returns an h×w map filled by f(y/h, x/w).
func demoMap(h, w int, f func(y, x float64) float64) Map {
	m, _ := heatmap.Zeros(h, w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Data[y*w+x] = float32(f(float64(y)/float64(h), float64(x)/float64(w)))
		}
	}
	return m
}

func buildExamples() (*image.RGBA, *HTML, error) {
	// 1. Colormap strips.
	ramp := demoMap(14, 256, func(_, x float64) float64 { return x })
	var strips []image.Image
	var names []string
	for _, c := range []Colormap{Viridis, Magma, Inferno, Plasma, Gray, Jet, RdBuR} {
		res, err := Colorize(ramp, c, Range{})
		if err != nil {
			return nil, nil, err
		}
		strips = append(strips, res.Image)
		names = append(names, c.Name())
	}
	stripGrid, err := Grid(strips, GridOptions{Cols: 1, Pad: 3, Captions: names, Title: "Colormaps"})
	if err != nil {
		return nil, nil, err
	}

	// 2. Feature maps, including a constant and a partly NaN one.
	var maps []image.Image
	var caps []string
	for i := 0; i < 8; i++ {
		k := float64(i + 1)
		m := demoMap(14, 14, func(y, x float64) float64 {
			return math.Max(0, math.Sin(k*x*math.Pi)*math.Cos(k*0.7*y*math.Pi))
		})
		switch i {
		case 6:
			m, _ = heatmap.Zeros(14, 14)
		case 7:
			for j := 0; j < 14; j++ {
				m.Data[j*14+j] = float32(math.NaN())
			}
		}
		res, err := Colorize(m, Viridis, Range{})
		if err != nil {
			return nil, nil, err
		}
		maps = append(maps, res.Image)
		cap := fmt.Sprintf("ch %d", i)
		if res.Flat {
			cap += " flat"
		} else if res.NonFinite > 0 {
			cap += fmt.Sprintf(" %d NaN", res.NonFinite)
		}
		caps = append(caps, cap)
	}
	mapGrid, err := Grid(maps, GridOptions{Cols: 4, Pad: 4, Scale: 4, Captions: caps, Title: "conv3 feature maps"})
	if err != nil {
		return nil, nil, err
	}

	// 3. First-layer style RGB kernels, 3×3, enlarged.
	var kernels []image.Image
	for i := 0; i < 6; i++ {
		data := make([]float32, 27)
		for j := range data {
			data[j] = float32(math.Sin(float64(i*27+j) * 0.77))
		}
		img, err := RGBFromCHW(data, 3, 3, Range{})
		if err != nil {
			return nil, nil, err
		}
		kernels = append(kernels, img)
	}
	kernelGrid, err := Grid(kernels, GridOptions{Cols: 6, Pad: 6, Scale: 10, Background: color.RGBA{R: 40, G: 40, B: 40, A: 255}, Title: "conv1 kernels"})
	if err != nil {
		return nil, nil, err
	}

	// 4. Grad-CAM style overlay of a 7×7 map on a 112×112 image, and a diverging map.
	base := demoImage(112, 112)
	cam := demoMap(7, 7, func(y, x float64) float64 {
		return math.Exp(-((x-0.3)*(x-0.3) + (y-0.6)*(y-0.6)) / 0.05)
	})
	cam, err = heatmap.ScaleCAM(cam)
	if err != nil {
		return nil, nil, err
	}
	over, err := Overlay(base, cam, Jet, 0.5)
	if err != nil {
		return nil, nil, err
	}
	sal := demoMap(56, 56, func(y, x float64) float64 { return math.Sin(6*x) * math.Cos(5*y) * (x - 0.2) })
	div, err := Colorize(sal, RdBuR, heatmap.Diverging(sal))
	if err != nil {
		return nil, nil, err
	}
	divUp, err := UpscaleNearest(div.Image, 2)
	if err != nil {
		return nil, nil, err
	}
	overGrid, err := Grid([]image.Image{base, over, divUp}, GridOptions{Cols: 3, Pad: 4,
		Captions: []string{"input", "Grad-CAM", "saliency"}, Title: "Overlay (jet, alpha 0.5) and RdBu_r"})
	if err != nil {
		return nil, nil, err
	}
	bar, err := Colorbar(RdBuR, div.Range, 240, 44, "gradient x input")
	if err != nil {
		return nil, nil, err
	}
	jetBar, err := Colorbar(Jet, Range{Min: 0, Max: 1}, 240, 44, "class activation")
	if err != nil {
		return nil, nil, err
	}
	bars, err := Grid([]image.Image{jetBar, bar}, GridOptions{Cols: 2, Pad: 4})
	if err != nil {
		return nil, nil, err
	}

	all, err := Grid([]image.Image{stripGrid, mapGrid, overGrid, kernelGrid, bars}, GridOptions{
		Cols: 2, Pad: 8, Compact: true, Background: color.RGBA{R: 250, G: 250, B: 250, A: 255}, Title: "cnnviz vizkit/render demo"})
	if err != nil {
		return nil, nil, err
	}

	h := NewHTML().Heading(1, "cnnviz render demo").
		Paragraph("Everything below is embedded in this file: no network access needed.").
		Warning("Random weights: these maps mean nothing.").
		Figure([]FigureItem{{Image: over, Caption: "Grad-CAM"}, {Image: div.Image, Caption: "saliency", WidthPx: 112}}, FigureOptions{Title: "Overlay"}).
		Figure([]FigureItem{{Image: maps[0], Caption: caps[0], WidthPx: 56}, {Image: maps[6], Caption: caps[6], WidthPx: 56}}, FigureOptions{Pixelated: true, Title: "Feature maps"}).
		Image(bar, "colour bar", 0).
		Table([]string{"layer", "channels", "max"}, [][]string{{"conv1", "64", "3.25"}, {"conv2", "128", "0"}})
	return all, h, h.Err()
}

// TestWriteExamples renders the demo picture. It always builds it (so a layout error
// fails the test) and writes example_render.png and example_render.html only with
//
//	go test ./vizkit/render -run TestWriteExamples -args -examples-dir=/tmp/render-demo
func TestWriteExamples(t *testing.T) {
	img, h, err := buildExamples()
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	if *examplesDir == "" {
		t.Logf("demo is %v, %d bytes as PNG; pass -args -examples-dir=DIR to write it", img.Bounds(), len(data))
		return
	}
	if err := os.MkdirAll(*examplesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*examplesDir, "example_render.png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*examplesDir, "example_render.html"), []byte(h.Page("cnnviz render demo")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%v, %d bytes) and example_render.html", filepath.Join(*examplesDir, "example_render.png"), img.Bounds(), len(data))
}
