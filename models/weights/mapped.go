package weights

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"unsafe"
)

// errNoMmap says that a file cannot be mapped here (platform, size): the
// caller reads it instead.
var errNoMmap = errors.New("memory mapping unavailable")

// hostLittleEndian is true on little-endian hosts, where F32 data of a
// safetensors file has the in-memory layout of a []float32.
var hostLittleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// mapping is a private file mapping shared by the tensors of a Set and by
// the Kept handles taken from it: it is unmapped when the set is closed and
// every handle released (a reference count: the set holds one).
type mapping struct {
	mu   sync.Mutex
	data []byte
	refs int
}

// close drops one reference and unmaps the file with the last one.
func (m *mapping) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil
	}
	if m.refs--; m.refs > 0 {
		return nil
	}
	err := unmapFile(m.data)
	m.data = nil
	return err
}

// Kept keeps a file mapping alive after its Set is closed, for data taken
// from it with Set.Keep. Release drops it; the file is unmapped when the set
// and every Kept of it are released. The zero value and nil are valid and
// keep nothing.
type Kept struct {
	once sync.Once
	m    *mapping
}

// Release lets go of the mapping; data obtained with the Keep that returned
// k must not be used afterwards. Safe to call more than once.
func (k *Kept) Release() error {
	if k == nil {
		return nil
	}
	var err error
	k.once.Do(func() {
		if k.m != nil {
			err = k.m.close()
		}
	})
	return err
}

// Keep returns the data of tensor name, checked like Get(name, shape...),
// with a handle that keeps it valid after s.Close when it aliases the file
// mapping (MapSafetensors): then data is not a copy, and the caller must call
// kept.Release when done with it (until then the file stays mapped). For a
// tensor that owns its data, or one that ends in the last 64 bytes of the
// file (a vector read past its end would leave the mapping), kept is nil and
// data is the tensor's own slice, valid until Close: copy it.
// Keep does not change the tensor: Release(name) or Close still drop it
// from s as usual.
func (s *Set) Keep(name string, shape ...int) (data []float32, kept *Kept, err error) {
	t, err := s.Get(name, shape...)
	if err != nil {
		return nil, nil, err
	}
	if s.mapped == nil || !slices.Contains(s.borrowed, t) {
		return t.Data, nil, nil
	}
	m := s.mapped
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, nil, fmt.Errorf("weights %s: tensor %q: the file was unmapped", s.Source, name)
	}
	// SIMD kernels may read up to one 64-byte vector past a tensor's end
	// (see models.PerChannel); past the mapping's end that read would fault,
	// so the file's last bytes are not lent out: the caller copies them.
	if end := uintptr(unsafe.Pointer(&t.Data[len(t.Data)-1])) + 4; uintptr(unsafe.Pointer(&m.data[0]))+uintptr(len(m.data))-end < 64 {
		return t.Data, nil, nil
	}
	m.refs++
	if s.kept == nil {
		s.kept = map[*Tensor]bool{}
	}
	s.kept[t] = true
	return t.Data, &Kept{m: m}, nil
}

// MapSafetensors reads a local .safetensors file by mapping it into memory
// (private: the file is never written) instead of copying it. Tensors stored as F32 whose
// data starts at a 4-byte-aligned file offset (every file written by the
// reference implementation or SaveSafetensors) are not copied: their Data
// aliases the mapping. Other tensors (other dtypes, misaligned offsets, a
// big-endian host) are decoded into new slices, as LoadSafetensors does;
// so is the whole file where mapping is unavailable (non-Unix platforms, an
// empty file). Validation and errors are those of LoadSafetensors.
//
// The caller must call Set.Close when done: it unmaps the file and sets the
// Data of every aliasing tensor to nil. Data slices (or sub-slices) of the
// set must not be kept or used after Close; copy what must outlive it. Until
// Close, a file truncated by another process makes reads fault; the
// conversion functions of this module copy each tensor once and let go.
func MapSafetensors(path string) (*Set, error) { return openSafetensors(path, true) }

// openSafetensors opens, validates and maps (or reads) a safetensors file;
// with borrow, F32 tensors alias the mapping (see MapSafetensors), else every
// tensor is copied out and the file is unmapped before returning.
func openSafetensors(path string, borrow bool) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: cannot open safetensors file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: cannot stat safetensors file %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("weights: %s is a directory, not a .safetensors file", path)
	}
	l, err := parseSafetensorsLayout(f, st.Size(), path)
	if err != nil {
		return nil, err
	}
	data, err := mapFile(f, st.Size())
	if err != nil {
		return readSafetensors(f, st.Size(), path) // Not mappable here: read it.
	}
	m := &mapping{data: data, refs: 1}
	s := NewSet(path)
	s.Metadata = l.meta
	if err := fillFromMapping(s, l, data, borrow); err != nil {
		_ = m.close()
		return nil, err
	}
	if !borrow || len(s.borrowed) == 0 {
		if err := m.close(); err != nil {
			return nil, fmt.Errorf("weights %s: unmapping: %w", path, err)
		}
		s.borrowed = nil
		return s, nil
	}
	s.mapped = m
	return s, nil
}

