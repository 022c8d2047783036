package onnx

import (
	"fmt"
)

// Host (constant-folding) versions of the shape operators: exported CNNs
// compute Reshape targets with Shape→Gather→Unsqueeze→Concat chains; at build
// time the input's shape is known, so these chains fold to constants.

func intTensor(dims []int, v []int64) *tensor { return &tensor{dims: dims, i: v, isInt: true} }

// ints returns t's values as int64 (floats truncated).
func (t *tensor) ints() []int64 {
	if t.isInt {
		return t.i
	}
	out := make([]int64, len(t.f))
	for k, v := range t.f {
		out[k] = int64(v)
	}
	return out
}

// floats returns t's values as float32.
func (t *tensor) floats() []float32 {
	if !t.isInt {
		return t.f
	}
	out := make([]float32, len(t.i))
	for k, v := range t.i {
		out[k] = float32(v)
	}
	return out
}

// strides returns row-major strides of dims.
func strides(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for k := len(dims) - 1; k >= 0; k-- {
		s[k] = acc
		acc *= dims[k]
	}
	return s
}

// broadcastDims is numpy's broadcast of a and b.
func broadcastDims(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for k := 0; k < r; k++ {
		da, db := 1, 1
		if j := k - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := k - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[k] = da
		case da == 1:
			out[k] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastIndex maps a flat index of out to the flat index in a tensor of dims d.
func broadcastIndex(flat int, out, outStrides, d, dStrides []int) int {
	idx := 0
	off := len(out) - len(d)
	for k := range d {
		c := (flat / outStrides[k+off]) % out[k+off]
		if d[k] != 1 {
			idx += c * dStrides[k]
		}
	}
	return idx
}

// hostBinary evaluates Add/Sub/Mul/Div on host tensors with broadcasting.
func hostBinary(op string, a, b *tensor) (*tensor, error) {
	dims, err := broadcastDims(a.dims, b.dims)
	if err != nil {
		return nil, err
	}
	n := numElems(dims)
	if n > maxFolded {
		return nil, fmt.Errorf("folding a constant of %v: more than %d elements", dims, maxFolded)
	}
	os, as, bs := strides(dims), strides(a.dims), strides(b.dims)
	if a.isInt && b.isInt {
		out := make([]int64, n)
		for k := range out {
			x, y := a.i[broadcastIndex(k, dims, os, a.dims, as)], b.i[broadcastIndex(k, dims, os, b.dims, bs)]
			switch op {
			case "Add":
				out[k] = x + y
			case "Sub":
				out[k] = x - y
			case "Mul":
				out[k] = x * y
			case "Div":
				if y == 0 {
					return nil, fmt.Errorf("integer division by zero")
				}
				out[k] = x / y
			}
		}
		return intTensor(dims, out), nil
	}
	af, bf := a.floats(), b.floats()
	out := make([]float32, n)
	for k := range out {
		x, y := af[broadcastIndex(k, dims, os, a.dims, as)], bf[broadcastIndex(k, dims, os, b.dims, bs)]
		switch op {
		case "Add":
			out[k] = x + y
		case "Sub":
			out[k] = x - y
		case "Mul":
			out[k] = x * y
		case "Div":
			out[k] = x / y
		}
	}
	return &tensor{dims: dims, f: out}, nil
}

// gatherElems copies elements of t at flat positions idx into a tensor of dims.
func (t *tensor) gatherElems(dims []int, idx []int) *tensor {
	out := &tensor{dims: dims, isInt: t.isInt}
	if t.isInt {
		out.i = make([]int64, len(idx))
		for k, j := range idx {
			out.i[k] = t.i[j]
		}
	} else {
		out.f = make([]float32, len(idx))
		for k, j := range idx {
			out.f[k] = t.f[j]
		}
	}
	return out
}

func (t *tensor) reshaped(dims []int) *tensor {
	c := *t
	c.dims = dims
	return &c
}

// hostTranspose permutes t's axes.
func hostTranspose(t *tensor, perm []int) *tensor {
	dims := make([]int, len(perm))
	for k, p := range perm {
		dims[k] = t.dims[p]
	}
	n := t.size()
	ts, os := strides(t.dims), strides(dims)
	idx := make([]int, n)
	for k := range idx {
		src := 0
		for a, p := range perm {
			src += ((k / os[a]) % dims[a]) * ts[p]
		}
		idx[k] = src
	}
	return t.gatherElems(dims, idx)
}

// hostConcat concatenates along axis.
func hostConcat(ts []*tensor, axis int) (*tensor, error) {
	base := ts[0].dims
	dims := append([]int(nil), base...)
	dims[axis] = 0
	isInt := true
	for _, t := range ts {
		if len(t.dims) != len(base) {
			return nil, fmt.Errorf("Concat of ranks %d and %d", len(base), len(t.dims))
		}
		for k := range base {
			if k != axis && t.dims[k] != base[k] {
				return nil, fmt.Errorf("Concat of shapes %v and %v along axis %d", base, t.dims, axis)
			}
		}
		dims[axis] += t.dims[axis]
		isInt = isInt && t.isInt
	}
	outer := numElems(dims[:axis])
	inner := numElems(dims[axis+1:])
	out := &tensor{dims: dims, isInt: isInt}
	for o := 0; o < outer; o++ {
		for _, t := range ts {
			w := t.dims[axis] * inner
			if isInt {
				out.i = append(out.i, t.i[o*w:(o+1)*w]...)
			} else {
				out.f = append(out.f, t.floats()[o*w:(o+1)*w]...)
			}
		}
	}
	return out, nil
}

// hostGather is ONNX Gather on host tensors.
func hostGather(t *tensor, idx []int64, idxDims []int, axis int) (*tensor, error) {
	d := t.dims
	dims := append(append(append([]int(nil), d[:axis]...), idxDims...), d[axis+1:]...)
	if numElems(dims) > maxFolded {
		return nil, fmt.Errorf("folding Gather into %v: more than %d elements", dims, maxFolded)
	}
	outer, inner := numElems(d[:axis]), numElems(d[axis+1:])
	var flat []int
	for o := 0; o < outer; o++ {
		for _, i := range idx {
			if i < 0 {
				i += int64(d[axis])
			}
			if i < 0 || i >= int64(d[axis]) {
				return nil, fmt.Errorf("Gather index %d out of range for axis %d of size %d", i, axis, d[axis])
			}
			for in := 0; in < inner; in++ {
				flat = append(flat, (o*d[axis]+int(i))*inner+in)
			}
		}
	}
	return t.gatherElems(dims, flat), nil
}

// hostSlice is ONNX Slice on a host tensor (any steps).
func hostSlice(t *tensor, starts, ends, axes, steps []int64) (*tensor, error) {
	r := len(t.dims)
	st, en, sp := make([]int, r), append([]int(nil), t.dims...), make([]int, r)
	for k := range sp {
		sp[k] = 1
	}
	for j, a := range axes {
		ax, err := normAxis(int(a), r)
		if err != nil {
			return nil, err
		}
		s, e, step, err := sliceRange(starts[j], ends[j], steps[j], t.dims[ax])
		if err != nil {
			return nil, err
		}
		st[ax], en[ax], sp[ax] = s, e, step
	}
	dims := make([]int, r)
	for k := range dims {
		dims[k] = sliceLen(st[k], en[k], sp[k])
	}
	n := numElems(dims)
	ts, os := strides(t.dims), strides(dims)
	idx := make([]int, n)
	for k := range idx {
		src := 0
		for a := 0; a < r; a++ {
			c := (k / os[a]) % dims[a]
			src += (st[a] + c*sp[a]) * ts[a]
		}
		idx[k] = src
	}
	return t.gatherElems(dims, idx), nil
}

// sliceRange clamps ONNX Slice bounds for one axis of size d.
func sliceRange(s, e, step int64, d int) (int, int, int, error) {
	if step == 0 {
		return 0, 0, 0, fmt.Errorf("Slice step 0")
	}
	D := int64(d)
	if s < 0 {
		s += D
	}
	if e < 0 {
		e += D
	}
	if step > 0 {
		s = min(max(s, 0), D)
		e = min(max(e, 0), D)
	} else {
		s = min(max(s, 0), D-1)
		e = min(max(e, -1), D-1)
	}
	return int(s), int(e), int(step), nil
}

func sliceLen(s, e, step int) int {
	if step > 0 {
		if e <= s {
			return 0
		}
		return (e - s + step - 1) / step
	}
	if e >= s {
		return 0
	}
	return (s - e - step - 1) / -step
}

func normAxis(a, rank int) (int, error) {
	if a < -rank || a >= rank {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += rank
	}
	return a, nil
}
