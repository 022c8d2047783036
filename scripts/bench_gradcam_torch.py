#!/usr/bin/python3
"""Time Grad-CAM and Score-CAM on full-size VGG11 (random init) at 224x224 in
PyTorch on the CPU: the reference for vizkit/cam_bench_test.go
(BenchmarkCAMGradCAMVGG11, BenchmarkCAMScoreCAMVGG11).

    /usr/bin/python3 scripts/bench_gradcam_torch.py [--gradcam-runs 5] [--scorecam-runs 1] [--threads N]

Both are pytorch-grad-cam's algorithms reimplemented (the library is not
installed here); the definitions live in scripts/bench_torch.py (rows
"gradcam", "gradcam_bare" and "scorecam"), which scripts/bench.sh runs side by
side with the Go benchmarks. This script runs those rows in one process and
prints one line per row in bench_torch.py's format.
"""

import argparse
import os
import statistics
import time

import torch
import torchvision

import bench_torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradcam-runs", type=int, default=5)
    ap.add_argument("--scorecam-runs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, VGG11 random init, 224x224, batch 1, layer features.20")
    for row, runs in (("gradcam", a.gradcam_runs), ("gradcam_bare", a.gradcam_runs), ("scorecam", a.scorecam_runs)):
        if runs < 1:
            continue
        model = torchvision.models.vgg11().eval()  # Fresh model: each row sets its own hooks.
        fn = bench_torch.make_row(row, model, x)
        t0 = time.perf_counter()
        getattr(fn, "warm", fn)()
        first = time.perf_counter() - t0
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"torch {row} b=1 median_s={statistics.median(ts):.4f} min_s={min(ts):.4f} first_s={first:.4f} reps={runs}", flush=True)


if __name__ == "__main__":
    main()
