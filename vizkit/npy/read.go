package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Limits of the reader. They are checked on the header, before any value is
// allocated; change them before reading when larger arrays are legitimate.
var (
	// MaxHeaderBytes is the largest header (the Python dict literal) accepted:
	// 64 KiB. NumPy writes headers of 128 bytes or a few multiples of 64 for
	// ordinary shapes (numpy.load itself refuses headers over 10 000 bytes by
	// default).
	MaxHeaderBytes = 1 << 16
	// MaxElements is the largest number of values one array may declare:
	// 2^28 (268 million float32 values, 1 GiB).
	MaxElements int64 = 1 << 28
)

// header is a parsed .npy header.
type header struct {
	descr   string // "<f4", "<f8", …
	fortran bool
	shape   []int
	n       int64 // number of elements
	size    int   // bytes per element
}

// The reader is written here rather than left to codeberg.org/sbinet/npyio,
// which panics on a truncated header (slice bounds), allocates whatever the
// header declares before reading, lets an overflowing element count through,
// reports an empty file as a bare "EOF" and a malformed shape as a raw
// strconv error. The .npy format is small (magic, version, header length, a
// Python dict literal); it is parsed strictly below.

// readHeader reads and validates the magic, version and header of a .npy stream.
func readHeader(r io.Reader) (*header, error) {
	var pre [8]byte
	n, err := io.ReadFull(r, pre[:])
	if err != nil {
		if n == 0 {
			return nil, errors.New("npy: empty input (0 bytes), not a .npy file")
		}
		return nil, fmt.Errorf("npy: file is %d bytes, too short for a .npy preamble (magic \\x93NUMPY, version)", n)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("npy: not a .npy file: it starts with %q, not the magic \"\\x93NUMPY\"", pre[:6])
	}
	var hlen int
	switch major := pre[6]; major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, errors.New("npy: truncated .npy file: it ends inside the header length")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, errors.New("npy: truncated .npy file: it ends inside the header length")
		}
		l := binary.LittleEndian.Uint32(b[:])
		if l > uint32(MaxHeaderBytes) {
			return nil, fmt.Errorf("npy: header declares %d bytes, more than npy.MaxHeaderBytes=%d", l, MaxHeaderBytes)
		}
		hlen = int(l)
	default:
		return nil, fmt.Errorf("npy: unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)", pre[6], pre[7])
	}
	if hlen > MaxHeaderBytes {
		return nil, fmt.Errorf("npy: header declares %d bytes, more than npy.MaxHeaderBytes=%d", hlen, MaxHeaderBytes)
	}
	hb := make([]byte, hlen)
	if got, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("npy: truncated .npy file: the header declares %d bytes but only %d follow", hlen, got)
	}
	return parseHeader(string(hb))
}

// parseHeader parses the dict literal {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), } (keys in any order, padding spaces and a final newline).
func parseHeader(s string) (*header, error) {
	p := &dictParser{s: strings.TrimRight(s, " \n\x00")}
	h := &header{}
	seen := map[string]bool{}
	p.skip()
	if !p.eat('{') {
		return nil, p.fail("the header must be a Python dict literal starting with '{'")
	}
	for {
		p.skip()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, p.fail("expected a quoted key: " + err.Error())
		}
		if seen[key] {
			return nil, p.fail(fmt.Sprintf("key %q appears twice", key))
		}
		seen[key] = true
		p.skip()
		if !p.eat(':') {
			return nil, p.fail(fmt.Sprintf("expected ':' after key %q", key))
		}
		p.skip()
		switch key {
		case "descr":
			if h.descr, err = p.str(); err != nil {
				return nil, p.fail("'descr' must be a quoted dtype string such as '<f4': " + err.Error())
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				h.fortran = true
			case p.word("False"):
			default:
				return nil, p.fail("'fortran_order' must be True or False")
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return nil, p.fail("'shape' must be a tuple of non-negative integers such as (3, 224, 224): " + err.Error())
			}
		default:
			return nil, p.fail(fmt.Sprintf("unknown key %q (a .npy header has 'descr', 'fortran_order' and 'shape')", key))
		}
		p.skip()
		if p.eat(',') {
			continue
		}
		p.skip()
		if !p.eat('}') {
			return nil, p.fail("expected ',' or '}'")
		}
		break
	}
	p.skip()
	if p.i != len(p.s) {
		return nil, p.fail("unexpected text after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return nil, fmt.Errorf("npy: header %q lacks the key %q", clip(s), k)
		}
	}
	if h.fortran {
		return nil, errors.New("npy: Fortran-order arrays are not supported; save the array in C order (np.ascontiguousarray)")
	}
	switch h.descr {
	case "<f4", "|f4", "f4", "=f4":
		h.size = 4
	case "<f8", "f8", "=f8":
		h.size = 8
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %q (want little-endian float32 '<f4' or float64 '<f8'); convert with a.astype(np.float32)", h.descr)
	}
	h.n = 1
	for _, d := range h.shape {
		if d == 0 {
			h.n = 0
			break
		}
	}
	if h.n != 0 {
		for _, d := range h.shape {
			if int64(d) > MaxElements || h.n > MaxElements/int64(d) {
				return nil, fmt.Errorf("npy: shape %v declares more than npy.MaxElements=%d values", h.shape, MaxElements)
			}
			h.n *= int64(d)
		}
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) fail(msg string) error {
	return fmt.Errorf("npy: malformed header %q at byte %d: %s", clip(p.s), p.i, msg)
}

