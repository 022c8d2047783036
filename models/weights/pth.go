package weights

// PyTorch checkpoints come in two layouts, both read here:
//
//   - zip (torch.save since PyTorch 1.6): "<archive>/data.pkl" holds the pickled
//     object; each tensor storage is a record "<archive>/data/<key>" of raw
//     little-endian elements; "<archive>/byteorder" (newer versions) says "little".
//   - legacy (before 1.6; torchvision's VGG .pth files on download.pytorch.org are
//     in this format): five consecutive pickles (magic number, protocol version,
//     sys_info, the object, the sorted storage keys) followed, for each key, by an
//     8-byte little-endian element count and the raw elements.
//
// Tensors are pickled as calls to torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) (or the
// older _rebuild_tensor(storage, storage_offset, size, stride)); storages as
// persistent ids ("storage", torch.FloatStorage, key, location, numel[, view]).
//
// Unpickling uses github.com/nlpodyssey/gopickle's pickle.Unpickler, but not its
// pytorch.Load: that allocates each storage at the element count written in the
// pickle before reading any data (a corrupt count means a multi-gigabyte
// allocation or a fatal out-of-memory error that recover cannot catch), panics
// on legacy view storages and tar archives, requires exactly six
// _rebuild_tensor_v2 arguments (PyTorch 2 may pass seven) and lacks
// _rebuild_tensor. Here every declared size is checked against the bytes that
// are really there before anything is allocated (see scanPickle), storages are
// read only once they are known to fit, and any panic from the unpickler is
// turned into an error.

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxDataPickle bounds the size of a checkpoint's data.pkl (the pickled
// structure, not the tensor data): state dicts need kilobytes.
const maxDataPickle = 256 << 20

// LoadPTH reads a PyTorch checkpoint written by torch.save: the zip format
// (PyTorch >= 1.6) or the legacy pickle format (older files, e.g. torchvision's
// VGG weights). The saved object must be a state dict (an OrderedDict or dict
// mapping names to tensors), or a dict holding one under "state_dict",
// "model_state_dict" or "model". If every name starts with "module." (a
// DataParallel model) that prefix is removed.
//
// Storages of type float32, float16, bfloat16 and float64 are converted to
// float32 (float64 rounded to nearest); integer and bool storages (e.g.
// BatchNorm's num_batches_tracked, int64) are converted to float32 too, exactly
// up to 2^24 in magnitude. Names are kept as stored (no timm conversion: see
// Load and FromTimm). Storage offsets and
// strides are honoured: non-contiguous tensors (e.g. a saved transpose) are
// materialized in row-major order of their logical shape. Set.Source is path.
//
// Errors name the file and, where it applies, the tensor: missing file, not a
// checkpoint, TorchScript archives, legacy tar archives, truncated or corrupt
// data, unsupported storage types, strides that reach outside their storage,
// and entries that are not tensors (e.g. a pickled nn.Module).
func LoadPTH(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: cannot open PyTorch checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: cannot stat PyTorch checkpoint %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("weights: %s is a directory, not a PyTorch checkpoint", path)
	}
	return readPTH(f, st.Size(), path)
}

// readPTH parses a checkpoint image of the given size; source names it in
// errors and becomes Set.Source.
func readPTH(r io.ReaderAt, size int64, source string) (*Set, error) {
	var err error
	head := make([]byte, min(size, 512))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("weights %s: reading: %w", source, err)
	}
	l := &ptLoader{source: source, storages: map[string]*ptStorage{}}
	switch {
	case bytes.HasPrefix(head, []byte("PK")):
		err = l.readZip(r, size)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, fmt.Errorf("weights %s: this is a legacy tar-format PyTorch checkpoint (PyTorch < 0.2), which is not supported; load it in Python and re-save it with torch.save(state_dict, path)", source)
	case len(head) >= 2 && head[0] == 0x80 && head[1] <= 5:
		err = l.readLegacy(r, size)
	default:
		return nil, fmt.Errorf("weights %s: not a PyTorch checkpoint: neither a zip archive (torch.save since PyTorch 1.6) nor a legacy pickle checkpoint", source)
	}
	if err != nil {
		return nil, err
	}
	return l.stateDict()
}

// ptLoader holds the state of one checkpoint being read.
type ptLoader struct {
	source   string
	root     any                   // the unpickled top-level object
	storages map[string]*ptStorage // by key
	// zip format only: storage records and the archive they live in.
	zipFiles map[string]*zip.File
	zipDir   string
	size     int64
	// storageElems counts the elements of the storages read so far, outElems
	// those of the tensors materialized so far (see materialize's budget).
	storageElems, outElems int64
}

