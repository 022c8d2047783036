package weights

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

func TestLoadPTHStateDicts(t *testing.T) {
	for _, name := range []string{
		"small.pth",              // zip, OrderedDict
		"small_legacy.pth",       // legacy format, _rebuild_tensor_v2
		"small_legacy_v1.pth",    // legacy format as PyTorch 0.3 wrote it, _rebuild_tensor
		"wrapped_state_dict.pth", // {"epoch": 3, "arch": "vgg", "state_dict": sd}
		"wrapped_model.pth",      // {"model": sd, "optimizer": {...}}
	} {
		t.Run(name, func(t *testing.T) {
			s, err := LoadPTH(fixture(name))
			if err != nil {
				t.Fatal(err)
			}
			checkSmall(t, s)
			if s.Source != fixture(name) {
				t.Errorf("Source = %q", s.Source)
			}
		})
	}
}

func TestLoadPTHLegacyView(t *testing.T) {
	// view_of_root is stored as elements [2, 6) of a 10-element storage.
	s, err := LoadPTH(fixture("small_legacy_v1.pth"))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "view_of_root", []int{4}, fixtureData(13, 10)[2:6])
}

func TestLoadPTHDTypes(t *testing.T) {
	s, err := LoadPTH(fixture("mixed_dtypes.pth"))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "f16", []int{2, 3}, fixtureData(40, 6))
	checkTensor(t, s, "bf16", []int{3, 2}, fixtureData(41, 6))
	checkTensor(t, s, "f64", []int{4}, fixtureData(42, 4))
}

func TestLoadPTHStrided(t *testing.T) {
	s, err := LoadPTH(fixture("strided.pth"))
	if err != nil {
		t.Fatal(err)
	}
	// transposed = base.t(), base = vals([4, 6], 10).
	base := fixtureData(10, 24)
	var transposed []float32
	for r := 0; r < 6; r++ {
		for c := 0; c < 4; c++ {
			transposed = append(transposed, base[c*6+r])
		}
	}
	checkTensor(t, s, "transposed", []int{6, 4}, transposed)
	// big = vals([8, 3], 11): rows 2..4 and column 1.
	big := fixtureData(11, 24)
	checkTensor(t, s, "rows_2_to_5", []int{3, 3}, big[6:15])
	var col []float32
	for r := 0; r < 8; r++ {
		col = append(col, big[r*3+1])
	}
	checkTensor(t, s, "column_1", []int{8}, col)
	// permuted = vals([2, 3, 4], 12).permute(2, 0, 1): out[i][j][k] = in[j][k][i].
	in := fixtureData(12, 24)
	var perm []float32
	for i := 0; i < 4; i++ {
		for j := 0; j < 2; j++ {
			for k := 0; k < 3; k++ {
				perm = append(perm, in[j*12+k*4+i])
			}
		}
	}
	checkTensor(t, s, "permuted", []int{4, 2, 3}, perm)
}

// Pickle builder for hand-made checkpoints (protocol 2 opcodes).
type pk struct{ bytes.Buffer }

func (p *pk) op(b ...byte) *pk { p.Write(b); return p }
func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}
func (p *pk) int(i int) *pk {
	p.WriteByte('J')
	binary.Write(p, binary.LittleEndian, int32(i))
	return p
}
func (p *pk) global(mod, name string) *pk { p.WriteString("c" + mod + "\n" + name + "\n"); return p }
func (p *pk) ints(v []int) *pk {
	p.op('(')
	for _, x := range v {
		p.int(x)
	}
	return p.op('t')
}

// tensor appends a _rebuild_tensor_v2 call for a storage persistent id.
func (p *pk) tensor(storageType, key string, numel, offset int, size, stride []int) *pk {
	p.global("torch._utils", "_rebuild_tensor_v2").op('(')
	p.op('(').str("storage").global("torch", storageType).str(key).str("cpu").int(numel).op('t', 'Q')
	p.int(offset).ints(size).ints(stride).op(0x89) // requires_grad=False
	p.global("collections", "OrderedDict").op(')', 'R')
	return p.op('t', 'R')
}

