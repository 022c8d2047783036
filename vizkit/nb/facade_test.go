package nb

import (
	"strings"
	"testing"
	"time"

	"github.com/cnnviz/cnnviz/models/shapes"
	"github.com/cnnviz/cnnviz/models/smallcnn"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/imageio"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

func TestProgressHTML(t *testing.T) {
	h := ProgressHTML(vizkit.Progress{Task: "Score-CAM <x>", Done: 3, Total: 12, Elapsed: 1500 * time.Millisecond})
	for _, w := range []string{"Score-CAM &lt;x&gt;", "width:25%", "3 / 12", "1.5 s"} {
		if !strings.Contains(h, w) {
			t.Fatalf("progress bar lacks %q: %s", w, h)
		}
	}
	if h := ProgressHTML(vizkit.Progress{Done: 5, Total: 0}); !strings.Contains(h, "width:0%") {
		t.Fatalf("a bar with no total: %s", h)
	}
}

// The bar redraws one output by id, throttled, and always shows the end.
func TestProgressBarUpdatesInPlace(t *testing.T) {
	ids := map[string]int{}
	var last string
	old := updateHTML
	updateHTML = func(id, h string) { ids[id]++; last = h }
	defer func() { updateHTML = old }()
	p := NewProgress("steps")
	for i := 1; i <= 100; i++ {
		p.Update(vizkit.Progress{Done: i, Total: 100})
	}
	if len(ids) != 1 {
		t.Fatalf("the bar used %d outputs", len(ids))
	}
	for _, n := range ids {
		if n > 10 {
			t.Fatalf("100 fast updates redrew the bar %d times", n)
		}
	}
	if !strings.Contains(last, "100 / 100") || !strings.Contains(last, "steps") {
		t.Fatalf("final state: %s", last)
	}
}

func TestCAMLayersOfVGG11(t *testing.T) {
	m, err := vgg.NewRandom("vgg11", 10, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	layers, def, err := camLayers(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(layers, " "); def != "features.20" || got != "features.1 features.4 features.9 features.14 features.20" {
		t.Fatalf("explorer layers %q, default %q", got, def)
	}
}

// Without a live browser the explorers show their static views at once.
func TestExplorersStaticFallback(t *testing.T) {
	t.Setenv("CNNVIZ_STATIC", "1")
	shown := record(t, true)
	if Interactive() {
		t.Fatal("Interactive with CNNVIZ_STATIC=1")
	}
	net, err := smallcnn.Pretrained()
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	m, err := vizkit.FromNetwork(net, vizkit.Preprocessing(imageio.Preprocess{Mean: shapes.Mean, Std: shapes.Std}), vizkit.ClassNames(shapes.Classes))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := shapes.Generate(shapes.Config{}, smallcnn.DefaultTestSeed, 0)
	if err != nil {
		t.Fatal(err)
	}
	pic, err := render.RGBFromCHW(s.Image, s.Size, s.Size, render.Range{Min: 0, Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	img, err := vizkit.NewImage("sample", pic)
	if err != nil {
		t.Fatal(err)
	}
	if err := CAMExplorer(m, img); err != nil {
		t.Fatal(err)
	}
	if err := LayerBrowser(m, img); err != nil {
		t.Fatal(err)
	}
	if len(*shown) != 2 {
		t.Fatalf("the explorers showed %d outputs, want 2", len(*shown))
	}
	for i, want := range []string{"of the most probable classes at", "mean over all channels"} {
		h := (*shown)[i]
		if !strings.Contains(h, want) || !strings.Contains(h, "Static view") || strings.Count(h, "data:image/png;base64,") < 2 {
			t.Fatalf("output %d lacks %q or pictures", i, want)
		}
	}
	if !strings.Contains((*shown)[0], s.Class()) {
		t.Fatalf("the CAM explorer does not name the true class %q", s.Class())
	}
	// The notebook side of the façade: banners go to the cell.
	cell{}.Display("<b>banner</b>")
	if (*shown)[2] != "<b>banner</b>" {
		t.Fatal("cell.Display did not display")
	}
}
