//go:build noxla

package backend

import "fmt"

const xlaLinked = false

func xlaCheckPlugin(string) error { return fmt.Errorf("XLA not linked (built with -tags noxla)") }

// InstallXLA is unavailable in builds with the noxla tag.
func InstallXLA(string) error {
	return fmt.Errorf("this program was built with -tags noxla; rebuild without it to use XLA")
}