// stateDict wraps entries (each a function appending a value) into a dict pickle.
func stateDict(entries ...func(p *pk)) []byte {
	p := &pk{}
	p.op(0x80, 2, '}', '(')
	for _, e := range entries {
		e(p)
	}
	p.op('u', '.')
	return p.Bytes()
}

func entry(name string, value func(p *pk)) func(p *pk) {
	return func(p *pk) { p.str(name); value(p) }
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// zipCheckpoint writes a zip checkpoint (archive "archive/") with the given
// records (names relative to the archive folder) and returns its path.
func zipCheckpoint(t *testing.T, records map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range records {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "ckpt.pth", buf.Bytes())
}

func TestLoadPTHHandMade(t *testing.T) {
	// A valid hand-made checkpoint: two tensors sharing one storage.
	pkl := stateDict(
		entry("a", func(p *pk) { p.tensor("FloatStorage", "0", 6, 0, []int{2, 3}, []int{3, 1}) }),
		entry("b", func(p *pk) { p.tensor("FloatStorage", "0", 6, 1, []int{2, 2}, []int{1, 2}) }),
	)
	path := zipCheckpoint(t, map[string][]byte{"data.pkl": pkl, "data/0": f32bytes(0, 1, 2, 3, 4, 5), "byteorder": []byte("little")})
	s, err := LoadPTH(path)
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "a", []int{2, 3}, []float32{0, 1, 2, 3, 4, 5})
	checkTensor(t, s, "b", []int{2, 2}, []float32{1, 3, 2, 4})

	// A broadcast (stride 0) tensor is materialized.
	pkl = stateDict(entry("c", func(p *pk) { p.tensor("FloatStorage", "0", 2, 1, []int{2, 3}, []int{0, 0}) }))
	s, err = LoadPTH(zipCheckpoint(t, map[string][]byte{"data.pkl": pkl, "data/0": f32bytes(5, 6)}))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "c", []int{2, 3}, []float32{6, 6, 6, 6, 6, 6})

	// Integer and bool storages, a Parameter wrapper and torch.Size.
	pkl = stateDict(
		entry("long", func(p *pk) { p.tensor("LongStorage", "l", 2, 0, []int{2}, []int{1}) }),
		entry("int", func(p *pk) { p.tensor("IntStorage", "i", 2, 0, []int{2}, []int{1}) }),
		entry("short", func(p *pk) { p.tensor("ShortStorage", "s", 2, 0, []int{2}, []int{1}) }),
		entry("char", func(p *pk) { p.tensor("CharStorage", "c", 2, 0, []int{2}, []int{1}) }),
		entry("byte", func(p *pk) { p.tensor("ByteStorage", "b", 2, 0, []int{2}, []int{1}) }),
		entry("bool", func(p *pk) { p.tensor("BoolStorage", "o", 2, 0, []int{2}, []int{1}) }),
		entry("param", func(p *pk) {
			p.global("torch._utils", "_rebuild_parameter").op('(')
			p.tensor("DoubleStorage", "d", 2, 0, []int{2}, []int{1})
			p.op(0x88).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
		}),
		entry("sized", func(p *pk) {
			p.global("torch._utils", "_rebuild_tensor").op('(')
			p.op('(').str("storage").global("torch", "FloatStorage").str("f").str("cpu").int(2).op('t', 'Q')
			p.int(0).global("torch", "Size").op('(').ints([]int{2}).op('t', 'R').ints([]int{1}).op('t', 'R')
		}),
	)
	le := binary.LittleEndian
	s, err = LoadPTH(zipCheckpoint(t, map[string][]byte{"data.pkl": pkl,
		"data/l": le.AppendUint64(le.AppendUint64(nil, uint64(1<<64-3)), 1<<20),
		"data/i": le.AppendUint32(le.AppendUint32(nil, uint32(1<<32-3)), 7),
		"data/s": le.AppendUint16(le.AppendUint16(nil, uint16(1<<16-3)), 7),
		"data/c": {0xfd, 7}, "data/b": {0xfd, 7}, "data/o": {1, 0},
		"data/d": le.AppendUint64(le.AppendUint64(nil, math.Float64bits(0.1)), math.Float64bits(-1e300)),
		"data/f": f32bytes(1.5, 2.5),
	}))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "long", []int{2}, []float32{-3, 1 << 20})
	checkTensor(t, s, "int", []int{2}, []float32{-3, 7})
	checkTensor(t, s, "short", []int{2}, []float32{-3, 7})
	checkTensor(t, s, "char", []int{2}, []float32{-3, 7})
	checkTensor(t, s, "byte", []int{2}, []float32{253, 7})
	checkTensor(t, s, "bool", []int{2}, []float32{1, 0})
	checkTensor(t, s, "param", []int{2}, []float32{0.1, float32(math.Inf(-1))})
	checkTensor(t, s, "sized", []int{2}, []float32{1.5, 2.5})

	// DataParallel "module." prefixes are removed.
	pkl = stateDict(entry("module.x", func(p *pk) { p.tensor("FloatStorage", "0", 1, 0, []int{}, []int{}) }))
	s, err = LoadPTH(zipCheckpoint(t, map[string][]byte{"data.pkl": pkl, "data/0": f32bytes(9)}))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "x", nil, []float32{9})
}