// ptStorage is a PyTorch storage: numel elements of one type. Legacy view
// storages point at their root storage and start viewOffset elements into it.
type ptStorage struct {
	cls        *ptStorageClass
	key        string
	numel      int64
	data       []byte // raw little-endian elements, nil until read
	loaded     bool
	root       *ptStorage // legacy views only
	viewOffset int64
}

// ptStorageClass is a pickled torch.*Storage class; et is nil for storage
// types this package does not convert.
type ptStorageClass struct {
	name string
	et   *elemType
}

// ptTensor is a tensor as pickled: a strided view of a storage.
type ptTensor struct {
	storage *ptStorage
	offset  int64
	size    []int64
	stride  []int64
}

// callableFunc adapts a Go function to gopickle's types.Callable.
type callableFunc func(args ...any) (any, error)

func (f callableFunc) Call(args ...any) (any, error) { return f(args...) }

// findClass resolves the globals a checkpoint refers to; gopickle itself
// resolves collections.OrderedDict and the builtins before asking.
func (l *ptLoader) findClass(module, name string) (any, error) {
	if module == "torch" && strings.HasSuffix(name, "Storage") {
		if et, ok := torchStorageTypes[name]; ok {
			return &ptStorageClass{name: et.name, et: et}, nil
		}
		return &ptStorageClass{name: module + "." + name}, nil
	}
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return callableFunc(func(args ...any) (any, error) {
			if len(args) < 4 {
				return nil, fmt.Errorf("torch._utils._rebuild_tensor_v2 called with %d arguments, expected 6 or 7", len(args))
			}
			return l.rebuildTensor(args[:4])
		}), nil
	case "torch._utils._rebuild_tensor":
		return callableFunc(func(args ...any) (any, error) {
			if len(args) != 4 {
				return nil, fmt.Errorf("torch._utils._rebuild_tensor called with %d arguments, expected 4", len(args))
			}
			return l.rebuildTensor(args)
		}), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return callableFunc(func(args ...any) (any, error) {
			if len(args) < 1 {
				return nil, fmt.Errorf("%s.%s called without arguments", module, name)
			}
			return args[0], nil
		}), nil
	case "torch.Size":
		return callableFunc(func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("torch.Size called with %d arguments, expected 1", len(args))
			}
			return args[0], nil
		}), nil
	}
	return types.NewGenericClass(module, name), nil
}

