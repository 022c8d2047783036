#!/usr/bin/python3
"""Generate testdata/golden_cam/: PyTorch reference class activation maps that
cnnviz's Go CAM family (vizkit/cam*.go) is tested against
(vizkit/cam_golden_test.go).

RE-RUN (Debian's python3-torch, python3-numpy, python3-opencv):

    /usr/bin/python3 scripts/gen_cam_golden.py

It deletes and rewrites testdata/golden_cam/ (README.md included).

WHAT IT IS
----------
A from-scratch REIMPLEMENTATION of pytorch-grad-cam's methods (jacobgil/
pytorch-grad-cam, pytorch_grad_cam/*.py; the library is not vendored or
imported), following its code line by line:

  base_cam.py        get_cam_image (weights[:, :, None, None] * activations,
                     .sum(axis=1) or get_2d_projection with eigen_smooth),
                     compute_cam_per_layer (np.maximum(cam, 0),
                     scale_cam_image(cam, (W, H))), aggregate_multi_layers
                     (np.maximum, mean over layers, scale_cam_image),
                     forward_augmentation_smoothing (ttach HorizontalFlip x
                     Multiply(0.9, 1, 1.1); de-augment; mean, not rescaled)
  utils/image.py     scale_cam_image: (x - min) / (1e-7 + max), cv2.resize
                     (INTER_LINEAR) of np.float32; scale_accross_batch_and_channels
  utils/svd_on_activations.py  get_2d_projection (centre over positions,
                     np.linalg.svd, project on VT[0]) -- plus cnnviz's
                     deterministic sign rule (see below)
  grad_cam.py, hirescam.py, grad_cam_elementwise.py, grad_cam_plusplus.py,
  xgrad_cam.py, layer_cam.py, eigen_cam.py, eigen_grad_cam.py, score_cam.py
  (UpsamplingBilinear2d = align_corners=True, (u-min)/(max-min+1e-8),
  softmax over channels of the masked inputs' target scores), ablation_cam.py
  + ablation_layer.py (ratio_channels_to_ablate=1; the script asserts the
  layer's minimum is 0, so AblationLayer zeroes the channel), fullgrad_cam.py
  (all Conv2d layers with a bias; |x*dx| + sum over layers of per-channel
  scaled |bias*grad|; eigen_smooth at 1/8 size).

Deviation kept in the reference on purpose: the SIGN of get_2d_projection.
SVD leaves it arbitrary (NumPy's LAPACK picks one); cnnviz orients the
projection to correlate positively with the channel sum of the projected
tensor, and if that is exactly 0 makes the largest-|.| entry positive.
meta.json records, per case, whether NumPy's own sign already agreed.

MODEL, INPUTS, TARGETS
----------------------
tinyvgg11 (scripts/gen_golden.py's TinyVGG, cfg A) with the weights of
testdata/golden/tinyvgg11.safetensors, eval mode, run in float64 (weights
and inputs are float32, exact in float64), results cast to float32.
Inputs: testdata/golden/inputs/input_a.npy (1,3,64,64) and input_b.npy
(1,3,48,80, non-square); input_c.npy (2,3,40,40) for a batch with one
target per example.  Target: the logit of class 3 (ClassifierOutputTarget)
unless a case says otherwise.  Layers: features.19 (last conv's ReLU) and
features.20 (last max-pool).

FILES  <input>/<case>/  (case = method[_eig|_aug|_softmax|_multi])
  raw_<layer>.npy     (N,h,w) the map before ReLU (weighted sum / projection);
                      FullGrad: the layer's sum of per-channel scaled |b*grad|
  weights_<layer>.npy (N,C) channel weights (weight-based methods)
  low_<layer>.npy     (N,h,w) scale_cam_image(max(raw, 0)) without resize
  map.npy             (N,H,W) the method's final output
  meta.json           every case: input, method, layers, target, options, files
"""

import json
import os
import shutil
import sys

import cv2
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden  # noqa: E402  (TinyVGG, CFGS, read_safetensors)

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "testdata", "golden")
OUT = os.path.join(REPO, "testdata", "golden_cam")
TARGET = 3
SIZE_BUDGET = 1_500_000


