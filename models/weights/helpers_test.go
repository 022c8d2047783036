package weights

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureValue is the formula scripts/gen_weight_fixtures.py uses for every
// fixture tensor: value(k, i) = (((7*i + 3*k) % 64) - 32) / 8.
func fixtureValue(k, i int) float32 {
	return float32(((7*i+3*k)%64)-32) / 8
}

// fixtureData returns n values of tensor number k.
func fixtureData(k, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = fixtureValue(k, i)
	}
	return d
}

type fixtureTensor struct {
	name  string
	shape []int
	k     int
}

// smallFixture mirrors SMALL in gen_weight_fixtures.py (plus the int64
// features.1.num_batches_tracked = 7, checked separately).
var smallFixture = []fixtureTensor{
	{"features.0.weight", []int{4, 3, 3, 3}, 0},
	{"features.0.bias", []int{4}, 1},
	{"features.1.weight", []int{4}, 2},
	{"features.1.bias", []int{4}, 3},
	{"features.1.running_mean", []int{4}, 4},
	{"features.1.running_var", []int{4}, 5},
	{"classifier.0.weight", []int{5, 16}, 6},
	{"classifier.0.bias", []int{5}, 7},
	{"classifier.6.weight", []int{3, 5}, 8},
	{"classifier.6.bias", []int{3}, 9},
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkTensor verifies one tensor's shape and exact values.
func checkTensor(t *testing.T, s *Set, name string, shape []int, want []float32) {
	t.Helper()
	got, err := s.Get(name, shape...)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if len(shape) == 0 && len(got.Shape) != 0 {
		t.Errorf("%s: shape %v, want scalar", name, got.Shape)
	}
	if len(got.Data) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(got.Data), len(want))
		return
	}
	for i := range want {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s[%d] = %v, want %v", name, i, got.Data[i], want[i])
			return
		}
	}
}

// checkSmall verifies a set holding the "small" fixture state dict.
func checkSmall(t *testing.T, s *Set) {
	t.Helper()
	for _, ft := range smallFixture {
		checkTensor(t, s, ft.name, ft.shape, fixtureData(ft.k, prod(ft.shape)))
	}
	checkTensor(t, s, "features.1.num_batches_tracked", nil, []float32{7})
	if want := len(smallFixture) + 1; len(s.Tensors) < want {
		t.Errorf("%d tensors, want at least %d: %v", len(s.Tensors), want, s.Names())
	}
}

func fixture(name string) string { return filepath.Join("testdata", name) }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatalf("fixture missing (run /usr/bin/python3 scripts/gen_weight_fixtures.py): %v", err)
	}
	return b
}

// writeTemp writes b to a file named name in a fresh temp dir and returns its path.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantErr fails unless err is non-nil and contains every substring.
func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want one containing %q", subs)
		return
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}
