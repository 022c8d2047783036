package weights

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSafetensorsMatchesFile(t *testing.T) {
	s := NewSet("test")
	s.Tensors["a.weight"] = &Tensor{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	s.Tensors["b"] = &Tensor{Shape: []int{1}, Data: []float32{-7}}
	s.Metadata = map[string]string{"k": "v"}
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := SaveSafetensors(p, s); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSafetensors(data, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "embedded" || got.Metadata["k"] != "v" || len(got.Tensors) != 2 {
		t.Fatalf("parsed %+v", got)
	}
	for name, want := range s.Tensors {
		g := got.Tensors[name]
		if g == nil || !sameShape(g.Shape, want.Shape) {
			t.Fatalf("%s: %+v", name, g)
		}
		for i := range want.Data {
			if g.Data[i] != want.Data[i] {
				t.Fatalf("%s[%d] = %g, want %g", name, i, g.Data[i], want.Data[i])
			}
		}
	}
	if _, err := ParseSafetensors(data[:len(data)-3], "cut"); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Fatalf("truncated image: %v", err)
	}
}
