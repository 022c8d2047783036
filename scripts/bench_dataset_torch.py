#!/usr/bin/python3
"""The PyTorch side of scripts/bench_dataset.sh: pytorch-grad-cam's batch loop
over a folder of images, the way its users write it (issues 264, 195, 181).

    /usr/bin/python3 scripts/bench_dataset_torch.py --arch vgg11|resnet50 --images DIR --out DIR
                                                    [--batch-size 8] [--threads N]

For every batch of images (sorted paths; PIL decode, torchvision's
Resize(256), CenterCrop(224), ToTensor, Normalize): pytorch-grad-cam's
GradCAM(model, [target_layer])(x) as reimplemented in scripts/bench_torch.py
(forward hooks, loss.backward() with the parameters requiring gradients,
weights = mean of the gradients, scale_cam_image with cv2.resize), the top-1
class as target, then per image show_cam_on_image (JET, alpha 0.5) written as
a PNG with cv2.imwrite, as the library's README does. Target layers:
features[20] (VGG11; cnnviz's features.20) and layer4 (ResNet-50). Random
weights (torch.manual_seed(0)): throughput does not depend on them.

Prints one line: images, seconds (whole loop, model build excluded),
images/s, peak RSS in MB.
"""

import argparse
import os
import resource
import time

import cv2
import numpy as np
import torch
import torchvision
from PIL import Image

import bench_torch

EXTS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")


def list_images(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in files:
            if f.lower().endswith(EXTS) and not f.startswith("."):
                out.append(os.path.join(d, f))
    return sorted(out)


def show_cam_on_image(img, mask):
    """pytorch-grad-cam's utils/image.py show_cam_on_image (use_rgb=True)."""
    heatmap = cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET)
    heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    heatmap = np.float32(heatmap) / 255
    cam = 0.5 * heatmap + 0.5 * img
    cam = cam / np.max(cam)
    return np.uint8(255 * cam)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="vgg11", choices=("vgg11", "resnet50"))
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.arch)().eval()
    layer = model.features[20] if a.arch == "vgg11" else model.layer4
    hooked = bench_torch.Hooked(layer)
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    paths = list_images(a.images)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    done = 0
    for i in range(0, len(paths), a.batch_size):
        imgs, xs, names = [], [], []
        for p in paths[i:i + a.batch_size]:
            try:
                im = Image.open(p).convert("RGB")
            except Exception:  # noqa: BLE001 - skip unreadable files, as the Go side does
                continue
            x = tf(im)
            xs.append(x)
            rgb = x.numpy().transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
            imgs.append(np.clip(rgb, 0, 1).astype(np.float32))
            names.append(os.path.relpath(p, a.images).replace(os.sep, "_"))
        if not xs:
            continue
        x = torch.stack(xs)
        out = model(x)
        k = np.argmax(out.cpu().data.numpy(), axis=-1)
        model.zero_grad()
        loss = sum(out[j, int(k[j])] for j in range(out.shape[0]))
        loss.backward(retain_graph=True)
        acts, grads = hooked.acts.numpy(), hooked.grads.numpy()
        cams = bench_torch.finish_cam(np.mean(grads, axis=(2, 3)), acts, (224, 224))
        for img, cam, name in zip(imgs, cams, names):
            vis = show_cam_on_image(img, cam)
            cv2.imwrite(os.path.join(a.out, name + ".png"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
        done += len(xs)
    el = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {a.arch} images={done} seconds={el:.2f} img_per_s={done / el:.3f} peak_MB={rss:.0f} "
          f"threads={torch.get_num_threads()} batch={a.batch_size}", flush=True)


if __name__ == "__main__":
    main()
