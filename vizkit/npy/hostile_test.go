package npy

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// npyBytes builds a version-1.0 .npy file with the given header dict and data.
func npyBytes(dict string, data []byte) []byte {
	h := dict
	if pad := (64 - (10+len(h)+1)%64) % 64; pad > 0 {
		h += strings.Repeat(" ", pad)
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func TestReadHostile(t *testing.T) {
	good := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", make([]byte, 16))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty input (0 bytes)"},
		{"short preamble", []byte("\x93NUM"), "too short"},
		{"bad magic", []byte("PK\x03\x04xxxxxxxxxxxx"), "not a .npy file"},
		{"version 9", []byte("\x93NUMPY\x09\x00\x10\x00"), "unsupported .npy format version 9.0"},
		{"truncated header length", []byte("\x93NUMPY\x01\x00\x10"), "ends inside the header length"},
		{"truncated header", good[:30], "the header declares 118 bytes but only 20 follow"},
		{"huge v2 header", []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "more than npy.MaxHeaderBytes"},
		{"huge shape", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 100000, 100000), }", make([]byte, 4096)), "more than npy.MaxElements"},
		{"declared more than present", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1000, 1000), }", make([]byte, 4096)), "needs 12000000 data bytes but the file holds 4096"},
		{"overflowing count", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", make([]byte, 64)), "more than npy.MaxElements"},
		{"huge digit string", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, ), }", nil), "too large"},
		{"python expression", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2*3, 1), }", make([]byte, 24)), "'shape' must be a tuple of non-negative integers"},
		{"negative dim", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }", nil), "not a plain decimal integer"},
		{"not a dict", npyBytes("__import__('os').system('x')", nil), "must be a Python dict literal"},
		{"unknown key", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", make([]byte, 4)), "unknown key \"x\""},
		{"missing key", npyBytes("{'descr': '<f4', 'shape': (1,), }", make([]byte, 4)), "lacks the key \"fortran_order\""},
		{"duplicate key", npyBytes("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", make([]byte, 4)), "appears twice"},
		{"int dtype", npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "unsupported dtype \"<i8\""},
		{"big endian", npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "unsupported dtype \">f4\""},
		{"fortran", npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", make([]byte, 4)), "Fortran-order"},
		{"trailing data", append(append([]byte{}, good...), 1, 2, 3, 4), "trailing data"},
		{"truncated data", good[:len(good)-3], "needs 16 data bytes but the file holds 13"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for _, seekable := range []bool{true, false} {
				var r interface{ Read([]byte) (int, error) } = bytes.NewReader(c.data)
				if !seekable {
					r = struct{ *bytes.Buffer }{bytes.NewBuffer(c.data)}
				}
				shape, data, err := Read(r)
				if err == nil {
					t.Fatalf("seekable=%v: no error; got shape %v, %d values", seekable, shape, len(data))
				}
				if !strings.Contains(err.Error(), c.want) && !(c.name == "truncated data" && !seekable) && !(c.name == "declared more than present" && !seekable) {
					t.Fatalf("seekable=%v: error %q does not contain %q", seekable, err, c.want)
				}
			}
			runtime.ReadMemStats(&after)
			if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
				t.Fatalf("allocated %d bytes for a %d-byte input", d, len(c.data))
			}
			p := filepath.Join(t.TempDir(), "x.npy")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ReadFile: error %v should name %s and contain %q", err, p, c.want)
			}
		})
	}
}

func TestReadAccepts(t *testing.T) {
	f8 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f8[8:], 0x4004000000000000) // 2.5
	for _, c := range []struct {
		name  string
		data  []byte
		shape []int
		last  float32
	}{
		{"f8 double quotes, keys reordered", npyBytes(`{"shape": (2,), "fortran_order": False, "descr": "<f8"}`, f8), []int{2}, 2.5},
		{"scalar", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", []byte{0, 0, 0x80, 0x3f}), []int{}, 1},
		{"zero-size", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 100000000), }", nil), []int{0, 100000000}, 0},
	} {
		shape, data, err := Read(bytes.NewReader(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(shape) != len(c.shape) {
			t.Fatalf("%s: shape %v, want %v", c.name, shape, c.shape)
		}
		if len(data) > 0 && data[len(data)-1] != c.last {
			t.Fatalf("%s: last value %v, want %v", c.name, data[len(data)-1], c.last)
		}
	}
}

// FuzzReadNPY feeds arbitrary bytes to Read: it must never panic, never return
// data that disagrees with the shape, and never allocate much more than the
// input holds (the bound asserted below).
//
//	go test ./vizkit/npy -run '^$' -fuzz FuzzReadNPY -fuzztime 60s
func FuzzReadNPY(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)))
	f.Add(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 100000, 100000), }", make([]byte, 64)))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'shape': (), }"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, seekable := range []bool{true, false} {
			var r interface{ Read([]byte) (int, error) } = bytes.NewReader(b)
			if !seekable {
				r = struct{ *bytes.Buffer }{bytes.NewBuffer(b)}
			}
			shape, data, err := Read(r)
			if err != nil {
				if shape != nil || data != nil {
					t.Fatalf("error %v with a result", err)
				}
				continue
			}
			n := 1
			for _, d := range shape {
				n *= d
			}
			if n != len(data) {
				t.Fatalf("shape %v but %d values", shape, len(data))
			}
			// Memory bound: values come from bytes present in the input.
			if 4*len(data) > 2*len(b) {
				t.Fatalf("%d values from %d bytes", len(data), len(b))
			}
			if cap(data) > max(2*len(data), len(data)+(1<<18)) {
				t.Fatalf("capacity %d for %d values", cap(data), len(data))
			}
		}
	})
}
