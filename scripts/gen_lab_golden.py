#!/usr/bin/python3
"""Generate the PyTorch/SciPy golden fixtures of the teaching lab in
testdata/lab/golden/ (checked by models/smallcnn and vizkit tests).

RE-RUN (needs Debian's python3-torch, python3-numpy, python3-scipy):

    /usr/bin/python3 scripts/gen_lab_golden.py

The script deletes and rewrites testdata/lab/golden/ only (never
testdata/golden/, which scripts/gen_golden.py owns). Fixed seeds,
torch.set_num_threads(1): output is reproducible with the same builds.

1. smallcnn forward/backward (tiny_smallcnn.*)
   A torch.nn.Module with exactly smallcnn's module names:
     features = Sequential(Conv2d(3,4,3,p=1), ReLU, MaxPool2d(2), Conv2d(4,6,3,p=1),
                           ReLU, MaxPool2d(2), Conv2d(6,6,3,p=1), ReLU,
                           Conv2d(6,8,3,p=1), ReLU)      # Blocks {4,0,6,0,6,8}
     pool     = global average pooling (N,C,H,W) -> (N,C)
     fc       = Linear(8, 5)
   Weights: torch.manual_seed(0); conv weight normal(0, sqrt(2/fan_in)),
   bias normal(0, 0.1); linear weight normal(0, sqrt(1/in)), bias normal(0, 0.1).
   Saved as tiny_smallcnn.safetensors (float32, torchvision-style keys), written
   by this script's own minimal safetensors writer.
   Input: x = torch.randn(2, 3, 24, 20) (seed 1) -> tiny_input.npy.
   Outputs (forward hooks on features.9 and pool, eval mode):
     tiny_logits.npy        (2,5)
     tiny_act_features9.npy (2,8,6,5)   output of the last ReLU
     tiny_act_pool.npy      (2,8)
     tiny_grad_features9.npy  d(logit[0,1] + logit[1,3]) / d features.9 output
     tiny_grad_input.npy      the same target's gradient w.r.t. the input

2. ROAD noisy linear imputation with noise 0 (impute_*.npy)
   The equation system of pytorch-grad-cam's NoisyLinearImputer
   (metrics/road.py): for every imputed pixel i, sum_j w_ij (x_i - x_j) = 0 over
   its in-image 8 neighbours j (weight 1/6 edge, 1/12 diagonal), imputed
   neighbours as unknowns; solved with scipy.sparse.linalg.spsolve (a direct
   solver, independent of cnnviz's conjugate gradients).
     impute_img.npy   (3,9,11) standard normal (seed 3)
     impute_keep.npy  (2,9,11) 1 = kept, 0 = imputed: case 0 random (40 % kept),
                      case 1 = ROAD MoRF at percentile 70 of a random map,
                      keep = map < np.percentile(map, 70)
     impute_map.npy   (9,11) that map
     impute_out.npy   (2,3,9,11) the imputed images
"""
import json
import os
import shutil
import struct

import numpy as np
import scipy
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "lab", "golden")


def save_safetensors(path, tensors):
    names = sorted(tensors)
    header, offset, blobs = {}, 0, []
    for n in names:
        a = np.ascontiguousarray(tensors[n], dtype="<f4")
        b = a.tobytes()
        header[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class GAP(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class SmallCNN(nn.Module):
    def __init__(self, blocks, classes):
        super().__init__()
        layers, cin = [], 3
        for b in blocks:
            if b == 0:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, b, 3, padding=1), nn.ReLU(inplace=False)]
                cin = b
        self.features = nn.Sequential(*layers)
        self.pool = GAP()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)))


def smallcnn_fixture():
    torch.manual_seed(0)
    net = SmallCNN([4, 0, 6, 0, 6, 8], 5).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * 9
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
                m.bias.normal_(0, 0.1)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, (1 / m.in_features) ** 0.5)
                m.bias.normal_(0, 0.1)
    names = [n for n, _ in net.named_modules()]
    assert "features.9" in names and "pool" in names and "fc" in names, names
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    save_safetensors(os.path.join(OUT, "tiny_smallcnn.safetensors"), sd)

    torch.manual_seed(1)
    x = torch.randn(2, 3, 24, 20, requires_grad=True)
    acts = {}

    def hook(name):
        def f(_, __, out):
            out.retain_grad()
            acts[name] = out
        return f

    net.features[9].register_forward_hook(hook("features9"))
    net.pool.register_forward_hook(hook("pool"))
    logits = net(x)
    (logits[0, 1] + logits[1, 3]).backward()
    np.save(os.path.join(OUT, "tiny_input.npy"), x.detach().numpy())
    np.save(os.path.join(OUT, "tiny_logits.npy"), logits.detach().numpy())
    np.save(os.path.join(OUT, "tiny_act_features9.npy"), acts["features9"].detach().numpy())
    np.save(os.path.join(OUT, "tiny_act_pool.npy"), acts["pool"].detach().numpy())
    np.save(os.path.join(OUT, "tiny_grad_features9.npy"), acts["features9"].grad.numpy())
    np.save(os.path.join(OUT, "tiny_grad_input.npy"), x.grad.numpy())
    assert acts["features9"].detach().abs().sum() > 0 and x.grad.abs().sum() > 0


NEIGHBOURS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
              ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


def impute(img, keep):
    """Linear imputation of the pixels with keep == 0 (noise 0)."""
    c, h, w = img.shape
    unknown = [(y, x) for y in range(h) for x in range(w) if not keep[y, x]]
    index = {p: i for i, p in enumerate(unknown)}
    a = scipy.sparse.lil_matrix((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for i, (y, x) in enumerate(unknown):
        total = 0.0
        for (dy, dx), wgt in NEIGHBOURS:
            yy, xx = y + dy, x + dx
            if not (0 <= yy < h and 0 <= xx < w):
                continue
            total += wgt
            if keep[yy, xx]:
                b[i] += wgt * img[:, yy, xx]
            else:
                a[i, index[(yy, xx)]] -= wgt
        a[i, i] += total
    sol = scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(a), b)
    out = img.copy()
    for i, (y, x) in enumerate(unknown):
        out[:, y, x] = sol[i]
    return out


def impute_fixture():
    rng = np.random.default_rng(3)
    img = rng.standard_normal((3, 9, 11)).astype(np.float32)
    keep0 = (rng.random((9, 11)) < 0.4)
    m = rng.random((9, 11)).astype(np.float32)
    keep1 = m < np.percentile(m, 70)
    outs = [impute(img.astype(np.float64), k) for k in (keep0, keep1)]
    np.save(os.path.join(OUT, "impute_img.npy"), img)
    np.save(os.path.join(OUT, "impute_keep.npy"), np.stack([keep0, keep1]).astype(np.float32))
    np.save(os.path.join(OUT, "impute_map.npy"), m)
    np.save(os.path.join(OUT, "impute_out.npy"), np.stack(outs).astype(np.float32))


def main():
    torch.set_num_threads(1)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    smallcnn_fixture()
    impute_fixture()
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# Teaching-lab golden fixtures (generated - do not edit)\n\n"
                "Written by `scripts/gen_lab_golden.py` (torch %s, numpy %s, scipy %s):\n\n```text\n%s\n```\n"
                % (torch.__version__, np.__version__, scipy.__version__, __doc__.strip()))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote", OUT, total, "bytes")


if __name__ == "__main__":
    main()
