package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// bigSet returns tensors of several sizes (one spans several 256 Ki-value
// pieces of the parallel copy) with values that exercise every bit pattern
// class: signed zeros, subnormals, NaN payloads, infinities.
func bigSet() *Set {
	s := NewSet("test")
	special := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc01234), math.Float32frombits(0xffa00001), math.MaxFloat32}
	for k, shape := range [][]int{{3}, {700, 1000}, {16, 3, 3, 3}, {0, 5}, {}} {
		n := prod(shape)
		d := make([]float32, n)
		for i := range d {
			if i%97 == 0 {
				d[i] = special[(i/97)%len(special)]
			} else {
				d[i] = fixtureValue(k, i)
			}
		}
		s.Tensors[fmt.Sprintf("t%d", k)] = &Tensor{Shape: shape, Data: d}
	}
	return s
}

// sameBits fails unless a and b hold the same tensors, bit for bit.
func sameBits(t *testing.T, what string, a, b *Set) {
	t.Helper()
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%s: %d vs %d tensors", what, len(a.Tensors), len(b.Tensors))
	}
	for name, x := range a.Tensors {
		y := b.Tensors[name]
		if y == nil || !sameShape(x.Shape, y.Shape) || len(x.Data) != len(y.Data) || (x.DType != "" && y.DType != "" && x.DType != y.DType) {
			t.Fatalf("%s: tensor %q differs in shape, size or dtype", what, name)
		}
		for i := range x.Data {
			if math.Float32bits(x.Data[i]) != math.Float32bits(y.Data[i]) {
				t.Fatalf("%s: %q[%d] = %#x vs %#x", what, name, i, math.Float32bits(x.Data[i]), math.Float32bits(y.Data[i]))
			}
		}
	}
}

