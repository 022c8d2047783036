package onnx

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/onnx/internal/onnxpb"
)

// supported lists the operators the importer implements (default ONNX domain).
// Cast, ConstantOfShape and Slice are included for the shape computations
// exporters emit around Pad and Reshape.
var supported = map[string]bool{
	"Conv": true, "Relu": true, "Clip": true, "Sigmoid": true, "Tanh": true, "LeakyRelu": true,
	"BatchNormalization": true, "MaxPool": true, "AveragePool": true, "GlobalAveragePool": true,
	"Gemm": true, "MatMul": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Concat": true,
	"Flatten": true, "Reshape": true, "Shape": true, "Gather": true, "Unsqueeze": true, "Squeeze": true,
	"Transpose": true, "Identity": true, "Dropout": true, "Constant": true, "ReduceMean": true,
	"Softmax": true, "Pad": true, "Cast": true, "ConstantOfShape": true, "Slice": true,
}

// SupportedOperators lists the ONNX operators Load accepts, sorted.
func SupportedOperators() []string {
	out := make([]string, 0, len(supported))
	for op := range supported {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// node is one ONNX node with its module aliases.
type node struct {
	op, name        string
	inputs, outputs []string
	a               attrs
	// aliases are the PyTorch module paths whose output is this node's first
	// output (innermost first), with their layer kinds.
	aliases []alias
}

type alias struct {
	path string
	kind models.Kind
}

// program is a parsed, validated ONNX graph.
type program struct {
	opset   int
	input   string   // The image input's value name.
	inputs  []string // All graph inputs that are not initializers.
	outputs []string // All graph outputs (output is the first).
	inDims  []int    // Its declared dims (-1 where symbolic).
	output  string
	consts  map[string]*tensor // Initializers, Constant outputs and Identity aliases of them.
	nodes   []*node
	values  map[string]bool // Every value computed by a node.
	byValue map[string]*node

	// Parameters (graph layouts), registered by use.
	paramNames []string
	paramHost  [][]float32
	paramDims  [][]int
	paramIndex map[string]int
	convParam  map[string]string // const value name → HWIO param.
	rawParam   map[string]string // const value name → raw param.
	bnParam    map[string][2]string
	bnShift    map[string][]float32 // BN output value → effective bias.
	aliasOf    map[string]string    // Identity output → the constant it repeats.
}

var repeatSuffix = regexp.MustCompile(`^(.*)_(\d+)$`)

// parseModel validates a ModelProto of an image model and turns it into a program.
func parseModel(mp *onnxpb.ModelProto) (*program, error) { return parseGraph(mp, false) }

// parseGraph validates a ModelProto. Unless generic, the graph must take one
// float32 (N,C,H,W) image; generic graphs (the conformance tests) may take
// any inputs, listed in program.inputs.
func parseGraph(mp *onnxpb.ModelProto, generic bool) (*program, error) {
	g := mp.GetGraph()
	if g == nil {
		return nil, fmt.Errorf("the file holds no graph (is it an ONNX model?)")
	}
	p := &program{consts: map[string]*tensor{}, values: map[string]bool{}, byValue: map[string]*node{},
		paramIndex: map[string]int{}, convParam: map[string]string{}, rawParam: map[string]string{},
		bnParam: map[string][2]string{}, bnShift: map[string][]float32{}, aliasOf: map[string]string{}}
	for _, os := range mp.GetOpsetImport() {
		if d := os.GetDomain(); d == "" || d == "ai.onnx" {
			p.opset = int(os.GetVersion())
		}
	}
	if p.opset == 0 {
		return nil, fmt.Errorf("the model imports no default-domain opset")
	}
	if p.opset < 7 || p.opset > 17 {
		return nil, fmt.Errorf("opset %d is not supported (opsets 7–17 are; torch.onnx.export with opset_version 11–17 is tested)", p.opset)
	}
	// Unsupported operators: one error listing them all.
	counts := map[string]int{}
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + ":" + op
		} else if supported[op] {
			continue
		}
		counts[op]++
	}
	if len(counts) > 0 {
		ops := make([]string, 0, len(counts))
		for op := range counts {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		for i, op := range ops {
			ops[i] = fmt.Sprintf("%s (%d)", op, counts[op])
		}
		return nil, fmt.Errorf("the model uses %d unsupported operator type(s): %s; supported: %s",
			len(ops), strings.Join(ops, ", "), strings.Join(SupportedOperators(), ", "))
	}
	for _, tp := range g.GetInitializer() {
		t, err := decodeTensor(tp)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		p.consts[tp.GetName()] = t
	}
	if len(g.GetSparseInitializer()) > 0 {
		return nil, fmt.Errorf("sparse initializers are not supported")
	}
	// The image input: the one graph input that is not an initializer.
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range g.GetInput() {
		if _, ok := p.consts[vi.GetName()]; !ok {
			ins = append(ins, vi)
		}
	}
	for _, vi := range ins {
		p.inputs = append(p.inputs, vi.GetName())
	}
	if !generic {
		if err := p.checkImageInput(ins); err != nil {
			return nil, err
		}
	}
	if len(g.GetOutput()) < 1 {
		return nil, fmt.Errorf("the model declares no output")
	}
	p.output = g.GetOutput()[0].GetName()
	for _, o := range g.GetOutput() {
		p.outputs = append(p.outputs, o.GetName())
	}

	// Nodes, in topological order: every input must be known before use.
	known := map[string]bool{}
	for _, in := range p.inputs {
		known[in] = true
	}
	for name := range p.consts {
		known[name] = true
	}
	for i, np := range g.GetNode() {
		n := &node{op: np.GetOpType(), name: np.GetName(), inputs: np.GetInput(), outputs: np.GetOutput(), a: nodeAttrs(np)}
		if n.name == "" {
			n.name = fmt.Sprintf("%s_%d", n.op, i)
		}
		for _, in := range n.inputs {
			if in != "" && !known[in] {
				return nil, fmt.Errorf("node %q (%s) uses value %q before any node computes it (the graph is not in topological order, has a cycle, or lacks the value)", n.name, n.op, in)
			}
		}
		if len(n.outputs) == 0 {
			return nil, fmt.Errorf("node %q (%s) has no outputs", n.name, n.op)
		}
		for _, out := range n.outputs {
			if out == "" {
				continue
			}
			if known[out] {
				return nil, fmt.Errorf("value %q is computed twice (node %q)", out, n.name)
			}
			known[out] = true
			p.values[out] = true
			p.byValue[out] = n
		}
		if err := p.foldLoadTime(n); err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.name, n.op, err)
		}
		p.nodes = append(p.nodes, n)
	}
	if !known[p.output] {
		return nil, fmt.Errorf("output %q is not computed by any node", p.output)
	}
	if err := p.registerParams(); err != nil {
		return nil, err
	}
	p.assignModules()
	return p, nil
}

