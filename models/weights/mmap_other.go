//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package weights

import "os"

// mapFile is unavailable on this platform: files are read instead.
func mapFile(*os.File, int64) ([]byte, error) { return nil, errNoMmap }

func unmapFile([]byte) error { return nil }

func dropPages([]byte) {}
