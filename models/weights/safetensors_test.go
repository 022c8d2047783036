package weights

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLoadSafetensorsSmall(t *testing.T) {
	s, err := LoadSafetensors(fixture("small.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, s)
	if s.Source != fixture("small.safetensors") {
		t.Errorf("Source = %q", s.Source)
	}
	if s.Metadata["format"] != "pt" || s.Metadata["source"] != "cnnviz test fixture" {
		t.Errorf("Metadata = %v", s.Metadata)
	}
}

func TestLoadSafetensorsFloat16(t *testing.T) {
	s, err := LoadSafetensors(fixture("small_f16.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	checkSmall(t, s) // all fixture values are exact in float16
}

func TestLoadSafetensorsMixedDTypes(t *testing.T) {
	s, err := LoadSafetensors(fixture("mixed.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "bf16", []int{2, 3}, fixtureData(30, 6))
	checkTensor(t, s, "f64", []int{3, 2}, fixtureData(31, 6))
	checkTensor(t, s, "f16", []int{5}, fixtureData(32, 5))
	checkTensor(t, s, "scalar", nil, []float32{2.5})
	checkTensor(t, s, "empty", []int{0, 3}, nil)
}

func TestHalfToFloat32(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 1.0 / (1 << 14)},       // smallest normal
		{0x0001, 1.0 / (1 << 24)},       // smallest subnormal
		{0x03ff, 1023.0 / (1 << 24)},    // largest subnormal
		{0x8001, -1.0 / (1 << 24)},      // negative subnormal
		{0x7c00, float32(math.Inf(1))},  // +Inf
		{0xfc00, float32(math.Inf(-1))}, // -Inf
	} {
		if got := halfToFloat32(c.h); got != c.want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
	if got := halfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("halfToFloat32(0x8000) = %v, want -0", got)
	}
	if got := halfToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("halfToFloat32(0x7e00) = %v, want NaN", got)
	}
	// BF16 is the high half of a float32.
	if got := decodeBF16([]byte{0x80, 0x3f}); got != 1 {
		t.Errorf("decodeBF16(1.0) = %v", got)
	}
}

func TestSaveSafetensorsRoundTrip(t *testing.T) {
	nan := float32(math.NaN())
	s := NewSet("test")
	s.Metadata = map[string]string{"format": "pt", "note": "<&> \"quoted\""}
	s.Tensors["b.weight"] = &Tensor{Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, nan, float32(math.Inf(-1)), 1e-45}}
	s.Tensors["a.bias"] = &Tensor{Shape: []int{2}, Data: []float32{float32(math.Copysign(0, -1)), 7}}
	s.Tensors["scalar"] = &Tensor{Shape: []int{}, Data: []float32{42}}
	s.Tensors["empty"] = &Tensor{Shape: []int{0, 4}, Data: nil}
	p := filepath.Join(t.TempDir(), "out.safetensors")
	if err := SaveSafetensors(p, s); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	wantHdr := `{"__metadata__":{"format":"pt","note":"<&> \"quoted\""},` +
		`"a.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},` +
		`"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[32,32]},` +
		`"scalar":{"dtype":"F32","shape":[],"data_offsets":[32,36]}}`
	if got := strings.TrimRight(string(raw[8:8+n]), " "); got != wantHdr {
		t.Errorf("header\n got %s\nwant %s", got, wantHdr)
	}
	if int(8+n+36) != len(raw) {
		t.Errorf("file is %d bytes, want %d", len(raw), 8+n+36)
	}
	got, err := LoadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range s.Tensors {
		checkTensor(t, got, name, want.Shape, want.Data)
	}
	if len(got.Metadata) != 2 || got.Metadata["note"] != s.Metadata["note"] {
		t.Errorf("Metadata = %v", got.Metadata)
	}
	// Only the final file remains (no temporary file).
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestSaveSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		tensors map[string]*Tensor
		want    []string
	}{
		{"length mismatch", map[string]*Tensor{"w": {Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}, []string{`"w"`, "[2 2]", "holds 3"}},
		{"negative dim", map[string]*Tensor{"w": {Shape: []int{-1}, Data: nil}}, []string{`"w"`, "invalid shape"}},
		{"nil tensor", map[string]*Tensor{"w": nil}, []string{`"w"`, "nil"}},
		{"reserved name", map[string]*Tensor{"__metadata__": {Shape: []int{1}, Data: []float32{1}}}, []string{"__metadata__"}},
		{"empty name", map[string]*Tensor{"": {Shape: []int{1}, Data: []float32{1}}}, []string{"invalid tensor name"}},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		err := SaveSafetensors(p, &Set{Tensors: c.tensors})
		wantErr(t, err, append(c.want, p)...)
		if _, statErr := os.Stat(p); statErr == nil {
			t.Errorf("%s: file written despite the error", c.name)
		}
	}
	wantErr(t, SaveSafetensors(filepath.Join(dir, "x.safetensors"), nil), "nil set")
	wantErr(t, SaveSafetensors(filepath.Join(dir, "no", "such", "dir", "x.safetensors"), NewSet("")), "no such file")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// stFile builds a safetensors image from a raw header string and data.
func stFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestLoadSafetensorsErrors(t *testing.T) {
	good := readFixture(t, "small.safetensors")
	hlen := int(binary.LittleEndian.Uint64(good))
	f32x4 := make([]byte, 16)
	for _, c := range []struct {
		name string
		data []byte
		want []string
	}{
		{"empty file", nil, []string{"too short", "truncated"}},
		{"short file", []byte{1, 2, 3}, []string{"too short"}},
		{"truncated header", good[:8+hlen/2], []string{"header length", "truncated"}},
		{"truncated data", good[:len(good)-10], []string{"run past the end", "truncated", "classifier"}},
		{"zero header length", make([]byte, 8), []string{"not a valid JSON object"}},
		{"huge header length", []byte{255, 255, 255, 255, 255, 255, 255, 255, '{', '}'}, []string{"exceeds"}},
		{"header length over limit", append([]byte{0, 0, 0, 0, 1, 0, 0, 0}, `{}`...), []string{"exceeds"}},
		{"corrupt header JSON", stFile(`{"w":{"dtype":"F32",`, nil), []string{"not a valid JSON object"}},
		{"header not an object", stFile(`[1,2,3]`, nil), []string{"not a valid JSON object"}},
		{"header null", stFile(`null`, nil), []string{"JSON null"}},
		{"garbage after header", stFile(`{} xyz`, nil), []string{"unexpected bytes after the JSON object"}},
		{"unknown dtype", stFile(`{"w":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}}`, f32x4), []string{`tensor "w"`, `unsupported dtype "C64"`}},
		{"fp8 dtype", stFile(`{"w":{"dtype":"F8_E4M3","shape":[16],"data_offsets":[0,16]}}`, f32x4), []string{`tensor "w"`, `"F8_E4M3"`}},
		{"offsets past end", stFile(`{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, f32x4), []string{`tensor "w"`, "[0, 32]", "16-byte data section"}},
		{"offsets vs shape", stFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`, f32x4), []string{`tensor "w"`, "needs 12 bytes", "span 16"}},
		{"reversed offsets", stFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, f32x4), []string{`tensor "w"`, "invalid data_offsets"}},
		{"negative offsets", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, f32x4), []string{`tensor "w"`, "invalid data_offsets"}},
		{"one offset", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, f32x4), []string{`tensor "w"`, "[begin, end]"}},
		{"negative dim", stFile(`{"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}`, f32x4), []string{`tensor "w"`, "invalid shape"}},
		{"huge dims", stFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, f32x4), []string{`tensor "w"`, "too many elements"}},
		{"no shape", stFile(`{"w":{"dtype":"F32","data_offsets":[0,16]}}`, f32x4), []string{`tensor "w"`, `no "shape"`}},
		{"entry not an object", stFile(`{"w":3}`, f32x4), []string{`tensor "w"`, "bad header entry"}},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32x4), []string{`"a"`, `"b"`, "overlap"}},
		{"bad metadata", stFile(`{"__metadata__":{"n":1}}`, nil), []string{"__metadata__"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", c.data)
			s, err := LoadSafetensors(p)
			if s != nil {
				t.Errorf("got a set with an error")
			}
			wantErr(t, err, append(c.want, p)...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.safetensors")
		_, err := LoadSafetensors(p)
		wantErr(t, err, p, "no such file")
	})
	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		_, err := LoadSafetensors(d)
		wantErr(t, err, d, "directory")
	})
}

