package onnx

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"google.golang.org/protobuf/proto"
)

// conformanceDir is Debian's libonnx-testdata (ONNX's per-operator test suite).
const conformanceDir = "/usr/share/libonnx-testdata/data/node"

// knownUnsupported lists conformance cases of claimed operators that use
// features outside the supported subset, with the reason. Every other case
// whose operators are all claimed must pass.
var knownUnsupported = map[string]string{
	"test_averagepool_1d_default":                     "1-D and 3-D pools (2-D only)",
	"test_averagepool_3d_default":                     "1-D and 3-D pools (2-D only)",
	"test_maxpool_1d_default":                         "1-D and 3-D pools (2-D only)",
	"test_maxpool_3d_default":                         "1-D and 3-D pools (2-D only)",
	"test_batchnorm_epsilon_training_mode":            "training-mode BatchNormalization",
	"test_batchnorm_example_training_mode":            "training-mode BatchNormalization",
	"test_cast_BFLOAT16_to_FLOAT":                     "bfloat16 and string data types",
	"test_cast_FLOAT_to_BFLOAT16":                     "bfloat16 and string data types",
	"test_cast_FLOAT_to_STRING":                       "bfloat16 and string data types",
	"test_cast_STRING_to_FLOAT":                       "bfloat16 and string data types",
	"test_castlike_BFLOAT16_to_FLOAT_expanded":        "bfloat16 and string data types",
	"test_castlike_FLOAT_to_BFLOAT16_expanded":        "bfloat16 and string data types",
	"test_castlike_FLOAT_to_STRING_expanded":          "bfloat16 and string data types",
	"test_castlike_STRING_to_FLOAT_expanded":          "bfloat16 and string data types",
	"test_edge_pad":                                   "Pad modes edge and reflect (constant only)",
	"test_reflect_pad":                                "Pad modes edge and reflect (constant only)",
	"test_globalaveragepool":                          "opset 1 (7–17 supported)",
	"test_globalaveragepool_precomputed":              "opset 1 (7–17 supported)",
	"test_identity_opt":                               "optional and sequence types",
	"test_identity_sequence":                          "optional and sequence types",
	"test_maxpool_2d_dilations":                       "pool dilations",
	"test_maxpool_with_argmax_2d_precomputed_pads":    "MaxPool's Indices output",
	"test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output",
	"test_slice_neg_steps":                            "negative Slice steps on computed tensors",
	"test_slice_start_out_of_bounds":                  "empty tensors",
	"test_training_dropout":                           "training-mode Dropout",
	"test_training_dropout_default":                   "training-mode Dropout",
	"test_training_dropout_default_mask":              "training-mode Dropout",
	"test_training_dropout_mask":                      "training-mode Dropout",
	"test_training_dropout_zero_ratio":                "training-mode Dropout",
	"test_training_dropout_zero_ratio_mask":           "training-mode Dropout",
}