def load_model():
    tensors, _, _ = gen_golden.read_safetensors(os.path.join(GOLDEN, "tinyvgg11.safetensors"))
    m = gen_golden.TinyVGG(gen_golden.CFGS["A"], False)
    missing, unexpected = m.load_state_dict(tensors, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return m.double().eval()


def module(model, name):
    kind, idx = name.split(".")
    return getattr(model, kind)[int(idx)]


# ---------------------------------------------------------------------------
# pytorch-grad-cam utilities


def scale_cam_image(cam, target_size=None):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(np.float32(img), target_size)
        result.append(img)
    return np.float32(result)


def scale_accross_batch_and_channels(tensor, target_size):
    b, c = tensor.shape[:2]
    r = scale_cam_image(tensor.reshape(b * c, *tensor.shape[2:]), target_size)
    return r.reshape(b, c, target_size[1], target_size[0])


SIGN_AGREED = []


def get_2d_projection(batch):
    projections = []
    for activations in batch:
        x = activations.reshape(activations.shape[0], -1).transpose().astype(np.float64)
        total = x.sum(axis=1)  # channel sum per position (before centring)
        x = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=True)
        p = x @ vt[0, :]
        # cnnviz's sign rule (the library keeps LAPACK's arbitrary sign).
        corr = float(p @ total)
        flip = corr < 0 if corr != 0 else p[np.argmax(np.abs(p))] < 0
        SIGN_AGREED.append(not flip)
        if flip:
            p = -p
        projections.append(p.reshape(activations.shape[1:]))
    return np.float64(projections)


# ---------------------------------------------------------------------------
# Activations and gradients (ActivationsAndGradients), target = logit/softmax


def logit_target(k):
    return lambda out: out[k]


def softmax_target(k):
    return lambda out: torch.softmax(out, dim=-1)[k]


def acts_and_grads(model, x, layers, targets, input_grad=False):
    acts, grads, handles = {}, {}, []
    for name in layers:
        def hook(_m, _i, out, name=name):
            acts[name] = out
            out.register_hook(lambda g, name=name: grads.__setitem__(name, g))
        handles.append(module(model, name).register_forward_hook(hook))
    x = x.clone().requires_grad_(input_grad)
    try:
        out = model(x)
        loss = sum(t(o) for t, o in zip(targets, out))
        model.zero_grad()
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    a = {k: v.detach().numpy() for k, v in acts.items()}
    g = {k: v.detach().numpy() for k, v in grads.items()}
    return out.detach().numpy(), a, g, (x.grad.detach().numpy() if input_grad else None)


# ---------------------------------------------------------------------------
# Methods: get_cam_weights / get_cam_image


def w_gradcam(a, g, **_):
    return np.mean(g, axis=(2, 3))


def w_gradcampp(a, g, **_):
    g2 = g ** 2
    g3 = g2 * g
    s = np.sum(a, axis=(2, 3))
    aij = g2 / (2 * g2 + s[:, :, None, None] * g3 + 0.000001)
    aij = np.where(g != 0, aij, 0)
    return np.sum(np.maximum(g, 0) * aij, axis=(2, 3))


def w_xgradcam(a, g, **_):
    s = np.sum(a, axis=(2, 3))
    return (g * a / (s[:, :, None, None] + 1e-7)).sum(axis=(2, 3))


def w_scorecam(a, g, model, x, targets, **_):
    with torch.no_grad():
        up = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(torch.from_numpy(a))
        maxs = up.view(up.size(0), up.size(1), -1).max(dim=-1)[0][:, :, None, None]
        mins = up.view(up.size(0), up.size(1), -1).min(dim=-1)[0][:, :, None, None]
        up = (up - mins) / (maxs - mins + 1e-8)
        inputs = x[:, None, :, :] * up[:, :, None, :, :]
        scores = []
        for target, tensor in zip(targets, inputs):
            for i in range(0, tensor.size(0), 16):
                scores.extend(target(o).item() for o in model(tensor[i:i + 16]))
        scores = torch.tensor(scores, dtype=torch.float64).view(a.shape[0], a.shape[1])
        return torch.softmax(scores, dim=-1).numpy()


def w_fasterscorecam(a, g, model, x, targets, **_):
    """Faster Score-CAM (tf-keras-vis ScoreCAM(max_N)): Score-CAM on the ceil(C/8)
    channels of largest activation variance per example (ties: lower index);
    softmax over their scores; every other channel weighs 0."""
    n, c = a.shape[:2]
    k = (c + 7) // 8
    var = a.astype(np.float64).reshape(n, c, -1).var(axis=-1)
    out = np.zeros((n, c))
    for b in range(n):
        keep = np.argsort(-var[b], kind="stable")[:k]
        w = w_scorecam(a[b:b + 1, keep], None, model, x[b:b + 1], targets[b:b + 1])
        out[b, keep] = w[0]
    return out