// TestLoadSafetensorsPadding checks that space padding after the JSON and data
// not referenced by any tensor are accepted, and that offsets are relative to
// the data section.
func TestLoadSafetensorsPadding(t *testing.T) {
	data := make([]byte, 12)
	binary.LittleEndian.PutUint32(data[4:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(data[8:], math.Float32bits(-3))
	p := writeTemp(t, "pad.safetensors", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}    `, data))
	s, err := LoadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, s, "w", []int{2}, []float32{1.5, -3})
}

func TestSetGetErrors(t *testing.T) {
	s, err := LoadSafetensors(fixture("small.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Get("features.0.weight", 64, 3, 3, 3)
	wantErr(t, err, `"features.0.weight"`, "[4 3 3 3]", "expected [64 3 3 3]", fixture("small.safetensors"))
	_, err = s.Get("features.0.weight", 4, 27)
	wantErr(t, err, "[4 3 3 3]", "expected [4 27]")
	_, err = s.Get("features.99.weight")
	wantErr(t, err, `"features.99.weight"`, "missing")
	if _, err := s.Get("features.0.weight"); err != nil {
		t.Errorf("Get without shape: %v", err)
	}
	s.Tensors["broken"] = &Tensor{Shape: []int{2, 2}, Data: []float32{1}}
	_, err = s.Get("broken")
	wantErr(t, err, `"broken"`, "holds 1 values")
}

func TestLoadSafetensorsIntegerDTypes(t *testing.T) {
	// Each dtype stores [-2 (or its unsigned wrap), 0, 5]; BOOL stores [1, 0, 2].
	le := binary.LittleEndian
	enc := map[string][]byte{
		"I64":  le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, uint64(1<<64-2)), 0), 5),
		"I32":  le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, uint32(1<<32-2)), 0), 5),
		"I16":  le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, uint16(1<<16-2)), 0), 5),
		"I8":   {0xfe, 0, 5},
		"U64":  le.AppendUint64(le.AppendUint64(le.AppendUint64(nil, 1<<40), 0), 5),
		"U32":  le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, 1<<31), 0), 5),
		"U16":  le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 65535), 0), 5),
		"U8":   {255, 0, 5},
		"BOOL": {1, 0, 2},
	}
	want := map[string][]float32{
		"I64": {-2, 0, 5}, "I32": {-2, 0, 5}, "I16": {-2, 0, 5}, "I8": {-2, 0, 5},
		"U64": {1 << 40, 0, 5}, "U32": {1 << 31, 0, 5}, "U16": {65535, 0, 5}, "U8": {255, 0, 5},
		"BOOL": {1, 0, 1},
	}
	for dt, data := range enc {
		hdr := `{"t":{"dtype":"` + dt + `","shape":[3],"data_offsets":[0,` + strconv.Itoa(len(data)) + `]}}`
		s, err := LoadSafetensors(writeTemp(t, dt+".safetensors", stFile(hdr, data)))
		if err != nil {
			t.Errorf("%s: %v", dt, err)
			continue
		}
		checkTensor(t, s, "t", []int{3}, want[dt])
	}
}