// readPath loads path through the portable read path (no mapping).
func readPath(t *testing.T, path string) *Set {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s, err := readSafetensors(f, st.Size(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A mapped load (aliasing or copying) equals a read load bit for bit; the
// aliasing set releases its data on Close.
func TestMappedEqualsRead(t *testing.T) {
	path := t.TempDir() + "/big.safetensors"
	if err := SaveSafetensors(path, bigSet()); err != nil {
		t.Fatal(err)
	}
	want := readPath(t, path)
	sameBits(t, "read vs original", bigSet(), want)
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		got, err := LoadSafetensors(path)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mapped() {
			t.Fatal("LoadSafetensors returned a set that aliases a mapping")
		}
		sameBits(t, fmt.Sprintf("LoadSafetensors (GOMAXPROCS %d)", procs), want, got)
	}
	m, err := MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if hostLittleEndian && runtime.GOOS == "linux" && !m.Mapped() {
		t.Fatal("MapSafetensors of an aligned F32 file copied instead of mapping")
	}
	sameBits(t, "MapSafetensors", want, m)
	// Release lets go of one aliasing tensor only.
	small := m.Tensors["t2"]
	m.Release("t2")
	m.Release("no such tensor")
	if small.Data != nil || m.Tensors["t1"].Data == nil || !m.Mapped() {
		t.Fatal("Release did not release exactly the one tensor")
	}
	if _, err := m.Get("t2", 16, 3, 3, 3); err == nil {
		t.Fatal("Get of a released tensor returned it")
	}
	m.Tensors["t2"] = want.Tensors["t2"] // Back, for the comparison below.
	sameBits(t, "MapSafetensors after Release", want, m)
	big := m.Tensors["t1"]
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if big.Data != nil || m.Mapped() {
		t.Fatal("Close left an aliasing tensor's data in place")
	}
	if _, err := m.Get("t1", 700, 1000); err == nil {
		t.Fatal("Get after Close returned a tensor without data")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// misalignedImage writes s with a header padded to an odd length, so that
// every tensor starts at an odd file offset.
func misalignedImage(t *testing.T, s *Set) []byte {
	hdr, names, err := safetensorsHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	hdr = append(bytes.TrimRight(hdr, " "), ' ')
	if (8+len(hdr))%2 == 0 {
		hdr = append(hdr, ' ')
	}
	var buf bytes.Buffer
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
	buf.Write(n[:])
	buf.Write(hdr)
	for _, name := range names {
		for _, v := range s.Tensors[name].Data {
			binary.Write(&buf, binary.LittleEndian, math.Float32bits(v))
		}
	}
	return buf.Bytes()
}

// Data at offsets that are not 4-byte aligned cannot be aliased: the mapped
// loader copies (decodes) it instead, with the same values.
func TestMappedMisalignedFallsBack(t *testing.T) {
	img := misalignedImage(t, bigSet())
	if (8+binary.LittleEndian.Uint64(img))%4 == 0 {
		t.Fatal("test image is aligned")
	}
	path := writeTemp(t, "odd.safetensors", img)
	want := readPath(t, path)
	sameBits(t, "read vs original", bigSet(), want)
	m, err := MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Mapped() {
		t.Fatal("misaligned tensors alias the mapping")
	}
	sameBits(t, "MapSafetensors (misaligned)", want, m)
	got, err := LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "LoadSafetensors (misaligned)", want, got)
}

// Other dtypes are decoded from the mapping, as the read path does.
func TestMappedOtherDTypes(t *testing.T) {
	for _, name := range []string{"mixed.safetensors", "small_f16.safetensors", "small.safetensors"} {
		want := readPath(t, fixture(name))
		m, err := MapSafetensors(fixture(name))
		if err != nil {
			t.Fatal(err)
		}
		sameBits(t, name, want, m)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// LoadMapped maps .safetensors files (Close required) and reads the rest.
func TestLoadMapped(t *testing.T) {
	path := t.TempDir() + "/big.safetensors"
	if err := SaveSafetensors(path, bigSet()); err != nil {
		t.Fatal(err)
	}
	s, err := LoadMapped(t.Context(), path, HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "LoadMapped", bigSet(), s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = LoadMapped(t.Context(), t.TempDir()+"/missing.safetensors", HubOptions{})
	wantErr(t, err, "missing.safetensors", "does not exist")
	s, err = LoadMapped(t.Context(), fixture("timm.safetensors"), HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A timm-named file is mapped too, and renamed by FromTimm keeping the
	// aliasing: the converted set owns the mapping.
	if !s.Mapped() || !s.Has("classifier.0.weight") || s.Has("pre_logits.fc1.weight") {
		t.Fatalf("timm file: mapped %v, names %v", s.Mapped(), s.Names())
	}
	want, err := Load(t.Context(), fixture("timm.safetensors"), HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "LoadMapped(timm)", want, s)
	w0 := s.Tensors["classifier.0.weight"]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if w0.Data != nil {
		t.Fatal("a renamed tensor still aliases the mapping after Close")
	}
}

func TestFirstNonFinite(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1 << 20, 3<<20 + 17} {
		d := make([]float32, n)
		for i := range d {
			d[i] = fixtureValue(1, i)
		}
		if got := FirstNonFinite(d); got != -1 {
			t.Fatalf("n=%d: finite data reported at %d", n, got)
		}
		if n == 0 {
			continue
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			for _, at := range []int{n - 1, n / 2, 0} {
				d[at] = bad
				for _, procs := range []int{1, 2} {
					old := runtime.GOMAXPROCS(procs)
					got := FirstNonFinite(d)
					runtime.GOMAXPROCS(old)
					if got != at {
						t.Fatalf("n=%d: %v at %d reported at %d (GOMAXPROCS %d)", n, bad, at, got, procs)
					}
				}
			}
			d[0], d[n/2], d[n-1] = 1, 1, 1
		}
	}
	d := []float32{1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}
	if got := FirstNonFinite(d); got != -1 {
		t.Fatalf("extreme finite values reported at %d", got)
	}
}

// Keep lends out a mapped tensor's memory (the mapping outlives Close until
// the handle is released), except for a tensor that ends in the file's last
// 64 bytes: a SIMD read past its end would leave the mapping, so Keep gives
// no handle and the caller copies. Tensors the set owns get no handle either.
func TestKeep(t *testing.T) {
	w := NewSet("keep")
	w.Tensors["a"] = &Tensor{Shape: []int{64}, Data: make([]float32, 64)}
	w.Tensors["b"] = &Tensor{Shape: []int{32}, Data: make([]float32, 32)} // The file's last tensor.
	for i := range w.Tensors["a"].Data {
		w.Tensors["a"].Data[i] = float32(i)
	}
	path := filepath.Join(t.TempDir(), "k.safetensors")
	if err := SaveSafetensors(path, w); err != nil {
		t.Fatal(err)
	}
	s, err := MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	a, ka, err := s.Keep("a", 64)
	if err != nil || ka == nil || a[63] != 63 {
		t.Fatalf("Keep(a): handle %v, %v", ka, err)
	}
	if _, kb, err := s.Keep("b", 32); err != nil || kb != nil {
		t.Fatalf("Keep(b), the file's last tensor: handle %v (%v), want none", kb, err)
	}
	if _, _, err := s.Keep("a", 65); err == nil || !strings.Contains(err.Error(), "[65]") {
		t.Fatalf("Keep with a wrong shape: %v", err)
	}
	s.Release("a") // The set lets go of a; the handle keeps it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if a[10] != 10 {
		t.Fatal("kept data changed after Close")
	}
	if err := ka.Release(); err != nil {
		t.Fatal(err)
	}
	if err := ka.Release(); err != nil { // Twice is fine.
		t.Fatal(err)
	}
	owned := NewSet("owned")
	owned.Tensors["x"] = &Tensor{Shape: []int{2}, Data: []float32{1, 2}}
	if d, k, err := owned.Keep("x"); err != nil || k != nil || d[1] != 2 {
		t.Fatalf("Keep on an owned tensor: %v %v %v", d, k, err)
	}
}
