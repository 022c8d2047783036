package zoo

import (
	"context"
	"testing"
)

func TestOpenONNX(t *testing.T) {
	net, info, err := Open(context.Background(), "../onnx/testdata/tinynet.onnx", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	if net.Arch() != "onnx:tinynet" || info.Arch != "onnx:tinynet" || net.NumClasses() != 1 {
		t.Errorf("Arch %q, Info %+v, NumClasses %d", net.Arch(), info, net.NumClasses())
	}
	if err := net.CheckInput([]int{3, 1, 28, 28}); err != nil {
		t.Error(err)
	}
}