// rebuildTensor implements _rebuild_tensor[_v2]'s first four arguments:
// (storage, storage_offset, size, stride).
func (l *ptLoader) rebuildTensor(args []any) (any, error) {
	st, ok := args[0].(*ptStorage)
	if !ok {
		return nil, fmt.Errorf("tensor rebuild: first argument is %s, expected a storage", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("tensor rebuild: storage offset is %s, expected a non-negative int", describe(args[1]))
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("tensor rebuild: size %v and stride %v have different lengths", size, stride)
	}
	return &ptTensor{storage: st, offset: int64(off), size: size, stride: stride}, nil
}

// intTuple converts a pickled tuple (or list) of ints.
func intTuple(v any, what string) ([]int64, error) {
	var items []any
	switch t := v.(type) {
	case *types.Tuple:
		items = *t
	case *types.List:
		items = *t
	default:
		return nil, fmt.Errorf("tensor rebuild: %s is %s, expected a tuple of ints", what, describe(v))
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := it.(int)
		if !ok {
			return nil, fmt.Errorf("tensor rebuild: %s[%d] is %s, expected an int", what, i, describe(it))
		}
		out[i] = int64(n)
	}
	return out, nil
}

// describe names a pickled value's type for error messages.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case int:
		return fmt.Sprintf("int %d", t)
	case *big.Int:
		return "a big int"
	case string:
		return fmt.Sprintf("string %q", abbreviate([]byte(t)))
	case bool:
		return fmt.Sprintf("bool %v", t)
	case float64:
		return fmt.Sprintf("float %v", t)
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case *ptStorage:
		return "a storage"
	case *ptTensor:
		return "a tensor"
	case *types.GenericObject:
		return fmt.Sprintf("a pickled %s.%s object", t.Class.Module, t.Class.Name)
	case *types.GenericClass:
		return fmt.Sprintf("the class %s.%s", t.Module, t.Name)
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// unpickle scans and then unpickles one pickle held in data. persistentLoad may
// be nil (no persistent ids allowed).
//
// gopickle's unpickler panics on some malformed input (e.g. an empty LONG1, or
// an unhashable dict key); such panics are returned as errors.
func (l *ptLoader) unpickle(data []byte, what string, persistentLoad func(any) (any, error)) (v any, err error) {
	if _, err := scanPickle(bufio.NewReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		return nil, fmt.Errorf("weights %s: %s: %w", l.source, what, err)
	}
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("weights %s: unpickling %s: corrupt pickle data (the unpickler failed: %v)", l.source, what, p)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = l.findClass
	u.PersistentLoad = persistentLoad
	v, err = u.Load()
	if err != nil {
		return nil, fmt.Errorf("weights %s: unpickling %s: %w", l.source, what, err)
	}
	return v, nil
}

// storageFromID decodes the common part of a storage persistent id:
// ("storage", storage_class, key, location, numel, ...).
func (l *ptLoader) storageFromID(id any, minLen int) (*types.Tuple, *ptStorage, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, nil, fmt.Errorf("persistent id is %s, expected a tuple", describe(id))
	}
	if kind, _ := t.Get(0).(string); kind != "storage" {
		if kind == "module" {
			return nil, nil, fmt.Errorf("the checkpoint contains a pickled nn.Module (torch.save(model)); save model.state_dict() instead")
		}
		return nil, nil, fmt.Errorf("unsupported persistent id %s", describe(t.Get(0)))
	}
	if t.Len() < minLen {
		return nil, nil, fmt.Errorf("storage persistent id has %d fields, expected %d", t.Len(), minLen)
	}
	cls, ok := t.Get(1).(*ptStorageClass)
	if !ok {
		return nil, nil, fmt.Errorf("storage type is %s, expected a torch.*Storage class", describe(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, nil, fmt.Errorf("storage key is %s, expected a string", describe(t.Get(2)))
	}
	numel, ok := t.Get(4).(int)
	if !ok || numel < 0 || numel > maxTensorElements {
		return nil, nil, fmt.Errorf("storage %q: element count is %s", key, describe(t.Get(4)))
	}
	if st, ok := l.storages[key]; ok {
		if st.cls.name != cls.name || st.numel != int64(numel) {
			return nil, nil, fmt.Errorf("storage %q is declared twice with different types or sizes", key)
		}
		return t, st, nil
	}
	st := &ptStorage{cls: cls, key: key, numel: int64(numel)}
	l.storages[key] = st
	return t, st, nil
}

// readZip reads a zip-format checkpoint's structure (storages are read later,
// when their tensors are materialized).
func (l *ptLoader) readZip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("weights %s: corrupt or truncated zip checkpoint: %w", l.source, err)
	}
	l.size = size
	l.zipFiles = make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, f := range zr.File {
		l.zipFiles[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			if pkl != nil {
				return fmt.Errorf("weights %s: zip archive holds two data.pkl records (%s and %s)", l.source, pkl.Name, f.Name)
			}
			pkl, l.zipDir = f, dir
		}
	}
	if pkl == nil {
		return fmt.Errorf("weights %s: zip archive has no <archive>/data.pkl record: not a torch.save checkpoint", l.source)
	}
	if _, ok := l.zipFiles[l.zipDir+"constants.pkl"]; ok {
		return fmt.Errorf("weights %s: this is a TorchScript archive (torch.jit.save), not a state dict; in Python save model.state_dict() with torch.save, or export safetensors", l.source)
	}
	if bo, ok := l.zipFiles[l.zipDir+"byteorder"]; ok {
		b, err := readZipRecord(bo, 16)
		if err != nil {
			return fmt.Errorf("weights %s: reading %s: %w", l.source, bo.Name, err)
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return fmt.Errorf("weights %s: checkpoint byte order is %q; only little-endian checkpoints are supported", l.source, s)
		}
	}
	data, err := readZipRecord(pkl, maxDataPickle)
	if err != nil {
		return fmt.Errorf("weights %s: reading %s: %w", l.source, pkl.Name, err)
	}
	l.root, err = l.unpickle(data, pkl.Name, func(id any) (any, error) {
		_, st, err := l.storageFromID(id, 5)
		return st, err
	})
	return err
}

// readZipRecord reads a whole zip record of at most limit bytes.
func readZipRecord(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("record is larger than %d bytes", limit)
	}
	return b, nil
}