// runConformanceCase loads case dir's model, feeds test_data_set_0's inputs
// (float inputs as graph parameters, integer inputs as constants, as exported
// CNNs carry them) and compares every output with rtol 1e-3, atol 1e-5 (ONNX's
// backend tests use rtol 1e-3, atol 1e-7).
func runConformanceCase(t *testing.T, backend compute.Backend, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return err
	}
	readProto := func(name string) (*onnxpb.TensorProto, error) {
		b, err := os.ReadFile(filepath.Join(dir, "test_data_set_0", name))
		if err != nil {
			return nil, err
		}
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal(b, &tp); err != nil {
			return nil, err
		}
		return &tp, nil
	}
	readPB := func(name string) (*tensor, error) {
		tp, err := readProto(name)
		if err != nil {
			return nil, err
		}
		return decodeTensor(tp)
	}
	// Inputs that exported CNNs carry as constants (integer tensors, and
	// values only read as shapes, bounds, pads or batch-norm statistics)
	// become initializers; the others are fed as graph parameters.
	g := mp.GetGraph()
	staticUse := map[string]bool{}
	for _, n := range g.GetNode() {
		for k, in := range n.GetInput() {
			st := staticSlot(n.GetOpType(), k) || (n.GetOpType() == "BatchNormalization" && k >= 1)
			if v, ok := staticUse[in]; ok {
				staticUse[in] = v && st
			} else {
				staticUse[in] = st
			}
		}
	}
	var floatIn []string
	var floatT []*tensor
	var keep []*onnxpb.ValueInfoProto
	for i, vi := range g.GetInput() {
		tp, err := readProto(fmt.Sprintf("input_%d.pb", i))
		if err != nil {
			return err
		}
		tt, err := decodeTensor(tp)
		if err != nil {
			return err
		}
		if tt.isInt || staticUse[vi.GetName()] {
			tp.Name = proto.String(vi.GetName())
			g.Initializer = append(g.Initializer, tp)
			continue
		}
		keep = append(keep, vi)
		floatIn = append(floatIn, vi.GetName())
		floatT = append(floatT, tt)
	}
	g.Input = keep
	p, err := parseGraph(&mp, true)
	if err != nil {
		return err
	}
	if len(floatIn) == 0 { // Only constants: a dummy parameter keeps Exec happy.
		floatT = append(floatT, &tensor{f: []float32{0}})
	}
	want := make([]*tensor, len(p.outputs))
	for i := range p.outputs {
		if want[i], err = readPB(fmt.Sprintf("output_%d.pb", i)); err != nil {
			return err
		}
	}
	var outStatic []*tensor
	var buildErr error
	ex, err := graph.NewExec(backend, func(ins []*graph.Node) (outs []*graph.Node) {
		g := ins[0].Graph()
		defer func() {
			if r := recover(); r != nil {
				buildErr = fmt.Errorf("%v", r)
				outs = []*graph.Node{graph.Const(g, float32(0))}
			}
		}()
		params := map[string]*graph.Node{}
		for i, name := range p.paramNames {
			params[name] = graph.Const(g, tensors.FromFlatDataAndDimensions(p.paramHost[i], p.paramDims[i]...))
		}
		s := models.NewScope(params, models.LoweringIm2Col)
		b := &builder{p: p, s: s, g: g}
		vals := map[string]*value{}
		for i, name := range floatIn {
			vals[name] = &value{n: ins[i]}
		}
		b.runWith(vals)
		for _, o := range p.outputs {
			v := b.get(o)
			if v.static() {
				outStatic = append(outStatic, v.c)
				outs = append(outs, graph.Const(g, float32(0)))
				continue
			}
			outStatic = append(outStatic, nil)
			o := b.logical(v)
			if o.DType() != dtypes.Float32 {
				o = graph.ConvertDType(o, dtypes.Float32)
			}
			outs = append(outs, o)
		}
		return outs
	})
	if err != nil {
		return err
	}
	defer ex.Finalize()
	args := make([]any, len(floatT))
	for i, tt := range floatT {
		args[i] = tensors.FromFlatDataAndDimensions(tt.f, tt.dims...)
	}
	outs, err := func() (o []*tensors.Tensor, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		return ex.Exec(args...)
	}()
	if buildErr != nil {
		return buildErr
	}
	if err != nil {
		return err
	}
	for i, w := range want {
		var got []float64
		var gotDims []int
		if outStatic[i] != nil {
			for _, v := range outStatic[i].floats() {
				got = append(got, float64(v))
			}
			gotDims = outStatic[i].dims
		} else {
			gotDims = outs[i].Shape().Dimensions
			for _, f := range tensors.MustCopyFlatData[float32](outs[i]) {
				got = append(got, float64(f))
			}
		}
		if fmt.Sprint(gotDims) != fmt.Sprint(w.dims) && !(len(gotDims) == 0 && len(w.dims) == 0) {
			return fmt.Errorf("output %d: shape %v, want %v", i, gotDims, w.dims)
		}
		wf := w.floats()
		for k := range wf {
			d := math.Abs(got[k] - float64(wf[k]))
			if !(d <= 1e-5+1e-3*math.Abs(float64(wf[k]))) {
				return fmt.Errorf("output %d[%d] = %v, want %v", i, k, got[k], wf[k])
			}
		}
	}
	return nil
}

// TestConformance runs every libonnx-testdata case whose operators are all
// claimed (SupportedOperators).
func TestConformance(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(conformanceDir, "test_*"))
	if len(dirs) == 0 {
		t.Skipf("%s is absent (apt-get install libonnx-testdata)", conformanceDir)
	}
	backend, err := compute.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	passed := map[string][]string{}
	var failed []string
	known := 0
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
		if err != nil {
			continue
		}
		var mp onnxpb.ModelProto
		if proto.Unmarshal(data, &mp) != nil {
			continue
		}
		ops := map[string]bool{}
		claimed := true
		for _, n := range mp.GetGraph().GetNode() {
			ops[n.GetOpType()] = true
			if d := n.GetDomain(); (d != "" && d != "ai.onnx") || !supported[n.GetOpType()] {
				claimed = false
			}
		}
		if !claimed || len(ops) == 0 {
			continue
		}
		name := filepath.Base(dir)
		err = runConformanceCase(t, backend, dir)
		if reason, ok := knownUnsupported[name]; ok {
			if err == nil {
				t.Errorf("%s passes but is listed as unsupported (%s)", name, reason)
			}
			known++
			continue
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		for op := range ops {
			passed[op] = append(passed[op], strings.TrimPrefix(name, "test_"))
		}
	}
	ops := make([]string, 0, len(passed))
	for op := range passed {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	total := 0
	for _, op := range ops {
		t.Logf("%-20s %3d passed: %s", op, len(passed[op]), strings.Join(passed[op], " "))
	}
	for _, v := range passed {
		total += len(v)
	}
	t.Logf("%d known-unsupported cases; %d failures", known, len(failed))
	for _, f := range failed {
		t.Error(f)
	}
}
