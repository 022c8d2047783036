package npy

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{3}, {2, 3}, {1, 2, 2, 2}, {}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.5 - 1
		}
		var buf bytes.Buffer
		if err := Write(&buf, shape, data); err != nil {
			t.Fatal(err)
		}
		if buf.Len()%16 != 0 && (buf.Len()-4*n)%64 != 0 {
			t.Fatalf("header not 64-byte aligned: total %d", buf.Len())
		}
		s2, d2, err := Read(&buf)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if len(s2) != len(shape) || len(d2) != n {
			t.Fatalf("shape %v → %v, %d values", shape, s2, len(d2))
		}
		for i := range data {
			if d2[i] != data[i] {
				t.Fatalf("value %d: %v != %v", i, d2[i], data[i])
			}
		}
	}
}

func TestWriteRejectsBadShape(t *testing.T) {
	if err := Write(&bytes.Buffer{}, []int{2, 2}, make([]float32, 3)); err == nil {
		t.Fatal("want error for 3 values in shape (2,2)")
	}
}

// NumPy itself must load what we write (skipped where NumPy is missing).
func TestNumPyLoads(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if exec.Command(py, "-c", "import numpy").Run() != nil {
		t.Skip("numpy not installed")
	}
	path := filepath.Join(t.TempDir(), "a.npy")
	if err := WriteFile(path, []int{2, 3}, []float32{1, 2, 3, 4, 5, 6.5}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", "import numpy as np,sys; a=np.load(sys.argv[1]); print(a.dtype, a.shape, a[1,2])", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "float32 (2, 3) 6.5" {
		t.Fatalf("numpy read %q", got)
	}
}