// foldLoadTime records Constant outputs and Identity aliases of constants.
func (p *program) foldLoadTime(n *node) error {
	switch n.op {
	case "Constant":
		t, err := constantValue(n.a)
		if err != nil {
			return err
		}
		p.consts[n.outputs[0]] = t
	case "Identity":
		if c, ok := p.consts[n.inputs[0]]; ok {
			p.consts[n.outputs[0]] = c
			p.aliasOf[n.outputs[0]] = p.root(n.inputs[0])
		}
	}
	return nil
}

func constantValue(a attrs) (*tensor, error) {
	if at, ok := a["value"]; ok {
		return decodeTensor(at.GetT())
	}
	if at, ok := a["value_float"]; ok {
		return &tensor{f: []float32{at.GetF()}}, nil
	}
	if at, ok := a["value_floats"]; ok {
		return &tensor{dims: []int{len(at.GetFloats())}, f: append([]float32(nil), at.GetFloats()...)}, nil
	}
	if at, ok := a["value_int"]; ok {
		return intTensor(nil, []int64{at.GetI()}), nil
	}
	if at, ok := a["value_ints"]; ok {
		return intTensor([]int{len(at.GetInts())}, append([]int64(nil), at.GetInts()...)), nil
	}
	return nil, fmt.Errorf("Constant without a supported value attribute (value, value_float(s), value_int(s))")
}

// root follows Identity aliases of constants to the original value name.
func (p *program) root(name string) string {
	for k := 0; k < 1000; k++ {
		s, ok := p.aliasOf[name]
		if !ok {
			break
		}
		name = s
	}
	return name
}

// staticSlot reports whether input k of op is read on the host (shapes,
// pads, bounds, indices), so a constant there needs no graph parameter.
func staticSlot(op string, k int) bool {
	switch op {
	case "Reshape", "Unsqueeze", "Squeeze", "Gather", "Expand":
		return k == 1
	case "Pad", "Clip":
		return k >= 1
	case "Slice":
		return k >= 1
	case "ConstantOfShape", "Shape", "Cast":
		return true
	}
	return false
}

