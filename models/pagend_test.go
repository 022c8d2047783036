package models

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// A tensor that ends at a page boundary, right before an inaccessible page,
// combined with a per-channel vector through PerChannel: the backend's
// "tensor ⊕ last-axis vector" SIMD kernel over-reads past the tensor's end
// for channel counts that are not multiples of 16 (see PerChannel) and the
// process dies with SIGSEGV. The check runs in a child process so that a
// fault fails this test with its message instead of killing the test binary.
func TestPerChannelPageEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mmap/mprotect layout")
	}
	if os.Getenv("CNNVIZ_PAGE_END_CHILD") == "1" {
		perChannelAtPageEnd(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPerChannelPageEnd$", "-test.v")
	cmd.Env = append(os.Environ(), "CNNVIZ_PAGE_END_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPerChannelPageEnd") {
		t.Fatalf("per-channel operations on a tensor that ends before an inaccessible page failed (%v):\n%s", err, out)
	}
}

func perChannelAtPageEnd(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	page := os.Getpagesize()
	for _, c := range []int{3, 8, 24, 32} {
		for _, dims := range [][]int{{16, 8, 8, c}, {256, c}} {
			n := 1
			for _, d := range dims {
				n *= d
			}
			size := (4*n + page - 1) / page * page
			mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
				t.Fatal(err)
			}
			// The tensor's last byte is the last byte before the guard page.
			data := unsafe.Slice((*float32)(unsafe.Pointer(&mem[size-4*n])), n)
			for i := range data {
				data[i] = float32(i % 7)
			}
			x, aliased, err := BindExternal(b, data, dims...)
			if err != nil || !aliased {
				t.Fatalf("BindExternal: aliased %v, %v", aliased, err)
			}
			exec := MustNewExec(b, func(x, v *Node) *Node {
				return Add(Mul(x, PerChannel(v, x)), PerChannel(v, x))
			})
			v := make([]float32, c)
			for i := range v {
				v[i] = float32(i + 1)
			}
			y := tensors.MustCopyFlatData[float32](exec.MustExec(x, tensors.FromFlatDataAndDimensions(v, c))[0])
			for i := range y {
				if want := data[i]*v[i%c] + v[i%c]; y[i] != want {
					t.Fatalf("C=%d dims %v: y[%d] = %g, want %g", c, dims, i, y[i], want)
				}
			}
			exec.Finalize()
			_ = x.FinalizeAll()
			_ = syscall.Munmap(mem)
		}
	}
}
