// Package backend chooses and creates the GoMLX backend cnnviz runs on.
//
// The pure-Go backend ("go") is the default: it needs nothing installed. XLA
// ("xla:cpu", "xla:cuda") is used when asked for — by the config string or the
// GOMLX_BACKEND environment variable — and its PJRT plugin is installed. cnnviz
// never downloads a plugin silently: when it is missing the error says how to
// install it (`vizkit install-xla cpu`, or PJRT_PLUGIN_LIBRARY_PATH).
package backend

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // Registers the pure-Go backend "go".
)

// EnvVar is the environment variable read when no configuration is given.
const EnvVar = "GOMLX_BACKEND"

// Default is the configuration used when neither the caller nor EnvVar names one.
const Default = "go"

// Config returns the effective backend configuration: config if not empty, else
// $GOMLX_BACKEND, else Default.
func Config(config string) string {
	if config != "" {
		return config
	}
	if env := strings.TrimSpace(os.Getenv(EnvVar)); env != "" {
		return env
	}
	return Default
}

// New creates the backend named by config ("go", "xla:cpu", "xla:cuda",
// "stablehlo:cpu", …; "" means $GOMLX_BACKEND or "go"). Errors say what is
// missing and how to fix it.
func New(config string) (compute.Backend, error) {
	config = Config(config)
	name, opts, _ := strings.Cut(config, ":")
	switch name {
	case "go":
	case "xla", "stablehlo":
		if !xlaLinked {
			return nil, fmt.Errorf("backend %q: this program was built with the noxla tag, so XLA is not available; rebuild without -tags noxla or use GOMLX_BACKEND=go", config)
		}
		if err := xlaCheckPlugin(opts); err != nil {
			return nil, fmt.Errorf("backend %q: %w", config, err)
		}
	default:
		return nil, fmt.Errorf("unknown backend %q: use \"go\" (pure Go, default), \"xla:cpu\" or \"xla:cuda\" (registered: %s)", config, strings.Join(compute.List(), ", "))
	}
	b, err := compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", config, err)
	}
	return b, nil
}

var (
	sharedMu sync.Mutex
	shared   = map[string]compute.Backend{}
)

// Shared returns a process-wide backend for config (see New), creating it on
// first use. Backends hold devices and compiled code; sharing one avoids
// creating several.
func Shared(config string) (compute.Backend, error) {
	config = Config(config)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if b, ok := shared[config]; ok {
		return b, nil
	}
	b, err := New(config)
	if err != nil {
		return nil, err
	}
	shared[config] = b
	return b, nil
}

// XLAAvailable reports whether XLA is linked into this program.
func XLAAvailable() bool { return xlaLinked }