func (p *program) addParam(name string, data []float32, dims []int) {
	if _, ok := p.paramIndex[name]; ok {
		return
	}
	p.paramIndex[name] = len(p.paramNames)
	p.paramNames = append(p.paramNames, name)
	p.paramHost = append(p.paramHost, data)
	p.paramDims = append(p.paramDims, dims)
}

// registerParams decides which constants become graph parameters and in
// which layout: convolution kernels as HWIO [kh,kw,I/g,O] (name "<init>#hwio"),
// batch norms folded into scale γ/√(σ²+ε) and shift β−μ·scale per channel
// ("<out>#scale", "<out>#shift"), every other float constant feeding a graph
// operation in its ONNX layout (under its own name).
func (p *program) registerParams() error {
	for _, n := range p.nodes {
		if n.op == "BatchNormalization" {
			if len(n.inputs) < 5 {
				return fmt.Errorf("node %q (BatchNormalization) has %d inputs, want 5", n.name, len(n.inputs))
			}
			var ts [4]*tensor
			for k := 0; k < 4; k++ {
				t, ok := p.consts[n.inputs[k+1]]
				if !ok || t.isInt || len(t.dims) != 1 {
					return fmt.Errorf("node %q (BatchNormalization): input %q must be a constant float vector (computed batch-norm statistics are not supported)", n.name, n.inputs[k+1])
				}
				ts[k] = t
			}
			c := ts[0].dims[0]
			for k := 1; k < 4; k++ {
				if ts[k].dims[0] != c {
					return fmt.Errorf("node %q (BatchNormalization): parameter sizes differ (%d and %d)", n.name, c, ts[k].dims[0])
				}
			}
			eps := float64(n.a.float("epsilon", 1e-5))
			scale, shift := make([]float32, c), make([]float32, c)
			for i := 0; i < c; i++ {
				v := float64(ts[3].f[i]) + eps
				if !(v > 0) {
					return fmt.Errorf("node %q (BatchNormalization): variance %v + epsilon is not positive at channel %d", n.name, ts[3].f[i], i)
				}
				sc := float64(ts[0].f[i]) / math.Sqrt(v)
				scale[i] = float32(sc)
				shift[i] = float32(float64(ts[1].f[i]) - float64(ts[2].f[i])*sc)
			}
			out := n.outputs[0]
			p.addParam(out+"#scale", scale, []int{c})
			p.addParam(out+"#shift", shift, []int{c})
			p.bnParam[out] = [2]string{out + "#scale", out + "#shift"}
			p.bnShift[out] = shift
			continue
		}
		for k, in := range n.inputs {
			t, ok := p.consts[in]
			if in == "" || !ok || t.isInt || staticSlot(n.op, k) {
				continue
			}
			r := p.root(in)
			if n.op == "Conv" && k == 1 {
				if len(t.dims) != 4 {
					return fmt.Errorf("node %q (Conv): kernel %q has shape %v; 2-D convolutions need (O,I/groups,kh,kw)", n.name, in, t.dims)
				}
				o, ci, kh, kw := t.dims[0], t.dims[1], t.dims[2], t.dims[3]
				hwio := make([]float32, len(t.f))
				for a := 0; a < o; a++ {
					for b := 0; b < ci; b++ {
						for y := 0; y < kh; y++ {
							for x := 0; x < kw; x++ {
								hwio[((y*kw+x)*ci+b)*o+a] = t.f[((a*ci+b)*kh+y)*kw+x]
							}
						}
					}
				}
				p.addParam(r+"#hwio", hwio, []int{kh, kw, ci, o})
				p.convParam[in] = r + "#hwio"
				continue
			}
			p.addParam(r, t.f, t.dims)
			p.rawParam[in] = r
		}
	}
	return nil
}

