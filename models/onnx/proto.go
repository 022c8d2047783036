package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb"
)

// Limits on what Load accepts; they bound the memory a (malformed) file can
// make the importer allocate beyond the file's own size.
const (
	// MaxFileBytes is the largest model file Load reads (2 GiB, protobuf's own limit).
	MaxFileBytes = 2 << 30
	// maxElements bounds the declared element count of stored tensors (their
	// data must be in the file; the count is checked before allocating).
	maxElements = 1 << 31
	// maxRank bounds tensor ranks.
	maxRank = 8
	// maxFolded bounds tensors computed on the host while folding constants
	// (shape computations are tiny).
	maxFolded = 1 << 22
	// maxSide bounds pads, strides and spatial sizes.
	maxSide = 8192
	// maxPoolWindow bounds a pool's kernel_shape product (each window
	// element is one strided view in the graph).
	maxPoolWindow = 1024
)

// tensor is a host value: an initializer, a Constant or a value folded at
// build time (shape computations). Float types are held as float32 (f),
// integer and boolean types as int64 (i).
type tensor struct {
	dims  []int
	f     []float32
	i     []int64
	isInt bool
}

func (t *tensor) size() int { return numElems(t.dims) }

func numElems(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// checkDims validates declared dimensions: non-negative, rank ≤ maxRank,
// element count ≤ maxElements (checked without overflow).
func checkDims(what string, dims []int64) ([]int, error) {
	if len(dims) > maxRank {
		return nil, fmt.Errorf("%s has rank %d (at most %d supported)", what, len(dims), maxRank)
	}
	out := make([]int, len(dims))
	n := int64(1)
	for i, d := range dims {
		if d < 0 {
			return nil, fmt.Errorf("%s has a negative dimension %d in %v", what, d, dims)
		}
		if d > 0 && n > maxElements/d {
			return nil, fmt.Errorf("%s declares dimensions %v: more than %d elements", what, dims, maxElements)
		}
		n *= d
		out[i] = int(d)
	}
	return out, nil
}

// decodeTensor converts an ONNX TensorProto (float, double, float16 as
// float32; int8–int64, uint8–uint32, bool as int64). Data must be inline and
// match the declared dimensions.
func decodeTensor(tp *onnxpb.TensorProto) (*tensor, error) {
	name := fmt.Sprintf("tensor %q", tp.GetName())
	dims, err := checkDims(name, tp.GetDims())
	if err != nil {
		return nil, err
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("%s keeps its data in an external file, which is not supported (save the model with the data inside)", name)
	}
	if tp.GetSegment() != nil {
		return nil, fmt.Errorf("%s is segmented, which is not supported", name)
	}
	n := numElems(dims)
	raw := tp.GetRawData()
	t := &tensor{dims: dims}
	dt := onnxpb.TensorProto_DataType(tp.GetDataType())
	width := map[onnxpb.TensorProto_DataType]int{
		onnxpb.TensorProto_FLOAT: 4, onnxpb.TensorProto_DOUBLE: 8, onnxpb.TensorProto_FLOAT16: 2,
		onnxpb.TensorProto_INT64: 8, onnxpb.TensorProto_INT32: 4, onnxpb.TensorProto_INT16: 2, onnxpb.TensorProto_INT8: 1,
		onnxpb.TensorProto_UINT8: 1, onnxpb.TensorProto_UINT16: 2, onnxpb.TensorProto_UINT32: 4, onnxpb.TensorProto_BOOL: 1,
	}[dt]
	if width == 0 {
		return nil, fmt.Errorf("%s has data type %s, which is not supported (float, double, float16, integer and bool tensors are)", name, dt)
	}
	count := func(got int) error {
		if got != n {
			return fmt.Errorf("%s declares dimensions %v (%d elements) but holds %d values", name, dims, n, got)
		}
		return nil
	}
	isFloat := dt == onnxpb.TensorProto_FLOAT || dt == onnxpb.TensorProto_DOUBLE || dt == onnxpb.TensorProto_FLOAT16
	if len(raw) > 0 || (n > 0 && len(tp.GetFloatData())+len(tp.GetDoubleData())+len(tp.GetInt32Data())+len(tp.GetInt64Data())+len(tp.GetUint64Data()) == 0) {
		if len(raw)%width != 0 {
			return nil, fmt.Errorf("%s has %d raw bytes, not a multiple of its element size %d", name, len(raw), width)
		}
		if err := count(len(raw) / width); err != nil {
			return nil, err
		}
		if isFloat {
			t.f = make([]float32, n)
		} else {
			t.i = make([]int64, n)
			t.isInt = true
		}
		for k := 0; k < n; k++ {
			b := raw[k*width:]
			switch dt {
			case onnxpb.TensorProto_FLOAT:
				t.f[k] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			case onnxpb.TensorProto_DOUBLE:
				t.f[k] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
			case onnxpb.TensorProto_FLOAT16:
				t.f[k] = halfToFloat(binary.LittleEndian.Uint16(b))
			case onnxpb.TensorProto_INT64:
				t.i[k] = int64(binary.LittleEndian.Uint64(b))
			case onnxpb.TensorProto_INT32:
				t.i[k] = int64(int32(binary.LittleEndian.Uint32(b)))
			case onnxpb.TensorProto_UINT32:
				t.i[k] = int64(binary.LittleEndian.Uint32(b))
			case onnxpb.TensorProto_INT16:
				t.i[k] = int64(int16(binary.LittleEndian.Uint16(b)))
			case onnxpb.TensorProto_UINT16:
				t.i[k] = int64(binary.LittleEndian.Uint16(b))
			case onnxpb.TensorProto_INT8:
				t.i[k] = int64(int8(b[0]))
			default: // UINT8, BOOL
				t.i[k] = int64(b[0])
			}
		}
		return t, nil
	}
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		if err := count(len(tp.GetFloatData())); err != nil {
			return nil, err
		}
		t.f = append([]float32(nil), tp.GetFloatData()...)
	case onnxpb.TensorProto_DOUBLE:
		if err := count(len(tp.GetDoubleData())); err != nil {
			return nil, err
		}
		t.f = make([]float32, n)
		for k, v := range tp.GetDoubleData() {
			t.f[k] = float32(v)
		}
	case onnxpb.TensorProto_FLOAT16:
		if err := count(len(tp.GetInt32Data())); err != nil {
			return nil, err
		}
		t.f = make([]float32, n)
		for k, v := range tp.GetInt32Data() {
			t.f[k] = halfToFloat(uint16(v))
		}
	case onnxpb.TensorProto_INT64:
		if err := count(len(tp.GetInt64Data())); err != nil {
			return nil, err
		}
		t.i, t.isInt = append([]int64(nil), tp.GetInt64Data()...), true
	case onnxpb.TensorProto_UINT32:
		if err := count(len(tp.GetUint64Data())); err != nil {
			return nil, err
		}
		t.i, t.isInt = make([]int64, n), true
		for k, v := range tp.GetUint64Data() {
			t.i[k] = int64(v)
		}
	default:
		if err := count(len(tp.GetInt32Data())); err != nil {
			return nil, err
		}
		t.i, t.isInt = make([]int64, n), true
		for k, v := range tp.GetInt32Data() {
			t.i[k] = int64(v)
		}
	}
	return t, nil
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // Subnormal.
		f := float32(frac) / 1024 / 16384
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// attrs holds a node's attributes by name.
type attrs map[string]*onnxpb.AttributeProto

func nodeAttrs(n *onnxpb.NodeProto) attrs {
	a := attrs{}
	for _, at := range n.GetAttribute() {
		a[at.GetName()] = at
	}
	return a
}

func (a attrs) int(name string, def int64) int64 {
	if at, ok := a[name]; ok {
		return at.GetI()
	}
	return def
}

func (a attrs) float(name string, def float32) float32 {
	if at, ok := a[name]; ok {
		return at.GetF()
	}
	return def
}

func (a attrs) ints(name string) ([]int64, bool) {
	at, ok := a[name]
	if !ok {
		return nil, false
	}
	return at.GetInts(), true
}

func (a attrs) str(name, def string) string {
	if at, ok := a[name]; ok {
		return string(at.GetS())
	}
	return def
}
