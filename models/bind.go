package models

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

// External is a parameter whose values are not in a tensor of their own but
// in memory kept by someone else: a weight file's mapping (weights.Set.Keep),
// in the graph's layout already (linear weights: PyTorch's [out,in] is the
// graph layout). Binding it to the pure-Go backend makes that memory the
// backend buffer itself (BindExternal), so a 500 MB classifier is neither
// copied nor touched before its first use: its pages are the page cache's.
type External struct {
	// Data holds the values (row-major in Dims); it must stay valid and
	// unmodified while any tensor bound from it is in use.
	Data []float32
	Dims []int
	// Kept keeps Data valid (nil when Data is ordinary memory).
	Kept *weights.Kept
}

// Slice returns rows [a,b) of e along its first axis (sharing Data and Kept).
func (e External) Slice(a, b int) External {
	row := 1
	for _, d := range e.Dims[1:] {
		row *= d
	}
	dims := append([]int{b - a}, e.Dims[1:]...)
	return External{Data: e.Data[a*row : b*row], Dims: dims, Kept: e.Kept}
}

// BindExternal returns a tensor of shape dims (float32) on backend b for
// data. On the pure-Go backend the tensor's buffer is data itself (aliased
// true): nothing is copied, and data must outlive the tensor and not change.
// Elsewhere, or should the Go backend's buffer type not be the one this was
// written against, the tensor holds a copy (aliased false) and data may go.
//
// Why by hand: the backend (github.com/gomlx/compute v0.1.14) has no public
// way to wrap memory it did not allocate (BufferFromFlatData and
// NewSharedBuffer both allocate and copy); its buffer struct is internal, so
// the aliasing is set through reflection on the buffer's exported fields
// (RawShape, RawBytes, Flat) of a shared buffer, and checked through the
// public Buffer API (Shape, Data) before it is used. A user-fed buffer like
// this one is never recycled by the backend: Finalize only drops the slices.
func BindExternal(b compute.Backend, data []float32, dims ...int) (t *tensors.Tensor, aliased bool, err error) {
	shape := shapes.Make(dtypes.Float32, dims...)
	if shape.Size() != len(data) {
		return nil, false, fmt.Errorf("BindExternal: %d values for shape %v", len(data), dims)
	}
	if buf, ok := aliasGoBuffer(b, data, shape); ok {
		t, err := tensors.FromBuffer(buf)
		if err != nil {
			_ = buf.Finalize()
			return nil, false, err
		}
		return t, true, nil
	}
	t = tensors.FromShape(shape)
	tensors.MustMutableFlatData(t, func(f []float32) { copy(f, data) })
	if b != nil {
		if err := t.ToDevice(b, 0); err != nil {
			return nil, false, err
		}
	}
	return t, false, nil
}

// aliasGoBuffer makes a pure-Go backend buffer whose storage is data (see
// BindExternal); ok false when that is not possible here.
func aliasGoBuffer(b compute.Backend, data []float32, shape shapes.Shape) (buf compute.Buffer, ok bool) {
	if b == nil || len(data) == 0 || !IsGoBackend(b) || !b.HasSharedBuffers() {
		return nil, false
	}
	buf, _, err := b.NewSharedBuffer(0, shapes.Make(dtypes.Float32, 1))
	if err != nil {
		return nil, false
	}
	defer func() {
		if !ok {
			_ = buf.Finalize()
		}
	}()
	v := reflect.ValueOf(buf)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	e := v.Elem()
	rawShape, rawBytes, flat := e.FieldByName("RawShape"), e.FieldByName("RawBytes"), e.FieldByName("Flat")
	if !rawShape.IsValid() || !rawBytes.IsValid() || !flat.IsValid() ||
		!rawShape.CanSet() || !rawBytes.CanSet() || !flat.CanSet() ||
		rawShape.Type() != reflect.TypeFor[shapes.Shape]() || rawBytes.Type() != reflect.TypeFor[[]byte]() ||
		flat.Kind() != reflect.Interface || !reflect.TypeFor[[]float32]().AssignableTo(flat.Type()) {
		return nil, false
	}
	rawShape.Set(reflect.ValueOf(shape.Clone()))
	rawBytes.Set(reflect.ValueOf(unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))))
	flat.Set(reflect.ValueOf(data))
	// Check through the public API that the buffer now is data.
	got, err := buf.Shape()
	if err != nil || !got.Equal(shape) {
		return nil, false
	}
	d, ok2 := buf.(interface{ Data() (any, error) })
	if !ok2 {
		return nil, false
	}
	fl, err := d.Data()
	f, ok3 := fl.([]float32)
	if err != nil || !ok3 || len(f) != len(data) || &f[0] != &data[0] {
		return nil, false
	}
	return buf, true
}
