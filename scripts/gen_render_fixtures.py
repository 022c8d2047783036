#!/usr/bin/env python3
"""Generate vizkit/render/testdata/render_fixtures.json: reference values for the
render package tests, computed with the Python tools cnnviz is compared against.

Made with Debian bookworm's python3-torch 1.13.1 (torch.__version__ says 1.13.0a0), python3-opencv 4.6.0,
python3-matplotlib 3.6.3 and python3-numpy 1.24.2:
  apt-get install -y --no-install-recommends python3-torch python3-opencv python3-matplotlib

Sections:
  resize    torch.nn.functional.interpolate (bilinear, both align_corners; nearest) and
            cv2.resize (INTER_LINEAR, INTER_NEAREST) of one 3x4 float32 map.
  overlay   pytorch-grad-cam's show_cam_on_image (copied verbatim below, grad-cam 1.5.x)
            on a tiny uint8 RGB image, with the mask resized by cv2.resize as grad-cam's
            scale_cam_image does when the sizes differ.
  scale_cam pytorch-grad-cam's scale_cam_image (without resize).
  colorize  matplotlib colormap(Normalize(vmin, vmax)(x)) rounded to uint8.

All arrays are flattened row-major; images are H x W x 3 RGB. Usage (repo root):
  /usr/bin/python3 scripts/gen_render_fixtures.py
"""
import json
import os

import cv2
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import Normalize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vizkit", "render", "testdata",
                   "render_fixtures.json")


def show_cam_on_image(img, mask, use_rgb=False, colormap=cv2.COLORMAP_JET, image_weight=0.5):
    """pytorch_grad_cam.utils.image.show_cam_on_image, verbatim."""
    heatmap = cv2.applyColorMap(np.uint8(255 * mask), colormap)
    if use_rgb:
        heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    heatmap = np.float32(heatmap) / 255

    if np.max(img) > 1:
        raise Exception("The input image should np.float32 in the range [0, 1]")

    if image_weight < 0 or image_weight > 1:
        raise Exception(f"image_weight should be in the range [0, 1]. Got: {image_weight}")

    cam = (1 - image_weight) * heatmap + image_weight * img
    cam = cam / np.max(cam)
    return np.uint8(255 * cam)


def scale_cam_image(cam, target_size=None):
    """pytorch_grad_cam.utils.image.scale_cam_image for one 2-D map."""
    img = cam - np.min(cam)
    img = img / (1e-7 + np.max(img))
    if target_size is not None:
        img = cv2.resize(img, target_size)
    return np.float32(img)


def flat(a):
    return [float(x) for x in np.asarray(a).ravel()]


def ints(a):
    return [int(x) for x in np.asarray(a).ravel()]


def main():
    rng = np.random.default_rng(20261101)
    fx = {"generator": "scripts/gen_render_fixtures.py",
          "versions": {"torch": torch.__version__, "opencv": cv2.__version__,
                       "matplotlib": matplotlib.__version__, "numpy": np.__version__}}

    # --- resize
    src = rng.normal(size=(3, 4)).astype(np.float32)
    t = torch.from_numpy(src)[None, None]
    cases = []
    for (h, w) in [(5, 7), (6, 8), (2, 3), (7, 9), (1, 1), (3, 4), (1, 5), (9, 2)]:
        for ac in (False, True):
            out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=ac)[0, 0].numpy()
            cases.append({"source": f"torch interpolate bilinear align_corners={ac}", "h": h, "w": w,
                          "mode": "bilinear", "align_corners": ac, "out": flat(out)})
        out = F.interpolate(t, size=(h, w), mode="nearest")[0, 0].numpy()
        cases.append({"source": "torch interpolate nearest", "h": h, "w": w, "mode": "nearest",
                      "align_corners": False, "out": flat(out)})
        out = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)
        cases.append({"source": "cv2.resize INTER_LINEAR", "h": h, "w": w, "mode": "bilinear",
                      "align_corners": False, "out": flat(out)})
        out = cv2.resize(src, (w, h), interpolation=cv2.INTER_NEAREST)
        cases.append({"source": "cv2.resize INTER_NEAREST", "h": h, "w": w, "mode": "nearest",
                      "align_corners": False, "out": flat(out)})
    fx["resize"] = {"h": 3, "w": 4, "in": flat(src), "cases": cases}

    # --- overlay
    H, W = 6, 7
    img_u8 = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    img_u8[0, 0] = (255, 255, 255)
    img = np.float32(img_u8) / 255
    ov = []
    mask = rng.random(size=(H, W)).astype(np.float32)
    mask[0, 0], mask[0, 1], mask[0, 2], mask[0, 3] = 0.0, 1.0, 0.5, 0.999
    for iw in (0.5, 0.3, 1.0, 0.0):
        ov.append({"name": f"full-size mask, image_weight={iw}", "image_weight": iw, "mask_h": H, "mask_w": W,
                   "mask": flat(mask), "out": ints(show_cam_on_image(img, mask, use_rgb=True, image_weight=iw))})
    raw = rng.normal(size=(3, 4)).astype(np.float32)
    small = np.float32(scale_cam_image(raw))
    resized = np.float32(cv2.resize(small, (W, H)))
    ov.append({"name": "3x4 mask resized by cv2.resize INTER_LINEAR, image_weight=0.5", "image_weight": 0.5,
               "mask_h": 3, "mask_w": 4, "mask": flat(small),
               "out": ints(show_cam_on_image(img, resized, use_rgb=True, image_weight=0.5))})
    fx["overlay"] = {"h": H, "w": W, "image": ints(img_u8), "cases": ov}

    # --- scale_cam
    cam = rng.normal(loc=2.0, size=(3, 5)).astype(np.float32)
    fx["scale_cam"] = {"h": 3, "w": 5, "in": flat(cam), "out": flat(scale_cam_image(cam))}

    # --- colorize
    m = rng.normal(size=(4, 5)).astype(np.float32)
    col = []
    for name, vmin, vmax in [("viridis", None, None), ("magma", -1.0, 1.5), ("RdBu_r", -2.5, 2.5),
                             ("gray", None, None), ("plasma", 0.0, 1.0)]:
        norm = Normalize(vmin=vmin, vmax=vmax)
        rgba = matplotlib.colormaps[name](norm(m))
        col.append({"cmap": name, "auto": vmin is None, "min": float(norm.vmin), "max": float(norm.vmax),
                    "out": ints(np.rint(np.asarray(rgba)[..., :3] * 255))})
    fx["colorize"] = {"h": 4, "w": 5, "in": flat(m), "cases": col}

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fx, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
