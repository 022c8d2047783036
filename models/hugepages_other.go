//go:build !linux

package models

// AdviseHugePages does nothing on this platform (see the Linux version).
func AdviseHugePages(buf []float32) {}