func TestLoadPTHErrors(t *testing.T) {
	tensorA := func(p *pk) { p.tensor("FloatStorage", "0", 4, 0, []int{2, 2}, []int{2, 1}) }
	data0 := f32bytes(1, 2, 3, 4)
	for _, c := range []struct {
		name    string
		records map[string][]byte
		want    []string
	}{
		{"no data.pkl", map[string][]byte{"data/0": data0}, []string{"no <archive>/data.pkl"}},
		{"torchscript", map[string][]byte{"data.pkl": stateDict(), "constants.pkl": {0x80, 2, ')', '.'}}, []string{"TorchScript"}},
		{"big endian", map[string][]byte{"data.pkl": stateDict(), "byteorder": []byte("big")}, []string{`byte order is "big"`}},
		{"missing storage record", map[string][]byte{"data.pkl": stateDict(entry("a", tensorA))}, []string{`tensor "a"`, "archive/data/0 is missing"}},
		{"short storage record", map[string][]byte{"data.pkl": stateDict(entry("a", tensorA)), "data/0": data0[:12]}, []string{`tensor "a"`, "holds 12 bytes, expected 16"}},
		{"stride out of bounds", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.tensor("FloatStorage", "0", 4, 0, []int{2, 2}, []int{3, 1})
		})), "data/0": data0}, []string{`tensor "a"`, "reach outside its 4-element storage"}},
		{"offset out of bounds", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.tensor("FloatStorage", "0", 4, 4, []int{1}, []int{1})
		})), "data/0": data0}, []string{`tensor "a"`, "reach outside"}},
		{"negative size", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.tensor("FloatStorage", "0", 4, 0, []int{-2, 2}, []int{2, 1})
		})), "data/0": data0}, []string{`tensor "a"`, "invalid size"}},
		{"unsupported storage", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.tensor("ComplexFloatStorage", "0", 2, 0, []int{2}, []int{1})
		})), "data/0": data0}, []string{`tensor "a"`, "torch.ComplexFloatStorage is not supported"}},
		{"huge broadcast", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.tensor("FloatStorage", "0", 4, 0, []int{1 << 25}, []int{0})
		})), "data/0": data0}, []string{`tensor "a"`, "33554432 elements but its storage only 4", "broadcast"}},
		{"amplification", map[string][]byte{"data.pkl": stateDict(
			entry("a", func(p *pk) { p.tensor("FloatStorage", "0", 4, 0, []int{1 << 23}, []int{0}) }),
			entry("b", func(p *pk) { p.tensor("FloatStorage", "0", 4, 0, []int{1 << 23}, []int{0}) }),
			entry("c", func(p *pk) { p.tensor("FloatStorage", "0", 4, 0, []int{1 << 23}, []int{0}) }),
		), "data/0": data0}, []string{`tensor "c"`, "more than 4×"}},
		{"not a tensor", map[string][]byte{"data.pkl": stateDict(entry("a", tensorA), entry("epoch", func(p *pk) { p.int(3) })), "data/0": data0},
			[]string{`entry "epoch" is int 3, not a tensor`}},
		{"pickled module", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) {
			p.global("torch.nn.modules.conv", "Conv2d").op(')', 0x81)
		}))}, []string{`entry "a" is a pickled torch.nn.modules.conv.Conv2d object`}},
		{"wrapped non-dict", map[string][]byte{"data.pkl": stateDict(entry("state_dict", func(p *pk) { p.int(1) }), entry("x", func(p *pk) { p.int(1) }))},
			[]string{`entry "state_dict" is int 1, expected a state dict`}},
		{"top level list", map[string][]byte{"data.pkl": {0x80, 2, ']', '.'}}, []string{"holds a list, expected a state dict"}},
		{"non-string key", map[string][]byte{"data.pkl": stateDict(func(p *pk) { p.int(5); tensorA(p) }), "data/0": data0}, []string{"key int 5 is not a string"}},
		{"truncated pickle", map[string][]byte{"data.pkl": stateDict(entry("a", tensorA))[:40]}, []string{"data.pkl", "truncated"}},
		{"huge string length", map[string][]byte{"data.pkl": {0x80, 2, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40, '.'}}, []string{"declares 4611686018427387904 bytes"}},
		{"bad opcode", map[string][]byte{"data.pkl": {0x80, 2, 0xff, '.'}}, []string{"invalid pickle opcode 0xff"}},
		{"unpickler panic", map[string][]byte{"data.pkl": {0x80, 2, 0x8a, 0, '.'}}, []string{"corrupt pickle data"}},
		{"bad persistent id", map[string][]byte{"data.pkl": stateDict(entry("a", func(p *pk) { p.str("x").op('Q') }))}, []string{"persistent id is string"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := zipCheckpoint(t, c.records)
			s, err := LoadPTH(path)
			if s != nil {
				t.Errorf("got a set with an error")
			}
			wantErr(t, err, append(c.want, path)...)
		})
	}
}

