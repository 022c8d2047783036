package vizkit

import (
	"context"
	"image"
	"image/color/palette"
	"image/draw"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit/cam"
	"github.com/cnnviz/cnnviz/vizkit/engine"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// TestWriteCAMDocsImage regenerates docs/img/cam_methods.png: every CAM
// method on testdata/images/chelsea.jpg with the tiny golden VGG11 (random
// weights with non-zero biases; class 3). Skipped unless
// CNNVIZ_WRITE_DOCS=1:
//
//	CNNVIZ_WRITE_DOCS=1 go test ./vizkit -run TestWriteCAMDocsImage
func TestWriteCAMDocsImage(t *testing.T) {
	if os.Getenv("CNNVIZ_WRITE_DOCS") != "1" {
		t.Skip("set CNNVIZ_WRITE_DOCS=1 to regenerate docs/img/cam_methods.png")
	}
	ex := vtest.GoldenExplainer(t, "tinyvgg11.safetensors")
	img, err := imageio.Load(filepath.Join("..", "testdata", "images", "chelsea.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := imageio.DefaultImageNet().Apply(img)
	if err != nil {
		t.Fatal(err)
	}
	x := &Array{Shape: []int{1, in.C, in.H, in.W}, Data: in.Data}
	var results []*CAMResult
	for _, name := range []string{"gradcam", "hirescam", "gradcamelementwise", "gradcampp", "xgradcam", "layercam",
		"eigencam", "eigengradcam", "scorecam", "ablationcam", "fullgrad"} {
		r, err := cam.Compute(context.Background(), ex, x, cam.Options{Method: name, Target: engine.Class(3)})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, &CAMResult{Result: r})
	}
	grid, err := CompareCAMs(in.Image, results, 0, CAMStyle{Cols: 6, TilePx: 128})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join("..", "docs", "img", "cam_methods.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	// 8-bit palette (Plan 9's 256 colours, Floyd–Steinberg): a third of the
	// RGBA file's size, to keep the docs image under 200 KB.
	pal := image.NewPaletted(grid.Bounds(), palette.Plan9)
	draw.FloydSteinberg.Draw(pal, grid.Bounds(), grid, image.Point{})
	if err := render.WritePNG(out, pal); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(out)
	t.Logf("wrote %s (%d bytes, %v)", out, st.Size(), grid.Bounds())
	if st.Size() > 200_000 {
		t.Fatalf("%s is %d bytes, over 200 KB", out, st.Size())
	}
}
