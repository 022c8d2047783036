package backend

import (
	"strings"
	"testing"
)

func TestDefaultIsGo(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.ToLower(b.Name()), "go") {
		t.Fatalf("default backend is %q, want go", b.Name())
	}
	t.Setenv(EnvVar, "go")
	if Config("") != "go" || Config("xla:cpu") != "xla:cpu" {
		t.Fatal("Config precedence wrong")
	}
}

func TestUnknownBackend(t *testing.T) {
	_, err := New("tpu9000")
	if err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("want a clear unknown-backend error, got %v", err)
	}
}

// With no plugin installed (as on CI), asking for XLA must fail at once with
// installation instructions, never hang or try to download.
func TestXLAMissingPluginIsClear(t *testing.T) {
	if !XLAAvailable() {
		t.Skip("built with noxla")
	}
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	_, err := New("xla:cuda")
	if err == nil {
		t.Skip("an XLA CUDA plugin is installed on this machine")
	}
	for _, want := range []string{"install-xla", "GOMLX_BACKEND=go"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
}
