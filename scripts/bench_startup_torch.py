#!/usr/bin/python3
"""Whole-process PyTorch reference for cnnviz's start-up benchmark (the
"startup" rows of scripts/bench.sh): what `vizkit explain --weights FILE
--image IMG --methods gradcam --out DIR` does, written as a user would in
PyTorch. One process:

    import torch + torchvision; build torchvision.models.<arch>() (its own
    random initialisation, as every user script pays it); torch.load the .pth
    state_dict (map_location="cpu") and load_state_dict; read the image with
    PIL, Resize(256) + CenterCrop(224) + ToTensor + Normalize(ImageNet);
    pytorch-grad-cam's GradCAM call on the CAM module (features[20] for VGG,
    layer4 for ResNet; reimplemented in bench_torch.make_row("gradcam"), the
    library is not installed here); write the map as .npy, a JET overlay PNG
    (cv2.applyColorMap) and the input PNG.

    /usr/bin/python3 scripts/bench_startup_torch.py --weights W.pth --image IMG --out DIR [--arch vgg11] [--threads N]

With --make-weights DIR it instead writes DIR/<arch>.pth and
DIR/<arch>.safetensors: the same torchvision state_dict (random init,
torch.manual_seed(0)) in both formats, F32 (num_batches_tracked I64), for the
two sides to load the same weights.
"""
import argparse
import json
import os
import struct
import sys

import torch
import torchvision


def write_safetensors(path, sd):
    """The safetensors format, streamed (tensors in state_dict order)."""
    header, off = {}, 0
    dt = {torch.float32: "F32", torch.int64: "I64"}
    for name, t in sd.items():
        n = t.numel() * t.element_size()
        header[name] = {"dtype": dt[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in sd.values():
            f.write(t.contiguous().numpy().tobytes())  # Little-endian host (x86-64, arm64).
    os.replace(path + ".tmp", path)


def make_weights(arch, out):
    assert sys.byteorder == "little"
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    sd = getattr(torchvision.models, arch)().state_dict()
    torch.save(sd, os.path.join(out, arch + ".pth"))
    write_safetensors(os.path.join(out, arch + ".safetensors"), sd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="vgg11")
    ap.add_argument("--weights")
    ap.add_argument("--image")
    ap.add_argument("--out")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--make-weights", metavar="DIR")
    a = ap.parse_args()
    if a.make_weights:
        make_weights(a.arch, a.make_weights)
        return
    if not (a.weights and a.image and a.out):
        raise SystemExit("--weights, --image and --out are required")
    import cv2
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_torch

    torch.set_num_threads(a.threads)
    model = getattr(torchvision.models, a.arch)()
    model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    model.eval()
    img = Image.open(a.image).convert("RGB")
    pre = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                              transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    x = pre(img)[None]
    cam = bench_torch.make_row("gradcam", model, x)()[0]
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "cam_gradcam.npy"), cam)
    rgb = np.asarray(transforms.CenterCrop(224)(transforms.Resize(256)(img)), dtype=np.float32) / 255
    heat = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * cam), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB) / 255
    over = (heat + rgb) / np.max(heat + rgb)  # pytorch-grad-cam's show_cam_on_image
    cv2.imwrite(os.path.join(a.out, "cam_gradcam.png"), cv2.cvtColor(np.uint8(255 * over), cv2.COLOR_RGB2BGR))
    cv2.imwrite(os.path.join(a.out, "input.png"), cv2.cvtColor(np.uint8(255 * rgb), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
