#!/usr/bin/python3
"""Generate the PyTorch reference fixtures in testdata/golden_saliency/ for cnnviz's
gradient visualisations, attributions and activation-maximisation building blocks
(vizkit/saliency.go, attribution.go, actmax.go, actmax_param.go).

RE-RUN (needs Debian's python3-torch, python3-numpy and python3-opencv):

    /usr/bin/python3 scripts/gen_saliency_golden.py

It deletes and rewrites testdata/golden_saliency/ (README.md included).  Output
is reproducible: fixed seeds, torch.use_deterministic_algorithms(True), one
thread.  Everything is computed in float64 (model.double()) and saved as float32.

MODEL: tinyvgg11 of scripts/gen_golden.py (its module definition is imported),
with the weights read from testdata/golden/tinyvgg11.safetensors, the very file
the Go tests load.

INPUT  input.npy (2,3,32,32) float32, torch.manual_seed(11), randn.
TARGETS per example: logits[0,3] and logits[1,7] (targets.json lists them).

FILES (all float32; N=2, H=W=32):
  grad.npy             d target / d input (vanilla gradient)          (N,3,H,W)
  guided.npy           the same with guided-backprop ReLUs: a custom
                       autograd.Function as pytorch-grad-cam's GuidedBackpropReLU,
                       grad_in = grad_out * (input > 0) * (grad_out > 0), swapped
                       into EVERY ReLU (features and classifier), no hooks.
  deconv.npy           deconvnet ReLUs: grad_in = clamp(grad_out, min=0).
  gradxinput.npy       grad * input.
  absmax.npy           max_c |grad| (Simonyan)                          (N,H,W)
  max.npy              max_c grad (FlashTorch take_max, signed)         (N,H,W)
  max_display.npy      FlashTorch standardize_and_clip(max) per example,
                       (x - mean)/std(unbiased)*0.1 + 0.5 clamped to [0,1]
  gradcam.npy          Grad-CAM at features.9 (8x8 -> 32x32), pytorch-grad-cam's
                       pipeline in float32: w = mean(grads), relu(sum w A), scale
                       (x-min)/(1e-7+max), cv2.resize INTER_LINEAR, relu, scale.
  guided_gradcam.npy   guided * gradcam (broadcast over RGB).
  smoothgrad_z.npy     standard-normal draws Z (S=6,N,3,H,W), seed 12.
  smoothgrad_mean.npy, smoothgrad_sq.npy, vargrad.npy: over the 6 inputs
                       float32(x + sigma_n * Z[s,n]), sigma_n = 0.15 (max-min of x_n):
                       mean g, mean g^2, mean g^2 - (mean g)^2.
  ig_<method>_black.npy  Integrated Gradients, 12 steps, Captum's rules
                       (captum/attr/_utils/approximation_methods.py): riemann_left,
                       riemann_right, riemann_middle, riemann_trapezoid (alphas
                       torch.linspace (float32) exactly as Captum, weights 1/n,
                       halved at the ends for trapezoid) and gausslegendre
                       (numpy leggauss, rescaled to [0,1]).  Path points are
                       rounded to float32 before the model.  Baseline "black":
                       -mean/std per channel (ImageNet normalisation).
  ig_gausslegendre_zeros.npy, ig_gausslegendre_blur.npy: other baselines; the
                       blur baseline (baseline_blur.npy) is a separable Gaussian,
                       sigma 2 px, radius ceil(3 sigma), normalised weights, edges
                       repeat the border pixel (cnnviz's GaussianBlur).
                       Every model gradient of this script is also computed in
                       float32 and must agree with float64 to 1e-4 relative (no
                       ReLU/max-pool kink between the two precisions).
  ig.json              per file: f(x), f(baseline), sum(attr), delta per example.
  occlusion_8x8_s4.npy, occlusion_10x7_s4x5.npy: Captum Occlusion semantics
                       (captum/attr/_core/occlusion.py) re-implemented: windows
                       covering the 3 channels, shift counts ceil((D-w)/s)+1 per
                       axis, the last window cut at the border, baseline 0,
                       attribution = mean over covering windows of f(x) - f(occluded).
  fft_<h>x<w>_theta.npy / _raw.npy / _image.npy: Lucid's fft_image +
                       to_valid_rgb(decorrelate=True, sigmoid=True) on a random
                       spectrum theta (2,1,3,fh,fw) (seed 13): raw = irfft2d(
                       theta*scale)[:h,:w]/4, image = sigmoid(raw @ C_norm^T).
                       Sizes 8x10 (even width) and 7x9 (odd width: fw = w//2+2).
  actmax_x0.npy, actmax_x4.npy: FlashTorch GradientAscent._ascent, 4 steps of
                       g /= sqrt(mean(g^2)) + 1e-5; x = x + g (lr 1) maximising
                       mean(output[:, 5]) of conv features.3, from x0 =
                       apply_transforms(uint8(uniform(150,180))) (seed 14), (1,3,32,32).
"""

