package weights

import "syscall"

// dropPages tells the kernel that the pages of b (part of a mapping) are no
// longer needed by this process: they leave its resident set (the page
// cache keeps them). Errors are ignored: it is only advice.
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	if a := pageAligned(b); len(a) > 0 {
		_ = syscall.Madvise(a, syscall.MADV_DONTNEED)
	}
}