// assignModules derives PyTorch module paths from node names. torch ≥ 1.13
// names nodes by their module scope, e.g. "/layer4/layer4.1/relu_1/Relu":
// each scope component is the module's unqualified name (its path from the
// last non-numeric atom: "layer4.1", "relu", "conv.0.0"); a suffix "_N"
// marks the N-th further call of a module already seen under the same
// parent. A module's output is the first output of the last node (in graph
// order) under its scope; repeated calls are separate outputs of one path.
func (p *program) assignModules() {
	type scope struct {
		path  string
		last  *node
		inner bool // Has child scopes.
	}
	scopes := map[string]*scope{}
	var order []string
	seen := map[string]bool{} // parentKey + "\x00" + component.
	for _, n := range p.nodes {
		if n.op == "Constant" || !strings.HasPrefix(n.name, "/") {
			continue
		}
		parts := strings.Split(n.name[1:], "/")
		comps := parts[:len(parts)-1]
		key, path := "", ""
		for _, c := range comps {
			if c == "" {
				break
			}
			parentKey, parentPath := key, path
			key = parentKey + "/" + c
			name := c
			if m := repeatSuffix.FindStringSubmatch(c); m != nil && seen[parentKey+"\x00"+m[1]] {
				name = m[1]
			}
			seen[parentKey+"\x00"+name] = true
			path = joinModule(parentPath, name)
			sc, ok := scopes[key]
			if !ok {
				sc = &scope{path: path}
				scopes[key] = sc
				order = append(order, key)
			}
			sc.last = n
			if ps, ok := scopes[parentKey]; ok {
				ps.inner = true
			}
		}
	}
	// Innermost first: deeper keys before their parents.
	sort.SliceStable(order, func(i, j int) bool {
		return strings.Count(order[i], "/") > strings.Count(order[j], "/")
	})
	for _, key := range order {
		sc := scopes[key]
		if p.values[sc.path] || sc.path == p.input {
			continue // A value of the same name wins.
		}
		kind := opKind(sc.last.op, sc.last)
		if sc.inner {
			kind = "Module"
		}
		sc.last.aliases = append(sc.last.aliases, alias{path: sc.path, kind: kind})
	}
}

// joinModule appends an unqualified component to a parent module path:
// "layer4" + "layer4.1" → "layer4.1" (the component repeats the parent's
// last name with numeric atoms), "layer4.1" + "conv2" → "layer4.1.conv2".
func joinModule(parent, c string) string {
	if parent == "" {
		return c
	}
	atoms := strings.Split(parent, ".")
	u := parent
	for i := len(atoms) - 1; i >= 0; i-- {
		if !isNumeric(atoms[i]) {
			u = strings.Join(atoms[i:], ".")
			break
		}
	}
	if rest, ok := strings.CutPrefix(c, u+"."); ok && allNumeric(rest) {
		return parent + "." + rest
	}
	return parent + "." + c
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func allNumeric(s string) bool {
	for _, a := range strings.Split(s, ".") {
		if !isNumeric(a) {
			return false
		}
	}
	return true
}

// opKind is the layer kind of an operator's output (PyTorch module classes
// where one matches).
func opKind(op string, n *node) models.Kind {
	switch op {
	case "Conv":
		return models.Conv2d
	case "Relu":
		return models.ReLU
	case "Clip":
		return "Clip"
	case "BatchNormalization":
		return models.BatchNorm2d
	case "MaxPool":
		return models.MaxPool2d
	case "AveragePool":
		return models.AvgPool2d
	case "GlobalAveragePool":
		return models.AdaptiveAvgPool2d
	case "Gemm":
		return models.Linear
	case "Flatten":
		return models.Flatten2d
	case "Dropout":
		return models.Dropout
	}
	return models.Kind(op)
}

// checkImageInput requires one float32 (N,C,H,W) input with a fixed C.
func (p *program) checkImageInput(ins []*onnxpb.ValueInfoProto) error {
	if len(ins) != 1 {
		names := make([]string, len(ins))
		for i, vi := range ins {
			names[i] = vi.GetName()
		}
		return fmt.Errorf("the model has %d inputs %v; an image model has exactly one", len(ins), names)
	}
	p.input = ins[0].GetName()
	tt := ins[0].GetType().GetTensorType()
	if tt == nil || onnxpb.TensorProto_DataType(tt.GetElemType()) != onnxpb.TensorProto_FLOAT {
		return fmt.Errorf("input %q is not a float32 tensor", p.input)
	}
	for _, d := range tt.GetShape().GetDim() {
		v := int(d.GetDimValue())
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); !ok || v <= 0 {
			v = -1
		}
		p.inDims = append(p.inDims, v)
	}
	if len(p.inDims) != 4 {
		return fmt.Errorf("input %q has rank %d; an image model takes (N,C,H,W)", p.input, len(p.inDims))
	}
	if p.inDims[1] < 1 || p.inDims[1] > 4096 {
		return fmt.Errorf("input %q must declare a fixed channel count (1–4096), got %v", p.input, p.inDims)
	}
	for _, d := range p.inDims[2:] {
		if d > 8192 {
			return fmt.Errorf("input %q declares dimensions %v; at most 8192 pixels per side are supported", p.input, p.inDims)
		}
	}
	return nil
}