// loadZipStorage reads the record of storage st, checking its length.
func (l *ptLoader) loadZipStorage(st *ptStorage) error {
	name := l.zipDir + "data/" + st.key
	f, ok := l.zipFiles[name]
	if !ok {
		return fmt.Errorf("storage record %s is missing from the archive (truncated or corrupt file?)", name)
	}
	want := st.numel * int64(st.cls.et.size)
	if f.UncompressedSize64 != uint64(want) {
		return fmt.Errorf("storage record %s holds %d bytes, expected %d (%d × %s)", name, f.UncompressedSize64, want, st.numel, st.cls.name)
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("storage record %s: %w", name, err)
	}
	defer rc.Close()
	var data []byte
	if f.Method == zip.Store && want <= l.size {
		// Stored records (what torch.save writes) lie within the file, so a
		// buffer of their size is bounded by the file size.
		data = make([]byte, want)
		_, err = io.ReadFull(rc, data)
	} else {
		// Compressed: let the buffer grow with the bytes that really come out.
		data, err = io.ReadAll(io.LimitReader(rc, want))
		if err == nil && int64(len(data)) != want {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		return fmt.Errorf("storage record %s: reading %d bytes: %v (truncated or corrupt file?)", name, want, err)
	}
	st.data, st.loaded = data, true
	l.storageElems += st.numel
	return nil
}

// legacyMagic is the first pickle of a legacy checkpoint (torch.serialization.MAGIC_NUMBER).
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// readLegacy reads a legacy (pre-1.6, non-tar) checkpoint, storages included.
func (l *ptLoader) readLegacy(r io.ReaderAt, size int64) error {
	var pos int64
	next := func(what string, persistentLoad func(any) (any, error)) (any, error) {
		br := bufio.NewReader(io.NewSectionReader(r, pos, size-pos))
		n, err := scanPickle(br, size-pos)
		if err != nil {
			return nil, fmt.Errorf("weights %s: legacy checkpoint %s: %w", l.source, what, err)
		}
		data := make([]byte, n)
		if _, err := r.ReadAt(data, pos); err != nil {
			return nil, fmt.Errorf("weights %s: reading legacy checkpoint %s: %w", l.source, what, err)
		}
		pos += n
		return l.unpickle(data, "legacy checkpoint "+what, persistentLoad)
	}
	magic, err := next("magic number", nil)
	if err != nil {
		return fmt.Errorf("weights %s: not a PyTorch checkpoint (no zip archive, no legacy magic number): %w", l.source, err)
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return fmt.Errorf("weights %s: not a PyTorch checkpoint: a pickle file without PyTorch's legacy magic number (found %s)", l.source, describe(magic))
	}
	proto, err := next("protocol version", nil)
	if err != nil {
		return err
	}
	if p, ok := proto.(int); !ok || p != 1001 {
		return fmt.Errorf("weights %s: legacy checkpoint protocol version is %s, expected 1001", l.source, describe(proto))
	}
	sysInfo, err := next("sys_info", nil)
	if err != nil {
		return err
	}
	if d, ok := sysInfo.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return fmt.Errorf("weights %s: checkpoint was written on a big-endian machine; only little-endian checkpoints are supported", l.source)
		}
	}
	views := map[string]*ptStorage{}
	l.root, err = next("object", func(id any) (any, error) {
		t, st, err := l.storageFromID(id, 6)
		if err != nil {
			return nil, err
		}
		vm := t.Get(5)
		if vm == nil {
			return st, nil
		}
		// View metadata: (view_key, offset, view_size) into the root storage.
		v, ok := vm.(*types.Tuple)
		if !ok || v.Len() != 3 {
			return nil, fmt.Errorf("storage %q: view metadata is %s, expected (key, offset, size)", st.key, describe(vm))
		}
		vkey, ok1 := v.Get(0).(string)
		voff, ok2 := v.Get(1).(int)
		vsize, ok3 := v.Get(2).(int)
		if !ok1 || !ok2 || !ok3 || voff < 0 || vsize < 0 || int64(voff)+int64(vsize) > st.numel {
			return nil, fmt.Errorf("storage %q: invalid view metadata %v of a %d-element storage", st.key, *v, st.numel)
		}
		if view, ok := views[vkey]; ok {
			return view, nil
		}
		view := &ptStorage{cls: st.cls, key: vkey, numel: int64(vsize), root: st, viewOffset: int64(voff)}
		views[vkey] = view
		return view, nil
	})
	if err != nil {
		return err
	}
	keysObj, err := next("storage keys", nil)
	if err != nil {
		return err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return fmt.Errorf("weights %s: legacy checkpoint storage key list is %s, expected a list", l.source, describe(keysObj))
	}
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("weights %s: legacy checkpoint storage key is %s, expected a string", l.source, describe(k))
		}
		st, ok := l.storages[key]
		if !ok {
			return fmt.Errorf("weights %s: legacy checkpoint lists storage %q that no tensor uses", l.source, key)
		}
		if st.loaded {
			return fmt.Errorf("weights %s: legacy checkpoint lists storage %q twice", l.source, key)
		}
		var nb [8]byte
		if size-pos < 8 {
			return fmt.Errorf("weights %s: storage %q: file ends before its data (truncated file?)", l.source, key)
		}
		if _, err := r.ReadAt(nb[:], pos); err != nil {
			return fmt.Errorf("weights %s: storage %q: %w", l.source, key, err)
		}
		pos += 8
		if n := int64(binary.LittleEndian.Uint64(nb[:])); n != st.numel {
			return fmt.Errorf("weights %s: storage %q: data holds %d elements, the pickle declares %d (corrupt file?)", l.source, key, n, st.numel)
		}
		esize := int64(1)
		if st.cls.et != nil {
			esize = int64(st.cls.et.size)
		} else {
			// The element size of an unsupported type is unknown, so the data
			// that follows cannot be skipped.
			return fmt.Errorf("weights %s: storage %q has unsupported type %s", l.source, key, st.cls.name)
		}
		want := st.numel * esize
		if want > size-pos {
			return fmt.Errorf("weights %s: storage %q needs %d bytes but only %d remain (truncated file?)", l.source, key, want, size-pos)
		}
		st.data = make([]byte, want)
		if _, err := r.ReadAt(st.data, pos); err != nil {
			return fmt.Errorf("weights %s: storage %q: %w", l.source, key, err)
		}
		st.loaded = true
		l.storageElems += st.numel
		pos += want
	}
	return nil
}

