package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/cnnviz/cnnviz/models"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph code reads best with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

// Layout. ONNX tensors are NCHW; models.Conv2D, the pools and the Go
// backend's lowering are channels-last. A 4-D graph value is therefore held
// channels-last ([N,H,W,C], value.nhwc) from the first convolution on, and
// stays so through element-wise operations, batch norms, pools, Concat on
// any axis and broadcasting Add/Mul (their operands are brought to NHWC).
// Only operations that depend on the memory order of a 4-D tensor (Flatten,
// Reshape, Transpose, Gather, Squeeze, Softmax, Slice, MatMul) transpose it
// back to NCHW — exported CNNs do that once, before the classifier, and a
// [N,C,1,1] map (after global pooling) converts with a free reshape. Module
// outputs reach the scope channels-last, as the protocol wants.

// value is an ONNX value during a build: a graph node (nhwc says a 4-D one is
// held channels-last) or a host constant c (param names its graph parameter).
type value struct {
	n     *Node
	nhwc  bool
	c     *tensor
	param string
}

func (v *value) static() bool { return v.n == nil }

// builder builds one program into a graph.
type builder struct {
	p    *program
	s    *models.Scope
	g    *Graph
	vals map[string]*value
}

// buildError is a build failure with the node it happened at.
type buildError struct {
	node *node
	err  error
}

func (e *buildError) Error() string {
	return fmt.Sprintf("node %q (%s): %v", e.node.name, e.node.op, e.err)
}

func (e *buildError) Unwrap() error { return e.err }

// run builds every node. x is the input value; it returns the output value.
func (b *builder) run(x *value) *value {
	return b.runWith(map[string]*value{b.p.input: x})
}

// runWith builds every node from the given input values and returns the
// (first) output value.
func (b *builder) runWith(inputs map[string]*value) *value {
	b.vals = inputs
	for _, n := range b.p.nodes {
		if _, ok := b.p.consts[n.outputs[0]]; ok && (n.op == "Constant" || n.op == "Identity") {
			continue
		}
		b.node(n)
	}
	return b.get(b.p.output)
}

func (b *builder) get(name string) *value {
	if v, ok := b.vals[name]; ok {
		return v
	}
	if c, ok := b.p.consts[name]; ok {
		v := &value{c: c, param: b.p.rawParam[name]}
		return v
	}
	panic(fmt.Errorf("value %q is not available (an optional output that is not computed?)", name))
}

func (b *builder) node(n *node) {
	defer func() {
		if r := recover(); r != nil {
			if be, ok := r.(*buildError); ok {
				panic(be)
			}
			err, ok := r.(error)
			if !ok {
				err = fmt.Errorf("%v", r)
			}
			panic(&buildError{node: n, err: err})
		}
	}()
	ins := make([]*value, len(n.inputs))
	for k, name := range n.inputs {
		if name != "" {
			ins[k] = b.get(name)
		}
	}
	outs, named := b.apply(n, ins)
	for _, v := range outs {
		if v != nil && !v.static() {
			checkGraphDims(b.dims(v))
		}
	}
	for k, v := range outs {
		if k >= len(n.outputs) || n.outputs[k] == "" || v == nil {
			continue
		}
		if !v.static() && !named {
			v = b.out(n.outputs[k], opKind(n.op, n), v)
		}
		b.vals[n.outputs[k]] = v
	}
	if len(outs) > 0 && outs[0] != nil && !outs[0].static() {
		v := b.vals[n.outputs[0]]
		for _, al := range n.aliases {
			v = b.out(al.path, al.kind, v)
		}
		b.vals[n.outputs[0]] = v
	}
}

// checkGraphDims bounds the shapes a (malformed) graph can create: at most
// 2^31 elements per tensor, 2^24 per axis, and 2·maxSide for spatial axes.
func checkGraphDims(d []int) {
	total := int64(1)
	for _, v := range d {
		if v > 1<<24 {
			panic(fmt.Errorf("result of shape %v: an axis longer than %d is not supported", d, 1<<24))
		}
		total *= int64(v)
		if total > 1<<31 {
			panic(fmt.Errorf("result of shape %v: more than %d elements per example batch is not supported", d, int64(1)<<31))
		}
	}
	if len(d) == 4 && (d[2] > 2*maxSide || d[3] > 2*maxSide) {
		panic(fmt.Errorf("result of shape %v: spatial sizes above %d are not supported", d, 2*maxSide))
	}
}

// out names a graph value through the scope (channels-last for 4-D values).
func (b *builder) out(name string, kind models.Kind, v *value) *value {
	if v.n.Rank() == 4 && !v.nhwc {
		v = &value{n: toNHWC(v.n), nhwc: true}
	}
	return &value{n: b.s.Out(name, kind, v.n), nhwc: v.nhwc}
}

// dims returns v's logical (ONNX) dimensions.
func (b *builder) dims(v *value) []int {
	if v.static() {
		return v.c.dims
	}
	d := v.n.Shape().Dimensions
	if v.nhwc {
		return []int{d[0], d[3], d[1], d[2]}
	}
	return slices.Clone(d)
}

// logical returns v as a graph node in ONNX layout.
func (b *builder) logical(v *value) *Node {
	if v.static() {
		if v.param != "" {
			return b.s.Param(v.param)
		}
		return b.constNode(v.c)
	}
	if v.nhwc {
		return toNCHW(v.n)
	}
	return v.n
}

// float returns v as a float32 graph node in ONNX layout.
func (b *builder) float(v *value) *Node {
	n := b.logical(v)
	if n.DType() != dtypes.Float32 {
		n = ConvertDType(n, dtypes.Float32)
	}
	return n
}

