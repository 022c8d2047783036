#!/usr/bin/python3
"""Generate the PyTorch golden fixtures in testdata/golden/ that cnnviz's Go tests
compare against.

RE-RUN (from anywhere; needs Debian's python3-torch and python3-numpy;
python3-torchvision is optional, used only to cross-check the module structure):

    /usr/bin/python3 scripts/gen_golden.py

The script deletes and rewrites testdata/golden/ completely (README.md included,
which is this text plus a file listing), then re-reads what it wrote and checks
it.  Output is bit-for-bit reproducible with the same torch/numpy build (checked:
two runs give identical sha256 for every file): fixed seeds,
torch.use_deterministic_algorithms(True), torch.set_num_threads(1).
Generated with Debian python3-torch 1.13.1+dfsg (torch.__version__ "1.13.0a0"),
numpy 1.24.2.

MODELS
------
Narrow copies of torchvision's VGG with exactly torchvision's module structure,
indices and parameter names (own nn.Module: torchvision's VGG class hard-codes
512*7*7 -> 4096 -> 4096).  The structure and state_dict keys are asserted equal
to torchvision's vgg11 / vgg11_bn / vgg13 (make_layers with the same cfg).
  features   = nn.Sequential built like torchvision.models.vgg.make_layers:
               Conv2d(3x3, padding 1) [+ BatchNorm2d] + ReLU per number,
               MaxPool2d(2, 2) per 'M'; ReLU(inplace=False) so hooks see clean
               values (torchvision uses inplace=True; same maths).
  avgpool    = nn.AdaptiveAvgPool2d((7, 7))
  (torch.flatten(x, 1): not a module, no hook)
  classifier = Linear(32*7*7=1568, 16), ReLU, Dropout(0.5), Linear(16, 16), ReLU,
               Dropout(0.5), Linear(16, 10).    All models in eval() mode.
  tinyvgg11     cfg A [8,M,16,M,32,32,M,32,32,M,32,32,M]       indices = vgg11
  tinyvgg11_bn  cfg A, batch_norm=True                          indices = vgg11_bn
  tinyvgg13     cfg B [8,8,M,16,16,M,32,32,M,32,32,M,32,32,M]  indices = vgg13

  HIDDEN = 16, not 64: with 64 the six weight files alone (3 models x
  .safetensors + .pth) would be ~3.6 MB, over the 4 MB budget for
  testdata/golden.  Only the shapes of classifier.0/3/6 change.

INITIALISATION (torch.manual_seed(0) immediately before building each model;
pass 1 draws the weights in module order, pass 2 the biases / BN tensors in
module order):
  Conv2d weight : kaiming_normal_(mode='fan_out', nonlinearity='relu') (= torchvision)
  Conv2d bias   : normal(0, 0.05)                   (torchvision: 0)
  Linear weight : normal(0, sqrt(2 / in_features))  (torchvision: normal(0, 0.01))
  Linear bias   : normal(0, 0.05)                   (torchvision: 0)
  BatchNorm2d   : weight uniform[0.5, 1.5], bias normal(0, 0.1),
                  running_mean normal(0, 0.2), running_var uniform[0.5, 2]
                  (torchvision: 1, 0, 0, 1); eps = 1e-5; num_batches_tracked
                  stays at its default tensor(0) (int64, shape []).
  Why the Linear deviation: with std 0.01 or 0.05 and a 16-wide classifier the
  logits were ~ the last bias (input-dependent part ~0.002, same argmax for
  every input) and most hidden units were dead, so a broken forward pass could
  still "match".  With Kaiming fan-in the logits are O(1) (max |logit| 2-4) and
  vary with the input; ~40-75 % of each ReLU layer is non-zero.  The script
  asserts every saved array is not all zero.

WEIGHTS
-------
  <model>.safetensors  float32 only, torchvision key names, tensors laid out in
        state_dict order (header keys in the same order), header JSON padded
        with spaces to a multiple of 8 bytes, "__metadata__" (all strings:
        format=pt, model, cfg, batch_norm, hidden).  Hand-written (Debian
        bookworm has no python3-safetensors) and re-read by the script.
        num_batches_tracked is NOT in it (it is int64).
  <model>.pth  torch.save(model.state_dict()): zip archive "<model>/data.pkl",
        "<model>/data/<k>", "<model>/version"; pickle protocol 2; globals
        collections.OrderedDict, torch._utils._rebuild_tensor_v2,
        torch.FloatStorage, torch.LongStorage.  For tinyvgg11_bn it DOES contain
        features.{1,5,9,12,16,19,23,26}.num_batches_tracked (int64 scalars,
        LongStorage): a Go loader must skip them.
  Both reproduce the PyTorch logits bit-exactly when loaded back (checked).

INPUTS  inputs/<name>.npy, float32, NCHW, torch.manual_seed(seed); torch.randn
-------
  input_a      (1,3,64,64) seed 1  -> 2x2 map before avgpool (each 7x7 bin
                                      covers 1 or 2 of the 2 rows/cols)
  input_b      (1,3,48,80) seed 2  -> non-square; 1x2 map before avgpool
                                      (48->24->12->6->3->1, 80->40->20->10->5->2)
  input_c      (2,3,40,40) seed 3  -> batch of 2; 40->20->10->5->2->1 (max-pool
                                      floors odd sizes)
  input_relu0  (1,3,32,32) seed 4  -> randn, then x[..., 8i+1:8i+7, 8j+1:8j+7] = 0
               for i, j in 0..3 (16 zero blocks of 6x6).  Inside a block the
               output of features.0 is exactly its bias (all-zero 3x3 window),
               so each block holds 4 windows of the features.2 max-pool whose 4
               inputs are bit-identical: all 0 after ReLU for negative-bias
               channels, all == bias for positive ones (268 all-zero + 320
               positive tied windows of 2048).  Only features.2 sees exact ties
               (the pooled constant patches are 2x2, too small to make the next
               conv constant).  32x32 rather than 64x64 to save space.

RUNS  <model>/<input>/   (<lastrelu>, <lastpool>: tinyvgg11 features.19,
----                      features.20; tinyvgg11_bn features.27, features.28;
                          tinyvgg13 features.23, features.24)
  every run: logits.npy (N,10);
             act_<lastrelu>, act_<lastpool>, act_avgpool, act_classifier.0,
             act_classifier.1, act_classifier.4, act_classifier.6;
             grad_input_logit3, grad_<lastrelu>_logit3, grad_<lastpool>_logit3;
             meta.json
  extra:
    tinyvgg11/input_a      act_ of ALL modules: features.0..features.20, avgpool,
                           classifier.0..classifier.6; grad_features.1_logit3;
                           grad_input_softmax3
    tinyvgg11/input_c      grad_input_softmax3, grad_input_targets_7_2
    tinyvgg11/input_relu0  act_features.1, act_features.2, grad_features.1_logit3,
                           grad_features.2_logit3, grad_input_softmax3
    tinyvgg11_bn/input_a   act_features.0, act_features.1 (BatchNorm output),
                           grad_features.1_logit3
    tinyvgg11_bn/input_c   grad_input_targets_7_2
  (The 8-channel full-resolution tensors are ~130 KB each, so features.0/1 and
  grad_features.1 are saved for one input per model only, not for b/c/tinyvgg13;
  softmax gradients only where listed.)

  act_<layer>.npy               output of module <layer> (N,C,H,W) or (N,F)
  grad_input_logit3.npy         d(sum_n logits[n,3]) / d input            (N,3,H,W)
  grad_<layer>_logit3.npy       d(sum_n logits[n,3]) / d(output of <layer>)
  grad_input_softmax3.npy       d(sum_n softmax(logits[n])[3]) / d input
  grad_input_targets_7_2.npy    d(logits[0,7] + logits[1,2]) / d input (per-example
                                targets; examples are independent, so each row
                                is that example's own gradient)
  meta.json                     model, cfg, batch_norm, hidden, input (file,
                                shape, seed), weights files, last_relu/last_pool,
                                target_class, per_example_targets, files {name:
                                shape, dtype}, layers [{name, kind, output_shape,
                                + conv/bn/pool/linear params}] in forward order
                                (incl. a "flatten" pseudo-entry after avgpool),
                                torch/numpy versions, float32_diagnostics.

PRECISION: the saved references are computed in float64 (model.double() on the
float32 weights, which are exact in float64, and on the float32 inputs), then
cast to float32.  meta.json "float32_diagnostics" gives, per file, max |value|,
the max abs difference of a plain float32 PyTorch run from the reference (all
<= ~3e-6 for logits, <= ~1e-7 for gradients) and fraction_zero for ReLU outputs.
The script asserts float32 PyTorch agrees with the reference to 1e-4 relative,
i.e. no max-pool argmax flips between float32 and float64.

PYTORCH SEMANTICS A GO IMPLEMENTATION MUST MATCH
  * MaxPool2d backward sends each window's gradient to ONE element: the first
    maximum in row-major order of the 2x2 window (CPU kernel keeps the running
    max with a strict '>'), never split among ties.  Verified on input_relu0:
    grad_features.1 equals the first-argmax scatter of grad_features.2 in every
    window, including all 588 exactly-tied ones.
  * ReLU backward is grad * (output > 0): zero gradient at exactly 0.  So for
    all-zero tied windows the routed gradient is visible in grad_features.1 but
    dies before features.0; for positive tied windows it reaches the input.
  * AdaptiveAvgPool2d bin i spans [floor(i*In/Out), ceil((i+1)*In/Out)).
  * MaxPool2d(2, 2) floors odd sizes (5 -> 2, 3 -> 1).
  * BatchNorm2d in eval: (x - running_mean) / sqrt(running_var + 1e-5) * w + b.
  * Dropout is the identity in eval mode.
"""

