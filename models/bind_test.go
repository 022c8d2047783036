package models

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// On the pure-Go backend BindExternal's tensor is the memory it was given:
// an execution sees a change made to that memory afterwards (so nothing was
// copied), the values read back are the memory's, and finalizing the tensor
// leaves the memory alone. Elsewhere (no backend) it is a copy.
func TestBindExternalAliases(t *testing.T) {
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	data := []float32{1, 2, 3, 4, 5, 6}
	p, aliased, err := BindExternal(b, data, 2, 3)
	if err != nil || !aliased {
		t.Fatalf("BindExternal: aliased %v, %v", aliased, err)
	}
	exec := MustNewExec(b, func(w *Node) *Node { return ReduceAllSum(Mul(w, w)) })
	defer exec.Finalize()
	sum := func() float32 { return tensors.MustCopyFlatData[float32](exec.MustExec(p)[0])[0] }
	if got := sum(); got != 91 {
		t.Fatalf("Σw² = %g, want 91", got)
	}
	data[0] = 10 // Visible to the next execution: the buffer is data.
	if got := sum(); got != 190 {
		t.Fatalf("after changing the memory Σw² = %g, want 190 (was it copied?)", got)
	}
	if got := tensors.MustCopyFlatData[float32](p); !slices.Equal(got, data) {
		t.Fatalf("read back %v, want %v", got, data)
	}
	if d := p.Shape().Dimensions; !slices.Equal(d, []int{2, 3}) {
		t.Fatalf("shape %v", d)
	}
	if err := p.FinalizeAll(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data, []float32{10, 2, 3, 4, 5, 6}) {
		t.Fatalf("finalizing changed the memory: %v", data)
	}

	c, aliased, err := BindExternal(nil, data, 6)
	if err != nil || aliased {
		t.Fatalf("BindExternal without a backend: aliased %v, %v", aliased, err)
	}
	data[1] = -1
	if got := tensors.MustCopyFlatData[float32](c); got[1] != 2 {
		t.Fatalf("the copy follows the memory: %v", got)
	}
	if _, _, err := BindExternal(b, data, 4); err == nil || !strings.Contains(err.Error(), "6 values for shape [4]") {
		t.Fatalf("wrong size: %v", err)
	}
}

// A linear weight of a mapped .safetensors file stays in the mapping after
// the weight set is closed (bound to the pure-Go backend it is the backend
// buffer: its values read back and compute correctly), and the file is
// unmapped when the store is closed, not before.
func TestParamStoreKeepsMapping(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	in, out := goSmallMatMulFlops/(2*linearRowGroup)+5, 3 // Bound as 3 one-row chunks.
	w := weights.NewSet("test")
	wd := make([]float32, out*in)
	for i := range wd {
		wd[i] = float32(i%97) / 97
	}
	w.Tensors["fc.weight"] = &weights.Tensor{Shape: []int{out, in}, Data: wd}
	w.Tensors["fc.bias"] = &weights.Tensor{Shape: []int{out}, Data: []float32{1, 2, 3}}
	// Not the file's last tensor: the last 64 bytes are never lent out (Keep).
	w.Tensors["zz.trailer"] = &weights.Tensor{Shape: []int{16}, Data: make([]float32, 16)}
	path := filepath.Join(t.TempDir(), "fc.safetensors")
	if err := weights.SaveSafetensors(path, w); err != nil {
		t.Fatal(err)
	}
	mapped := func() bool {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), path)
	}
	m, err := weights.MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	p := NewParamStore(m)
	if err := p.Linear("fc", out, in); err != nil {
		t.Fatal(err)
	}
	p.Done()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !mapped() {
		t.Fatal("the file was unmapped although the store keeps its linear weight")
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	s := StoredIn(p)
	params, err := s.Params(b)
	if err != nil {
		t.Fatal(err)
	}
	if names := s.ParamNames(); !slices.Equal(names, []string{"fc.weight[0:1]", "fc.weight[1:2]", "fc.weight[2:3]", "fc.bias"}) {
		t.Fatalf("bound names %v", names)
	}
	// y = x·Wᵀ + b for x = ones: each output is its row's sum plus its bias.
	exec := MustNewExec(b, func(nodes []*Node) *Node {
		sc := NewScope(BindParams(s.ParamNames(), nodes), LoweringIm2Col)
		return sc.Linear("fc", Ones(nodes[0].Graph(), shapes.Make(dtypes.Float32, 1, in)))
	})
	defer exec.Finalize()
	args := make([]any, len(params))
	for i := range params {
		args[i] = params[i]
	}
	y := tensors.MustCopyFlatData[float32](exec.MustExec(args...)[0])
	for o := 0; o < out; o++ {
		var want float64
		for _, v := range wd[o*in : (o+1)*in] {
			want += float64(v)
		}
		want += float64(o + 1)
		if d := float64(y[o]) - want; d > 1e-3*want || d < -1e-3*want {
			t.Fatalf("y[%d] = %g, want %g", o, y[o], want)
		}
	}
	got, _, err := s.Weight("fc")
	if err != nil || !slices.Equal(got.Data, wd) {
		t.Fatalf("fc weight read back differs (%v)", err)
	}
	s.Close()
	if mapped() {
		t.Fatal("the file is still mapped after the store was closed")
	}
}