// nhwcNode returns a 4-D v channels-last.
func (b *builder) nhwcNode(v *value) *Node {
	if !v.static() && v.nhwc {
		return v.n
	}
	n := b.float(v)
	if n.Rank() != 4 {
		panic(fmt.Errorf("expected a 4-D (N,C,H,W) tensor, got shape %v", n.Shape().Dimensions))
	}
	return toNHWC(n)
}

func (b *builder) constNode(t *tensor) *Node {
	if t.isInt {
		return Const(b.g, tensors.FromFlatDataAndDimensions(slices.Clone(t.i), t.dims...))
	}
	return Const(b.g, tensors.FromFlatDataAndDimensions(slices.Clone(t.f), t.dims...))
}

// toNHWC and toNCHW move the channel axis; a map with H = W = 1 is a reshape.
func toNHWC(x *Node) *Node {
	d := x.Shape().Dimensions
	if d[2] == 1 && d[3] == 1 {
		return Reshape(x, d[0], 1, 1, d[1])
	}
	return TransposeAllDims(x, 0, 2, 3, 1)
}

func toNCHW(x *Node) *Node {
	d := x.Shape().Dimensions
	if d[1] == 1 && d[2] == 1 {
		return Reshape(x, d[0], d[3], 1, 1)
	}
	return TransposeAllDims(x, 0, 3, 1, 2)
}

func graphVal(n *Node) *value { return &value{n: n} }

func one(v *value) ([]*value, bool) { return []*value{v}, false }

// staticInts reads a constant integer input (shapes, axes, pads).
func staticInts(v *value, what string) []int64 {
	if v == nil {
		return nil
	}
	if !v.static() {
		panic(fmt.Errorf("%s must be a constant (or computable from shapes at import), but it is computed from the input's values", what))
	}
	return v.c.ints()
}

func staticFloat(v *value, what string, def float32) float32 {
	if v == nil {
		return def
	}
	if !v.static() {
		panic(fmt.Errorf("%s must be a constant", what))
	}
	f := v.c.floats()
	if len(f) != 1 {
		panic(fmt.Errorf("%s must be a scalar, got shape %v", what, v.c.dims))
	}
	return f[0]
}

func allStatic(ins []*value) bool {
	for _, v := range ins {
		if v != nil && !v.static() {
			return false
		}
	}
	return true
}

