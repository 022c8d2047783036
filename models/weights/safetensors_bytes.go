package weights

import "bytes"

// ParseSafetensors reads a safetensors image held in memory (for example
// weights embedded in a binary with go:embed), with the same checks and
// results as LoadSafetensors; source names it in errors and becomes
// Set.Source.
func ParseSafetensors(data []byte, source string) (*Set, error) {
	return readSafetensors(bytes.NewReader(data), int64(len(data)), source)
}
