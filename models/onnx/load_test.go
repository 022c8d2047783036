package onnx

import (
	"os"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

func tinyBytes(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/tinynet.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tinyProto(t testing.TB) *onnxpb.ModelProto {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(tinyBytes(t), &mp); err != nil {
		t.Fatal(err)
	}
	return &mp
}

func marshal(t testing.TB, mp *onnxpb.ModelProto) []byte {
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnsupportedOperators: one error listing every unsupported operator with counts.
func TestUnsupportedOperators(t *testing.T) {
	mp := tinyProto(t)
	n := 0
	for _, nd := range mp.Graph.Node {
		switch nd.GetOpType() {
		case "Tanh":
			nd.OpType = proto.String("Erf")
		case "Relu", "LeakyRelu":
			nd.OpType = proto.String("Gelu")
			n++
		case "Sigmoid":
			nd.OpType = proto.String("HardSwish")
		}
	}
	_, err := LoadBytes(marshal(t, mp), "bad.onnx")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"3 unsupported operator type(s)", "Erf (1)", "Gelu (2)", "HardSwish (1)", "supported: Add, AveragePool"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n != 2 {
		t.Fatalf("fixture changed: %d Relu/LeakyRelu nodes", n)
	}
}

// TestMalformed: truncated files, cycles, huge declared dims and wrong inputs
// give clear errors.
func TestMalformed(t *testing.T) {
	good := tinyBytes(t)
	cases := map[string][]byte{"truncated": good[:len(good)/2], "empty": nil, "garbage": []byte("not a model at all")}
	mp := tinyProto(t)
	nodes := mp.Graph.Node
	mp.Graph.Node = append([]*onnxpb.NodeProto{nodes[len(nodes)-1]}, nodes[:len(nodes)-1]...) // Consumer before producer.
	cases["cycle"] = marshal(t, mp)
	mp = tinyProto(t)
	mp.Graph.Initializer[0].Dims = []int64{1 << 40, 1 << 40}
	cases["huge dims"] = marshal(t, mp)
	mp = tinyProto(t)
	mp.Graph.Initializer[0].Dims = []int64{7}
	cases["data mismatch"] = marshal(t, mp)
	mp = tinyProto(t)
	mp.Graph.Input[0].Type.GetTensorType().Shape.Dim[2].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1 << 40}
	cases["huge input"] = marshal(t, mp)
	want := map[string]string{"truncated": "not a readable ONNX model", "empty": "no graph", "garbage": "not a readable",
		"cycle": "before any node computes it", "huge dims": "more than", "data mismatch": "holds", "huge input": "at most 8192"}
	for name, b := range cases {
		_, err := LoadBytes(b, name)
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want one containing %q", name, err, want[name])
		}
	}
}

// TestModuleNames checks the module paths derived from torch's node names.
func TestModuleNames(t *testing.T) {
	for _, c := range [][3]string{{"", "layer4", "layer4"}, {"layer4", "layer4.1", "layer4.1"}, {"layer4.1", "conv2", "layer4.1.conv2"},
		{"features.1", "conv", "features.1.conv"}, {"features.1.conv", "conv.0", "features.1.conv.0"}, {"features.1.conv.0", "conv.0.0", "features.1.conv.0.0"}} {
		if got := joinModule(c[0], c[1]); got != c[2] {
			t.Errorf("joinModule(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	m, err := Load("testdata/resnet18n.onnx")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	calls := map[string]int{}
	for _, l := range m.Layers() {
		calls[l.Name] = max(l.Calls, 1)
	}
	for name, n := range map[string]int{"layer4.1.relu": 2, "layer4.1": 1, "layer4": 1, "layer1.0.conv1": 1, "fc": 1, "avgpool": 1, "conv1": 1, "maxpool": 1,
		"/layer4/layer4.1/relu_1/Relu_output_0": 1, "output": 1} {
		if calls[name] != n {
			t.Errorf("layer %q: %d calls, want %d", name, calls[name], n)
		}
	}
	w, b, err := m.Weight("layer1.0.conv1")
	if err != nil || len(w.Shape) != 4 || w.Shape[0] != 8 || w.Shape[1] != 8 || w.Shape[2] != 3 || b == nil {
		t.Errorf("Weight(layer1.0.conv1) = %v, bias %d, %v", w.Shape, len(b), err)
	}
	if w, _, err := m.Weight("fc"); err != nil || w.Shape[0] != 10 || w.Shape[1] != 64 {
		t.Errorf("Weight(fc): %v", err)
	}
	if _, _, err := m.Weight("layer4"); err == nil {
		t.Error("Weight of a container: no error")
	}
	if err := m.CheckInput([]int{2, 1, 64, 64}); err == nil || !strings.Contains(err.Error(), "(N,3,H,W)") {
		t.Errorf("CheckInput with 1 channel: %v", err)
	}
}

// FuzzLoadONNX: arbitrary bytes never panic (LoadBytes also recovers, so a
// panic inside would show as an error containing "malformed model: " only
// from the graph build, which the trace already turns into errors).
func FuzzLoadONNX(f *testing.F) {
	good := tinyBytes(f)
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, "fuzz.onnx")
		if err == nil {
			if m.NumClasses() < 1 || len(m.Layers()) == 0 {
				t.Fatalf("loaded a model without outputs or layers")
			}
			m.Close()
		} else if strings.Contains(err.Error(), "runtime error") {
			t.Fatalf("runtime panic: %v", err)
		}
	})
}
