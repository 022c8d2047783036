package weights

import (
	"context"
	"testing"
)

// timmExpected is what FromTimm must produce from the timm fixtures (TIMM in
// gen_weight_fixtures.py): torchvision names, linear shapes, same flat data.
var timmExpected = []fixtureTensor{
	{"features.0.weight", []int{4, 3, 3, 3}, 20},
	{"features.0.bias", []int{4}, 21},
	{"classifier.0.weight", []int{6, 16}, 22}, // pre_logits.fc1.weight [6, 4, 2, 2]
	{"classifier.0.bias", []int{6}, 23},
	{"classifier.3.weight", []int{6, 6}, 24}, // pre_logits.fc2.weight [6, 6, 1, 1]
	{"classifier.3.bias", []int{6}, 25},
	{"classifier.6.weight", []int{3, 6}, 26}, // head.fc.weight
	{"classifier.6.bias", []int{3}, 27},
}

func checkTimmConverted(t *testing.T, s *Set) {
	t.Helper()
	for _, ft := range timmExpected {
		checkTensor(t, s, ft.name, ft.shape, fixtureData(ft.k, prod(ft.shape)))
	}
	if len(s.Tensors) != len(timmExpected) {
		t.Errorf("got tensors %v, want exactly %d", s.Names(), len(timmExpected))
	}
	if IsTimm(s) {
		t.Errorf("converted set still reported as timm")
	}
}

func TestFromTimm(t *testing.T) {
	s, err := LoadSafetensors(fixture("timm.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsTimm(s) {
		t.Fatalf("IsTimm(timm.safetensors) = false; names %v", s.Names())
	}
	// Loading a file directly keeps its names.
	checkTensor(t, s, "pre_logits.fc1.weight", []int{6, 4, 2, 2}, fixtureData(22, 96))
	tv, err := FromTimm(s)
	if err != nil {
		t.Fatal(err)
	}
	checkTimmConverted(t, tv)
	if tv.Source != s.Source || tv.Metadata["format"] != "pt" {
		t.Errorf("Source/Metadata not kept: %q %v", tv.Source, tv.Metadata)
	}
	// The input set is left untouched.
	if !s.Has("pre_logits.fc1.weight") || s.Has("classifier.0.weight") {
		t.Errorf("FromTimm modified its input")
	}
}

func TestIsTimm(t *testing.T) {
	small, err := LoadSafetensors(fixture("small.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if IsTimm(small) {
		t.Errorf("IsTimm(torchvision names) = true")
	}
	if IsTimm(nil) || IsTimm(NewSet("")) {
		t.Errorf("IsTimm(nil/empty) = true")
	}
	mixed := NewSet("")
	mixed.Tensors["head.fc.weight"] = &Tensor{Shape: []int{1, 1}, Data: []float32{1}}
	mixed.Tensors["classifier.6.weight"] = &Tensor{Shape: []int{1, 1}, Data: []float32{1}}
	if IsTimm(mixed) {
		t.Errorf("IsTimm with classifier.* = true")
	}
}

func TestFromTimmErrors(t *testing.T) {
	mk := func(name string, shape ...int) *Set {
		s := NewSet("src")
		s.Tensors[name] = &Tensor{Shape: shape, Data: make([]float32, prod(shape))}
		return s
	}
	for _, c := range []struct {
		s    *Set
		want []string
	}{
		{mk("pre_logits.fc3.weight", 2), []string{`"pre_logits.fc3.weight"`, "unexpected"}},
		{mk("head.norm.weight", 2), []string{`"head.norm.weight"`, "unexpected"}},
		{mk("pre_logits.fc1.weight", 6, 16), []string{`"pre_logits.fc1.weight"`, "[6 16]", "conv kernel"}},
		{mk("pre_logits.fc2.weight", 6, 6, 3, 3), []string{`"pre_logits.fc2.weight"`, "1×1"}},
		{mk("head.fc.weight", 3, 6, 1, 1), []string{`"head.fc.weight"`, "linear weight"}},
		{mk("head.fc.bias", 3, 1), []string{`"head.fc.bias"`, "bias vector"}},
	} {
		_, err := FromTimm(c.s)
		wantErr(t, err, append(c.want, "src")...)
	}
	bad := mk("pre_logits.fc1.weight", 2, 2, 1, 1)
	bad.Tensors["pre_logits.fc1.weight"].Data = nil
	_, err := FromTimm(bad)
	wantErr(t, err, "holds 0 values")
	_, err = FromTimm(nil)
	wantErr(t, err, "nil set")
}

func TestLoadConvertsTimm(t *testing.T) {
	for _, name := range []string{"timm.safetensors", "timm.pth"} {
		s, err := Load(context.Background(), fixture(name), HubOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkTimmConverted(t, s)
	}
}
