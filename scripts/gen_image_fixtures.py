#!/usr/bin/python3
"""Writes the golden fixtures of vizkit/imageio (directory vizkit/imageio/testdata/).

Run from anywhere with Debian's Python (python3-torchvision 0.14, python3-pil 9.4):
    /usr/bin/python3 scripts/gen_image_fixtures.py

What it writes (all small; the Go tests read fixtures.json to know the cases):
  photo.png            120x80 crop of testdata/images/chelsea.jpg as PIL decodes it (lossless
                       PNG, so Go and PIL start from identical pixels)
  synthetic.png        37x23 seeded noise + gradients, values 0..255 (worst case for rounding)
  tall.png             20x45 seeded noise (portrait: the w <= h branch of Resize(int))
  case_*.npy           float32 CHW output of torchvision's Resize -> CenterCrop -> ToTensor ->
                       Normalize(ImageNet) on one of the inputs above (see fixtures.json)
  chelsea_default.png  Resize(256) + CenterCrop(224) of ../../testdata/images/chelsea.jpg as PIL
                       (libjpeg) decodes it: the uint8 image the default transform normalises
                       (a PNG instead of a 600 KB float array)
  orient_{1..8}.jpg    48x32 six-colour pattern stored rotated/mirrored with EXIF Orientation
                       1..8, so that applying the orientation gives the same upright image
  gray.png, gray_rgb.png           mode L and PIL's convert("RGB") of it
  palette.png, palette_rgb.png     mode P and PIL's convert("RGB") of it
  rgba.png, rgba_on_white.png      RGBA with varying alpha, and PIL's alpha_composite over white
  anim.gif             2-frame GIF; frame 0: left half red, right half transparent; frame 1 blue
  synthetic.webp, synthetic.bmp    lossless WebP and BMP copies of synthetic.png
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "vizkit", "imageio", "testdata")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
FILTERS = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
           "nearest": InterpolationMode.NEAREST}


def path(name):
    return os.path.join(OUT, name)


def make_inputs():
    photo = Image.open(os.path.join(ROOT, "testdata", "images", "chelsea.jpg")).convert("RGB")
    photo = photo.crop((75, 45, 195, 125))  # 120x80: the cat's eye and fur
    photo.save(path("photo.png"), optimize=True)

    rng = np.random.default_rng(20261101)
    h, w = 23, 37
    yy, xx = np.mgrid[0:h, 0:w]
    grad = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), (xx + yy) * 255 / (w + h - 2)], -1)
    noise = rng.integers(0, 256, size=(h, w, 3))
    syn = np.where(rng.random((h, w, 1)) < 0.5, noise, grad).round().clip(0, 255).astype(np.uint8)
    syn[0, 0] = (0, 0, 0)
    syn[0, 1] = (255, 255, 255)
    Image.fromarray(syn, "RGB").save(path("synthetic.png"))
    Image.fromarray(syn, "RGB").save(path("synthetic.webp"), lossless=True)
    Image.fromarray(syn, "RGB").save(path("synthetic.bmp"))

    tall = rng.integers(0, 256, size=(45, 20, 3)).astype(np.uint8)
    Image.fromarray(tall, "RGB").save(path("tall.png"))


def tv_transform(resize, crop, flt):
    steps = []
    if resize is not None:
        steps.append(transforms.Resize(resize, interpolation=FILTERS[flt]))
    if crop is not None:
        steps.append(transforms.CenterCrop(crop))
    return transforms.Compose(steps)


def make_cases():
    # (name, input, resize: int (short side) | [h, w] | None, crop: [h, w] | None, filter)
    cases = [
        ("photo_bilinear", "photo.png", 32, [28, 28], "bilinear"),
        ("photo_bicubic", "photo.png", 32, [28, 28], "bicubic"),
        ("photo_nearest", "photo.png", 32, [28, 28], "nearest"),
        ("photo_down24", "photo.png", 24, None, "bilinear"),  # 3.3x downscale: wide antialias kernel
        ("photo_down24_bicubic", "photo.png", 24, None, "bicubic"),
        ("photo_resize_hw", "photo.png", [30, 40], None, "bilinear"),
        ("photo_crop_odd", "photo.png", None, [21, 27], "bilinear"),  # crop only, odd offsets
        ("synthetic_only_w", "synthetic.png", [23, 30], None, "bilinear"),  # horizontal pass only
        ("synthetic_only_h", "synthetic.png", [31, 37], None, "bicubic"),  # vertical pass only
        ("synthetic_up", "synthetic.png", 40, [32, 32], "bilinear"),  # upscale
        ("synthetic_up_bicubic", "synthetic.png", 40, [32, 32], "bicubic"),  # upscale, clipping
        ("synthetic_up_nearest", "synthetic.png", 30, None, "nearest"),
        ("synthetic_pad", "synthetic.png", 12, [20, 20], "bilinear"),  # crop > image: zero padding
        ("synthetic_pad_odd", "synthetic.png", None, [30, 20], "bilinear"),  # pad rows, crop cols
        ("tall_bilinear", "tall.png", 33, [30, 25], "bilinear"),  # portrait, round-half-even offsets
        ("tall_down", "tall.png", 9, None, "bicubic"),
    ]
    norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    meta = []
    for name, src, resize, crop, flt in cases:
        img = Image.open(path(src)).convert("RGB")
        out = tv_transform(resize, crop, flt)(img)
        t = norm(out).numpy().astype(np.float32)
        np.save(path(f"case_{name}.npy"), t)
        meta.append({
            "name": name, "input": src, "filter": flt,
            "resize_short": resize if isinstance(resize, int) else 0,
            "resize_hw": resize if isinstance(resize, list) else [0, 0],
            "crop_hw": crop or [0, 0],
            "output": f"case_{name}.npy", "shape": list(t.shape),
        })
    with open(path("fixtures.json"), "w") as f:
        json.dump({"mean": MEAN, "std": STD, "cases": meta}, f, indent=1)

    default = tv_transform(256, [224, 224], "bilinear")
    chelsea = Image.open(os.path.join(ROOT, "testdata", "images", "chelsea.jpg")).convert("RGB")
    default(chelsea).save(path("chelsea_default.png"), optimize=True)


# EXIF orientation o -> the transpose that produces the stored image from the upright one
# (the inverse of what ImageOps.exif_transpose applies).
STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
BLOCK_COLOURS = [(230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 30), (20, 220, 220), (220, 20, 220)]


def make_orientation():
    up = Image.new("RGB", (48, 32))
    for i, c in enumerate(BLOCK_COLOURS):
        x, y = (i % 3) * 16, (i // 3) * 16
        up.paste(c, (x, y, x + 16, y + 16))
    for o in range(1, 9):
        stored = up.transpose(STORE[o]) if o in STORE else up.copy()
        exif = Image.Exif()
        exif[0x0112] = o
        p = path(f"orient_{o}.jpg")
        stored.save(p, quality=95, subsampling=0, exif=exif.tobytes())
        back = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        diff = np.abs(np.asarray(back, np.int16) - np.asarray(up, np.int16)).max()
        if back.size != up.size or diff > 40:
            sys.exit(f"orientation {o}: PIL's exif_transpose does not give the upright image (max diff {diff})")


def make_modes():
    rng = np.random.default_rng(7)
    g = Image.fromarray(rng.integers(0, 256, size=(9, 13)).astype(np.uint8), "L")
    g.save(path("gray.png"))
    g.convert("RGB").save(path("gray_rgb.png"))

    p = Image.open(path("photo.png")).resize((30, 20), Image.BILINEAR).quantize(colors=16)
    p.save(path("palette.png"))
    p.convert("RGB").save(path("palette_rgb.png"))

    h, w = 12, 16
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, size=(h, w, 3))
    rgba[..., 3] = np.linspace(0, 255, w).round().astype(np.uint8)[None, :]
    im = Image.fromarray(rgba, "RGBA")
    im.save(path("rgba.png"))
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    Image.alpha_composite(white, im).convert("RGB").save(path("rgba_on_white.png"))

    pal = [255, 255, 255, 230, 20, 20, 20, 20, 230] + [0] * (256 - 3) * 3
    f0 = Image.new("P", (8, 6), 0)
    f0.putpalette(pal)
    f0.paste(1, (0, 0, 4, 6))
    f1 = Image.new("P", (8, 6), 2)
    f1.putpalette(pal)
    f0.save(path("anim.gif"), save_all=True, append_images=[f1], transparency=0, duration=100,
            loop=0, optimize=False, disposal=2)
    chk = Image.open(path("anim.gif"))
    first = Image.alpha_composite(Image.new("RGBA", chk.size, (255, 255, 255, 255)), chk.convert("RGBA"))
    if first.getpixel((1, 1))[:3] != (230, 20, 20) or first.getpixel((6, 1))[:3] != (255, 255, 255) \
            or getattr(chk, "n_frames", 1) != 2:
        sys.exit("anim.gif: PIL does not read back the intended first frame")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    make_inputs()
    make_cases()
    make_orientation()
    make_modes()
    total = sum(os.path.getsize(path(f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, in {OUT}")
    if total > 300_000:
        sys.exit(f"fixtures take {total} bytes, over the 300 KB budget")


if __name__ == "__main__":
    main()
