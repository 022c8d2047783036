package engine

import (
	"fmt"
	"math"
	"sort"
)

// Array is a dense float32 array in row-major order, the currency of every
// vizkit result: activations (N,C,H,W), gradients, maps (N,H,W), logits (N,K).
type Array struct {
	// Shape lists the dimensions, outermost first.
	Shape []int
	// Data holds prod(Shape) values, row-major.
	Data []float32
}

// NewArray allocates a zero-filled array of the given shape.
func NewArray(shape ...int) *Array {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Array{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
}

// ArrayFrom wraps data (not copied) with a shape, checking the sizes agree.
func ArrayFrom(data []float32, shape ...int) (*Array, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", shape)
		}
		n *= d
	}
	if n != len(data) {
		return nil, fmt.Errorf("shape %v needs %d values, got %d", shape, n, len(data))
	}
	return &Array{Shape: append([]int(nil), shape...), Data: data}, nil
}

// Check returns an error naming what (e.g. "input") when the array is nil, has
// a negative dimension or holds a different number of values than its shape
// needs.
func (a *Array) Check(what string) error {
	if a == nil {
		return fmt.Errorf("%s is nil", what)
	}
	n := 1
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("%s has a negative dimension in shape %v", what, a.Shape)
		}
		if d > 0 && n > (1<<40)/d {
			return fmt.Errorf("%s has shape %v, too many elements", what, a.Shape)
		}
		n *= d
	}
	if n != len(a.Data) {
		return fmt.Errorf("%s has shape %v, which needs %d values, but holds %d", what, a.Shape, n, len(a.Data))
	}
	return nil
}

// Size is the number of elements.
func (a *Array) Size() int { return len(a.Data) }

// Rank is the number of axes.
func (a *Array) Rank() int { return len(a.Shape) }

// Clone returns a deep copy.
func (a *Array) Clone() *Array {
	return &Array{Shape: append([]int(nil), a.Shape...), Data: append([]float32(nil), a.Data...)}
}

// Index returns the sub-array at position i of the first axis (a view sharing
// data): for an (N,C,H,W) array, Index(n) is example n's (C,H,W).
func (a *Array) Index(i int) *Array {
	if len(a.Shape) == 0 || i < 0 || i >= a.Shape[0] {
		panic(fmt.Sprintf("vizkit.Array.Index(%d) out of range for shape %v", i, a.Shape))
	}
	inner := len(a.Data) / a.Shape[0]
	return &Array{Shape: append([]int(nil), a.Shape[1:]...), Data: a.Data[i*inner : (i+1)*inner]}
}

// StackArrays concatenates arrays of identical shape along a new first axis;
// each must pass Check.
func StackArrays(arrays ...*Array) (*Array, error) {
	if len(arrays) == 0 {
		return nil, fmt.Errorf("stack of zero arrays")
	}
	for i, a := range arrays {
		if err := a.Check(fmt.Sprintf("array %d of the stack", i)); err != nil {
			return nil, err
		}
	}
	shape := arrays[0].Shape
	out := &Array{Shape: append([]int{len(arrays)}, shape...)}
	for i, a := range arrays {
		if !sameDims(a.Shape, shape) {
			return nil, fmt.Errorf("cannot stack array %d of shape %v with shape %v", i, a.Shape, shape)
		}
		out.Data = append(out.Data, a.Data...)
	}
	return out, nil
}

// CheckFinite returns an error naming the first NaN or Inf, with what.
func (a *Array) CheckFinite(what string) error {
	for i, v := range a.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s holds a non-finite value (%v) at flat index %d of shape %v", what, v, i, a.Shape)
		}
	}
	return nil
}

// ArgMax returns, for each row of an (N,K) array, the index of its largest value.
func (a *Array) ArgMax() []int {
	n := a.Shape[0]
	k := len(a.Data) / n
	out := make([]int, n)
	for i := 0; i < n; i++ {
		row := a.Data[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		out[i] = best
	}
	return out
}

func sameDims(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TopClasses returns the k largest entries of a logits row as (class, value) pairs,
// largest first.
func TopClasses(logits []float32, k int) []ClassScore {
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if k > len(idx) {
		k = len(idx)
	}
	out := make([]ClassScore, k)
	for i := 0; i < k; i++ {
		out[i] = ClassScore{Class: idx[i], Score: logits[idx[i]]}
	}
	return out
}

// ClassScore pairs a class index with a score.
type ClassScore struct {
	Class int
	Score float32
}
