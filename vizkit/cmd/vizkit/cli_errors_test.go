package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad input gets an error that names the problem; nothing panics.
func TestCLIBadInputs(t *testing.T) {
	w := filepath.Join(cliGolden, "tinyvgg11.safetensors")
	in := filepath.Join(cliGolden, "inputs", "input_a.npy")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--random-init", "1", "--image", "nope.jpg"}, "nope.jpg"},
		{[]string{"--weights", w, "--input-npy", in, "--class", "12"}, "class index 12 is out of range for a model with 10 classes"},
		{[]string{"--weights", w, "--input-npy", in, "--layer", "features.99"}, `no layer "features.99"; valid layers: features.0`},
		{[]string{"--weights", w, "--input-npy", in, "--methods", "foo"}, `unknown method "foo"; known: `},
		{[]string{"--weights", "missing.safetensors", "--input-npy", in}, "missing.safetensors does not exist"},
		{[]string{"--weights", w, "--image", "../../../README.md"}, "unknown image format"},
		{[]string{"--weights", w, "--input-npy", filepath.Join(cliGolden, "tinyvgg11", "input_a", "logits.npy")}, "want (3,H,W) or (1,3,H,W)"},
		{[]string{"--model", "vgg16", "--weights", w, "--input-npy", in}, "--model vgg16 but the weights"},
		{[]string{"--weights", w}, "give exactly one of --image FILE and --input-npy FILE"},
		{[]string{"--input-npy", in}, "no weights: give --weights FILE"},
		{[]string{"--weights", w, "--random-init", "3", "--input-npy", in}, "either --weights or --random-init"},
		{[]string{"--random-init", "-5", "--input-npy", in}, "want a seed ≥ 0"},
		{[]string{"--weights", w, "--input-npy", in, "--target", "classes", "--classes", "1,12"}, "class 12 is out of range for a network with 10 outputs"},
		{[]string{"--weights", w, "--input-npy", in, "--target", "classes"}, "--target classes needs --classes"},
		{[]string{"--weights", w, "--input-npy", in, "--target", "similarity"}, "--target similarity needs --reference"},
		{[]string{"--weights", w, "--input-npy", in, "--target", "value", "--output", "10"}, "needs output 10"},
		{[]string{"--weights", w, "--input-npy", in, "--target", "bogus"}, `unknown --target "bogus"`},
		{[]string{"--model", "nosuchnet", "--random-init", "0", "--input-npy", in}, `unknown architecture "nosuchnet"`},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		args := append(c.args, "--out", t.TempDir())
		err := runExplain(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := runExplain(context.Background(), []string{"--weights", w, "--input-npy", in}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--out DIR is required") {
		t.Errorf("missing --out: %v", err)
	}
	_ = os.Remove("out")
}
