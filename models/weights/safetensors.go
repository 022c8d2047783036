package weights

// The safetensors format (https://huggingface.co/docs/safetensors) is:
//
//	8 bytes   N, little-endian uint64: length of the JSON header
//	N bytes   JSON object: {"__metadata__": {"k": "v", ...},
//	          "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//	          (may be padded at the end with spaces)
//	rest      the byte buffer; tensor data lives at buffer[begin:end], row-major, little-endian.
//
// This file implements its own reader and writer instead of using
// github.com/gomlx/go-huggingface/models/safetensors because that package
// (v0.4.6) only reads through a hub.Repo (for a plain file, hub.NewLocal on its
// directory, which walks that whole directory tree), produces GoMLX tensors on a
// compute backend rather than host float32 slices, keeps F16/BF16 as such, has no
// writer, and its IterTensors path slices the mmap with header offsets it has not
// range-checked. The format is small enough that a careful reader with full
// validation (and error messages naming the file and tensor) is the safer choice.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxSafetensorsHeader is the largest JSON header accepted (the reference
// implementation uses the same 100 MB limit).
const maxSafetensorsHeader = 100 << 20

// maxTensorElements bounds the element count of one tensor (2^34 float32 = 64 GiB),
// far above any VGG layer; it only guards against absurd shapes.
const maxTensorElements = 1 << 34

// LoadSafetensors reads every tensor of a local .safetensors file.
//
// Supported dtypes: F32, F16, BF16 and F64 are converted to float32 (F16/BF16
// exactly; F64 rounded to nearest, out-of-range values becoming ±Inf); integer
// and BOOL tensors (I64, I32, I16, I8, U64, U32, U16, U8, BOOL; e.g. BatchNorm's
// num_batches_tracked) are converted to float32 too, exactly up to 2^24 in
// magnitude. Other dtypes (F8_*, complex, ...) are an error. Shapes are kept as
// stored (PyTorch layouts, row-major); names are kept as stored (no timm
// conversion: see Load and FromTimm). The "__metadata__" map, if any, is
// returned in Set.Metadata. Set.Source is path.
//
// Errors name the file and, where it applies, the tensor: missing or unreadable
// file, truncated file, bad header length or JSON, unsupported dtype, negative
// dimensions, data offsets out of range, overlapping, or inconsistent with
// dtype×shape.
//
// The file is mapped into memory where the platform allows (privately) and
// each tensor is copied once from the mapping into its own slice, in
// parallel; the mapping is released before LoadSafetensors returns (see
// MapSafetensors for a load without even that copy). Where mapping is
// unavailable the file is read through a 1 MiB buffer.
func LoadSafetensors(path string) (*Set, error) { return openSafetensors(path, false) }

// stEntry is one tensor entry of a safetensors header.
type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// stLayout is a validated safetensors header: where each tensor lies.
type stLayout struct {
	meta      map[string]string
	spans     []stSpan // Sorted by offset; disjoint; inside the data section.
	dataStart int64    // File offset of the data section (8 + header length).
}

// stSpan is one tensor of a validated header; begin and end are offsets in
// the data section.
type stSpan struct {
	name       string
	et         *elemType
	shape      []int
	begin, end int64
}

