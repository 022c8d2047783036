package models

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/weights"
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/tensors"
)

// paramSet holds a grouped conv, a batch norm and a linear layer wide enough
// to be split into row chunks on the Go backend.
func paramSet() *weights.Set {
	w := weights.NewSet("params test")
	put := func(name string, k int, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(math.Sin(float64(i*7+k))) + float32(k)
		}
		w.Tensors[name] = &weights.Tensor{Shape: shape, Data: d}
	}
	put("conv.weight", 1, 6, 2, 3, 5) // 6 outputs, groups 2: 2 inputs per group, 3×5 kernel.
	put("conv.bias", 2, 6)
	put("bn.weight", 3, 6)
	put("bn.bias", 4, 6)
	put("bn.running_mean", 5, 6)
	put("bn.running_var", 6, 6)
	put("fc.weight", 7, 3, goSmallMatMulFlops/(2*linearRowGroup)+5) // One output row per chunk when bound.
	put("fc.bias", 8, 3)
	return w
}

// The store converts each tensor once into its graph layout and reads
// weights and biases back, before and after binding (linear row chunks
// included), from a set that is released (a mapped file, closed) right after
// conversion.
func TestParamStoreRoundTrip(t *testing.T) {
	want := paramSet()
	path := filepath.Join(t.TempDir(), "p.safetensors")
	if err := weights.SaveSafetensors(path, want); err != nil {
		t.Fatal(err)
	}
	w, err := weights.MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	p := NewParamStore(w)
	if err := p.Conv("conv", 6, 2, 3, 5, true); err != nil {
		t.Fatal(err)
	}
	if err := p.BatchNorm("bn", 6); err != nil {
		t.Fatal(err)
	}
	in := goSmallMatMulFlops/(2*linearRowGroup) + 5 // One output row per chunk.
	if err := p.Linear("fc", 3, in); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckAllUsed("test"); err != nil {
		t.Fatal(err)
	}
	p.Done()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := StoredIn(p)
	wantShift := make([]float32, 6)
	for c := range wantShift {
		sc := float64(want.Tensors["bn.weight"].Data[c]) / math.Sqrt(float64(want.Tensors["bn.running_var"].Data[c])+BatchNormEps)
		wantShift[c] = float32(float64(want.Tensors["bn.bias"].Data[c]) - float64(want.Tensors["bn.running_mean"].Data[c])*sc)
	}
	check := func(when string) {
		t.Helper()
		for _, m := range []string{"conv", "fc"} {
			got, bias, err := s.Weight(m)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if !slices.Equal(got.Shape, want.Tensors[m+".weight"].Shape) || !slices.Equal(got.Data, want.Tensors[m+".weight"].Data) {
				t.Fatalf("%s: %s weight %v differs from the file's", when, m, got.Shape)
			}
			if !slices.Equal(bias, want.Tensors[m+".bias"].Data) {
				t.Fatalf("%s: %s bias differs", when, m)
			}
		}
		shift, err := s.ModuleBias("bn")
		if err != nil || !slices.Equal(shift, wantShift) {
			t.Fatalf("%s: bn shift %v (%v), want %v", when, shift, err, wantShift)
		}
		if _, _, err := s.Weight("bn"); err == nil || !strings.Contains(err.Error(), "conv, fc") {
			t.Fatalf("%s: Weight(bn): %v", when, err)
		}
	}
	check("before binding")
	if got := s.ParamNames(); !slices.Equal(got, []string{"conv.weight", "conv.bias", "bn.scale", "bn.shift", "fc.weight", "fc.bias"}) {
		t.Fatalf("names before binding: %v", got)
	}
	b, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	params, err := s.Params(b)
	if err != nil {
		t.Fatal(err)
	}
	names := s.ParamNames()
	if len(params) != len(names) || len(names) != 8 || !strings.HasPrefix(names[4], "fc.weight[0:") {
		t.Fatalf("bound names %v (%d tensors)", names, len(params))
	}
	// HWIO layout of the conv kernel: [kh, kw, in/groups, out].
	if d := params[0].Shape().Dimensions; !slices.Equal(d, []int{3, 5, 2, 6}) {
		t.Fatalf("conv kernel shape %v", d)
	}
	k, _ := tensors.CopyFlatData[float32](params[0])
	if got, want := k[((1*5+2)*2+1)*6+4], want.Tensors["conv.weight"].Data[((4*2+1)*3+1)*5+2]; got != want {
		t.Fatalf("HWIO[1,2,1,4] = %g, want OIHW[4,1,1,2] = %g", got, want)
	}
	check("after binding")
	s.Close()
	if _, _, err := s.Weight("conv"); err == nil {
		t.Fatal("Weight after Close")
	}
	if _, err := s.ModuleBias("bn"); err == nil {
		t.Fatal("ModuleBias after Close")
	}
}