// stateDict finds the state dict in the unpickled object and materializes its
// tensors.
func (l *ptLoader) stateDict() (*Set, error) {
	entries, err := dictEntries(l.root)
	if err != nil {
		return nil, fmt.Errorf("weights %s: the checkpoint holds %s, expected a state dict (a dict of tensors)", l.source, describe(l.root))
	}
	if !allTensors(entries) {
		for _, k := range []string{"state_dict", "model_state_dict", "model"} {
			if v, ok := lookup(entries, k); ok {
				inner, err := dictEntries(v)
				if err != nil {
					return nil, fmt.Errorf("weights %s: checkpoint entry %q is %s, expected a state dict", l.source, k, describe(v))
				}
				entries = inner
				break
			}
		}
	}
	s := NewSet(l.source)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, fmt.Errorf("weights %s: state dict key %s is not a string", l.source, describe(e.key))
		}
		t, ok := e.value.(*ptTensor)
		if !ok {
			return nil, fmt.Errorf("weights %s: state dict entry %q is %s, not a tensor", l.source, name, describe(e.value))
		}
		if _, dup := s.Tensors[name]; dup {
			return nil, fmt.Errorf("weights %s: state dict has tensor %q twice", l.source, name)
		}
		tensor, err := l.materialize(t)
		if err != nil {
			return nil, fmt.Errorf("weights %s: tensor %q: %w", l.source, name, err)
		}
		s.Tensors[name] = tensor
		names = append(names, name)
	}
	if len(names) > 0 {
		strip := true
		for _, n := range names {
			if !strings.HasPrefix(n, "module.") {
				strip = false
				break
			}
		}
		if strip {
			stripped := make(map[string]*Tensor, len(names))
			for _, n := range names {
				stripped[strings.TrimPrefix(n, "module.")] = s.Tensors[n]
			}
			if len(stripped) == len(names) {
				s.Tensors = stripped
			}
		}
	}
	return s, nil
}

type dictEntry struct{ key, value any }

// dictEntries lists a pickled dict's or OrderedDict's entries in order.
func dictEntries(v any) ([]dictEntry, error) {
	switch d := v.(type) {
	case *types.OrderedDict:
		out := make([]dictEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			out = append(out, dictEntry{oe.Key, oe.Value})
		}
		return out, nil
	case *types.Dict:
		out := make([]dictEntry, 0, len(*d))
		for _, e := range *d {
			out = append(out, dictEntry{e.Key, e.Value})
		}
		return out, nil
	}
	return nil, fmt.Errorf("not a dict")
}

