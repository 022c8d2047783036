package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// fakeMethod returns maps built by mk for the input's shape.
type fakeMethod struct {
	mk func(x *Array) *Attribution
}

func (f fakeMethod) Attribute(_ context.Context, _ *Explainer, x *Array, _ Target) (*Attribution, error) {
	return f.mk(x), nil
}

func goodMaps(x *Array) *Attribution {
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	return &Attribution{Maps: NewArray(n, h, w), Classes: make([]int, n), Scores: make([]float32, n)}
}

func TestRegisterValidatesNames(t *testing.T) {
	newFake := func(Settings) (Method, error) { return fakeMethod{goodMaps}, nil }
	for _, bad := range []MethodInfo{
		{Name: "", New: newFake},
		{Name: "Upper", New: newFake},
		{Name: "two words", New: newFake},
		{Name: "a,b", New: newFake},
		{Name: "nofunc"},
	} {
		if err := Register(bad); err == nil {
			t.Errorf("Register(%q, New set: %v) accepted", bad.Name, bad.New != nil)
		}
	}
	if err := Register(MethodInfo{Name: "enginetestok", Family: "test", New: newFake}); err != nil {
		t.Fatal(err)
	}
	if err := Register(MethodInfo{Name: "enginetestok", New: newFake}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate: %v", err)
	}
	if !slices.Contains(MethodNames(), "enginetestok") {
		t.Fatalf("MethodNames %v lacks the registered method", MethodNames())
	}
	info, err := LookupMethod("  EngineTestOK ")
	if err != nil || info.Title != "enginetestok" {
		t.Fatalf("lookup: %+v %v (Title defaults to the name)", info, err)
	}
	if _, err := LookupMethod("nosuchmethod"); err == nil || !strings.Contains(err.Error(), "enginetestok") {
		t.Fatalf("unknown method error should list the known ones: %v", err)
	}
	if _, _, err := NewMethod("enginetestok", Settings{Samples: -1}); err == nil || !strings.Contains(err.Error(), "Samples (-1)") {
		t.Fatalf("negative Samples: %v", err)
	}
}

// NewMethod's wrapper fills Method/Title and refuses results that break the
// contract: wrong map shape, NaN, missing classes, a cancelled context.
func TestNewMethodEnforcesTheContract(t *testing.T) {
	x := NewArray(2, 3, 5, 4)
	cases := map[string]struct {
		mk   func(x *Array) *Attribution
		want string
	}{
		"ok":      {goodMaps, ""},
		"nil":     {func(*Array) *Attribution { return nil }, "no maps"},
		"shape":   {func(x *Array) *Attribution { a := goodMaps(x); a.Maps = NewArray(2, 4, 5); return a }, "want (N,H,W) = [2 5 4]"},
		"nan":     {func(x *Array) *Attribution { a := goodMaps(x); a.Maps.Data[7] = float32(math.NaN()); return a }, "non-finite"},
		"classes": {func(x *Array) *Attribution { a := goodMaps(x); a.Classes = a.Classes[:1]; return a }, "1 classes and 2 scores"},
		"fourd":   {func(x *Array) *Attribution { a := goodMaps(x); a.Maps = NewArray(2, 1, 5, 4); return a }, "want (N,H,W)"},
	}
	for name, c := range cases {
		mk := c.mk
		reg := "enginetestcontract" + strings.ReplaceAll(name, "-", "")
		if err := Register(MethodInfo{Name: reg, Title: "Contract " + name, New: func(Settings) (Method, error) { return fakeMethod{mk}, nil }}); err != nil {
			t.Fatal(err)
		}
		m, info, err := NewMethod(reg, Settings{})
		if err != nil || info.Name != reg {
			t.Fatal(err)
		}
		a, err := m.Attribute(context.Background(), nil, x, Predicted())
		if c.want == "" {
			if err != nil || a.Method != reg || a.Title != "Contract "+name {
				t.Fatalf("%s: %+v, %v", name, a, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), reg) {
			t.Errorf("%s: error %v, want it to name the method and contain %q", name, err, c.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, _, _ := NewMethod("enginetestcontractok", Settings{})
	if _, err := m.Attribute(ctx, nil, x, Predicted()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if err := CheckAttribution(goodMaps(x), nil); err == nil {
		t.Fatal("nil input accepted")
	}
}