import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "testdata", "golden")

HIDDEN = 16
NUM_CLASSES = 10
TARGET = 3

CFGS = {
    "A": [8, "M", 16, "M", 32, 32, "M", 32, 32, "M", 32, 32, "M"],
    "B": [8, 8, "M", 16, 16, "M", 32, 32, "M", 32, 32, "M", 32, 32, "M"],
}
MODELS = {  # name -> (cfg key, batch_norm)
    "tinyvgg11": ("A", False),
    "tinyvgg11_bn": ("A", True),
    "tinyvgg13": ("B", False),
}
INPUTS = {  # name -> (shape, seed)
    "input_a": ((1, 3, 64, 64), 1),
    "input_b": ((1, 3, 48, 80), 2),
    "input_c": ((2, 3, 40, 40), 3),
    "input_relu0": ((1, 3, 32, 32), 4),
}
# Per run: early = also save the full-resolution first-block tensors (act
# features.0/features.1 and grad_features.1; for relu0 also features.2);
# softmax = save grad_input_softmax3; targets = per-example target classes.
# tinyvgg11/input_a saves every layer's activation.  (Budget: the 8-channel
# full-resolution tensors are ~130 KB each, so they are saved for one input per
# model only; see the README.)
RUNS = [
    dict(model="tinyvgg11", input="input_a", full=True, early=True, softmax=True),
    dict(model="tinyvgg11", input="input_b", early=False, softmax=False),
    dict(model="tinyvgg11", input="input_c", early=False, softmax=True, targets=[7, 2]),
    dict(model="tinyvgg11", input="input_relu0", early=True, softmax=True, drop=["features.0"]),
    dict(model="tinyvgg11_bn", input="input_a", early=True, softmax=False, drop=["features.0"]),
    dict(model="tinyvgg11_bn", input="input_b", early=False, softmax=False),
    dict(model="tinyvgg11_bn", input="input_c", early=False, softmax=False, targets=[7, 2]),
    dict(model="tinyvgg13", input="input_a", early=False, softmax=False),
]
SIZE_BUDGET = 3_900_000  # brief: under 4 MB; keep a margin