func allTensors(entries []dictEntry) bool {
	for _, e := range entries {
		if _, ok := e.value.(*ptTensor); !ok {
			return false
		}
	}
	return true
}

func lookup(entries []dictEntry, key string) (any, bool) {
	for _, e := range entries {
		if k, ok := e.key.(string); ok && k == key {
			return e.value, true
		}
	}
	return nil, false
}

// maxBroadcastElements is how many elements a tensor may have beyond its
// storage's size (tensors whose strides revisit elements, e.g. expand()).
const maxBroadcastElements = 1 << 24

// materialize copies a strided tensor into a dense row-major float32 Tensor.
func (l *ptLoader) materialize(t *ptTensor) (*Tensor, error) {
	st := t.storage
	base := int64(0)
	if st.root != nil {
		base = st.viewOffset
		st = st.root
	}
	if st.cls.et == nil {
		return nil, fmt.Errorf("storage type %s is not supported (supported: float32, float16, bfloat16, float64, integer and bool storages)", st.cls.name)
	}
	viewNumel := t.storage.numel
	shape := make([]int, len(t.size))
	for i, d := range t.size {
		if d < 0 || d > maxTensorElements {
			return nil, fmt.Errorf("invalid size %v", t.size)
		}
		shape[i] = int(d)
	}
	n, ok := numElements(shape, maxTensorElements)
	if !ok {
		return nil, fmt.Errorf("size %v has too many elements", t.size)
	}
	out := &Tensor{Shape: shape, Data: make([]float32, 0), DType: st.cls.name}
	if n == 0 {
		return out, nil
	}
	// Bounds: every index offset + sum(i_k*stride_k) must lie in [0, viewNumel).
	last := t.offset
	for k, d := range t.size {
		s := t.stride[k]
		if d == 1 {
			continue
		}
		if s < 0 {
			return nil, fmt.Errorf("negative stride %v is not supported", t.stride)
		}
		if s > 0 && d-1 > (viewNumel-last)/s {
			return nil, fmt.Errorf("size %v, stride %v and storage offset %d reach outside its %d-element storage (corrupt file?)", t.size, t.stride, t.offset, viewNumel)
		}
		last += (d - 1) * s
	}
	if last >= viewNumel {
		return nil, fmt.Errorf("size %v, stride %v and storage offset %d reach outside its %d-element storage (corrupt file?)", t.size, t.stride, t.offset, viewNumel)
	}
	if n > max(viewNumel, maxBroadcastElements) {
		return nil, fmt.Errorf("size %v with stride %v has %d elements but its storage only %d; such overlapping (broadcast) tensors are not supported", t.size, t.stride, n, viewNumel)
	}
	if !st.loaded {
		if l.zipFiles == nil {
			return nil, fmt.Errorf("storage %q has no data in the checkpoint", st.key)
		}
		if err := l.loadZipStorage(st); err != nil {
			return nil, err
		}
	}
	// Budget: the tensors of a file may not add up to much more than its
	// storages hold. Real state dicts stay at 1× (2× with tied weights); a
	// corrupt pickle referencing one storage from thousands of entries would
	// otherwise allocate without bound.
	if l.outElems+n > 4*l.storageElems+maxBroadcastElements {
		return nil, fmt.Errorf("the tensors so far total %d elements, more than 4× the %d elements their storages hold; refusing to materialize more (corrupt file?)", l.outElems+n, l.storageElems)
	}
	l.outElems += n
	et := st.cls.et
	es := int64(et.size)
	out.Data = make([]float32, n)
	start := base + t.offset
	if isContiguous(t.size, t.stride) {
		decodeInto(out.Data, st.data[start*es:(start+n)*es], et)
		return out, nil
	}
	// General strided copy: odometer over the logical index, row-major.
	rank := len(t.size)
	idx := make([]int64, rank)
	off := start
	for i := range out.Data {
		out.Data[i] = et.decode(st.data[off*es:])
		for k := rank - 1; k >= 0; k-- {
			idx[k]++
			off += t.stride[k]
			if idx[k] < t.size[k] {
				break
			}
			off -= idx[k] * t.stride[k]
			idx[k] = 0
		}
	}
	return out, nil
}

// isContiguous reports whether stride is the row-major stride of size
// (dimensions of size 1 may have any stride).
func isContiguous(size, stride []int64) bool {
	want := int64(1)
	for k := len(size) - 1; k >= 0; k-- {
		if size[k] != 1 && stride[k] != want {
			return false
		}
		want *= size[k]
	}
	return true
}
