#!/usr/bin/python3
"""PyTorch side of cnnviz's benchmarks (scripts/bench.sh runs it beside the Go
benchmarks, vizkit/perf_bench_test.go): torchvision's VGG11 (random init,
eval mode; --arch, default vgg11, any torchvision constructor), 224x224
standard-normal input, on the CPU with torch.set_num_threads(--threads,
default: all cores). The CAM layer is features[20] for VGG and layer4 for
ResNet (the same modules as vizkit's DefaultCAMLayer).

Usage: /usr/bin/python3 scripts/bench_torch.py --row ROW [--batch B] [--reps R]
                                               [--threads T] [--device cpu|cuda] [--json]

Rows (one per process, so that the peak RSS is the row's own):
  sgemm        the machine's reference: torch.mm of two 2048x2048 float32
               matrices (17.2 GFLOP); no network is built.
  forward      logits (torch.no_grad)
  gradcam      pytorch-grad-cam's GradCAM(model, [features[20]]) call,
               reimplemented (the library is not installed here): forward with
               a hook that keeps features.20's output, the sum of the top-1
               logits as loss, model.zero_grad(), loss.backward(retain_graph=True)
               with the parameters requiring gradients (so, as in the library,
               PyTorch also computes every weight gradient and backpropagates
               down to features.0), weights = mean of the gradients over
               (h,w), ReLU of the weighted sum, scale_cam_image (min-max and
               cv2.resize to 224x224), aggregate_multi_layers (ReLU, mean,
               scale again). Output: the (N,224,224) map, as vizkit's CAM.
  gradcam_bare the same map, but the gradient comes from
               torch.autograd.grad(score, features.20 output) with frozen
               parameters: PyTorch's bare forward + gradient to the last conv
               block, the fastest way PyTorch can do Grad-CAM.
  saliency     vanilla gradient: d(top-1 logit)/d(input), frozen parameters.
  guided       guided backpropagation (every ReLU replaced by pytorch-grad-cam's
               GuidedBackpropReLU rule: pass where input > 0 and gradient > 0),
               d(top-1 logit)/d(input), frozen parameters.
  scorecam     pytorch-grad-cam's ScoreCAM(model, [features[20]]) call,
               reimplemented: the activations, every one of the 512 channels
               upsampled (UpsamplingBilinear2d, align_corners=True), min-max
               normalised, multiplied into the input; the top-1 logit of all
               512 masked inputs in batches of 16 under no_grad; softmax over
               channels as weights; then as gradcam. Every channel is
               evaluated (the library does not deduplicate).

Output, one line (stable format; with --json a JSON object instead):
  torch <row> b=<B> median_s=<t> min_s=<t> first_s=<t> reps=<R> threads=<T> peak_rss_mb=<m>
median/min are over R timed repetitions after the first call (first_s, which
includes PyTorch's one-time allocations and thread start-up; for scorecam the
first call is a warm-up of one forward and one batch of 16, not a whole
Score-CAM); peak_rss_mb is the process's getrusage maximum resident set size
in MB (10^6 bytes).
"""
import argparse
import json
import os
import resource
import statistics
import time

import cv2
import numpy as np
import torch
import torchvision

ROWS = ("sgemm", "forward", "gradcam", "gradcam_bare", "saliency", "guided", "scorecam")


def scale_cam_image(cam, target_size=None):
    """pytorch-grad-cam's utils/image.py scale_cam_image."""
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(img, target_size)
        result.append(img)
    return np.float32(result)


def finish_cam(weights, acts, size):
    """BaseCAM.get_cam_image + compute_cam_per_layer + aggregate_multi_layers."""
    cam = (weights[:, :, None, None] * acts).sum(axis=1)
    cam = np.maximum(cam, 0)
    scaled = scale_cam_image(cam, size)[:, None, :]
    per_layer = np.maximum(np.concatenate([scaled], axis=1), 0)
    return scale_cam_image(np.mean(per_layer, axis=1))


class Hooked:
    """ActivationsAndGradients for one layer: forward hook + tensor hook."""

    def __init__(self, layer):
        self.acts, self.grads = None, None
        self.handle = layer.register_forward_hook(self._fwd)

    def _fwd(self, _m, _i, out):
        self.acts = out.cpu().detach()
        if out.requires_grad:
            def keep(g):
                self.grads = g.cpu().detach()
            out.register_hook(keep)


class GuidedReLU(torch.autograd.Function):
    """pytorch-grad-cam's GuidedBackpropReLU."""

    @staticmethod
    def forward(ctx, x):
        pos = (x > 0).type_as(x)
        out = torch.addcmul(torch.zeros_like(x), x, pos)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, _ = ctx.saved_tensors
        pos_in = (x > 0).type_as(g)
        pos_g = (g > 0).type_as(g)
        return torch.addcmul(torch.zeros_like(x), torch.addcmul(torch.zeros_like(x), g, pos_in), pos_g)


class GuidedReLUModule(torch.nn.Module):
    def forward(self, x):
        return GuidedReLU.apply(x)


def replace_relus(module):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, GuidedReLUModule())
        else:
            replace_relus(child)


