package nb

import (
	"fmt"
	"html"
	"os"
	"sync"
	"time"

	"github.com/cnnviz/cnnviz/vizkit"
	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/comms"
	"github.com/janpfeifer/gonb/gonbui/dom"
)

// Importing nb inside a GoNB kernel connects the vizkit façade to the cell:
// vizkit.Open shows its random-weights banner and download progress, and long
// calls (Score-CAM, SmoothGrad, activation maximisation, …) show progress bars.
func init() {
	if gonbui.IsNotebook {
		vizkit.SetNotebook(cell{})
	}
}

// Indirection for tests: in-place updates of an output by id.
var updateHTML = gonbui.UpdateHTML

type cell struct{}

func (cell) Display(h string) { displayHTML(h) }

func (cell) Progress(task string) func(vizkit.Progress) { return NewProgress(task).Update }

func (cell) Download(task string) func(done, total int64) {
	id := "cnnviz_download_" + gonbui.UniqueId()
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 200*time.Millisecond && done != total {
			return
		}
		last = time.Now()
		msg := fmt.Sprintf("%s: %.0f MB", task, float64(done)/1e6)
		if total > 0 {
			msg += fmt.Sprintf(" of %.0f MB", float64(total)/1e6)
		}
		updateHTML(id, `<div style="font:13px system-ui,sans-serif;margin:4px 0">`+html.EscapeString(msg)+`</div>`)
	}
}

// ProgressBar is an in-place progress bar in the running cell: one output
// that each Update redraws (gonbui.UpdateHTML). Under nbconvert (no live
// browser) the saved notebook keeps its last state.
type ProgressBar struct {
	id, task string
	t0       time.Time
	mu       sync.Mutex
	last     time.Time
}

// NewProgress shows an empty progress bar labelled task.
func NewProgress(task string) *ProgressBar {
	p := &ProgressBar{id: "cnnviz_progress_" + gonbui.UniqueId(), task: task, t0: time.Now()}
	updateHTML(p.id, ProgressHTML(vizkit.Progress{Task: task, Total: 1}))
	return p
}

// Update redraws the bar (at most 10 times a second, and always at the end).
func (p *ProgressBar) Update(pr vizkit.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.Done < pr.Total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	if pr.Task == "" {
		pr.Task = p.task
	}
	if pr.Elapsed == 0 {
		pr.Elapsed = time.Since(p.t0)
	}
	updateHTML(p.id, ProgressHTML(pr))
}

// ProgressHTML draws a progress bar: the task, a bar filled Done/Total, the
// count and the elapsed time.
func ProgressHTML(p vizkit.Progress) string {
	frac := 0.0
	if p.Total > 0 {
		frac = min(max(float64(p.Done)/float64(p.Total), 0), 1)
	}
	return fmt.Sprintf(`<div style="font:13px system-ui,sans-serif;margin:4px 0">%s `+
		`<span style="display:inline-block;vertical-align:middle;width:240px;height:12px;border:1px solid #888;border-radius:3px;margin:0 8px">`+
		`<span style="display:block;width:%.0f%%;height:100%%;background:#4a90d9"></span></span>%d / %d · %.1f s</div>`,
		html.EscapeString(p.Task), 100*frac, p.Done, p.Total, p.Elapsed.Seconds())
}

// Interactive reports whether a live browser shows the notebook, so that
// widgets work. It is false outside GoNB, when CNNVIZ_STATIC=1 (set by
// scripts/run_notebooks.sh --headless), and when no browser answers a
// 5-second probe (jupyter nbconvert --execute): explorers then show a static
// view at once. The answer is computed once per program.
func Interactive() bool {
	probeOnce.Do(func() { probed = probe() })
	return probed
}

var (
	probeOnce sync.Once
	probed    bool
)

func probe() bool {
	if !inNotebook() || os.Getenv("CNNVIZ_STATIC") == "1" {
		return false
	}
	addr := "/cnnviz/probe/" + gonbui.UniqueId()
	ch := comms.Listen[int](addr)
	defer ch.Close()
	dom.TransientJavascript(fmt.Sprintf(`(() => { let n = 0; const t = setInterval(() => {
  if (globalThis.gonb_comm) { clearInterval(t); globalThis.gonb_comm.send(%q, 1); } else if (++n > 50) { clearInterval(t); } }, 100); })();`, addr))
	select {
	case <-ch.C:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}