// fillFromMapping creates the tensors of l from the mapped file image data:
// aliasing it (borrow, F32, aligned, little-endian host) or decoding into new
// slices, spread over the CPUs in pieces of about 1 MiB. A fault while
// reading the mapping (the file was truncated meanwhile) is an error.
func fillFromMapping(s *Set, l *stLayout, data []byte, borrow bool) error {
	type piece struct {
		dst []float32
		src []byte
		et  *elemType
	}
	var pieces []piece
	for _, sp := range l.spans {
		b := data[l.dataStart+sp.begin : l.dataStart+sp.end]
		n := len(b) / sp.et.size
		t := &Tensor{Shape: sp.shape, DType: sp.et.name}
		s.Tensors[sp.name] = t
		if n == 0 {
			t.Data = []float32{}
			continue
		}
		if sp.et == dtypeF32 && hostLittleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
			view := unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
			if borrow {
				t.Data = view
				s.borrowed = append(s.borrowed, t)
				continue
			}
		}
		t.Data = make([]float32, n)
		const grain = 1 << 18 // Elements per piece.
		for a := 0; a < n; a += grain {
			e := min(a+grain, n)
			pieces = append(pieces, piece{t.Data[a:e], b[a*sp.et.size : e*sp.et.size], sp.et})
		}
	}
	if len(pieces) == 0 {
		return nil
	}
	var (
		mu       sync.Mutex
		next     int
		firstErr error
	)
	work := func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				if _, fault := r.(interface{ Addr() uintptr }); !fault {
					panic(r) // A bug, not a fault on the mapping.
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("weights %s: fault reading the mapped file (was it truncated or changed while loading?): %v", s.Source, r)
				}
				mu.Unlock()
			}
		}()
		for {
			mu.Lock()
			i := next
			next++
			stop := i >= len(pieces) || firstErr != nil
			mu.Unlock()
			if stop {
				return
			}
			p := pieces[i]
			if p.et == dtypeF32 && hostLittleEndian && uintptr(unsafe.Pointer(&p.src[0]))%4 == 0 {
				copy(p.dst, unsafe.Slice((*float32)(unsafe.Pointer(&p.src[0])), len(p.dst)))
			} else {
				decodeInto(p.dst, p.src, p.et)
			}
			if !borrow {
				dropPages(p.src)
			}
		}
	}
	// Small files (a few pieces) are copied on this goroutine: no start-up
	// cost, and the same code path every time.
	workers := min(runtime.GOMAXPROCS(0), len(pieces))
	if workers <= 1 || len(pieces) < 4 {
		work()
		return firstErr
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	wg.Wait()
	return firstErr
}

// pageAligned returns the largest sub-slice of b that starts and ends on
// page boundaries (possibly empty).
func pageAligned(b []byte) []byte {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0]))
	end := start + uintptr(len(b))
	lo := (start + page - 1) / page * page
	hi := end / page * page
	if hi <= lo {
		return nil
	}
	return b[lo-start : hi-start]
}

// Mapped reports whether some tensors of s alias a file mapping (see
// MapSafetensors): their Data is valid only until s.Close.
func (s *Set) Mapped() bool { return s != nil && s.mapped != nil }

// Close releases the file mapping behind s, if any (see MapSafetensors):
// the Data of every tensor that aliased it becomes nil, so that a later use
// fails on its shape check instead of reading unmapped memory. Tensors that
// were copied keep their data. Close is a no-op for sets that own all their
// data, and safe to call more than once.
func (s *Set) Close() error {
	if s == nil || s.mapped == nil {
		return nil
	}
	for _, t := range s.borrowed {
		t.Data = nil
	}
	s.borrowed = nil
	err := s.mapped.close()
	s.mapped = nil
	if err != nil {
		return fmt.Errorf("weights %s: unmapping: %w", s.Source, err)
	}
	return nil
}

// Release tells s that the caller has finished reading tensor name. If the
// tensor aliases the file mapping (see MapSafetensors), its pages leave the
// process's resident set (on Linux; the page cache keeps them) and its Data
// becomes nil, so that converting a large mapped file one tensor at a time
// never holds the whole file and the whole result at once. Other tensors are
// left alone. Use it only on tensors no one else reads.
func (s *Set) Release(name string) {
	if s == nil || s.mapped == nil {
		return
	}
	t := s.Tensors[name]
	for i, b := range s.borrowed {
		if b != t || len(t.Data) == 0 {
			continue
		}
		if !s.kept[t] { // Kept pages are still in use.
			dropPages(unsafe.Slice((*byte)(unsafe.Pointer(&t.Data[0])), 4*len(t.Data)))
		}
		t.Data = nil
		s.borrowed = append(s.borrowed[:i], s.borrowed[i+1:]...)
		return
	}
}