def cam_module(model):
    """The CAM target module: features[20] for VGG, layer4 for ResNet, else the last
    module with a 4-D output (as vizkit's DefaultCAMLayer)."""
    if hasattr(model, "features") and len(model.features) > 20:
        return model.features[20]
    if hasattr(model, "layer4"):
        return model.layer4
    if hasattr(model, "features"):
        return model.features
    raise SystemExit("no CAM module known for this architecture")


def make_row(row, model, x):
    size = (x.shape[3], x.shape[2])
    if row == "sgemm":
        a = torch.randn(2048, 2048)

        def fn():
            return torch.mm(a, a)
        return fn
    feat = cam_module(model)

    def freeze(flag):
        for p in model.parameters():
            p.requires_grad_(not flag)

    if row == "forward":
        freeze(True)

        def fn():
            with torch.no_grad():
                return model(x)
        return fn

    if row == "gradcam":
        freeze(False)  # As in the library: parameters keep requires_grad.
        h = Hooked(feat)

        def fn():
            out = model(x)
            k = np.argmax(out.cpu().data.numpy(), axis=-1)
            model.zero_grad()
            loss = sum(out[i, int(k[i])] for i in range(out.shape[0]))
            loss.backward(retain_graph=True)
            a, g = h.acts.numpy(), h.grads.numpy()
            return finish_cam(np.mean(g, axis=(2, 3)), a, size)
        return fn

    if row == "gradcam_bare":
        freeze(True)
        keep = {}
        feat.register_forward_hook(lambda m, i, o: keep.__setitem__("a", o))

        def fn():
            # The input records the graph; backward stops at features.20.
            out = model(x.clone().requires_grad_(True))
            score = out.gather(1, out.argmax(1, keepdim=True)).sum()
            (g,) = torch.autograd.grad(score, keep["a"])
            a = keep["a"].detach().cpu().numpy()
            return finish_cam(np.mean(g.cpu().numpy(), axis=(2, 3)), a, size)
        return fn

    if row in ("saliency", "guided"):
        freeze(True)
        if row == "guided":
            replace_relus(model)

        def fn():
            xi = x.clone().requires_grad_(True)
            out = model(xi)
            score = out.gather(1, out.argmax(1, keepdim=True)).sum()
            (g,) = torch.autograd.grad(score, xi)
            return g
        return fn

    if row == "scorecam":
        freeze(False)  # The library's first forward runs outside no_grad.
        h = Hooked(feat)

        def fn(batch=16):
            out = model(x)
            k = np.argmax(out.cpu().data.numpy(), axis=-1)
            acts = h.acts.numpy()
            with torch.no_grad():
                up = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(torch.from_numpy(acts).to(x.device))
                flat = up.view(up.size(0), up.size(1), -1)
                maxs = flat.max(dim=-1)[0][:, :, None, None]
                mins = flat.min(dim=-1)[0][:, :, None, None]
                up = (up - mins) / (maxs - mins + 1e-8)
                inputs = x[:, None, :, :] * up[:, :, None, :, :]
                scores = []
                for i, tensor in enumerate(inputs):
                    for j in range(0, tensor.size(0), batch):
                        o = model(tensor[j:j + batch])
                        scores.extend(o[:, int(k[i])].cpu().tolist())
                scores = torch.Tensor(scores).view(acts.shape[0], acts.shape[1])
                weights = torch.nn.Softmax(dim=-1)(scores).numpy()
            return finish_cam(weights, acts, size)

        def warm():
            # Untimed first call: one forward and one batch of 16 (as vizkit's).
            model(x)
            with torch.no_grad():
                model(x[:1].repeat(16, 1, 1, 1))
        fn.warm = warm
        return fn

    raise SystemExit(f"unknown row {row!r}; rows: {', '.join(ROWS)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--row", required=True, choices=ROWS)
    ap.add_argument("--arch", default="vgg11", help="torchvision architecture (default vgg11)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda, to compare with GOMLX_BACKEND=xla:cuda")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.batch < 1 or a.reps < 1 or a.threads < 1:
        raise SystemExit("--batch, --reps and --threads must be ≥ 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = None
    if a.row != "sgemm":
        # torchvision's in-place ReLUs kept, as users run it.
        model = getattr(torchvision.models, a.arch)().eval().to(a.device)
    x = torch.randn(a.batch, 3, 224, 224).to(a.device)
    fn = make_row(a.row, model, x)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    t0 = time.perf_counter()
    getattr(fn, "warm", fn)()
    sync()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # kB → MB (10^6 bytes).
    if a.row == "sgemm":
        res_extra = f" gflops={2 * 2048 ** 3 / statistics.median(ts) / 1e9:.1f}"
    else:
        res_extra = ""
    res = {"side": "torch", "row": a.row, "batch": a.batch, "median_s": statistics.median(ts), "min_s": min(ts),
           "first_s": first, "reps": a.reps, "threads": torch.get_num_threads(), "peak_rss_mb": round(rss),
           "torch": torch.__version__}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"torch {a.row} b={a.batch} median_s={res['median_s']:.4f} min_s={res['min_s']:.4f} "
              f"first_s={first:.4f} reps={a.reps} threads={res['threads']} peak_rss_mb={res['peak_rss_mb']}{res_extra}", flush=True)


if __name__ == "__main__":
    main()
