//go:build linux || darwin || freebsd || netbsd || openbsd

package weights

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only and private. The caller must
// release the mapping with unmapFile.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, errNoMmap
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
}

// unmapFile releases a mapping made by mapFile.
func unmapFile(b []byte) error { return syscall.Munmap(b) }
