package weights

import (
	"archive/zip"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addFixtureSeeds adds every testdata file with the given suffix to the corpus.
func addFixtureSeeds(f *testing.F, suffix string) {
	names, err := filepath.Glob(filepath.Join("testdata", "*"+suffix))
	if err != nil || len(names) == 0 {
		f.Fatalf("no %s fixtures (run /usr/bin/python3 scripts/gen_weight_fixtures.py): %v", suffix, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkSetInvariants fails if a successfully loaded set is inconsistent.
func checkSetInvariants(t *testing.T, s *Set) {
	t.Helper()
	if s == nil {
		t.Fatal("nil set without error")
	}
	for name, tensor := range s.Tensors {
		if tensor == nil {
			t.Fatalf("tensor %q is nil", name)
		}
		for _, d := range tensor.Shape {
			if d < 0 {
				t.Fatalf("tensor %q has shape %v", name, tensor.Shape)
			}
		}
		if tensor.Size() != len(tensor.Data) {
			t.Fatalf("tensor %q: shape %v but %d values", name, tensor.Shape, len(tensor.Data))
		}
	}
}

// FuzzLoadSafetensors: the safetensors reader never panics, and whatever it
// accepts survives a write/read round trip bit for bit.
func FuzzLoadSafetensors(f *testing.F) {
	addFixtureSeeds(f, ".safetensors")
	f.Add(stFile(`{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0, 0x3c, 0, 0xc0}))
	f.Add(stFile(`{"__metadata__":{"a":"b"},"w":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, []byte{0x80, 0x3f}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := readSafetensors(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if s != nil {
				t.Fatal("set returned with an error")
			}
			return
		}
		checkSetInvariants(t, s)
		hdr, names, err := safetensorsHeader(s)
		if err != nil {
			// Only names the writer reserves may be refused.
			if !strings.Contains(err.Error(), "invalid tensor name") {
				t.Fatalf("loaded set cannot be saved: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := writeSafetensors(&buf, s, hdr, names); err != nil {
			t.Fatal(err)
		}
		back, err := readSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "round trip")
		if err != nil {
			t.Fatalf("re-reading saved set: %v", err)
		}
		if len(back.Tensors) != len(s.Tensors) || len(back.Metadata) != len(s.Metadata) {
			t.Fatalf("round trip changed the set: %v vs %v", back.Names(), s.Names())
		}
		for name, want := range s.Tensors {
			got := back.Tensors[name]
			if got == nil || !sameShape(got.Shape, want.Shape) || len(got.Data) != len(want.Data) {
				t.Fatalf("round trip changed tensor %q", name)
			}
			for i := range want.Data {
				if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
					t.Fatalf("round trip changed %q[%d]", name, i)
				}
			}
		}
	})
}

// FuzzMapSafetensors: the mapped loader (aliasing where it can, decoding
// elsewhere) accepts and refuses exactly what the read path does, with the
// same values bit for bit.
func FuzzMapSafetensors(f *testing.F) {
	addFixtureSeeds(f, ".safetensors")
	f.Add(stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} `, make([]byte, 8)))
	f.Add(stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`, make([]byte, 5)))
	dir := f.TempDir() // One directory: a t.TempDir per input slows the fuzzer to a crawl.
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := readSafetensors(bytes.NewReader(data), int64(len(data)), "fuzz")
		tmp, err := os.CreateTemp(dir, "*.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		path := tmp.Name()
		tmp.Close()
		defer os.Remove(path)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, gerr := MapSafetensors(path)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("read path error %v, mapped error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		defer got.Close()
		checkSetInvariants(t, got)
		if len(got.Metadata) != len(want.Metadata) {
			t.Fatal("metadata differs")
		}
		sameBits(t, "mapped vs read", want, got)
	})
}

// FuzzLoadPTH: the PyTorch checkpoint reader (zip and legacy formats) never
// panics and returns consistent sets. Zip records carry CRCs, so most
// mutations of zip seeds stop at the zip layer; the legacy seeds, which have
// no checksums, exercise the pickle and storage paths (as does FuzzPTHDataPickle).
func FuzzLoadPTH(f *testing.F) {
	addFixtureSeeds(f, ".pth")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := readPTH(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if s != nil {
				t.Fatal("set returned with an error")
			}
			return
		}
		checkSetInvariants(t, s)
	})
}

// fuzzStorage is the content of the storage records FuzzPTHDataPickle provides:
// keys "0" to "3", 16 float32 each (other types see 64, 32 or 16 elements).
var fuzzStorage = f32bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

// FuzzPTHDataPickle fuzzes data.pkl inside a well-formed zip checkpoint, so
// that mutations reach the pickle scanner, gopickle's unpickler, the tensor
// rebuild functions and the strided copy.
func FuzzPTHDataPickle(f *testing.F) {
	f.Add(stateDict(
		entry("a", func(p *pk) { p.tensor("FloatStorage", "0", 16, 0, []int{4, 4}, []int{4, 1}) }),
		entry("b", func(p *pk) { p.tensor("FloatStorage", "1", 16, 2, []int{3, 2}, []int{1, 5}) }),
	))
	f.Add(stateDict(entry("h", func(p *pk) { p.tensor("HalfStorage", "2", 32, 3, []int{2, 2, 2}, []int{8, 1, 3}) })))
	f.Add(stateDict(entry("state_dict", func(p *pk) {
		p.op('}', '(').str("w").tensor("BFloat16Storage", "3", 32, 0, []int{32}, []int{1}).op('u')
	})))
	// data.pkl of the zip fixtures (their storage keys and sizes differ from
	// the records provided, which exercises those checks too).
	for _, name := range []string{"small.pth", "strided.pth", "mixed_dtypes.pth", "wrapped_model.pth"} {
		zr, err := zip.OpenReader(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "/data.pkl") {
				b, err := readZipRecord(zf, 1<<20)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
		zr.Close()
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		records := []struct {
			name string
			data []byte
		}{{"archive/data.pkl", pkl}, {"archive/data/0", fuzzStorage}, {"archive/data/1", fuzzStorage}, {"archive/data/2", fuzzStorage}, {"archive/data/3", fuzzStorage}}
		for _, r := range records {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			w.Write(r.data)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := readPTH(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz")
		if err != nil {
			if s != nil {
				t.Fatal("set returned with an error")
			}
			return
		}
		checkSetInvariants(t, s)
	})
}