# ---------------------------------------------------------------------------
# Model


def make_layers(cfg, batch_norm=False):
    """torchvision.models.vgg.make_layers, with ReLU(inplace=False)."""
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=False)]
            else:
                layers += [conv2d, nn.ReLU(inplace=False)]
            in_channels = v
    return nn.Sequential(*layers)


class TinyVGG(nn.Module):
    def __init__(self, cfg, batch_norm):
        super().__init__()
        self.features = make_layers(cfg, batch_norm)
        c = [v for v in cfg if v != "M"][-1]
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 7 * 7, HIDDEN),
            nn.ReLU(inplace=False),
            nn.Dropout(p=0.5),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(inplace=False),
            nn.Dropout(p=0.5),
            nn.Linear(HIDDEN, NUM_CLASSES),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build_model(name):
    cfg_key, bn = MODELS[name]
    torch.manual_seed(0)
    m = TinyVGG(CFGS[cfg_key], bn)
    with torch.no_grad():
        # Pass 1: torchvision's rule for the weights, in module order.
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.Linear):
                # torchvision: normal(0, 0.01).  Kaiming (fan_in) instead, see top.
                nn.init.normal_(mod.weight, 0, math.sqrt(2.0 / mod.in_features))
        # Pass 2: non-trivial biases and BN parameters/statistics.
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(mod.bias, 0, 0.05)  # torchvision: 0
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.uniform_(mod.weight, 0.5, 1.5)
                nn.init.normal_(mod.bias, 0, 0.1)
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    m.eval()
    return m


