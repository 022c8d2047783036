#!/usr/bin/python3
"""Writes vizkit/imageio/imagenet_classes.txt: the 1000 ImageNet-1k class names,
one per line, in class-index order (line i+1 = class i), exactly as torchvision
lists them in VGG11_Weights.IMAGENET1K_V1.meta["categories"] (no network needed).

Run from the repository root:  /usr/bin/python3 scripts/gen_imagenet_classes.py
"""
import os
import sys

from torchvision.models import VGG11_Weights

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vizkit", "imageio", "imagenet_classes.txt")


def main():
    names = VGG11_Weights.IMAGENET1K_V1.meta["categories"]
    if len(names) != 1000:
        sys.exit(f"expected 1000 categories, torchvision has {len(names)}")
    for i, n in enumerate(names):
        if not n or "\n" in n or n != n.strip():
            sys.exit(f"category {i} has an unusable name {n!r}")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} names to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
