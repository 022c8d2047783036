#!/usr/bin/python3
"""Time Grad-CAM and Score-CAM on full-size VGG11 (random init) at 224x224 in
PyTorch, CPU, 2 threads: the reference for vizkit/cam_bench_test.go
(BenchmarkCAMGradCAMVGG11, BenchmarkCAMScoreCAMVGG11).

    /usr/bin/python3 scripts/bench_gradcam_torch.py [--scorecam-runs 1] [--gradcam-runs 5]

Both methods are reimplemented with pytorch-grad-cam's algorithm (the library
is not installed): a forward hook on features[20] (the default CAM layer),
the top-1 logit as target;
  Grad-CAM : backward, weights = mean(grads, (2,3)), weighted sum, ReLU,
             scale_cam_image ((x-min)/(1e-7+max), cv2.resize to 224x224).
  Score-CAM: no backward; every one of the 512 channels is upsampled
             (UpsamplingBilinear2d = align_corners=True), min-max normalised
             ((u-min)/(max-min+1e-8)), multiplied into the input; the target
             logit of the 512 masked inputs in batches of 16; softmax over
             channels as weights; then as Grad-CAM.
Timings exclude model construction and include one warm-up run (not timed).
"""

import argparse
import statistics
import time

import cv2
import numpy as np
import torch
import torchvision

torch.set_num_threads(2)


def scale_cam_image(cam, size):
    out = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        out.append(cv2.resize(np.float32(img), size))
    return np.float32(out)


class Hooked:
    def __init__(self, model, layer):
        self.model, self.acts, self.grads = model, None, None
        layer.register_forward_hook(self._fwd)

    def _fwd(self, _m, _i, out):
        self.acts = out
        if out.requires_grad:
            out.register_hook(lambda g: setattr(self, "grads", g))


def gradcam(h, x):
    out = h.model(x)
    k = out.argmax(1)
    h.model.zero_grad()
    out[0, k[0]].backward()
    a = h.acts.detach().numpy()
    g = h.grads.numpy()
    w = g.mean(axis=(2, 3))
    cam = np.maximum((w[:, :, None, None] * a).sum(axis=1), 0)
    return scale_cam_image(cam, (x.shape[3], x.shape[2]))


def scorecam(h, x, batch=16):
    with torch.no_grad():
        out = h.model(x)
        k = int(out.argmax(1)[0])
        a = h.acts
        up = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(a)
        mx = up.view(1, up.size(1), -1).max(dim=-1)[0][:, :, None, None]
        mn = up.view(1, up.size(1), -1).min(dim=-1)[0][:, :, None, None]
        up = (up - mn) / (mx - mn + 1e-8)
        inputs = x[:, None] * up[:, :, None]
        scores = []
        for i in range(0, inputs.size(1), batch):
            scores.extend(h.model(inputs[0, i:i + batch])[:, k].tolist())
        w = torch.softmax(torch.tensor(scores), dim=-1).numpy()[None]
        cam = np.maximum((w[:, :, None, None] * a.numpy()).sum(axis=1), 0)
        return scale_cam_image(cam, (x.shape[3], x.shape[2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradcam-runs", type=int, default=5)
    ap.add_argument("--scorecam-runs", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.vgg11().eval()
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    h = Hooked(model, model.features[20])
    x = torch.randn(1, 3, 224, 224)
    print("torch %s, %d threads, VGG11 random init, 224x224, batch 1, layer features.20" % (torch.__version__, torch.get_num_threads()))
    gradcam(h, x)  # warm-up
    t = []
    for _ in range(args.gradcam_runs):
        t0 = time.perf_counter()
        gradcam(h, x)
        t.append(time.perf_counter() - t0)
    print("Grad-CAM : median %.3f s over %d runs (min %.3f)" % (statistics.median(t), len(t), min(t)))
    if args.scorecam_runs < 1:
        return
    with torch.no_grad():
        model(x.repeat(16, 1, 1, 1))  # warm-up of the batch-16 path
    t = []
    for _ in range(args.scorecam_runs):
        t0 = time.perf_counter()
        scorecam(h, x)
        t.append(time.perf_counter() - t0)
    print("Score-CAM: median %.3f s over %d runs (512 masked inputs, batch 16)" % (statistics.median(t), len(t)))


if __name__ == "__main__":
    main()