func (p *dictParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) word(w string) bool {
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str reads a '…' or "…" string without escapes (dtype strings have none).
func (p *dictParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("no opening quote")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("no closing quote")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsAny(v, "\\\n") {
		return "", errors.New("escapes are not supported")
	}
	p.i += end + 2
	return v, nil
}

// tuple reads (a, b, …) of decimal integers; "(n,)" and "()" included.
func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("no opening '('")
	}
	shape := []int{}
	for {
		p.skip()
		if p.eat(')') {
			return shape, nil
		}
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, fmt.Errorf("dimension %d is not a plain decimal integer", len(shape))
		}
		if j-p.i > 18 {
			return nil, fmt.Errorf("dimension %d (%s) is too large", len(shape), p.s[p.i:j])
		}
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return nil, fmt.Errorf("dimension %d (%s) is too large", len(shape), p.s[p.i:j])
		}
		shape = append(shape, d)
		if len(shape) > 32 {
			return nil, errors.New("more than 32 dimensions")
		}
		p.i = j
		p.skip()
		if p.eat(',') {
			continue
		}
		p.skip()
		if p.eat(')') {
			if len(shape) == 1 {
				return nil, errors.New("a one-element tuple needs a trailing comma: (n,)")
			}
			return shape, nil
		}
		return nil, errors.New("expected ',' or ')' after a dimension")
	}
}

// readData reads h.n values after the header from r. It never allocates more
// than the bytes actually present (plus one 1 MiB chunk) even when the header
// lies about the size; avail, when ≥ 0, is the number of bytes known to follow
// and is checked first.
func readData(r io.Reader, h *header, avail int64) ([]float32, error) {
	need := h.n * int64(h.size)
	if avail >= 0 && avail < need {
		return nil, fmt.Errorf("npy: header shape %v (%s) needs %d data bytes but the file holds %d; the file is truncated or its header is wrong",
			h.shape, h.descr, need, avail)
	}
	if avail > need {
		return nil, fmt.Errorf("npy: header shape %v (%s) needs %d data bytes but the file holds %d; trailing data (a second array?) is not supported",
			h.shape, h.descr, need, avail)
	}
	const chunk = 1 << 20
	capacity := min(h.n, chunk/4) // unknown size: grow with the data read
	if avail >= 0 {
		capacity = h.n // checked against the bytes present above
	}
	data := make([]float32, 0, capacity)
	buf := make([]byte, min(need, chunk))
	var read int64
	for read < need {
		k := min(need-read, int64(len(buf)))
		k -= k % int64(h.size)
		if k == 0 {
			k = int64(h.size)
		}
		got, err := io.ReadFull(r, buf[:k])
		if err != nil {
			return nil, fmt.Errorf("npy: header shape %v (%s) needs %d data bytes but the input ends after %d; the file is truncated or its header is wrong",
				h.shape, h.descr, need, read+int64(got))
		}
		read += k
		b := buf[:k]
		if h.size == 4 {
			for i := 0; i < len(b); i += 4 {
				data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
			}
		} else {
			for i := 0; i < len(b); i += 8 {
				data = append(data, float32(math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))))
			}
		}
	}
	if avail < 0 {
		var one [1]byte
		if n, _ := r.Read(one[:]); n > 0 {
			return nil, fmt.Errorf("npy: header shape %v (%s) needs %d data bytes but more follow; trailing data is not supported", h.shape, h.descr, need)
		}
	}
	return data, nil
}
