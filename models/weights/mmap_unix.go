//go:build linux || darwin || freebsd || netbsd || openbsd

package weights

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f privately: the file is never written, and a
// write to the mapping (none is made; a backend reading a kept parameter
// must not write to it) would go to a private copy of its page instead of
// faulting. The caller must release the mapping with unmapFile.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, errNoMmap
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
}

// unmapFile releases a mapping made by mapFile.
func unmapFile(b []byte) error { return syscall.Munmap(b) }