def last_relu_and_pool(model):
    names = [n for n, _ in model.features.named_children()]
    kinds = [type(mod).__name__ for _, mod in model.features.named_children()]
    last_pool = max(i for i, k in enumerate(kinds) if k == "MaxPool2d")
    last_relu = max(i for i, k in enumerate(kinds[:last_pool]) if k == "ReLU")
    return "features." + names[last_relu], "features." + names[last_pool]


def hooked_modules(model):
    """(name, module) for every features.N, avgpool and classifier.N, in order."""
    out = [("features." + n, m) for n, m in model.features.named_children()]
    out.append(("avgpool", model.avgpool))
    out += [("classifier." + n, m) for n, m in model.classifier.named_children()]
    return out


# ---------------------------------------------------------------------------
# Inputs


def make_input(name):
    shape, seed = INPUTS[name]
    torch.manual_seed(seed)
    x = torch.randn(*shape, dtype=torch.float32)
    if name == "input_relu0":
        for i in range(x.shape[2] // 8):
            for j in range(x.shape[3] // 8):
                x[..., 8 * i + 1 : 8 * i + 7, 8 * j + 1 : 8 * j + 7] = 0.0
    return x


# ---------------------------------------------------------------------------
# safetensors (hand-written; the format is tiny)


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, float32 tensor) in the order to lay out."""
    header = {"__metadata__": metadata}
    blobs = []
    off = 0
    for name, t in tensors:
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        b, e = info["data_offsets"]
        a = np.frombuffer(data[base + b : base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    assert max(i["data_offsets"][1] for i in header.values()) == len(data) - base
    return out, meta, list(header.keys())


# ---------------------------------------------------------------------------
# Running a model with hooks


def run(model, x, keep_layers, grad_layers, per_example_targets=None, softmax=True):
    """Forward with hooks that keep the live outputs; returns numpy dict of results
    (in the model's dtype) plus the per-layer output shapes."""
    live = {}
    handles = []
    for name, mod in hooked_modules(model):
        def hook(_m, _inp, out, name=name):
            live[name] = out
        handles.append(mod.register_forward_hook(hook))
    try:
        x = x.clone().requires_grad_(True)
        logits = model(x)
    finally:
        for h in handles:
            h.remove()

    res = {"logits": logits.detach().clone()}
    for n in keep_layers:
        res["act_" + n] = live[n].detach().clone()
    shapes = {n: list(t.shape) for n, t in live.items()}

    score = logits[:, TARGET].sum()
    g = torch.autograd.grad(score, [x] + [live[n] for n in grad_layers], retain_graph=True)
    res["grad_input_logit%d" % TARGET] = g[0]
    for n, gi in zip(grad_layers, g[1:]):
        res["grad_%s_logit%d" % (n, TARGET)] = gi

    if softmax:
        sm = torch.softmax(logits, dim=1)[:, TARGET].sum()
        (res["grad_input_softmax%d" % TARGET],) = torch.autograd.grad(sm, [x], retain_graph=True)

    if per_example_targets is not None:
        s = sum(logits[i, t] for i, t in enumerate(per_example_targets))
        key = "grad_input_targets_" + "_".join(str(t) for t in per_example_targets)
        (res[key],) = torch.autograd.grad(s, [x])
    return {k: v.detach().cpu().numpy() for k, v in res.items()}, shapes


def layer_info(model, shapes):
    info = []
    for name, mod in hooked_modules(model):
        d = {"name": name, "kind": type(mod).__name__, "output_shape": shapes[name]}
        if isinstance(mod, nn.Conv2d):
            d.update(in_channels=mod.in_channels, out_channels=mod.out_channels,
                     kernel_size=list(mod.kernel_size), padding=list(mod.padding),
                     stride=list(mod.stride))
        elif isinstance(mod, nn.BatchNorm2d):
            d.update(num_features=mod.num_features, eps=mod.eps)
        elif isinstance(mod, nn.MaxPool2d):
            d.update(kernel_size=mod.kernel_size, stride=mod.stride)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            d.update(output_size=list(mod.output_size))
        elif isinstance(mod, nn.Linear):
            d.update(in_features=mod.in_features, out_features=mod.out_features)
        elif isinstance(mod, nn.Dropout):
            d.update(p=mod.p, note="identity in eval mode")
        info.append(d)
        if name == "avgpool":
            info.append({"name": "flatten", "kind": "torch.flatten(x, 1) (not a module, no hook)",
                         "output_shape": [shapes[name][0], int(np.prod(shapes[name][1:]))]})
    return info


# ---------------------------------------------------------------------------
# Checks


def check_structure(models):
    """Cross-check module structure and parameter names with torchvision."""
    try:
        import torchvision.models.vgg as tvvgg
    except ImportError:
        print("torchvision not available: skipping structure cross-check")
        return
    for name, m in models.items():
        cfg_key, bn = MODELS[name]
        ref = tvvgg.make_layers(CFGS[cfg_key], batch_norm=bn)
        ours = [(n, type(x).__name__) for n, x in m.features.named_children()]
        theirs = [(n, type(x).__name__) for n, x in ref.named_children()]
        assert ours == theirs, (name, ours, theirs)
        assert list(ref.state_dict().keys()) == list(m.features.state_dict().keys())
        full = {"tinyvgg11": tvvgg.vgg11, "tinyvgg11_bn": tvvgg.vgg11_bn, "tinyvgg13": tvvgg.vgg13}[name]
        tv_keys = list(full(weights=None, init_weights=False).state_dict().keys())
        assert tv_keys == list(m.state_dict().keys()), name
    print("structure and state_dict keys match torchvision vgg11 / vgg11_bn / vgg13")


def compact_json(obj, indent=0):
    """JSON with anything whose one-line form fits in 200 characters on one line."""
    one = json.dumps(obj)
    if len(one) <= 200 or not isinstance(obj, (dict, list)) or not obj:
        return one
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [pad + json.dumps(k) + ": " + compact_json(v, indent + 1) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + compact_json(v, indent + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def tie_stats(act_relu, act_pool_in_name):
    """Count 2x2 windows (stride 2) whose 4 values are exactly equal."""
    a = act_relu
    n, c, h, w = a.shape
    a = a[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    mx = a.max(axis=(3, 5))
    mn = a.min(axis=(3, 5))
    eq = mx == mn
    return int((eq & (mx == 0)).sum()), int((eq & (mx > 0)).sum()), int(eq.size)


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "inputs"))
    print("torch", torch.__version__, "numpy", np.__version__)

    models = {name: build_model(name) for name in MODELS}
    check_structure(models)

    # Weights.
    for name, m in models.items():
        cfg_key, bn = MODELS[name]
        sd = m.state_dict()
        torch.save(sd, os.path.join(OUT, name + ".pth"))
        floats = [(k, v) for k, v in sd.items() if v.dtype == torch.float32]
        skipped = [k for k, v in sd.items() if v.dtype != torch.float32]
        assert all(k.endswith("num_batches_tracked") for k in skipped), skipped
        write_safetensors(os.path.join(OUT, name + ".safetensors"), floats, {
            "format": "pt", "model": name, "cfg": json.dumps(CFGS[cfg_key]),
            "batch_norm": str(bn).lower(), "hidden": str(HIDDEN)})

    # Inputs.
    inputs = {}
    for name in INPUTS:
        x = make_input(name)
        inputs[name] = x
        np.save(os.path.join(OUT, "inputs", name + ".npy"), x.numpy().astype(np.float32))

    summary = []
    for spec in RUNS:
        mname, iname = spec["model"], spec["input"]
        m32 = models[mname]
        m64 = build_model(mname).double()
        m64.load_state_dict({k: v.double() if v.is_floating_point() else v
                             for k, v in m32.state_dict().items()})
        m64.eval()
        lastrelu, lastpool = last_relu_and_pool(m32)
        all_names = [n for n, _ in hooked_modules(m32)]
        keep = [lastrelu, lastpool, "avgpool", "classifier.0", "classifier.1",
                "classifier.4", "classifier.6"]
        grad_layers = [lastrelu, lastpool]
        if spec.get("early"):
            keep += ["features.0", "features.1"]
            grad_layers += ["features.1"]
            if iname == "input_relu0":
                keep.append("features.2")
                grad_layers.append("features.2")
        if spec.get("full"):
            keep = all_names
        keep = [n for n in all_names if n in set(keep) and n not in spec.get("drop", [])]
        grad_layers = [n for n in all_names if n in set(grad_layers)]
        per_ex = spec.get("targets")
        softmax = spec.get("softmax", False)

        x = inputs[iname]
        ref, shapes = run(m64, x.double(), keep, grad_layers, per_ex, softmax)
        f32, shapes32 = run(m32, x, keep, grad_layers, per_ex, softmax)
        assert shapes == shapes32

        d = os.path.join(OUT, mname, iname)
        os.makedirs(d)
        files = {}
        diag = {}
        print("\n== %s / %s  input %s" % (mname, iname, list(x.shape)))
        for k, v in ref.items():
            v32 = v.astype(np.float32)
            np.save(os.path.join(d, k + ".npy"), v32)
            files[k + ".npy"] = {"shape": list(v32.shape), "dtype": "float32"}
            maxabs = float(np.abs(v32).max())
            diff = float(np.abs(f32[k].astype(np.float64) - v32.astype(np.float64)).max())
            diag[k + ".npy"] = {"max_abs_value": maxabs,
                                "max_abs_diff_float32_run": diff,
                                "rel": diff / maxabs if maxabs else None}
            assert maxabs > 0, "all-zero fixture %s/%s/%s" % (mname, iname, k)
            if k.startswith("grad_") or k == "logits":
                print("  %-34s %-16s max|v|=%.4g  f32-vs-ref=%.2g" % (k, list(v32.shape), maxabs, diff))
            # float32 PyTorch must agree with the float64 reference (catches
            # a different max-pool argmax from rounding near-ties).
            assert diff <= 1e-4 * max(maxabs, 1e-3), (k, diff, maxabs)
        if iname == "input_relu0":
            z, p, tot = tie_stats(ref["act_features.1"], "features.1")
            print("  features.2 windows with exact 4-way ties: %d all-zero, %d positive, of %d" % (z, p, tot))
            assert z > 50 and p > 50
            diag["features.2_tie_windows"] = {"all_zero": z, "positive_equal": p, "total": tot}
        # How much of each activation is dead (informational).
        for k in keep:
            a = ref["act_" + k]
            if "ReLU" in type(dict(hooked_modules(m32))[k]).__name__:
                diag["act_" + k + ".npy"]["fraction_zero"] = float((a == 0).mean())

        meta = {
            "model": mname,
            "cfg": CFGS[MODELS[mname][0]],
            "batch_norm": MODELS[mname][1],
            "hidden": HIDDEN,
            "num_classes": NUM_CLASSES,
            "input": iname,
            "input_file": "inputs/%s.npy" % iname,
            "input_shape": list(x.shape),
            "input_seed": INPUTS[iname][1],
            "weights": {"safetensors": mname + ".safetensors", "pth": mname + ".pth"},
            "last_relu": lastrelu,
            "last_pool": lastpool,
            "target_class": TARGET,
            "per_example_targets": per_ex,
            "files": files,
            "layers": layer_info(m32, shapes),
            "torch_version": torch.__version__,
            "numpy_version": np.__version__,
            "reference_precision": "float64 forward/backward on the float32 weights and inputs, cast to float32",
            "float32_diagnostics": diag,
        }
        with open(os.path.join(d, "meta.json"), "w") as f:
            f.write(compact_json(meta) + "\n")
        summary.append((mname, iname, ref["logits"]))

    verify(models, inputs, summary)
    write_readme()

    total = 0
    for root, _, fs in os.walk(OUT):
        for fn in fs:
            total += os.path.getsize(os.path.join(root, fn))
    print("\ntotal size of testdata/golden: %d bytes (%.2f MB)" % (total, total / 2**20))
    assert total < SIZE_BUDGET, total


def write_readme():
    rows = []
    for root, dirs, fs in os.walk(OUT):
        dirs.sort()
        for fn in sorted(fs):
            path = os.path.join(root, fn)
            rows.append("%9d  %s" % (os.path.getsize(path), os.path.relpath(path, OUT)))
    text = ("# Golden fixtures for cnnviz (generated - do not edit)\n\n"
            "Written by `scripts/gen_golden.py`; regenerate with\n"
            "`/usr/bin/python3 scripts/gen_golden.py`.  The text below is that\n"
            "script's docstring.\n\n```text\n" + __doc__.strip() + "\n```\n\n"
            "## Files (bytes, excluding this README)\n\n```text\n" + "\n".join(rows) + "\n```\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(text)


def verify(models, inputs, summary):
    print("\n== reload checks")
    for name, m in models.items():
        x = inputs["input_a"]
        with torch.no_grad():
            want = m(x)
        # .pth
        sd = torch.load(os.path.join(OUT, name + ".pth"))
        m2 = build_model(name)
        with torch.no_grad():
            for p in m2.state_dict().values():
                p.zero_()
        m2.load_state_dict(sd, strict=True)
        m2.eval()
        with torch.no_grad():
            got = m2(x)
        assert torch.equal(got, want), name
        # .safetensors
        st, meta, order = read_safetensors(os.path.join(OUT, name + ".safetensors"))
        assert order == [k for k in sd if not k.endswith("num_batches_tracked")], order
        m3 = build_model(name)
        with torch.no_grad():
            for p in m3.state_dict().values():
                p.zero_()
        missing, unexpected = m3.load_state_dict(st, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), missing
        m3.eval()
        with torch.no_grad():
            got = m3(x)
        assert torch.equal(got, want), name
        nbt = [k for k in sd if k.endswith("num_batches_tracked")]
        print("  %-13s .pth (%d keys, %d num_batches_tracked) and .safetensors (%d keys) reproduce logits exactly; metadata=%s"
              % (name, len(sd), len(nbt), len(st), meta))
    # Saved logits vs a plain float32 run of the saved weights/inputs.
    for mname, iname, ref in summary:
        m = models[mname]
        x = torch.from_numpy(np.load(os.path.join(OUT, "inputs", iname + ".npy")))
        with torch.no_grad():
            got = m(x).numpy()
        saved = np.load(os.path.join(OUT, mname, iname, "logits.npy"))
        assert np.array_equal(saved, ref.astype(np.float32))
        print("  %-13s %-12s float32 logits vs saved: max abs diff %.2g, argmax %s"
              % (mname, iname, np.abs(got - saved).max(), saved.argmax(1).tolist()))


if __name__ == "__main__":
    sys.exit(main())
