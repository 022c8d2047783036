package models

import "testing"

// PyTorch's adaptive average pooling bins: bin i of out covers input indices
// [floor(i*in/out), ceil((i+1)*in/out)).
func TestAdaptivePoolMatrix(t *testing.T) {
	// Downsampling 14 → 7: disjoint pairs.
	m := adaptivePoolMatrix(14, 7)
	for i := 0; i < 7; i++ {
		for j := 0; j < 14; j++ {
			want := float32(0)
			if j/2 == i {
				want = 0.5
			}
			if m[i*14+j] != want {
				t.Fatalf("14→7 [%d,%d] = %v, want %v", i, j, m[i*14+j], want)
			}
		}
	}
	// 5 → 7 (upsampling, overlapping bins), hand-computed from the formula:
	// starts 0,0,1,2,2,3,4; ends 1,2,3,3,4,5,5.
	starts := []int{0, 0, 1, 2, 2, 3, 4}
	ends := []int{1, 2, 3, 3, 4, 5, 5}
	m = adaptivePoolMatrix(5, 7)
	for i := 0; i < 7; i++ {
		sum := float32(0)
		for j := 0; j < 5; j++ {
			want := float32(0)
			if j >= starts[i] && j < ends[i] {
				want = 1 / float32(ends[i]-starts[i])
			}
			if m[i*5+j] != want {
				t.Fatalf("5→7 [%d,%d] = %v, want %v", i, j, m[i*5+j], want)
			}
			sum += m[i*5+j]
		}
		if sum < 0.9999 || sum > 1.0001 {
			t.Fatalf("row %d sums to %v", i, sum)
		}
	}
}
