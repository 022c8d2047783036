package vizkit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestComputeNeverImportsDrawing: the computing packages (engine, cam, attr,
// actmax, metrics, heatmap) never reach vizkit/render (or this façade),
// directly or through other packages of the module; drawing sits on top.
func TestComputeNeverImportsDrawing(t *testing.T) {
	const mod = "github.com/cnnviz/cnnviz/"
	root := filepath.Join("..")
	imports := func(pkg string) []string {
		dir := filepath.Join(root, strings.TrimPrefix(pkg, mod))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		var out []string
		for _, e := range entries {
			n := e.Name()
			if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, n), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range f.Imports {
				p := strings.Trim(im.Path.Value, `"`)
				if strings.HasPrefix(p, mod) && !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
		return out
	}
	forbidden := []string{mod + "vizkit/render", mod + "vizkit", mod + "vizkit/nb"}
	for _, start := range []string{"engine", "cam", "attr", "actmax", "metrics", "heatmap"} {
		start = mod + "vizkit/" + start
		seen := map[string]string{start: ""}
		queue := []string{start}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, q := range imports(p) {
				if _, ok := seen[q]; ok {
					continue
				}
				seen[q] = p
				if slices.Contains(forbidden, q) {
					t.Errorf("%s reaches %s (through %s)", start, q, p)
					continue
				}
				queue = append(queue, q)
			}
		}
	}
}
