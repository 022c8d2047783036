// Package nb is the thin glue between cnnviz results and GoNB (Jupyter) cells.
//
//	res, err := vizkit.FeatureMapsOf(ex, x, []string{"features.4"}, vizkit.FeatureOptions{})
//	nb.Show(res)
//
// Show displays anything with an HTML() (string, error) method (every cnnviz
// result: vizkit.HTMLer), an image.Image, a *render.HTML builder, or an error,
// as one self-contained HTML output: images are embedded as PNG data URIs, so
// a notebook exported to HTML (jupyter nbconvert) keeps them.
//
// Outside a notebook (gonbui.IsNotebook is false: no GoNB kernel started the
// program) Show is a no-op that never fails and renders nothing, unless
// SetOutputDir names a folder: then each Show writes one complete HTML page
// there (show_001.html, show_002.html, …), which is handy for scripts and
// tests that use the same code as a notebook.
package nb

import (
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/cnnviz/cnnviz/vizkit/render"
	"github.com/janpfeifer/gonb/gonbui"
)

var (
	mu        sync.Mutex
	outputDir string
	written   int

	// Indirections for tests: whether we run inside GoNB, and how HTML is sent.
	inNotebook  = defaultInNotebook
	displayHTML = displayAndSync
	logError    = func(err error) { fmt.Fprintf(os.Stderr, "cnnviz/nb: %v\n", err) }
)

func defaultInNotebook() bool { return gonbui.IsNotebook }

// syncTimeout bounds the wait for GoNB's acknowledgement in displayAndSync.
const syncTimeout = 10 * time.Second

// displayAndSync sends html to the cell and waits until GoNB has taken it
// (gonbui.Sync, at most syncTimeout). Without the wait, a large output shown
// just before the cell's program exits can be lost: GoNB closes its end of
// the pipe when the program ends, possibly before it has read the whole
// message (seen once in CI: a 2 MB feature-map grid, the cell's last
// statement, never appeared). GoNB answers a sync only after the messages
// before it, so the acknowledgement means the display went out. If GoNB never
// answers, the cell goes on after syncTimeout (the waiting goroutine stays
// blocked until the program exits).
func displayAndSync(html string) {
	gonbui.DisplayHTML(html)
	done := make(chan struct{})
	go func() {
		gonbui.Sync()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(syncTimeout):
	}
}

// IsNotebook reports whether the program runs inside a GoNB kernel.
func IsNotebook() bool { return inNotebook() }

// SetOutputDir makes Show, outside a notebook, write each shown value as a
// full HTML page into dir (created if needed) instead of doing nothing; ""
// restores the no-op. Inside a notebook it has no effect. Failures to write are
// reported on stderr, never returned or panicked.
func SetOutputDir(dir string) {
	mu.Lock()
	defer mu.Unlock()
	outputDir = dir
	written = 0
}

// Show displays v in the running GoNB cell (see the package documentation for
// the accepted types). Rendering errors are displayed in the cell as a
// warning box. Outside a notebook it does nothing (or writes a page, see
// SetOutputDir) and never fails.
func Show(v any) {
	if inNotebook() {
		html, err := Render(v)
		if err != nil {
			html = render.NewHTML().Warning(err.Error()).String()
		}
		displayHTML(html)
		return
	}
	mu.Lock()
	dir := outputDir
	if dir != "" {
		written++
	}
	n := written
	mu.Unlock()
	if dir == "" {
		return
	}
	html, err := Render(v)
	if err != nil {
		html = render.NewHTML().Warning(err.Error()).String()
	}
	page := "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>cnnviz</title>\n</head>\n<body>\n" + html + "</body>\n</html>\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logError(err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("show_%03d.html", n)), []byte(page), 0o644); err != nil {
		logError(err)
	}
}

// Render returns the HTML fragment Show displays for v: an HTMLer's HTML(),
// a *render.HTML's String() (failing with its Err()), an image embedded as a
// PNG data URI, or an error as a warning box. Other types are an error naming
// the type. A panic while rendering (e.g. a typed nil image) is returned as an
// error.
func Render(v any) (html string, err error) {
	defer func() {
		if p := recover(); p != nil {
			html, err = "", fmt.Errorf("nb.Show: rendering a %T failed: %v", v, p)
		}
	}()
	switch x := v.(type) {
	case nil:
		return "", errors.New("nb.Show: nothing to show (nil)")
	case *render.HTML:
		if x == nil {
			return "", errors.New("nb.Show: nil *render.HTML")
		}
		if err := x.Err(); err != nil {
			return "", err
		}
		return x.String(), nil
	case vizkit.HTMLer:
		return x.HTML()
	case image.Image:
		h := render.NewHTML().Image(x, "", 0)
		if err := h.Err(); err != nil {
			return "", err
		}
		return h.String(), nil
	case error:
		return render.NewHTML().Warning(x.Error()).String(), nil
	}
	return "", fmt.Errorf("nb.Show: cannot display a %T; want image.Image, *render.HTML, an error, or a type with HTML() (string, error)", v)
}
