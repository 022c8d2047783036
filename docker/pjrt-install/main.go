// Command pjrt-install installs the XLA PJRT plugin that GoMLX's `xla` backend loads,
// using go-xla's own installer package (go-xla v0.4.13 ships no pjrt_installer
// command in its module), into <lib>/go-xla (default ~/.local/lib/go-xla).
//
//	go run . -plugin cpu              # pjrt_c_api_cpu_v0.114.0_plugin.so from GitHub gomlx/pjrt-cpu-binaries
//	go run . -plugin cuda13           # CUDA PJRT + NVIDIA libraries from the JAX wheels on pypi.org
//
// It is a separate module (docker/pjrt-install/go.mod) so the cnnviz module does not
// depend on the installer. Used by docker/Dockerfile; works the same outside Docker.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/go-xla/installer"
)

func main() {
	plugin := flag.String("plugin", "cpu", "plugin to install: cpu, cuda12 or cuda13")
	lib := flag.String("lib", "", "library folder under which go-xla/ is created (default ~/.local/lib)")
	version := flag.String("version", "latest", "JAX version of the CUDA plugin (cuda12/cuda13 only; cpu uses the version go-xla pins)")
	flag.Parse()

	dir := *lib
	if dir == "" {
		var err error
		if dir, err = installer.DefaultHomeLibPath(); err != nil {
			fail(err)
		}
	}
	var err error
	switch *plugin {
	case "cpu":
		// Installs the version this go-xla release pins, if not already there.
		err = installer.AutoInstallPlugin("cpu", dir, true, installer.Normal)
	case "cuda12", "cuda13":
		// CudaAutoInstall skips machines without a GPU (as during `docker build`), so
		// call the installer directly.
		err = installer.CudaInstall(*plugin, *version, filepath.Join(dir, "go-xla"), true, installer.Normal)
	default:
		err = fmt.Errorf("unknown -plugin %q (want cpu, cuda12 or cuda13)", *plugin)
	}
	if err != nil {
		fail(err)
	}
	fmt.Printf("PJRT plugin %q installed under %s\n", *plugin, filepath.Join(dir, "go-xla"))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "pjrt-install: %+v\n", err)
	os.Exit(1)
}
