package models

import (
	"syscall"
	"unsafe"
)

// AdviseHugePages asks the kernel to back the 2 MiB-aligned interior of buf
// with transparent huge pages (madvise MADV_HUGEPAGE; Linux only, effective
// where /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or
// "always"). Call it on a large, freshly allocated buffer before its first
// write: one page fault then maps 2 MiB instead of 4 KiB, which makes the
// first writes to hundreds of megabytes of parameters several times cheaper
// where page faults are expensive (virtual machines). Buffers under 4 MiB
// are left alone. It is advice only: errors are ignored, contents unchanged.
func AdviseHugePages(buf []float32) {
	const huge = 2 << 20
	if len(buf)*4 < 2*huge-64<<10 {
		return
	}
	start := uintptr(unsafe.Pointer(&buf[0]))
	end := start + uintptr(len(buf))*4
	lo, hi := (start+huge-1)&^(huge-1), end&^(huge-1)
	if hi <= lo {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*4)[lo-start : hi-start]
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
}
