#!/usr/bin/env python3
"""PyTorch side of cnnviz's benchmarks: the same work as vizkit's Go benchmarks,
on torchvision's VGG11 (random init, eval mode), 224x224, on the CPU.

Usage: /usr/bin/python3 scripts/bench_torch.py [--threads N] [--batch B] [--reps R]

Rows (median seconds over R repetitions after one warm-up):
  forward         logits
  grad_last_conv  forward + gradient of the top-1 logit w.r.t. features.20
                  (Grad-CAM's engine work; no weight gradients)
  input_grad      forward + gradient of the top-1 logit w.r.t. the input (saliency)
Prints one line per row: "torch <row> batch=<B> median_s=<t> min_s=<t>", and peak RSS.
"""
import argparse
import resource
import statistics
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.vgg11().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(a.batch, 3, 224, 224)

    def forward():
        with torch.no_grad():
            model(x)

    def grad_last_conv():
        acts = {}
        h = model.features[20].register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
        try:
            # The input records the graph (as in pytorch-grad-cam); backward stops at features.20.
            logits = model(x.clone().requires_grad_(True))
            score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
            torch.autograd.grad(score, acts["a"])
        finally:
            h.remove()

    def input_grad():
        xi = x.clone().requires_grad_(True)
        logits = model(xi)
        score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
        torch.autograd.grad(score, xi)

    for name, fn in [("forward", forward), ("grad_last_conv", grad_last_conv), ("input_grad", input_grad)]:
        fn()
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"torch {name} batch={a.batch} median_s={statistics.median(ts):.4f} min_s={min(ts):.4f}", flush=True)
    print(f"torch peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
