//go:build !noxla

package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/go-xla/compute/xla" // Registers "xla"; no auto-installer is linked.
	"github.com/gomlx/go-xla/installer"
)

const xlaLinked = true

// xlaCheckPlugin fails with installation instructions when no PJRT plugin for
// the requested platform ("cpu", "cuda", or "" for any) can be found.
func xlaCheckPlugin(opts string) error {
	plugin, _, _ := strings.Cut(opts, ",")
	if filepath.IsAbs(plugin) {
		if _, err := os.Stat(plugin); err != nil {
			return fmt.Errorf("PJRT plugin file %s: %w", plugin, err)
		}
		return nil
	}
	available := xla.GetAvailablePlugins()
	for _, p := range available {
		if plugin == "" || p == plugin || strings.HasPrefix(p, plugin+"_") || strings.HasPrefix(p, plugin) {
			return nil
		}
	}
	want := plugin
	if want == "" {
		want = "cpu"
	}
	return fmt.Errorf("no XLA PJRT plugin for %q is installed (found: %q). Install it with `go run github.com/cnnviz/cnnviz/vizkit/cmd/vizkit install-xla %s` (downloads to ~/.local/lib/go-xla), or put the plugin .so in a directory listed in PJRT_PLUGIN_LIBRARY_PATH; or use GOMLX_BACKEND=go (pure Go, nothing to install)",
		want, available, want)
}

// InstallXLA downloads and installs the PJRT plugin for platform ("cpu" or
// "cuda") into the default location (~/.local/lib/go-xla), printing progress.
// It needs network access to GitHub (cpu) or PyPI (cuda).
func InstallXLA(platform string) error {
	if platform == "" {
		return installer.AutoInstall("", true, installer.Normal)
	}
	return installer.AutoInstallPlugin(platform, "", true, installer.Normal)
}
