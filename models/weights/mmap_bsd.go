//go:build darwin || freebsd || netbsd || openbsd

package weights

// dropPages is a no-op here (see the Linux version).
func dropPages([]byte) {}