func TestLoadPTHBadFiles(t *testing.T) {
	small := readFixture(t, "small.pth")
	legacy := readFixture(t, "small_legacy.pth")
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "sys_info", Mode: 0o600, Size: 4})
	tw.Write([]byte("abcd"))
	tw.Close()
	plainPickle := []byte{0x80, 2, 'K', 5, '.'}
	for _, c := range []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"not a PyTorch checkpoint"}},
		{"text", []byte("hello, world"), []string{"not a PyTorch checkpoint"}},
		{"truncated zip", small[:len(small)/2], []string{"corrupt or truncated zip"}},
		{"legacy tar", tarBuf.Bytes(), []string{"legacy tar-format"}},
		{"plain pickle", plainPickle, []string{"without PyTorch's legacy magic number"}},
		{"legacy truncated in pickle", legacy[:300], []string{"truncated"}},
		{"legacy truncated in data", legacy[:len(legacy)-5], []string{"truncated"}},
		{"legacy header only", legacy[:60], []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.pth", c.data)
			s, err := LoadPTH(p)
			if s != nil {
				t.Errorf("got a set with an error")
			}
			wantErr(t, err, append(c.want, p)...)
		})
	}
	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "none.pth")
		_, err := LoadPTH(p)
		wantErr(t, err, p, "no such file")
	})
	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		_, err := LoadPTH(d)
		wantErr(t, err, d, "directory")
	})
	// Every truncation of the legacy file must fail cleanly (no panic, no set).
	for n := 0; n < len(legacy); n += 7 {
		if s, err := readPTH(bytes.NewReader(legacy[:n]), int64(n), fmt.Sprint("legacy[:", n, "]")); err == nil || s != nil {
			t.Fatalf("legacy[:%d]: no error", n)
		}
	}
	// Same for the zip file.
	for n := 0; n < len(small); n += 13 {
		if s, err := readPTH(bytes.NewReader(small[:n]), int64(n), "zip"); err == nil || s != nil {
			t.Fatalf("small.pth[:%d]: no error", n)
		}
	}
}