def w_ablationcam(a, g, model, x, targets, layer, **_):
    """AblationCAM with AblationLayer replacing `layer`: the rest of the model
    runs on the stored activations with one channel ablated per batch row."""
    assert a.min() == 0, "AblationLayer would use min - 1e7, not 0"
    with torch.no_grad():
        original = np.float64([t(o).item() for t, o in zip(targets, model(x))])
        idx = int(layer.split(".")[1])
        tail = nn.Sequential(*list(model.features)[idx + 1:])
        weights = []
        for b, target in enumerate(targets):
            scores = []
            for i in range(0, a.shape[1], 32):
                chans = list(range(i, min(i + 32, a.shape[1])))
                batch = torch.from_numpy(a[b:b + 1]).repeat(len(chans), 1, 1, 1)
                for r, c in enumerate(chans):
                    batch[r, c] = 0
                y = model.classifier(torch.flatten(model.avgpool(tail(batch)), 1))
                scores.extend(target(o).item() for o in y)
            weights.append(scores)
        weights = np.float64(weights)
        return (original[:, None] - weights) / original[:, None]


def e_hirescam(a, g):
    return g * a


def e_elementwise(a, g):
    return np.maximum(g * a, 0)


def e_layercam(a, g):
    return np.maximum(g, 0) * a


WEIGHTS = {"gradcam": w_gradcam, "gradcampp": w_gradcampp, "xgradcam": w_xgradcam,
           "scorecam": w_scorecam, "fasterscorecam": w_fasterscorecam, "ablationcam": w_ablationcam}
ELEMENTWISE = {"hirescam": e_hirescam, "gradcamelementwise": e_elementwise, "layercam": e_layercam}
PROJECT = {"eigencam": lambda a, g: a, "eigengradcam": lambda a, g: g * a}
GRADIENT_FREE = {"eigencam", "scorecam", "fasterscorecam", "ablationcam"}


def base_cam(model, x, method, layers, targets, eigen_smooth=False):
    """BaseCAM.forward: returns final map and per-layer raw/weights/low."""
    _, acts, grads, _ = acts_and_grads(model, x, layers, targets)
    H, W = x.shape[-2:]
    per_layer, info = [], {}
    for layer in layers:
        a, g = acts[layer], grads[layer]
        if method in GRADIENT_FREE:
            g = np.zeros_like(a)  # unused
        w = None
        if method in WEIGHTS:
            w = WEIGHTS[method](a, g, model=model, x=x, targets=targets, layer=layer)
            weighted = w[:, :, None, None] * a
            cam = get_2d_projection(weighted) if eigen_smooth else weighted.sum(axis=1)
        elif method in ELEMENTWISE:
            e = ELEMENTWISE[method](a, g)
            cam = get_2d_projection(e) if eigen_smooth else e.sum(axis=1)
        else:
            cam = get_2d_projection(PROJECT[method](a, g))
        cam = np.float32(cam)  # the library works on float32 arrays from here
        info[layer] = {"raw": cam, "weights": None if w is None else np.float32(w),
                       "low": scale_cam_image(np.maximum(cam, 0))}
        cam = np.maximum(cam, 0)
        per_layer.append(scale_cam_image(cam, (W, H))[:, None, :])
    cams = np.maximum(np.concatenate(per_layer, axis=1), 0)
    return scale_cam_image(np.mean(cams, axis=1)), info


def aug_smooth(model, x, method, layers, targets, eigen_smooth=False):
    cams = []
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            xa = x * factor
            if flip:
                xa = torch.flip(xa, dims=[3])
            cam, _ = base_cam(model, xa, method, layers, targets, eigen_smooth)
            if flip:
                cam = cam[:, :, ::-1]
            cams.append(cam)
    return np.mean(np.float32(cams), axis=0)


