#!/usr/bin/python3
"""Writes the small weight files that models/weights tests read.

Run from the repository root:  /usr/bin/python3 scripts/gen_weight_fixtures.py
Needs PyTorch (Debian python3-torch). safetensors files are written by hand
(the format is an 8-byte little-endian header length, a JSON header, the raw
little-endian data) so the python `safetensors` package is not needed; if it is
installed, every .safetensors file is also checked with it.

Every tensor's values follow one formula, which the Go tests recompute:
    value(k, i) = (((7*i + 3*k) % 64) - 32) / 8      i = flat row-major index
with k a per-tensor number given below. All such values are exact in float16
and bfloat16. Every file is read back with torch.load and checked.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "weights", "testdata")


def vals(shape, k, dtype=torch.float32):
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.float64)
    v = (((i * 7 + k * 3) % 64) - 32) / 8
    return v.reshape(shape).to(dtype)


# The "small" state dict: a miniature VGG-BN in torchvision naming.
# (name, shape, k); features.1.num_batches_tracked is an int64 scalar = 7.
SMALL = [
    ("features.0.weight", [4, 3, 3, 3], 0),
    ("features.0.bias", [4], 1),
    ("features.1.weight", [4], 2),
    ("features.1.bias", [4], 3),
    ("features.1.running_mean", [4], 4),
    ("features.1.running_var", [4], 5),
    ("classifier.0.weight", [5, 16], 6),
    ("classifier.0.bias", [5], 7),
    ("classifier.6.weight", [3, 5], 8),
    ("classifier.6.bias", [3], 9),
]


def small_state_dict(dtype=torch.float32):
    sd = collections.OrderedDict()
    for name, shape, k in SMALL:
        sd[name] = vals(shape, k, dtype)
        if name == "features.1.running_var":
            sd["features.1.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    return sd


# timm naming of a miniature VGG (timm/models/vgg.py: pre_logits = ConvMlp with
# fc1 Conv2d(C, O, kernel 7) and fc2 Conv2d(O, O, 1); head.fc Linear). Here C=4
# channels on a 2x2 map instead of 512 on 7x7. k numbers are shared with the
# torchvision names the Go test expects after FromTimm.
TIMM = [
    ("features.0.weight", [4, 3, 3, 3], 20),
    ("features.0.bias", [4], 21),
    ("pre_logits.fc1.weight", [6, 4, 2, 2], 22),  # -> classifier.0.weight [6, 16]
    ("pre_logits.fc1.bias", [6], 23),
    ("pre_logits.fc2.weight", [6, 6, 1, 1], 24),  # -> classifier.3.weight [6, 6]
    ("pre_logits.fc2.bias", [6], 25),
    ("head.fc.weight", [3, 6], 26),  # -> classifier.6.weight
    ("head.fc.bias", [3], 27),
]

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.float64: "F64", torch.int64: "I64"}


def raw_bytes(t):
    """Little-endian bytes of a contiguous tensor (via int views, so bfloat16 works)."""
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return struct.pack("<%dH" % t.numel(), *[x & 0xFFFF for x in t.view(torch.int16).flatten().tolist()])
    if t.dtype == torch.float32:
        return struct.pack("<%df" % t.numel(), *t.flatten().tolist())
    if t.dtype == torch.float64:
        return struct.pack("<%dd" % t.numel(), *t.flatten().tolist())
    if t.dtype == torch.int64:
        return struct.pack("<%dq" % t.numel(), *t.flatten().tolist())
    raise ValueError(t.dtype)


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    data = b""
    for name, t in tensors.items():
        b = raw_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def read_safetensors(path):
    """Independent reader used to check what write_safetensors wrote."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    inv = {v: k for k, v in ST_DTYPES.items()}
    out = {}
    for name, e in header.items():
        b, e_ = e["data_offsets"]
        raw = bytearray(buf[8 + n + b:8 + n + e_])
        t = torch.frombuffer(raw, dtype=inv[e["dtype"]]) if raw else torch.zeros(0, dtype=inv[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def check_equal(got, want, what):
    assert list(got.keys()) == list(want.keys()) or set(got.keys()) == set(want.keys()), (what, got.keys(), want.keys())
    for k in want:
        g, w = got[k], want[k]
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w), (what, k, g, w)
        assert g.stride() == w.stride() or what.endswith("safetensors"), (what, k, g.stride(), w.stride())


def save_pth(name, obj, legacy=False):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def legacy_v1_save(path, sd, views):
    """Writes a legacy (pre-1.6) checkpoint the way PyTorch 0.3 did, which is how
    torchvision's VGG .pth files were written: tensors pickled through
    torch._utils._rebuild_tensor(storage, offset, size, stride) (no _v2), storages
    as persistent ids ("storage", type, key, location, numel, view_metadata).
    views maps a state-dict name to (root_key, root_tensor, view_key, offset, size):
    that tensor's storage is pickled as a view of root_tensor's storage.
    """
    storages = {}  # key -> (storage class, flat tensor)

    class SRef:
        def __init__(self, key, cls, numel, view=None):
            self.key, self.cls, self.numel, self.view = key, cls, numel, view

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, SRef):
                return ("storage", obj.cls, obj.key, "cpu", obj.numel, obj.view)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, SRef):
                return NotImplemented
            if isinstance(obj, torch.Tensor):
                return obj._cnnviz_reduce
            return NotImplemented

    cls_of = {torch.float32: torch.FloatStorage, torch.int64: torch.LongStorage}
    obj = collections.OrderedDict()
    for i, (name, t) in enumerate(sd.items()):
        t = t.clone()
        if name in views:
            root_key, root, view_key, off, size = views[name]
            storages[root_key] = (cls_of[root.dtype], root.flatten())
            ref = SRef(root_key, cls_of[root.dtype], root.numel(), (view_key, off, size))
        else:
            key = str(100 + i)
            storages[key] = (cls_of[t.dtype], t.flatten())
            ref = SRef(key, cls_of[t.dtype], t.numel())
        t._cnnviz_reduce = (torch._utils._rebuild_tensor, (ref, 0, tuple(t.shape), t.stride()))
        obj[name] = t
    f = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump(dict(protocol_version=1001, little_endian=True,
                     type_sizes=dict(short=2, int=4, long=4)), f, protocol=2)
    P(f, protocol=2).dump(obj)
    keys = sorted(storages)
    pickle.dump(keys, f, protocol=2)
    for k in keys:
        _, flat = storages[k]
        f.write(struct.pack("<q", flat.numel()))
        f.write(raw_bytes(flat))
    with open(path, "wb") as out:
        out.write(f.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    sd = small_state_dict()

    # safetensors, written by hand and read back independently.
    p = os.path.join(OUT, "small.safetensors")
    write_safetensors(p, sd, {"format": "pt", "source": "cnnviz test fixture"})
    check_equal(read_safetensors(p), sd, "small.safetensors")
    p = os.path.join(OUT, "small_f16.safetensors")
    sd16 = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    write_safetensors(p, sd16)
    check_equal(read_safetensors(p), sd16, "small_f16.safetensors")
    mixed = collections.OrderedDict([
        ("bf16", vals([2, 3], 30, torch.bfloat16)),
        ("f64", vals([3, 2], 31, torch.float64)),
        ("f16", vals([5], 32, torch.float16)),
        ("scalar", torch.tensor(2.5, dtype=torch.float32)),
        ("empty", torch.zeros(0, 3, dtype=torch.float32)),
    ])
    p = os.path.join(OUT, "mixed.safetensors")
    write_safetensors(p, mixed)
    check_equal(read_safetensors(p), mixed, "mixed.safetensors")

    # PyTorch checkpoints: zip format, legacy format, wrapped dicts.
    check_equal(torch.load(save_pth("small.pth", sd)), sd, "small.pth")
    check_equal(torch.load(save_pth("small_legacy.pth", sd, legacy=True)), sd, "small_legacy.pth")
    got = torch.load(save_pth("wrapped_state_dict.pth", {"epoch": 3, "arch": "vgg", "state_dict": sd}))
    check_equal(got["state_dict"], sd, "wrapped_state_dict.pth")
    got = torch.load(save_pth("wrapped_model.pth", {"model": sd, "optimizer": {"lr": 0.1}}))
    check_equal(got["model"], sd, "wrapped_model.pth")
    mixed_pth = collections.OrderedDict([
        ("f16", vals([2, 3], 40, torch.float16)),
        ("bf16", vals([3, 2], 41, torch.bfloat16)),
        ("f64", vals([4], 42, torch.float64)),
    ])
    check_equal(torch.load(save_pth("mixed_dtypes.pth", mixed_pth)), mixed_pth, "mixed_dtypes.pth")

    # Non-contiguous and offset tensors sharing storages.
    base = vals([4, 6], 10)
    big = vals([8, 3], 11)
    strided = collections.OrderedDict([
        ("transposed", base.t()),      # shape [6, 4], stride (1, 6)
        ("rows_2_to_5", big[2:5]),     # shape [3, 3], storage offset 6, contiguous
        ("column_1", big[:, 1]),       # shape [8], stride (3,), offset 1
        ("permuted", vals([2, 3, 4], 12).permute(2, 0, 1)),  # shape [4, 2, 3], stride (1, 12, 4)
    ])
    assert not strided["transposed"].is_contiguous() and not strided["permuted"].is_contiguous()
    got = torch.load(save_pth("strided.pth", strided))
    check_equal(got, strided, "strided.pth")
    assert got["transposed"].stride() == (1, 6) and got["column_1"].storage_offset() == 1

    # Legacy checkpoint as PyTorch 0.3 wrote it (torchvision's VGG files), with
    # one tensor stored as a view of another storage.
    root = vals([10], 13)
    legacy_sd = collections.OrderedDict(sd)
    legacy_sd["view_of_root"] = root[2:6].clone()
    p = os.path.join(OUT, "small_legacy_v1.pth")
    legacy_v1_save(p, legacy_sd, {"view_of_root": ("900", root, "901", 2, 4)})
    check_equal(torch.load(p), legacy_sd, "small_legacy_v1.pth")

    # timm-named weights (safetensors and zip .pth).
    timm = collections.OrderedDict((n, vals(s, k)) for n, s, k in TIMM)
    # The reshape FromTimm undoes is only valid if timm's conv over the C x 2 x 2
    # map equals torchvision's Linear over the C,H,W flatten: check it.
    x = torch.randn(2, 4, 2, 2)
    w = timm["pre_logits.fc1.weight"]
    conv = F.conv2d(x, w, timm["pre_logits.fc1.bias"]).flatten(1)
    lin = F.linear(x.flatten(1), w.reshape(6, 16), timm["pre_logits.fc1.bias"])
    assert torch.allclose(conv, lin, atol=1e-5), (conv, lin)
    p = os.path.join(OUT, "timm.safetensors")
    write_safetensors(p, timm, {"format": "pt"})
    check_equal(read_safetensors(p), timm, "timm.safetensors")
    check_equal(torch.load(save_pth("timm.pth", timm)), timm, "timm.pth")

    try:
        import safetensors.torch as st  # optional cross-check
        for name in os.listdir(OUT):
            if name.endswith(".safetensors"):
                st.load_file(os.path.join(OUT, name))
    except ImportError:
        pass

    total = 0
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, name))
        total += size
        print("%8d  %s" % (size, name))
    print("%8d  total (torch %s)" % (total, torch.__version__))
    assert total < 200_000


if __name__ == "__main__":
    sys.exit(main())
