package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Pickle opcode argument kinds, as in Python's pickletools.
const (
	argNone    = iota
	argFixed   // fixed number of bytes (n)
	argLine    // bytes up to and including '\n'
	argLines2  // two such lines (GLOBAL, INST)
	argLen1    // 1-byte unsigned length, then that many bytes
	argLen4    // 4-byte little-endian unsigned length, then data
	argLen4S   // 4-byte little-endian signed length (must be >= 0), then data
	argLen8    // 8-byte little-endian unsigned length, then data
	argFrame   // 8-byte frame length; the frame's opcodes follow inline
	argUnknown // not an opcode
)

type pickleOp struct {
	kind int
	n    int
}

// pickleOps describes every opcode of pickle protocols 0-5.
var pickleOps = func() [256]pickleOp {
	var t [256]pickleOp
	for i := range t {
		t[i] = pickleOp{kind: argUnknown}
	}
	for _, c := range []byte("(.012NQRabd}el]ost)u\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		t[c] = pickleOp{kind: argNone}
	}
	for _, c := range []byte("FILPSVgp") {
		t[c] = pickleOp{kind: argLine}
	}
	t['c'] = pickleOp{kind: argLines2}
	t['i'] = pickleOp{kind: argLines2}
	for c, n := range map[byte]int{'J': 4, 'K': 1, 'M': 2, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 'G': 8, 0x80: 1, 0x82: 1, 0x83: 2, 0x84: 4} {
		t[c] = pickleOp{kind: argFixed, n: n}
	}
	t['U'] = pickleOp{kind: argLen1}
	t['C'] = pickleOp{kind: argLen1}
	t[0x8a] = pickleOp{kind: argLen1}
	t[0x8c] = pickleOp{kind: argLen1}
	t['X'] = pickleOp{kind: argLen4}
	t['B'] = pickleOp{kind: argLen4}
	t['T'] = pickleOp{kind: argLen4S}
	t[0x8b] = pickleOp{kind: argLen4S}
	t[0x8d] = pickleOp{kind: argLen8}
	t[0x8e] = pickleOp{kind: argLen8}
	t[0x96] = pickleOp{kind: argLen8}
	t[0x95] = pickleOp{kind: argFrame}
	return t
}()

// maxPickleLine bounds text-protocol lines (names, decimal numbers): longer ones
// are rejected rather than parsed (a huge decimal LONG would parse in quadratic time).
const maxPickleLine = 64 << 10

// errPickleTruncated is returned when the stream ends before STOP.
var errPickleTruncated = errors.New("pickle data ends before its STOP opcode (truncated file?)")

// scanPickle walks the opcodes of one pickle from r without building any
// object, and returns the number of bytes up to and including its STOP opcode.
// limit is how many bytes r can deliver. Every length-prefixed argument is
// checked against the bytes actually left, so the unpickler that runs afterwards
// (gopickle allocates a buffer of the declared length before reading) never
// allocates more than the input holds.
func scanPickle(r *bufio.Reader, limit int64) (int64, error) {
	var pos int64
	readByte := func() (byte, error) {
		b, err := r.ReadByte()
		if err == io.EOF {
			return 0, errPickleTruncated
		}
		if err == nil {
			pos++
		}
		return b, err
	}
	skip := func(n uint64, what string) error {
		if n > uint64(limit-pos) {
			return fmt.Errorf("pickle %s declares %d bytes at offset %d but only %d remain (corrupt or truncated file)", what, n, pos, limit-pos)
		}
		for n > 0 {
			k := int(min(n, 1<<30))
			d, err := r.Discard(k)
			pos += int64(d)
			if err == io.EOF {
				return errPickleTruncated
			}
			if err != nil {
				return err
			}
			n -= uint64(k)
		}
		return nil
	}
	readLen := func(size int) (uint64, error) {
		var b [8]byte
		for i := range size {
			c, err := readByte()
			if err != nil {
				return 0, err
			}
			b[i] = c
		}
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	readLine := func() error {
		for n := 0; ; n++ {
			if n > maxPickleLine {
				return fmt.Errorf("pickle text argument at offset %d is longer than %d bytes", pos, maxPickleLine)
			}
			c, err := readByte()
			if err != nil {
				return err
			}
			if c == '\n' {
				return nil
			}
		}
	}
	for {
		opPos := pos
		op, err := readByte()
		if err != nil {
			return pos, err
		}
		desc := pickleOps[op]
		switch desc.kind {
		case argNone:
			if op == '.' {
				return pos, nil
			}
		case argFixed:
			if err := skip(uint64(desc.n), "opcode argument"); err != nil {
				return pos, err
			}
		case argLine:
			if err := readLine(); err != nil {
				return pos, err
			}
		case argLines2:
			if err := readLine(); err != nil {
				return pos, err
			}
			if err := readLine(); err != nil {
				return pos, err
			}
		case argLen1, argLen4, argLen4S, argLen8:
			size := map[int]int{argLen1: 1, argLen4: 4, argLen4S: 4, argLen8: 8}[desc.kind]
			n, err := readLen(size)
			if err != nil {
				return pos, err
			}
			if desc.kind == argLen4S && n >= 1<<31 {
				return pos, fmt.Errorf("pickle opcode 0x%02x at offset %d has a negative length", op, opPos)
			}
			if err := skip(n, fmt.Sprintf("opcode 0x%02x", op)); err != nil {
				return pos, err
			}
		case argFrame:
			n, err := readLen(8)
			if err != nil {
				return pos, err
			}
			if n > uint64(limit-pos) {
				return pos, fmt.Errorf("pickle frame at offset %d declares %d bytes but only %d remain (corrupt or truncated file)", opPos, n, limit-pos)
			}
		default:
			return pos, fmt.Errorf("invalid pickle opcode 0x%02x at offset %d (corrupt file?)", op, opPos)
		}
	}
}