// readSafetensors parses a safetensors image of the given total size from r;
// source names it in errors and becomes Set.Source. Tensor data is read
// through a bounded buffer and decoded into new slices (the portable path;
// LoadSafetensors maps files instead where it can).
func readSafetensors(r io.ReaderAt, size int64, source string) (*Set, error) {
	l, err := parseSafetensorsLayout(r, size, source)
	if err != nil {
		return nil, err
	}
	s := NewSet(source)
	s.Metadata = l.meta
	// Read tensor by tensor through a bounded buffer: memory stays at the
	// output size plus one chunk.
	const chunk = 1 << 20
	buf := make([]byte, 0, chunk)
	for _, sp := range l.spans {
		et := sp.et
		n := int((sp.end - sp.begin) / int64(et.size))
		data := make([]float32, n)
		perChunk := chunk / et.size
		for done := 0; done < n; {
			k := min(perChunk, n-done)
			b := buf[:k*et.size]
			off := l.dataStart + sp.begin + int64(done*et.size)
			if _, err := r.ReadAt(b, off); err != nil {
				return nil, fmt.Errorf("weights %s: tensor %q: reading %d bytes at offset %d: %w", source, sp.name, len(b), off, err)
			}
			decodeInto(data[done:done+k], b, et)
			done += k
		}
		s.Tensors[sp.name] = &Tensor{Shape: sp.shape, Data: data, DType: et.name}
	}
	return s, nil
}

