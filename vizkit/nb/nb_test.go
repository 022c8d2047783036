package nb

import (
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/render"
)

// record swaps the notebook indirections for the test's duration.
func record(t *testing.T, notebook bool) *[]string {
	t.Helper()
	var shown []string
	oldIn, oldDisplay := inNotebook, displayHTML
	inNotebook = func() bool { return notebook }
	displayHTML = func(html string) { shown = append(shown, html) }
	t.Cleanup(func() { inNotebook, displayHTML = oldIn, oldDisplay; SetOutputDir("") })
	return &shown
}

func testImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(40 * i)
	}
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	return img
}

type fakeResult struct {
	html string
	err  error
}

func (f fakeResult) HTML() (string, error) { return f.html, f.err }

var _ vizkit.HTMLer = fakeResult{}

// TestShowOutsideNotebook: the real gonbui reports no notebook under `go
// test`, and Show then displays nothing, writes nothing and never panics,
// whatever it is given.
func TestShowOutsideNotebook(t *testing.T) {
	if os.Getenv("GONB_PIPE") != "" {
		t.Skip("running inside GoNB")
	}
	if IsNotebook() {
		t.Fatal("IsNotebook is true outside GoNB")
	}
	shown := record(t, false)
	inNotebook = defaultInNotebook
	dir := t.TempDir()
	wd, _ := os.Getwd()
	for _, v := range []any{testImage(), nil, 42, (*image.RGBA)(nil), fakeResult{err: errors.New("boom")}, render.NewHTML()} {
		Show(v)
	}
	if len(*shown) != 0 {
		t.Fatalf("Show displayed %d outputs outside a notebook", len(*shown))
	}
	for _, d := range []string{dir, wd} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "show_") {
				t.Fatalf("Show wrote %s without SetOutputDir", e.Name())
			}
		}
	}
}

func TestShowInNotebook(t *testing.T) {
	shown := record(t, true)
	img := testImage()
	Show(img)
	Show(fakeResult{html: "<b>kernels</b>"})
	Show(render.NewHTML().Paragraph("a & b"))
	Show(errors.New("layer \"x\" not found"))
	Show(42)
	Show((*image.RGBA)(nil))
	Show(fakeResult{err: errors.New("channel 70 is out of range")})
	if len(*shown) != 7 {
		t.Fatalf("%d outputs, want 7", len(*shown))
	}
	uri, err := render.DataURI(img)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{uri, "<b>kernels</b>", "a &amp; b", "layer &#34;x&#34; not found", "cannot display a int",
		"rendering a *image.RGBA failed", "channel 70 is out of range"} {
		if !strings.Contains((*shown)[i], want) {
			t.Errorf("output %d lacks %q: %.200s", i, want, (*shown)[i])
		}
	}
	for _, i := range []int{3, 4, 5, 6} {
		if !strings.Contains((*shown)[i], `role="alert"`) {
			t.Errorf("output %d is not a warning box", i)
		}
	}
}

func TestSetOutputDir(t *testing.T) {
	shown := record(t, false)
	dir := filepath.Join(t.TempDir(), "out")
	SetOutputDir(dir)
	Show(testImage())
	Show(fakeResult{html: "<i>second</i>"})
	if len(*shown) != 0 {
		t.Fatal("displayed outside a notebook")
	}
	first, err := os.ReadFile(filepath.Join(dir, "show_001.html"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(dir, "show_002.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "data:image/png;base64,") || !strings.HasPrefix(string(first), "<!DOCTYPE html>") {
		t.Fatalf("first page: %.300s", first)
	}
	if !strings.Contains(string(second), "<i>second</i>") {
		t.Fatalf("second page: %.300s", second)
	}
	// An unwritable directory is reported, not fatal.
	var logged []error
	oldLog := logError
	logError = func(err error) { logged = append(logged, err) }
	defer func() { logError = oldLog }()
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	SetOutputDir(filepath.Join(blocker, "sub"))
	Show(testImage())
	if len(logged) != 1 {
		t.Fatalf("%d errors logged for an unwritable directory, want 1", len(logged))
	}
}

func TestRender(t *testing.T) {
	if _, err := Render(nil); err == nil {
		t.Fatal("nil: no error")
	}
	if _, err := Render(struct{}{}); err == nil || !strings.Contains(err.Error(), "cannot display a struct {}") {
		t.Fatalf("struct: %v", err)
	}
	bad := render.NewHTML().Image(nil, "missing", 0)
	if _, err := Render(bad); err == nil {
		t.Fatal("*render.HTML with a failure: no error")
	}
	html, err := Render(testImage())
	if err != nil || !strings.Contains(html, "<img") {
		t.Fatalf("image: %v %.100s", err, html)
	}
}
