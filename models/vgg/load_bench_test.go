package vgg

import (
	"testing"

	"github.com/cnnviz/cnnviz/models"
)

// BenchmarkNewRandomVGG11 measures building a full-size VGG11 with random
// weights (weight generation and layout conversion), the cost before the
// first picture.
func BenchmarkNewRandomVGG11(b *testing.B) {
	for i := 0; i < b.N; i++ {
		m, err := NewRandom("vgg11", 1000, 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func TestTranspose2D(t *testing.T) {
	for _, dims := range [][2]int{{1, 1}, {3, 5}, {17, 33}, {64, 16}} {
		r, c := dims[0], dims[1]
		x := make([]float32, r*c)
		for i := range x {
			x[i] = float32(i)
		}
		y := models.Transpose2D(x, r, c)
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				if y[j*r+i] != x[i*c+j] {
					t.Fatalf("%dx%d: [%d,%d] wrong", r, c, i, j)
				}
			}
		}
	}
}