// parseSafetensorsLayout reads and validates the header of a safetensors
// image of the given total size: every check on names, dtypes, shapes and
// offsets happens here, before any tensor data is touched.
func parseSafetensorsLayout(r io.ReaderAt, size int64, source string) (*stLayout, error) {
	if size < 8 {
		return nil, fmt.Errorf("weights %s: not a safetensors file: %d bytes, too short for the 8-byte header length (truncated?)", source, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("weights %s: reading safetensors header length: %w", source, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxSafetensorsHeader {
		return nil, fmt.Errorf("weights %s: not a safetensors file: header length %d exceeds the %d-byte limit (corrupt file, or another format)", source, hlen, maxSafetensorsHeader)
	}
	if int64(hlen) > size-8 {
		return nil, fmt.Errorf("weights %s: safetensors header length is %d bytes but only %d bytes follow (truncated file?)", source, hlen, size-8)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("weights %s: reading safetensors header: %w", source, err)
	}
	dataStart := 8 + int64(hlen)
	dataLen := size - dataStart

	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("weights %s: safetensors header is not a valid JSON object: %v", source, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("weights %s: safetensors header is JSON null, expected an object", source)
	}
	// Only padding (spaces) may follow the JSON object.
	if rest := hdr[dec.InputOffset():]; len(bytes.Trim(rest, " \t\r\n\x00")) != 0 {
		return nil, fmt.Errorf("weights %s: safetensors header has %d unexpected bytes after the JSON object", source, len(rest))
	}

	l := &stLayout{dataStart: dataStart}
	if m, ok := raw["__metadata__"]; ok {
		var meta map[string]string
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("weights %s: safetensors __metadata__ must map strings to strings: %v", source, err)
		}
		l.meta = meta
		delete(raw, "__metadata__")
	}

	// Entries in name order: the same file always fails on the same tensor.
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	spans := make([]stSpan, 0, len(raw))
	for _, name := range names {
		msg := raw[name]
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("weights %s: tensor %q: bad header entry %s: %v", source, name, abbreviate(msg), err)
		}
		et, ok := safetensorsDTypes[e.DType]
		if !ok {
			return nil, fmt.Errorf("weights %s: tensor %q has unsupported dtype %q (supported: F32, F16, BF16, F64 and integer/BOOL types)", source, name, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("weights %s: tensor %q: header entry has no \"shape\"", source, name)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || d > maxTensorElements {
				return nil, fmt.Errorf("weights %s: tensor %q has invalid shape %v", source, name, e.Shape)
			}
			shape[i] = int(d)
		}
		n, ok := numElements(shape, maxTensorElements)
		if !ok {
			return nil, fmt.Errorf("weights %s: tensor %q has shape %v with too many elements", source, name, e.Shape)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("weights %s: tensor %q: \"data_offsets\" must be [begin, end], found %v", source, name, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin {
			return nil, fmt.Errorf("weights %s: tensor %q has invalid data_offsets [%d, %d]", source, name, begin, end)
		}
		if end > dataLen {
			return nil, fmt.Errorf("weights %s: tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data section (truncated file?)", source, name, begin, end, dataLen)
		}
		if want := n * int64(et.size); end-begin != want {
			return nil, fmt.Errorf("weights %s: tensor %q: %s shape %v needs %d bytes but data_offsets [%d, %d] span %d", source, name, e.DType, e.Shape, want, begin, end, end-begin)
		}
		spans = append(spans, stSpan{name: name, et: et, shape: shape, begin: begin, end: end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].name < spans[j].name
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("weights %s: tensors %q [%d, %d] and %q [%d, %d] overlap in the data section", source,
				spans[i-1].name, spans[i-1].begin, spans[i-1].end, spans[i].name, spans[i].begin, spans[i].end)
		}
	}
	l.spans = spans
	return l, nil
}

// abbreviate shortens a JSON fragment for an error message.
func abbreviate(b []byte) string {
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// SaveSafetensors writes s to path as a safetensors file: every tensor as F32,
// little-endian, row-major, with header keys and data in sorted name order, and
// s.Metadata (if non-empty) as "__metadata__". The header is padded with spaces to
// a multiple of 8 bytes, as the reference implementation does. The file is
// written to a temporary file in the same directory and renamed into place, so an
// interrupted save never leaves a partial file at path.
//
// It fails, naming the tensor, if a tensor is nil, its name is empty or
// "__metadata__", a dimension is negative, or len(Data) differs from the product
// of Shape.
func SaveSafetensors(path string, s *Set) (err error) {
	hdr, names, err := safetensorsHeader(s)
	if err != nil {
		return fmt.Errorf("weights: SaveSafetensors %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("weights: SaveSafetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = writeSafetensors(tmp, s, hdr, names); err != nil {
		return fmt.Errorf("weights: SaveSafetensors %s: writing: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("weights: SaveSafetensors %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("weights: SaveSafetensors %s: closing: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("weights: SaveSafetensors %s: %w", path, err)
	}
	return nil
}

// safetensorsHeader validates s and builds its padded JSON header; names is
// the order in which tensor data follows.
func safetensorsHeader(s *Set) (hdr []byte, names []string, err error) {
	if s == nil {
		return nil, nil, fmt.Errorf("nil set")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(s.Metadata) > 0 {
		keys := make([]string, 0, len(s.Metadata))
		for k := range s.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, s.Metadata[k])
		}
		b.WriteByte('}')
		first = false
	}
	names = s.Names()
	var offset int64
	for _, name := range names {
		t := s.Tensors[name]
		if name == "" || name == "__metadata__" {
			return nil, nil, fmt.Errorf("invalid tensor name %q", name)
		}
		if t == nil {
			return nil, nil, fmt.Errorf("tensor %q is nil", name)
		}
		n, ok := numElements(t.Shape, maxTensorElements)
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q has invalid shape %v", name, t.Shape)
		}
		if int64(len(t.Data)) != n {
			return nil, nil, fmt.Errorf("tensor %q has shape %v (%d values) but holds %d values", name, t.Shape, n, len(t.Data))
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, name)
		shape := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(&b, `:{"dtype":"F32","shape":[%s],"data_offsets":[%d,%d]}`, strings.Join(shape, ","), offset, offset+4*n)
		offset += 4 * n
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), names, nil
}

// writeSafetensors writes the length, the header and the F32 data of names.
func writeSafetensors(out io.Writer, s *Set, hdr []byte, names []string) error {
	w := bufio.NewWriterSize(out, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	_, _ = w.Write(lenBuf[:]) // bufio.Writer keeps the first error for Flush
	_, _ = w.Write(hdr)
	var f [4]byte
	for _, name := range names {
		for _, v := range s.Tensors[name].Data {
			binary.LittleEndian.PutUint32(f[:], math.Float32bits(v))
			_, _ = w.Write(f[:])
		}
	}
	return w.Flush()
}

// writeJSONString writes s as a JSON string literal (HTML characters unescaped).
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // encoding a string cannot fail
	b.Truncate(b.Len() - 1) // drop Encode's trailing newline
}