import importlib.util
import json
import math
import os
import shutil

import numpy as np
import torch
import torch.nn as nn

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "testdata", "golden_saliency")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TARGETS = [3, 7]
IG_STEPS = 12  # 16 puts a Gauss-Legendre node on a float32/float64 kink (input_grad's check)

spec = importlib.util.spec_from_file_location("gen_golden", os.path.join(REPO, "scripts", "gen_golden.py"))
gg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gg)


def load_model():
    m = gg.TinyVGG(gg.CFGS["A"], False)
    tensors, _, _ = gg.read_safetensors(os.path.join(REPO, "testdata", "golden", "tinyvgg11.safetensors"))
    missing = m.load_state_dict(tensors, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    return m.double().eval()


class GuidedReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype) * (g > 0).to(g.dtype)


class DeconvReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class FnReLU(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn.apply(x)


def with_relu(model, fn):
    """A copy of model whose every nn.ReLU is replaced by fn (no hooks)."""
    import copy
    m = copy.deepcopy(model)
    for seq in (m.features, m.classifier):
        for name, mod in seq.named_children():
            if isinstance(mod, nn.ReLU):
                setattr(seq, name, FnReLU(fn))
    return m


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def target_scores(logits):
    return torch.stack([logits[i, t] for i, t in enumerate(TARGETS)])


CHECKED = [0]


def input_grad(model, x64, check=True):
    """Gradient of the targets w.r.t. the input, in float64.  With check, the same
    gradient in float32 must agree to 1e-4 relative: a float32 implementation (the
    Go engine) then cannot land on the other side of a ReLU or max-pool kink."""
    x = x64.clone().requires_grad_(True)
    s = target_scores(model(x))
    (g,) = torch.autograd.grad(s.sum(), [x])
    if check:
        m32 = model.float()
        try:
            x32 = x64.float().clone().requires_grad_(True)
            (g32,) = torch.autograd.grad(target_scores(m32(x32)).sum(), [x32])
        finally:
            model.double()
        err = (g32.double() - g).abs().max().item()
        scale = g.abs().max().item()
        assert err <= 1e-4 * scale, "float32 and float64 gradients differ by %.3g (scale %.3g): kink; change the seed" % (err, scale)
        CHECKED[0] += 1
    return g.detach(), s.detach()


def scores(model, x64, targets=None):
    targets = TARGETS if targets is None else targets
    with torch.no_grad():
        lg = model(x64)
    return torch.stack([lg[i, t] for i, t in enumerate(targets)])


def standardize_and_clip(t, saturation=0.1, brightness=0.5):
    mean, std = t.mean(), t.std()
    if std == 0:
        std = std + 1e-7
    return ((t - mean) / std * saturation + brightness).clamp(0, 1)


def gradcam(model, x64, layer="features.9"):
    import cv2
    idx = int(layer.split(".")[1])
    live = {}
    h = model.features[idx].register_forward_hook(lambda m, i, o: live.__setitem__("a", o))
    try:
        x = x64.clone().requires_grad_(True)
        s = target_scores(model(x))
        (g,) = torch.autograd.grad(s.sum(), [live["a"]])
    finally:
        h.remove()
    acts = live["a"].detach().numpy().astype(np.float32)
    grads = g.numpy().astype(np.float32)
    out = []
    for n in range(acts.shape[0]):
        w = np.mean(grads[n], axis=(1, 2))
        cam = (w[:, None, None] * acts[n]).sum(axis=0)
        cam = np.maximum(cam, 0)
        cam = cam - np.min(cam)
        cam = cam / (1e-7 + np.max(cam))
        cam = cv2.resize(cam, (x64.shape[3], x64.shape[2]))
        cam = np.maximum(cam, 0)  # aggregate_multi_layers (one layer): maximum, mean, scale
        cam = cam - np.min(cam)
        cam = cam / (1e-7 + np.max(cam))
        out.append(cam)
    return np.stack(out).astype(np.float32)


def riemann(method, n):
    deltas = [1 / n] * n
    if method == "trapezoid":
        deltas[0] /= 2
        deltas[-1] /= 2
    if method == "trapezoid":
        alphas = torch.linspace(0, 1, n).tolist()
    elif method == "left":
        alphas = torch.linspace(0, 1 - 1 / n, n).tolist()
    elif method == "middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist()
    elif method == "right":
        alphas = torch.linspace(1 / n, 1, n).tolist()
    return deltas, alphas


def gausslegendre(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return list(0.5 * w), list(0.5 * (1 + x))


def integrated_gradients(model, x64, b64, method, n):
    if method == "gausslegendre":
        deltas, alphas = gausslegendre(n)
    else:
        deltas, alphas = riemann(method.split("_")[1], n)
    total = torch.zeros_like(x64)
    for d, a in zip(deltas, alphas):
        xs = (b64 + a * (x64 - b64)).float().double()
        g, _ = input_grad(model, xs)
        total += d * g
    return total * (x64 - b64)


def gaussian_blur(plane, sigma):
    rad = int(math.ceil(3 * sigma))
    k = np.exp(-np.arange(-rad, rad + 1) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    h, w = plane.shape
    p = np.pad(plane.astype(np.float64), rad, mode="edge")
    tmp = np.zeros((h + 2 * rad, w))
    for i, kv in enumerate(k):
        tmp += kv * p[:, i : i + w]
    out = np.zeros((h, w))
    for i, kv in enumerate(k):
        out += kv * tmp[i : i + h, :]
    return out


def occlusion(model, x64, window, strides, baseline=0.0):
    n, c, h, w = x64.shape
    shapes = (c,) + tuple(window)
    strides = (1,) + tuple(strides)
    counts = [int(math.ceil((d - s) / st)) + 1 for d, s, st in zip((c, h, w), shapes, strides)]
    base = scores(model, x64)
    total = torch.zeros_like(x64)
    weight = torch.zeros_like(x64)
    for feat in range(int(np.prod(counts))):
        rem = feat
        idx = []
        for cnt, st in zip(counts, strides):
            idx.append((rem % cnt) * st)
            rem //= cnt
        mask = torch.zeros((c, h, w), dtype=torch.float64)
        mask[idx[0] : idx[0] + shapes[0], idx[1] : idx[1] + shapes[1], idx[2] : idx[2] + shapes[2]] = 1
        occl = x64 * (1 - mask) + baseline * mask
        diff = base - scores(model, occl)
        total += diff[:, None, None, None] * mask
        weight += mask
    return total / weight


COLOR = np.asarray([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]).astype("float32")
COLOR_NORM = COLOR / np.max(np.linalg.norm(COLOR, axis=0))


def rfft2d_freqs(h, w):
    fy = np.fft.fftfreq(h)[:, None]
    if w % 2 == 1:
        fx = np.fft.fftfreq(w)[: w // 2 + 2]
    else:
        fx = np.fft.fftfreq(w)[: w // 2 + 1]
    return np.sqrt(fx * fx + fy * fy)


def fft_image(theta, h, w, decay_power=1.0):
    freqs = rfft2d_freqs(h, w)
    spectrum = theta[0].astype(np.float64) + 1j * theta[1].astype(np.float64)  # (batch, ch, fh, fw)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** decay_power
    scale *= np.sqrt(w * h)
    img = np.fft.irfft2(scale * spectrum)  # last two axes; width 2*(fw-1)
    raw = img[:, :, :h, :w] / 4.0
    t = np.transpose(raw, (0, 2, 3, 1)).reshape(-1, 3) @ COLOR_NORM.T.astype(np.float64)
    t = np.transpose(t.reshape(raw.shape[0], h, w, 3), (0, 3, 1, 2))
    return raw, 1 / (1 + np.exp(-t))


def flashtorch_ascent(model, x0, layer_idx, channel, steps):
    x = torch.from_numpy(x0).double()
    live = {}
    hk = model.features[layer_idx].register_forward_hook(lambda m, i, o: live.__setitem__("a", o))
    try:
        for _ in range(steps):
            xr = x.clone().requires_grad_(True)
            model(xr)
            act = torch.mean(live["a"][:, channel, :, :])
            (g,) = torch.autograd.grad(act, [xr])
            g = g / (torch.sqrt(torch.mean(g * g)) + 1e-5)
            x = x + g * 1.0
    finally:
        hk.remove()
    return x.numpy()


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    files = {}

    def save(name, a):
        a = f32(a)
        assert np.isfinite(a).all(), name
        np.save(os.path.join(OUT, name), a)
        files[name] = list(a.shape)

    model = load_model()
    torch.manual_seed(11)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float32)
    save("input.npy", x)
    x64 = x.double()

    g, s = input_grad(model, x64)
    save("grad.npy", g)
    gn = g.numpy()
    save("absmax.npy", np.abs(gn).max(axis=1))
    mx = gn.max(axis=1)
    save("max.npy", mx)
    save("max_display.npy", np.stack([standardize_and_clip(torch.from_numpy(m)).numpy() for m in mx]))
    save("gradxinput.npy", gn * x64.numpy())
    guided, _ = input_grad(with_relu(model, GuidedReLUFn), x64)
    save("guided.npy", guided)
    deconv, _ = input_grad(with_relu(model, DeconvReLUFn), x64)
    save("deconv.npy", deconv)
    cam = gradcam(model, x64)
    save("gradcam.npy", cam)
    save("guided_gradcam.npy", guided.numpy().astype(np.float32) * cam[:, None, :, :])

    # SmoothGrad with fixed noise.
    torch.manual_seed(12)
    z = torch.randn(6, 2, 3, 32, 32, dtype=torch.float32)
    save("smoothgrad_z.npy", z)
    xs = x64.numpy()
    sigma = [0.15 * (float(xs[i].max()) - float(xs[i].min())) for i in range(2)]
    acc, acc2 = torch.zeros_like(x64), torch.zeros_like(x64)
    for si in range(z.shape[0]):
        noisy = torch.stack([x64[i] + sigma[i] * z[si, i].double() for i in range(2)]).float().double()
        gi, _ = input_grad(model, noisy)
        acc += gi
        acc2 += gi * gi
    mean, sq = acc / z.shape[0], acc2 / z.shape[0]
    save("smoothgrad_mean.npy", mean)
    save("smoothgrad_sq.npy", sq)
    save("vargrad.npy", sq - mean * mean)

    # Integrated gradients.
    black = torch.from_numpy((-MEAN / STD).astype(np.float32)).double()[None, :, None, None].expand_as(x64).clone()
    blur = torch.from_numpy(np.stack([[gaussian_blur(xs[i, c], 2.0) for c in range(3)] for i in range(2)]).astype(np.float32)).double()
    save("baseline_blur.npy", blur)
    igmeta = {}
    runs = [(m, "black", black) for m in ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]]
    runs += [("gausslegendre", "zeros", torch.zeros_like(x64)), ("gausslegendre", "blur", blur)]
    fx = scores(model, x64)
    for method, bname, b in runs:
        attr = integrated_gradients(model, x64, b, method, IG_STEPS)
        name = "ig_%s_%s.npy" % (method, bname)
        save(name, attr)
        fb = scores(model, b)
        tot = attr.sum(dim=(1, 2, 3))
        igmeta[name] = {"f_x": fx.tolist(), "f_baseline": fb.tolist(), "sum_attr": tot.tolist(),
                        "delta": (tot - (fx - fb)).tolist()}
    with open(os.path.join(OUT, "ig.json"), "w") as f:
        json.dump(igmeta, f, indent=1)

    save("occlusion_8x8_s4.npy", occlusion(model, x64, (8, 8), (4, 4)))
    save("occlusion_10x7_s4x5.npy", occlusion(model, x64, (10, 7), (4, 5)))

    # Lucid's Fourier parameterisation.
    rng = np.random.RandomState(13)
    for h, w in [(8, 10), (7, 9)]:
        fh, fw = rfft2d_freqs(h, w).shape
        theta = rng.normal(size=(2, 1, 3, fh, fw)).astype(np.float32) * 0.5
        raw, img = fft_image(theta, h, w)
        save("fft_%dx%d_theta.npy" % (h, w), theta)
        save("fft_%dx%d_raw.npy" % (h, w), raw)
        save("fft_%dx%d_image.npy" % (h, w), img)

    # FlashTorch gradient ascent.
    rng = np.random.RandomState(14)
    noise = np.uint8(rng.uniform(150, 180, (32, 32, 3)))
    x0 = ((noise.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)[None]
    save("actmax_x0.npy", x0)
    save("actmax_x4.npy", flashtorch_ascent(model, f32(x0), 3, 5, 4))

    with open(os.path.join(OUT, "targets.json"), "w") as f:
        json.dump({"targets": TARGETS, "files": files, "torch": torch.__version__, "numpy": np.__version__}, f, indent=1)
    doc = __doc__.strip("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# Saliency / attribution / actmax reference fixtures\n\nGenerated by `scripts/gen_saliency_golden.py`:\n\n```text\n")
        f.write(doc + "\n```\n\nTotal size: %d bytes.\n" % total)
    print("%d gradients agree between float32 and float64" % CHECKED[0])
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