def fullgrad(model, x, targets, eigen_smooth=False):
    convs = [n for n, m in [("features." + k, v) for k, v in model.features.named_children()]
             if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) and m.bias is not None]
    _, _, grads, ig = acts_and_grads(model, x, convs, targets, input_grad=True)
    H, W = x.shape[-2:]
    size = (W, H)
    terms = [scale_accross_batch_and_channels(np.abs(ig * x.numpy()), size)]
    layer_sums = {}
    for name in convs:
        bias = module(model, name).bias.detach().numpy()[None, :, None, None]
        bg = np.abs(bias * grads[name])
        n, c, h, w = bg.shape
        low = scale_cam_image(bg.reshape(n * c, h, w)).reshape(n, c, h, w)
        layer_sums[name] = np.float32(low.sum(axis=1))
        r = scale_accross_batch_and_channels(bg, size)
        terms.append(np.sum(r, axis=1)[:, None, :])
    cam = np.concatenate(terms, axis=1)
    if eigen_smooth:
        cam = scale_accross_batch_and_channels(cam, (size[0] // 8, size[1] // 8))
        cam = get_2d_projection(cam)[:, None, :, :]
        cam = scale_accross_batch_and_channels(cam, size)
    else:
        cam = np.sum(cam, axis=1)[:, None, :]
    return scale_cam_image(np.sum(cam, axis=1)), layer_sums


# ---------------------------------------------------------------------------


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    model = load_model()
    cases = []

    def save(iname, cname, files):
        d = os.path.join(OUT, iname, cname)
        os.makedirs(d, exist_ok=True)
        out = {}
        for fname, arr in files.items():
            arr = np.ascontiguousarray(np.float32(arr))
            assert np.isfinite(arr).all(), (iname, cname, fname)
            np.save(os.path.join(d, fname), arr)
            out[fname] = list(arr.shape)
        return out

    def run_case(iname, x, method, layers, classes, eigen=False, aug=False, kind="logit", suffix=""):
        targets = [(softmax_target if kind == "softmax" else logit_target)(c) for c in classes]
        SIGN_AGREED.clear()
        files = {}
        if method == "fullgrad":
            final, sums = fullgrad(model, x, targets, eigen)
            for l in ("features.16", "features.18"):
                files["raw_%s.npy" % l] = sums[l]
        elif aug:
            final = aug_smooth(model, x, method, layers, targets, eigen)
        else:
            final, info = base_cam(model, x, method, layers, targets, eigen)
            for l, v in info.items():
                files["raw_%s.npy" % l] = v["raw"]
                files["low_%s.npy" % l] = v["low"]
                if v["weights"] is not None:
                    files["weights_%s.npy" % l] = v["weights"]
        files["map.npy"] = final
        cname = method + suffix
        if method != "fullgrad" and not aug:
            cname += "_" + "+".join(layers)
        entry = {"input": iname, "dir": iname + "/" + cname, "method": method, "layers": layers,
                 "target": {"kind": kind, "classes": classes}, "eigen_smooth": eigen, "aug_smooth": aug,
                 "files": save(iname, cname, files)}
        if SIGN_AGREED:
            entry["numpy_svd_sign_agreed"] = SIGN_AGREED[:]
        cases.append(entry)
        print("%-8s %-40s %s" % (iname, cname, final.shape))

    methods = ["gradcam", "hirescam", "gradcamelementwise", "gradcampp", "xgradcam", "layercam",
               "eigencam", "eigengradcam", "scorecam", "ablationcam"]
    for iname in ("input_a", "input_b"):
        x = torch.from_numpy(np.load(os.path.join(GOLDEN, "inputs", iname + ".npy"))).double()
        for layer in ("features.19", "features.20"):
            for m in methods:
                run_case(iname, x, m, [layer], [TARGET])
            for m in ("gradcam", "layercam", "scorecam"):
                run_case(iname, x, m, [layer], [TARGET], eigen=True, suffix="_eig")
        run_case(iname, x, "gradcam", ["features.19", "features.20"], [TARGET], suffix="_multi")
        run_case(iname, x, "gradcam", ["features.19"], [TARGET], kind="softmax", suffix="_softmax")
        run_case(iname, x, "gradcam", ["features.19"], [TARGET], aug=True, suffix="_aug")
        run_case(iname, x, "gradcampp", ["features.19"], [TARGET], aug=True, eigen=True, suffix="_aug_eig")
        run_case(iname, x, "fullgrad", [], [TARGET])
        run_case(iname, x, "fullgrad", [], [TARGET], eigen=True, suffix="_eig")
    x = torch.from_numpy(np.load(os.path.join(GOLDEN, "inputs", "input_c.npy"))).double()
    for m in ("gradcam", "scorecam", "ablationcam", "eigencam"):
        run_case("input_c", x, m, ["features.19"], [7, 2])
    for iname in ("input_a", "input_b"):
        x = torch.from_numpy(np.load(os.path.join(GOLDEN, "inputs", iname + ".npy"))).double()
        run_case(iname, x, "fasterscorecam", ["features.20"], [TARGET])
    x = torch.from_numpy(np.load(os.path.join(GOLDEN, "inputs", "input_c.npy"))).double()
    run_case("input_c", x, "fasterscorecam", ["features.19"], [7, 2])

    meta = {"model": "tinyvgg11", "weights": "../golden/tinyvgg11.safetensors",
            "inputs_dir": "../golden/inputs", "torch": torch.__version__, "numpy": np.__version__,
            "opencv": cv2.__version__, "cases": cases}
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    total = 0
    for root, _, fs in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in fs)
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# golden_cam\n\nGenerated by `scripts/gen_cam_golden.py` (read its docstring); do not edit.\n\n```text\n")
        f.write(__doc__.strip() + "\n```\n\n%d cases, %d bytes.\n" % (len(cases), total))
    print("%d cases, %d bytes" % (len(cases), total))
    assert total < SIZE_BUDGET, total


if __name__ == "__main__":
    main()