func toInts(xs []int64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// checkRule refuses guided/deconvnet rules on activations that have none.
func (b *builder) checkRule(n *node) {
	if b.s.Rule != models.ReLUStandard && b.s.Differentiable() {
		panic(fmt.Errorf("the %s backward rule is defined for ReLU (and ReLU6) activations only; this model applies %s here, so guided backpropagation and deconvnet are not available for it", b.s.Rule, n.op))
	}
}

func (b *builder) apply(n *node, ins []*value) ([]*value, bool) {
	in := func(k int) *value {
		if k < len(ins) {
			return ins[k]
		}
		return nil
	}
	x := in(0)
	if x == nil && n.op != "Constant" {
		panic(fmt.Errorf("missing input"))
	}
	switch n.op {
	case "Identity", "Dropout":
		if n.op == "Dropout" {
			if tm := in(2); tm != nil && (!tm.static() || slices.ContainsFunc(tm.c.ints(), func(v int64) bool { return v != 0 })) {
				panic(fmt.Errorf("training-mode Dropout is not supported (export the model in eval mode)"))
			}
			if len(n.outputs) > 1 && n.outputs[1] != "" {
				if numElems(b.dims(x)) > maxFolded {
					panic(fmt.Errorf("Dropout's mask output of %v elements is not supported", b.dims(x)))
				}
				mask := make([]int64, numElems(b.dims(x)))
				for k := range mask {
					mask[k] = 1
				}
				return []*value{x, {c: intTensor(b.dims(x), mask)}}, false
			}
		}
		return one(x)
	case "Constant":
		t, err := constantValue(n.a)
		if err != nil {
			panic(err)
		}
		return one(&value{c: t})
	case "Relu":
		return b.relu(n, x, false), true
	case "Clip":
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if b.p.opset < 11 {
			lo, hi = n.a.float("min", lo), n.a.float("max", hi)
		} else {
			lo, hi = staticFloat(in(1), "Clip's min", lo), staticFloat(in(2), "Clip's max", hi)
		}
		if x.static() {
			return one(b.hostUnary(x, func(v float32) float32 { return min(max(v, lo), hi) }))
		}
		if lo == 0 && hi == 6 {
			return b.relu(n, x, true), true
		}
		if lo == 0 && math.IsInf(float64(hi), 1) {
			return b.relu(n, x, false), true
		}
		b.checkRule(n)
		y := x.n
		if !math.IsInf(float64(lo), -1) {
			y = Max(y, Scalar(b.g, y.DType(), lo))
		}
		if !math.IsInf(float64(hi), 1) {
			y = Min(y, Scalar(b.g, y.DType(), hi))
		}
		return one(&value{n: y, nhwc: x.nhwc})
	case "Sigmoid", "Tanh", "LeakyRelu":
		if x.static() {
			x = &value{n: b.float(x)}
		}
		b.checkRule(n)
		var y *Node
		switch n.op {
		case "Sigmoid":
			y = Sigmoid(x.n)
		case "Tanh":
			y = Tanh(x.n)
		default:
			alpha := n.a.float("alpha", 0.01)
			y = Where(GreaterThan(x.n, ZerosLike(x.n)), x.n, MulScalar(x.n, float64(alpha)))
		}
		return one(&value{n: y, nhwc: x.nhwc})
	case "Add", "Sub", "Mul", "Div":
		return one(b.binary(n.op, x, in(1)))
	case "Conv":
		return one(b.conv(n, x, in(1), in(2)))
	case "BatchNormalization":
		return one(b.batchNorm(n, x))
	case "MaxPool", "AveragePool":
		if len(n.outputs) > 1 && n.outputs[1] != "" {
			panic(fmt.Errorf("the Indices output of MaxPool is not supported"))
		}
		return one(b.pool(n, x))
	case "GlobalAveragePool":
		if len(b.dims(x)) != 4 {
			panic(fmt.Errorf("GlobalAveragePool on a tensor of shape %v: only (N,C,H,W) is supported", b.dims(x)))
		}
		h := b.nhwcNode(x)
		d := h.Shape().Dimensions
		return one(&value{n: Reshape(ReduceMean(h, 1, 2), d[0], 1, 1, d[3]), nhwc: true})
	case "Gemm":
		return one(b.gemm(n, x, in(1), in(2)))
	case "MatMul":
		a, c := b.float(x), b.float(in(1))
		if a.Rank() == 2 && c.Rank() == 2 {
			return one(graphVal(Dot(a, c).Product()))
		}
		if a.Rank() < 2 || c.Rank() < 2 {
			panic(fmt.Errorf("MatMul of shapes %v and %v: operands of rank ≥ 2 are supported", a.Shape().Dimensions, c.Shape().Dimensions))
		}
		return one(graphVal(MatMul(a, c)))
	case "Concat":
		return one(b.concat(n, ins))
	case "Flatten":
		return one(b.flatten(n, x))
	case "Reshape":
		return one(b.reshape(n, x, in(1)))
	case "Shape":
		d := b.dims(x)
		start, end := int(n.a.int("start", 0)), int(n.a.int("end", int64(len(d))))
		start, end = clampAxis(start, len(d)), clampAxis(end, len(d))
		vals := []int64{}
		for k := start; k < end; k++ {
			vals = append(vals, int64(d[k]))
		}
		return one(&value{c: intTensor([]int{len(vals)}, vals)})
	case "Gather":
		return one(b.gather(n, x, in(1)))
	case "Unsqueeze", "Squeeze":
		return one(b.squeeze(n, x, in(1)))
	case "Transpose":
		d := b.dims(x)
		perm64, ok := n.a.ints("perm")
		perm := toInts(perm64)
		if !ok {
			for k := len(d) - 1; k >= 0; k-- {
				perm = append(perm, k)
			}
		}
		if len(perm) != len(d) {
			panic(fmt.Errorf("perm %v does not fit rank %d", perm, len(d)))
		}
		for k, p := range perm {
			if p < 0 || p >= len(d) || slices.Index(perm, p) != k {
				panic(fmt.Errorf("perm %v is not a permutation", perm))
			}
		}
		if x.static() {
			return one(&value{c: hostTranspose(x.c, perm)})
		}
		if x.nhwc && slices.Equal(perm, []int{0, 2, 3, 1}) {
			return one(graphVal(x.n))
		}
		return one(graphVal(TransposeAllDims(b.logical(x), perm...)))
	case "ReduceMean":
		return one(b.reduceMean(n, x))
	case "Softmax":
		return one(b.softmax(n, x))
	case "Pad":
		return one(b.pad(n, ins))
	case "Cast":
		to := n.a.int("to", 1)
		isFloat := to == 1 || to == 10 || to == 11
		if x.static() {
			if isFloat {
				return one(&value{c: &tensor{dims: x.c.dims, f: x.c.floats()}})
			}
			vals := x.c.ints()
			if to == 9 { // bool
				vals = slices.Clone(vals)
				for k, v := range vals {
					if v != 0 {
						vals[k] = 1
					}
				}
			}
			return one(&value{c: intTensor(x.c.dims, vals)})
		}
		dt := dtypes.Float32
		if !isFloat {
			dt = dtypes.Int64
		}
		return one(&value{n: ConvertDType(x.n, dt), nhwc: x.nhwc})
	case "ConstantOfShape":
		dims := toInts(staticInts(x, "ConstantOfShape's shape"))
		d64 := make([]int64, len(dims))
		for k, d := range dims {
			d64[k] = int64(d)
		}
		if _, err := checkDims("ConstantOfShape's result", d64); err != nil {
			panic(err)
		}
		if numElems(dims) > maxFolded {
			panic(fmt.Errorf("ConstantOfShape of %v: more than %d elements", dims, maxFolded))
		}
		t := &tensor{dims: dims, f: make([]float32, numElems(dims))}
		if at, ok := n.a["value"]; ok {
			v, err := decodeTensor(at.GetT())
			if err != nil {
				panic(err)
			}
			if v.size() != 1 {
				panic(fmt.Errorf("ConstantOfShape's value must hold one element"))
			}
			if v.isInt {
				t = intTensor(dims, make([]int64, numElems(dims)))
				for k := range t.i {
					t.i[k] = v.i[0]
				}
			} else {
				for k := range t.f {
					t.f[k] = v.f[0]
				}
			}
		}
		return one(&value{c: t})
	case "Slice":
		return one(b.slice(n, ins))
	}
	panic(fmt.Errorf("operator %s is not supported", n.op))
}

func clampAxis(a, r int) int {
	if a < 0 {
		a += r
	}
	return min(max(a, 0), r)
}

// relu applies a Relu (or Clip(0,6) when six) through the scope under the
// node's value name, with the scope's backward rule.
func (b *builder) relu(n *node, x *value, six bool) []*value {
	if x.static() {
		x = &value{n: b.float(x)}
	}
	h := x.n
	nhwc := x.nhwc
	if h.Rank() == 4 && !nhwc {
		h, nhwc = toNHWC(h), true
	}
	if six {
		h = b.s.ReLU6(n.outputs[0], h)
	} else {
		h = b.s.ReLU(n.outputs[0], h)
	}
	return []*value{{n: h, nhwc: nhwc}}
}

func (b *builder) hostUnary(x *value, f func(float32) float32) *value {
	src := x.c.floats()
	out := make([]float32, len(src))
	for k, v := range src {
		out[k] = f(v)
	}
	return &value{c: &tensor{dims: x.c.dims, f: out}}
}

// binary is Add/Sub/Mul/Div with numpy broadcasting. With a channels-last
// 4-D operand the others are brought to channels-last 4-D too.
func (b *builder) binary(op string, x, y *value) *value {
	if y == nil {
		panic(fmt.Errorf("%s needs two inputs", op))
	}
	if x.static() && y.static() {
		t, err := hostBinary(op, x.c, y.c)
		if err != nil {
			panic(err)
		}
		return &value{c: t}
	}
	dx, dy := b.dims(x), b.dims(y)
	out, err := broadcastDims(dx, dy)
	if err != nil {
		panic(err)
	}
	intOp := !x.static() && x.n.DType() != dtypes.Float32 && !y.static() && y.n.DType() != dtypes.Float32
	conv := func(v *value) *Node {
		if intOp {
			return b.logical(v)
		}
		return b.float(v)
	}
	f := map[string]func(a, c *Node) *Node{"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div}[op]
	if len(out) == 4 && ((!x.static() && x.nhwc) || (!y.static() && y.nhwc)) {
		lift := func(v *value) *Node {
			if !v.static() && v.nhwc {
				return v.n
			}
			n := conv(v)
			d := n.Shape().Dimensions
			if len(d) < 4 {
				n = Reshape(n, append(ones(4-len(d)), d...)...)
			}
			return toNHWC(n)
		}
		a, c := lift(x), lift(y)
		nh := []int{out[0], out[2], out[3], out[1]}
		return &value{n: f(broadcastTo(a, nh), broadcastTo(c, nh)), nhwc: true}
	}
	lift := func(v *value) *Node {
		n := conv(v)
		d := n.Shape().Dimensions
		if len(d) < len(out) {
			n = Reshape(n, append(ones(len(out)-len(d)), d...)...)
		}
		return broadcastTo(n, out)
	}
	return graphVal(f(lift(x), lift(y)))
}

func ones(k int) []int {
	o := make([]int, k)
	for i := range o {
		o[i] = 1
	}
	return o
}

func broadcastTo(n *Node, dims []int) *Node {
	if slices.Equal(n.Shape().Dimensions, dims) {
		return n
	}
	return BroadcastToDims(n, dims...)
}

// spatialPads returns (begin, end) pads per spatial axis for Conv and pools:
// explicit pads, or auto_pad SAME_UPPER / SAME_LOWER / VALID.
func spatialPads(n *node, in, k, stride, dil []int) (begin, end []int) {
	r := len(in)
	begin, end = make([]int, r), make([]int, r)
	switch ap := n.a.str("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		if pads, ok := n.a.ints("pads"); ok {
			if len(pads) != 2*r {
				panic(fmt.Errorf("pads %v do not fit %d spatial axes", pads, r))
			}
			for i := 0; i < r; i++ {
				if pads[i] < 0 || pads[i+r] < 0 || pads[i] > maxSide || pads[i+r] > maxSide {
					panic(fmt.Errorf("pads %v are not supported (0 to %d)", pads, maxSide))
				}
				begin[i], end[i] = int(pads[i]), int(pads[i+r])
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := 0; i < r; i++ {
			out := (in[i] + stride[i] - 1) / stride[i]
			total := max((out-1)*stride[i]+(k[i]-1)*dil[i]+1-in[i], 0)
			if ap == "SAME_UPPER" {
				begin[i] = total / 2
			} else {
				begin[i] = total - total/2
			}
			end[i] = total - begin[i]
		}
	default:
		panic(fmt.Errorf("auto_pad %q is not supported", ap))
	}
	return begin, end
}

func attrPair(n *node, name string, def int) []int {
	v, ok := n.a.ints(name)
	if !ok {
		return []int{def, def}
	}
	if len(v) != 2 {
		panic(fmt.Errorf("%s %v: only 2-D (two spatial axes) is supported", name, v))
	}
	for _, x := range v {
		if x < 1 || x > maxSide {
			panic(fmt.Errorf("%s %v must be between 1 and %d", name, v, maxSide))
		}
	}
	out := toInts(v)
	return out
}

// padNHWC pads the spatial axes of a channels-last map with fill.
func padNHWC(x *Node, begin, end []int, fill float32) *Node {
	if begin[0] == 0 && begin[1] == 0 && end[0] == 0 && end[1] == 0 {
		return x
	}
	return Pad(x, Scalar(x.Graph(), x.DType(), fill), compute.PadAxis{},
		compute.PadAxis{Start: begin[0], End: end[0]}, compute.PadAxis{Start: begin[1], End: end[1]}, compute.PadAxis{})
}

// conv is a 2-D Conv (groups, strides, pads, auto_pad; dilations 1) through
// models.Conv2D; asymmetric pads become an explicit zero pad first.
func (b *builder) conv(n *node, x, w, bias *value) *value {
	if w == nil {
		panic(fmt.Errorf("Conv needs a kernel"))
	}
	if len(b.dims(x)) != 4 {
		panic(fmt.Errorf("Conv on a tensor of shape %v: only 2-D convolutions (N,C,H,W) are supported", b.dims(x)))
	}
	wd := b.dims(w)
	if len(wd) != 4 {
		panic(fmt.Errorf("Conv kernel of shape %v: only 2-D convolutions are supported", wd))
	}
	if d := attrPair(n, "dilations", 1); d[0] != 1 || d[1] != 1 {
		panic(fmt.Errorf("dilations %v are not supported (only 1)", d))
	}
	stride := attrPair(n, "strides", 1)
	groups := int(n.a.int("group", 1))
	if groups < 1 {
		panic(fmt.Errorf("group %d must be ≥ 1", groups))
	}
	h := b.nhwcNode(x)
	d := h.Shape().Dimensions
	if d[3] != wd[1]*groups || wd[0]%groups != 0 {
		panic(fmt.Errorf("input with %d channels and kernel %v do not fit %d groups", d[3], wd, groups))
	}
	if k, ok := n.a.ints("kernel_shape"); ok && (len(k) != 2 || int(k[0]) != wd[2] || int(k[1]) != wd[3]) {
		panic(fmt.Errorf("kernel_shape %v does not match the kernel %v", k, wd))
	}
	begin, end := spatialPads(n, d[1:3], wd[2:], stride, []int{1, 1})
	spec := models.ConvSpec{Stride: [2]int{stride[0], stride[1]}, Groups: groups}
	if begin[0] == end[0] && begin[1] == end[1] {
		spec.Padding = [2]int{begin[0], begin[1]}
	} else {
		h = padNHWC(h, begin, end, 0)
	}
	var kernel *Node
	if name, ok := b.p.convParam[n.inputs[1]]; ok && w.static() {
		kernel = b.s.Param(name)
	} else {
		kernel = TransposeAllDims(b.float(w), 2, 3, 1, 0)
	}
	var bn *Node
	if bias != nil {
		bn = b.float(bias)
		if bn.Rank() != 1 || bn.Shape().Dimensions[0] != wd[0] {
			panic(fmt.Errorf("Conv bias of shape %v for %d output channels", bn.Shape().Dimensions, wd[0]))
		}
	}
	return &value{n: models.Conv2D(h, kernel, bn, spec, b.s.Lowering), nhwc: true}
}

// batchNorm is inference BatchNormalization with folded scale and shift.
func (b *builder) batchNorm(n *node, x *value) *value {
	if n.a.int("training_mode", 0) != 0 || (len(n.outputs) > 1 && slices.ContainsFunc(n.outputs[1:], func(s string) bool { return s != "" })) {
		panic(fmt.Errorf("training-mode BatchNormalization is not supported (export the model in eval mode)"))
	}
	ps := b.p.bnParam[n.outputs[0]]
	scale, shift := b.s.Param(ps[0]), b.s.Param(ps[1])
	c := scale.Shape().Dimensions[0]
	d := b.dims(x)
	if len(d) < 2 || d[1] != c {
		panic(fmt.Errorf("BatchNormalization with %d channels on a tensor of shape %v", c, d))
	}
	if len(d) == 4 {
		h := b.nhwcNode(x)
		return &value{n: Add(Mul(h, models.PerChannel(scale, h)), models.PerChannel(shift, h)), nhwc: true}
	}
	shape := ones(len(d))
	shape[1] = c
	l := b.float(x)
	return graphVal(Add(Mul(l, BroadcastToDims(Reshape(scale, shape...), d...)), BroadcastToDims(Reshape(shift, shape...), d...)))
}

// pool is MaxPool / AveragePool on 2-D maps (kernel_shape, strides, pads,
// auto_pad, ceil_mode, count_include_pad; dilations 1). Max pools with
// symmetric pads whose output size PyTorch's rule agrees with use
// models.MaxPool2D (PyTorch's gradient tie rule where a gradient flows).
func (b *builder) pool(n *node, x *value) *value {
	if len(b.dims(x)) != 4 {
		panic(fmt.Errorf("%s on a tensor of shape %v: only 2-D pools (N,C,H,W) are supported", n.op, b.dims(x)))
	}
	if d := attrPair(n, "dilations", 1); d[0] != 1 || d[1] != 1 {
		panic(fmt.Errorf("dilations %v are not supported (only 1)", d))
	}
	k64, ok := n.a.ints("kernel_shape")
	if !ok || len(k64) != 2 {
		panic(fmt.Errorf("kernel_shape %v: 2-D pools need two sizes", k64))
	}
	if k64[0] < 1 || k64[1] < 1 || k64[0]*k64[1] > maxPoolWindow {
		panic(fmt.Errorf("kernel_shape %v is not supported (at most %d window elements)", k64, maxPoolWindow))
	}
	k := toInts(k64)
	stride := attrPair(n, "strides", 1)
	h := b.nhwcNode(x)
	d := h.Shape().Dimensions
	begin, end := spatialPads(n, d[1:3], k, stride, []int{1, 1})
	ceil := n.a.int("ceil_mode", 0) != 0
	out := make([]int, 2)
	for i := 0; i < 2; i++ {
		num := d[1+i] + begin[i] + end[i] - k[i]
		if num < 0 {
			panic(fmt.Errorf("input %v is too small for a %v window with pads %v/%v", d[1:3], k, begin, end))
		}
		if ceil {
			out[i] = (num+stride[i]-1)/stride[i] + 1
		} else {
			out[i] = num/stride[i] + 1
		}
	}
	if n.op == "MaxPool" {
		spec := models.PoolSpec{Kernel: [2]int{k[0], k[1]}, Stride: [2]int{stride[0], stride[1]}, Padding: [2]int{begin[0], begin[1]}, CeilMode: ceil}
		agree := begin[0] == end[0] && begin[1] == end[1]
		for i := 0; agree && i < 2; i++ {
			agree = torchPoolOut(d[1+i], k[i], stride[i], begin[i], ceil) == out[i]
		}
		if agree {
			return &value{n: models.MaxPool2D(h, spec, b.s.ExactMaxPoolGrad && b.s.Differentiable()), nhwc: true}
		}
		ws := windows(h, begin, end, k, stride, out, float32(math.Inf(-1)))
		y := ws[0]
		for _, w := range ws[1:] {
			y = Max(y, w)
		}
		return &value{n: y, nhwc: true}
	}
	ws := windows(h, begin, end, k, stride, out, 0)
	y := ws[0]
	for _, w := range ws[1:] {
		y = Add(y, w)
	}
	// Divisor per output position: window elements inside the input (and, with
	// count_include_pad, inside the pads), never beyond the padded input.
	// The count is separable: rows × columns.
	include := n.a.int("count_include_pad", 0) != 0
	counts := make([][]float32, 2)
	uniform := true
	for ax := 0; ax < 2; ax++ {
		counts[ax] = make([]float32, out[ax])
		for o := range counts[ax] {
			lo, hi := o*stride[ax]-begin[ax], o*stride[ax]-begin[ax]+k[ax]
			a, c := 0, d[1+ax]
			if include {
				a, c = -begin[ax], d[1+ax]+end[ax]
			}
			counts[ax][o] = float32(max(0, min(hi, c)-max(lo, a)))
			uniform = uniform && counts[ax][o] == counts[ax][0]
		}
	}
	if uniform {
		return &value{n: MulScalar(y, 1/float64(counts[0][0]*counts[1][0])), nhwc: true}
	}
	dims := y.Shape().Dimensions
	rows := BroadcastToDims(Const(b.g, tensors.FromFlatDataAndDimensions(counts[0], 1, out[0], 1, 1)), dims...)
	cols := BroadcastToDims(Const(b.g, tensors.FromFlatDataAndDimensions(counts[1], 1, 1, out[1], 1)), dims...)
	return &value{n: Div(y, Mul(rows, cols)), nhwc: true}
}

// torchPoolOut is PyTorch's pooled size (ceil mode drops a last window that
// would start in the right padding).
func torchPoolOut(in, k, s, pad int, ceil bool) int {
	num := in + 2*pad - k
	out := num/s + 1
	if ceil {
		out = (num+s-1)/s + 1
		if (out-1)*s >= in+pad {
			out--
		}
	}
	return out
}

// windows pads a channels-last map with fill (and as far as the last window
// reaches) and returns the kh·kw strided views, one per window offset.
func windows(x *Node, begin, end, k, stride, out []int, fill float32) []*Node {
	d := x.Shape().Dimensions
	e := []int{max(end[0], (out[0]-1)*stride[0]+k[0]-d[1]-begin[0]), max(end[1], (out[1]-1)*stride[1]+k[1]-d[2]-begin[1])}
	x = padNHWC(x, begin, e, fill)
	var ws []*Node
	for dy := 0; dy < k[0]; dy++ {
		for dx := 0; dx < k[1]; dx++ {
			ws = append(ws, Slice(x, AxisRange(),
				AxisRange(dy, dy+(out[0]-1)*stride[0]+1).Stride(stride[0]),
				AxisRange(dx, dx+(out[1]-1)*stride[1]+1).Stride(stride[1]), AxisRange()))
		}
	}
	return ws
}

// gemm is alpha·A'·B' + beta·C on 2-D operands.
func (b *builder) gemm(n *node, x, w, c *value) *value {
	a := b.float(x)
	bw := b.float(w)
	if a.Rank() != 2 || bw.Rank() != 2 {
		panic(fmt.Errorf("Gemm of shapes %v and %v: both must be 2-D", a.Shape().Dimensions, bw.Shape().Dimensions))
	}
	ca, cb := 1, 0
	if n.a.int("transA", 0) != 0 {
		ca = 0
	}
	if n.a.int("transB", 0) != 0 {
		cb = 1
	}
	if a.Shape().Dimensions[ca] != bw.Shape().Dimensions[cb] {
		panic(fmt.Errorf("Gemm of shapes %v and %v (transA %v, transB %v) do not fit", a.Shape().Dimensions, bw.Shape().Dimensions, ca == 0, cb == 1))
	}
	y := DotGeneral(a, []int{ca}, nil, bw, []int{cb}, nil)
	if alpha := n.a.float("alpha", 1); alpha != 1 {
		y = MulScalar(y, float64(alpha))
	}
	if c != nil {
		cn := b.float(c)
		od := y.Shape().Dimensions
		if cn.Rank() > 2 {
			panic(fmt.Errorf("Gemm's C of shape %v", cn.Shape().Dimensions))
		}
		cn = Reshape(cn, append(ones(2-cn.Rank()), cn.Shape().Dimensions...)...)
		if beta := n.a.float("beta", 1); beta != 1 {
			cn = MulScalar(cn, float64(beta))
		}
		y = Add(y, broadcastTo(cn, od))
	}
	return graphVal(y)
}

func (b *builder) concat(n *node, ins []*value) *value {
	if len(ins) == 0 {
		panic(fmt.Errorf("Concat of nothing"))
	}
	r := len(b.dims(ins[0]))
	axis, err := normAxis(int(n.a.int("axis", 0)), r)
	if err != nil {
		panic(err)
	}
	if allStatic(ins) {
		ts := make([]*tensor, len(ins))
		for k, v := range ins {
			ts[k] = v.c
		}
		t, err := hostConcat(ts, axis)
		if err != nil {
			panic(err)
		}
		return &value{c: t}
	}
	anyNHWC := false
	for _, v := range ins {
		anyNHWC = anyNHWC || (!v.static() && v.nhwc)
	}
	nodes := make([]*Node, len(ins))
	if r == 4 && anyNHWC {
		for k, v := range ins {
			nodes[k] = b.nhwcNode(v)
		}
		return &value{n: Concatenate(nodes, []int{0, 3, 1, 2}[axis]), nhwc: true}
	}
	for k, v := range ins {
		nodes[k] = b.float(v)
	}
	return graphVal(Concatenate(nodes, axis))
}

func (b *builder) flatten(n *node, x *value) *value {
	d := b.dims(x)
	axis := int(n.a.int("axis", 1))
	if axis < 0 {
		axis += len(d)
	}
	if axis < 0 || axis > len(d) {
		panic(fmt.Errorf("Flatten axis %d is out of range for rank %d", n.a.int("axis", 1), len(d)))
	}
	shape := []int{numElems(d[:axis]), numElems(d[axis:])}
	if x.static() {
		return &value{c: x.c.reshaped(shape)}
	}
	if x.nhwc && axis == 1 {
		return graphVal(models.Flatten(x.n))
	}
	return graphVal(Reshape(b.logical(x), shape...))
}

func (b *builder) reshape(n *node, x, shape *value) *value {
	if shape == nil {
		panic(fmt.Errorf("Reshape needs a shape input"))
	}
	target := staticInts(shape, "Reshape's shape")
	d := b.dims(x)
	allowZero := n.a.int("allowzero", 0) != 0
	out := make([]int, len(target))
	infer := -1
	known := 1
	for k, t := range target {
		switch {
		case t == 0 && !allowZero:
			if k >= len(d) {
				panic(fmt.Errorf("Reshape to %v: 0 at axis %d copies a dimension the input %v lacks", target, k, d))
			}
			out[k] = d[k]
		case t == -1:
			if infer >= 0 {
				panic(fmt.Errorf("Reshape to %v: more than one -1", target))
			}
			infer = k
			continue
		case t < 0:
			panic(fmt.Errorf("Reshape to %v: negative dimension", target))
		default:
			out[k] = int(t)
		}
		known *= out[k]
	}
	total := numElems(d)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			panic(fmt.Errorf("cannot reshape %v to %v", d, target))
		}
		out[infer] = total / known
	} else if known != total {
		panic(fmt.Errorf("cannot reshape %v (%d elements) to %v", d, total, target))
	}
	if x.static() {
		return &value{c: x.c.reshaped(out)}
	}
	return graphVal(Reshape(b.logical(x), out...))
}

// gather is Gather with constant indices (the data may be computed).
func (b *builder) gather(n *node, x, idx *value) *value {
	if idx == nil {
		panic(fmt.Errorf("Gather needs indices"))
	}
	d := b.dims(x)
	axis, err := normAxis(int(n.a.int("axis", 0)), len(d))
	if err != nil {
		panic(err)
	}
	ind := staticInts(idx, "Gather's indices")
	if x.static() {
		t, err := hostGather(x.c, ind, idx.c.dims, axis)
		if err != nil {
			panic(err)
		}
		return &value{c: t}
	}
	norm := make([]int32, len(ind))
	for k, i := range ind {
		if i < 0 {
			i += int64(d[axis])
		}
		if i < 0 || i >= int64(d[axis]) {
			panic(fmt.Errorf("index %d is out of range for axis %d of size %d", ind[k], axis, d[axis]))
		}
		norm[k] = int32(i)
	}
	l := b.logical(x)
	perm := []int{axis}
	for k := range d {
		if k != axis {
			perm = append(perm, k)
		}
	}
	moved := l
	if axis != 0 {
		moved = TransposeAllDims(l, perm...)
	}
	idims := idx.c.dims
	iflat := Const(b.g, tensors.FromFlatDataAndDimensions(norm, len(norm), 1))
	gathered := Gather(moved, iflat) // [len(ind), rest...]
	rest := make([]int, 0, len(d)-1)
	for _, k := range perm[1:] {
		rest = append(rest, d[k])
	}
	gathered = Reshape(gathered, append(slices.Clone(idims), rest...)...)
	// Axes now: idx dims (q), then d[:axis], then d[axis+1:]; want d[:axis], idx, d[axis+1:].
	q := len(idims)
	if axis == 0 || q+len(rest) == 0 {
		return graphVal(gathered)
	}
	var order []int
	for k := 0; k < axis; k++ {
		order = append(order, q+k)
	}
	for k := 0; k < q; k++ {
		order = append(order, k)
	}
	for k := axis; k < len(rest); k++ {
		order = append(order, q+k)
	}
	return graphVal(TransposeAllDims(gathered, order...))
}

func (b *builder) squeeze(n *node, x, axesIn *value) *value {
	d := b.dims(x)
	var axes []int64
	if axesIn != nil {
		axes = staticInts(axesIn, n.op+"'s axes")
	} else if a, ok := n.a.ints("axes"); ok {
		axes = a
	}
	var out []int
	if n.op == "Unsqueeze" {
		r := len(d) + len(axes)
		ins := make([]bool, r)
		for _, a := range axes {
			ax, err := normAxis(int(a), r)
			if err != nil {
				panic(err)
			}
			if ins[ax] {
				panic(fmt.Errorf("repeated axis %d", a))
			}
			ins[ax] = true
		}
		k := 0
		for i := 0; i < r; i++ {
			if ins[i] {
				out = append(out, 1)
			} else {
				out = append(out, d[k])
				k++
			}
		}
	} else {
		drop := make([]bool, len(d))
		for _, a := range axes {
			ax, err := normAxis(int(a), len(d))
			if err != nil {
				panic(err)
			}
			if d[ax] != 1 {
				panic(fmt.Errorf("cannot squeeze axis %d of size %d", a, d[ax]))
			}
			drop[ax] = true
		}
		for i, v := range d {
			if (len(axes) == 0 && v == 1) || drop[i] {
				continue
			}
			out = append(out, v)
		}
	}
	if x.static() {
		return &value{c: x.c.reshaped(out)}
	}
	if out == nil {
		out = []int{}
	}
	return graphVal(Reshape(b.logical(x), out...))
}

func (b *builder) reduceMean(n *node, x *value) *value {
	d := b.dims(x)
	a64, ok := n.a.ints("axes")
	var axes []int
	if !ok || len(a64) == 0 {
		for k := range d {
			axes = append(axes, k)
		}
	}
	for _, a := range a64 {
		ax, err := normAxis(int(a), len(d))
		if err != nil {
			panic(err)
		}
		axes = append(axes, ax)
	}
	slices.Sort(axes)
	keep := n.a.int("keepdims", 1) != 0
	kept := slices.Clone(d)
	var outd []int
	for k := range d {
		if slices.Contains(axes, k) {
			kept[k] = 1
		} else {
			outd = append(outd, d[k])
		}
	}
	if !x.static() && x.nhwc && slices.Equal(axes, []int{2, 3}) {
		y := ReduceMean(x.n, 1, 2) // [N,C]
		if keep {
			return &value{n: Reshape(y, d[0], 1, 1, d[1]), nhwc: true}
		}
		return graphVal(y)
	}
	y := ReduceMean(b.float(x), axes...)
	if keep {
		y = Reshape(y, kept...)
	}
	return graphVal(y)
}

// softmax follows the opset: from 13 along one axis (default -1); before 13
// over all axes from axis on (default 1), as a 2-D coercion.
func (b *builder) softmax(n *node, x *value) *value {
	l := b.float(x)
	d := l.Shape().Dimensions
	if b.p.opset >= 13 {
		axis, err := normAxis(int(n.a.int("axis", -1)), len(d))
		if err != nil {
			panic(err)
		}
		return graphVal(Softmax(l, axis))
	}
	axis, err := normAxis(int(n.a.int("axis", 1)), len(d))
	if err != nil {
		panic(err)
	}
	flat := Reshape(l, numElems(d[:axis]), numElems(d[axis:]))
	return graphVal(Reshape(Softmax(flat, 1), d...))
}

// pad is constant-mode Pad (pads and value as inputs from opset 11, as
// attributes before), non-negative pads.
func (b *builder) pad(n *node, ins []*value) *value {
	x := ins[0]
	if mode := n.a.str("mode", "constant"); mode != "constant" {
		panic(fmt.Errorf("Pad mode %q is not supported (only constant)", mode))
	}
	var pads []int64
	fill := float32(0)
	if b.p.opset < 11 {
		pads, _ = n.a.ints("pads")
		fill = n.a.float("value", 0)
	} else {
		if len(ins) < 2 || ins[1] == nil {
			panic(fmt.Errorf("Pad needs pads"))
		}
		pads = staticInts(ins[1], "Pad's pads")
		if len(ins) > 2 && ins[2] != nil {
			fill = staticFloat(ins[2], "Pad's constant value", 0)
		}
		if len(ins) > 3 && ins[3] != nil {
			panic(fmt.Errorf("Pad's axes input is not supported"))
		}
	}
	d := b.dims(x)
	if len(pads) != 2*len(d) {
		panic(fmt.Errorf("pads %v do not fit rank %d", pads, len(d)))
	}
	for _, p := range pads {
		if p < 0 || p > maxSide {
			panic(fmt.Errorf("pads %v are not supported (0 to %d)", pads, maxSide))
		}
	}
	r := len(d)
	if !x.static() && x.nhwc {
		order := []int{0, 2, 3, 1}
		cfg := make([]compute.PadAxis, 4)
		for k, a := range order {
			cfg[k] = compute.PadAxis{Start: int(pads[a]), End: int(pads[a+r])}
		}
		return &value{n: Pad(x.n, Scalar(b.g, x.n.DType(), fill), cfg...), nhwc: true}
	}
	l := b.float(x)
	cfg := make([]compute.PadAxis, r)
	for k := 0; k < r; k++ {
		cfg[k] = compute.PadAxis{Start: int(pads[k]), End: int(pads[k+r])}
	}
	return graphVal(Pad(l, Scalar(b.g, l.DType(), fill), cfg...))
}

// slice is Slice (inputs from opset 10; attributes before) with any steps on
// constants and positive steps on graph values.
func (b *builder) slice(n *node, ins []*value) *value {
	x := ins[0]
	d := b.dims(x)
	var starts, ends, axes, steps []int64
	if b.p.opset < 10 {
		starts, _ = n.a.ints("starts")
		ends, _ = n.a.ints("ends")
		axes, _ = n.a.ints("axes")
	} else {
		get := func(k int) []int64 {
			if k < len(ins) && ins[k] != nil {
				return staticInts(ins[k], "Slice's bounds")
			}
			return nil
		}
		starts, ends, axes, steps = get(1), get(2), get(3), get(4)
	}
	if len(starts) != len(ends) {
		panic(fmt.Errorf("Slice starts %v and ends %v differ in length", starts, ends))
	}
	if axes == nil {
		for k := range starts {
			axes = append(axes, int64(k))
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for k := range steps {
			steps[k] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		panic(fmt.Errorf("Slice bounds of different lengths"))
	}
	if x.static() {
		t, err := hostSlice(x.c, starts, ends, axes, steps)
		if err != nil {
			panic(err)
		}
		return &value{c: t}
	}
	l := b.logical(x)
	specs := make([]SliceAxisSpec, len(d))
	for k := range specs {
		specs[k] = AxisRange()
	}
	for j, a := range axes {
		ax, err := normAxis(int(a), len(d))
		if err != nil {
			panic(err)
		}
		s, e, st, err := sliceRange(starts[j], ends[j], steps[j], d[ax])
		if err != nil {
			panic(err)
		}
		if st < 0 {
			panic(fmt.Errorf("negative Slice steps on computed tensors are not supported"))
		}
		if sliceLen(s, e, st) == 0 {
			panic(fmt.Errorf("Slice gives an empty tensor"))
		}
		specs[ax] = AxisRange(s, e).Stride(st)
	}
	return graphVal(Slice(l, specs...))
}
