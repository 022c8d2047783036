#!/usr/bin/python3
"""Generate the PyTorch golden fixtures in testdata/golden_resnet/ for cnnviz's
ResNet family (models/resnet) and AlexNet (models/alexnet).

RE-RUN (needs Debian's python3-torch, python3-torchvision and python3-numpy):

    /usr/bin/python3 scripts/gen_family_golden.py

It deletes and rewrites testdata/golden_resnet/ (README.md included: this text
plus a file listing).  Output is reproducible: fixed seeds,
torch.use_deterministic_algorithms(True), one thread.  Every model is evaluated
in float64 (model.double(), eval mode) and the results are saved as float32.

MODELS (torchvision's own classes, narrowed; module names and state_dict keys
are torchvision's):
  resnet_basic       torchvision.models.resnet.ResNet subclass with BasicBlock,
                     layers [2,2,2,2] (ResNet-18's), base width 8 (conv1 8
                     channels, stages 8/16/32/64), 10 classes.  Its state_dict
                     keys are asserted equal to torchvision's resnet18().
  resnext_bottleneck the same subclass with Bottleneck, layers [1,2,2,2],
                     groups 4, width_per_group 16 (ResNeXt-style grouped 3x3
                     convolutions: widths 8/16/32/64, outputs 32/64/128/256),
                     base width 8, 10 classes.
  alexnet            torchvision.models.AlexNet with every width divided by 8
                     (features 8/24/48/32/32 channels, classifier 1152->64->64->10),
                     same module indices (features.0..12, avgpool (6x6),
                     classifier.0..6 with Dropouts at 0 and 3).
  The subclass only replaces torchvision's hard-coded widths: _make_layer,
  BasicBlock, Bottleneck and forward() are torchvision's.  ReLUs are set to
  inplace=False (same maths) so that module outputs can be kept.

INITIALISATION (torch.manual_seed(seed) before building; seeds 1, 2, 3):
  ResNets: torchvision's own (conv kaiming_normal_ fan_out, fc nn.Linear
  default), then every BatchNorm2d gets weight U[0.5,1.5], bias N(0,0.1),
  running_mean N(0,0.2), running_var U[0.5,2] (torchvision's 1,0,0,1 would make
  BN an identity that tests nothing) and num_batches_tracked = 7.  fc weight
  N(0, 2/in) so that logits depend visibly on the input.
  AlexNet: weights N(0, 2/fan_in) (Kaiming fan-in; PyTorch's defaults gave
  logits ~0.05 that hardly depend on the input), biases N(0,0.05).

INPUTS (torch.manual_seed(10/11), randn): ResNets (2,3,64,48); AlexNet
  (2,3,127,99) (non-square; its last max-pool gives 3x2, so avgpool's 6x6
  adaptive bins overlap).  TARGET: logits[0,3] + logits[1,7].

FILES per model (directory <model>/; all float32 .npy, NCHW):
  input.npy, logits.npy (N,10)
  act_<module>.npy      module outputs (forward hooks; the last call of a module),
                        cloned in the hook: torchvision's blocks then add the
                        shortcut IN PLACE into bn2's (bn3's) output tensor, so a
                        kept reference would show bn + identity, not bn's output.
  grad_input.npy        d target / d input
  grad_<module>.npy     d target / d module output
  guided_input.npy      the input gradient with guided-backprop ReLUs: a custom
                        autograd.Function (grad_in = grad_out * (x > 0) *
                        (grad_out > 0), as pytorch-grad-cam's GuidedBackpropReLU)
                        swapped into EVERY ReLU module, so every application of
                        a ResNet block's shared relu uses it; no hooks.
  gradcam_raw_<module>.npy  pytorch-grad-cam's Grad-CAM before its ReLU:
                        sum_c mean_{h,w}(grad[c]) * A[c]   (N,h,w)
  gradcam_<module>.npy  relu of it.
  input_odd.npy, logits_odd.npy, act_odd_<last cam module>.npy, grad_input_odd.npy:
                        a second, odd-sized input (torch.manual_seed(12)):
                        ResNets (2,3,37,29) and (2,3,19,7), AlexNet (2,3,67,75).
  meta.json             modules recorded, targets, shapes.
torchvision_shapes.json: for every torchvision architecture of the family
  (resnet18 … wide_resnet101_2, alexnet), its state_dict as [name, shape] pairs
  in order and its number of parameters (sum over parameters()), for the Go
  tests of the architecture tables (no weights).
Weight files: <model>.safetensors (F32, no num_batches_tracked) and <model>.pth
(torch.save(state_dict()) with num_batches_tracked int64 tensors).
"""

import json
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "testdata", "golden_resnet")
TARGETS = [3, 7]


class NarrowResNet(ResNet):
    """torchvision's ResNet with base width `base` instead of 64."""

    def __init__(self, block, layers, base, num_classes=10, groups=1, width_per_group=64):
        nn.Module.__init__(self)
        norm = nn.BatchNorm2d
        self._norm_layer = norm
        self.inplanes = base
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm(self.inplanes)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, 2 * base, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * base, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * base, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * base * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def no_inplace(model):
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False


def randomise_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)


def build(name):
    if name == "resnet_basic":
        torch.manual_seed(1)
        m = NarrowResNet(BasicBlock, [2, 2, 2, 2], base=8)
        ref = set(torchvision.models.resnet18().state_dict().keys())
        assert set(m.state_dict().keys()) == ref, "keys differ from torchvision resnet18"
    elif name == "resnext_bottleneck":
        torch.manual_seed(2)
        m = NarrowResNet(Bottleneck, [1, 2, 2, 2], base=8, groups=4, width_per_group=16)
        assert m.layer2[0].conv2.groups == 4 and m.layer1[0].conv2.weight.shape == (8, 2, 3, 3)
    elif name == "alexnet":
        torch.manual_seed(3)
        m = torchvision.models.AlexNet(num_classes=10)
        d = 8
        f = m.features
        f[0] = nn.Conv2d(3, 64 // d, kernel_size=11, stride=4, padding=2)
        f[3] = nn.Conv2d(64 // d, 192 // d, kernel_size=5, padding=2)
        f[6] = nn.Conv2d(192 // d, 384 // d, kernel_size=3, padding=1)
        f[8] = nn.Conv2d(384 // d, 256 // d, kernel_size=3, padding=1)
        f[10] = nn.Conv2d(256 // d, 256 // d, kernel_size=3, padding=1)
        c = m.classifier
        c[1] = nn.Linear(256 // d * 6 * 6, 4096 // 64)
        c[4] = nn.Linear(4096 // 64, 4096 // 64)
        c[6] = nn.Linear(4096 // 64, 10)
        ref = set(torchvision.models.alexnet().state_dict().keys())
        assert set(m.state_dict().keys()) == ref, "keys differ from torchvision alexnet"
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    fan_in = mod.weight[0].numel()
                    mod.weight.normal_(0, (2.0 / fan_in) ** 0.5)
                    mod.bias.normal_(0, 0.05)
    else:
        raise ValueError(name)
    if name != "alexnet":
        randomise_bn(m)
        with torch.no_grad():
            m.fc.weight.normal_(0, (2.0 / m.fc.in_features) ** 0.5)
            m.fc.bias.normal_(0, 0.05)
    no_inplace(m)
    return m.eval()


SPECS = {
    "resnet_basic": dict(
        input=(2, 3, 64, 48), seed=10, odd=(2, 3, 37, 29),
        acts=["conv1", "bn1", "maxpool", "layer1.0.conv1", "layer1.1", "layer2.0.conv2", "layer2.0.downsample",
              "layer2.0.downsample.1", "layer3.1", "layer3", "layer4.0.bn2", "layer4", "avgpool", "fc"],
        grads=["layer2.0.conv2", "layer3", "layer3.1", "layer4"],
        cams=["layer3", "layer4"]),
    "resnext_bottleneck": dict(
        input=(2, 3, 64, 48), seed=10, odd=(2, 3, 19, 7),
        acts=["relu", "maxpool", "layer1.0.conv2", "layer1.0.downsample.0", "layer1.0", "layer2.0.conv2",
              "layer2.0.bn3", "layer3.1", "layer3.1.conv2", "layer4.1.conv3", "layer4", "avgpool", "fc"],
        grads=["layer2.0.conv2", "layer3", "layer3.1", "layer4"],
        cams=["layer3", "layer4"]),
    "alexnet": dict(
        input=(2, 3, 127, 99), seed=11, odd=(2, 3, 67, 75),
        acts=["features.0", "features.2", "features.5", "features.8", "features.10", "features.12", "avgpool",
              "classifier.1", "classifier.4", "classifier.6"],
        grads=["features.8", "features.10", "features.12", "classifier.2"],
        cams=["features.10", "features.12"]),
}


class GuidedReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype) * (g > 0).to(g.dtype)


class GuidedReLU(nn.Module):
    def forward(self, x):
        return GuidedReLUFn.apply(x)


def swap_relus(model):
    for name, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(mod, cname, GuidedReLU())


def target_of(logits):
    return logits[0, TARGETS[0]] + logits[1, TARGETS[1]]


def run(model, x, names):
    mods = dict(model.named_modules())
    outs, vals = {}, {}

    def hook(n, o):
        outs[n] = o
        vals[n] = o.detach().clone()  # torchvision's blocks add the shortcut in place (out += identity) into bn2/bn3's output

    hs = [mods[n].register_forward_hook(lambda m, i, o, n=n: hook(n, o)) for n in names]
    for n in names:
        assert n in mods, n
    x = x.clone().requires_grad_(True)
    logits = model(x)
    for h in hs:
        h.remove()
    ts = [outs[n] for n in names]
    grads = torch.autograd.grad(target_of(logits), [x] + ts)
    # A gradient w.r.t. a tensor modified in place afterwards would be the
    # gradient w.r.t. its new value: keep such modules out of the gradients.
    gmods = {n: g for n, g in zip(names, grads[1:]) if torch.equal(outs[n].detach(), vals[n])}
    return logits, vals, grads[0], gmods


def write_safetensors(path, sd):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            continue
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def save(d, name, t):
    np.save(os.path.join(d, name + ".npy"), t.detach().cpu().numpy().astype(np.float32))


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name, spec in SPECS.items():
        model = build(name)
        sd = model.state_dict()
        torch.save(sd, os.path.join(OUT, name + ".pth"))
        write_safetensors(os.path.join(OUT, name + ".safetensors"), sd)
        torch.manual_seed(spec["seed"])
        x = torch.randn(*spec["input"], dtype=torch.float32)
        d = os.path.join(OUT, name)
        os.makedirs(d)
        save(d, "input", x)
        m64 = build(name).double()
        names = sorted(set(spec["acts"] + spec["grads"] + spec["cams"]))
        logits, acts, gin, gmods = run(m64, x.double(), names)
        save(d, "logits", logits)
        for n in spec["acts"]:
            save(d, "act_" + n, acts[n])
        save(d, "grad_input", gin)
        for n in spec["grads"]:
            save(d, "grad_" + n, gmods[n])
        for n in spec["cams"]:
            w = gmods[n].mean(dim=(2, 3), keepdim=True)
            raw = (w * acts[n]).sum(dim=1)
            save(d, "gradcam_raw_" + n, raw)
            save(d, "gradcam_" + n, raw.clamp(min=0))
        # float32 cross-check: no ReLU/max-pool kink between precisions.
        l32, _, g32, _ = run(build(name), x, [])
        assert torch.allclose(l32.double(), logits, rtol=1e-4, atol=1e-4 * logits.abs().max().item())
        assert (g32.double() - gin).abs().max() <= 1e-4 * gin.abs().max(), name
        guided = build(name).double()
        swap_relus(guided)
        assert not any(isinstance(mm, nn.ReLU) for mm in guided.modules())
        _, _, gg, _ = run(guided, x.double(), [])
        save(d, "guided_input", gg)
        # An odd, non-square input (every stride-2 layer rounds up; AlexNet: 67x75).
        torch.manual_seed(12)
        xo = torch.randn(*spec["odd"], dtype=torch.float32)
        save(d, "input_odd", xo)
        lo, ao, go, _ = run(m64, xo.double(), [spec["cams"][-1]])
        save(d, "logits_odd", lo)
        save(d, "act_odd_" + spec["cams"][-1], ao[spec["cams"][-1]])
        save(d, "grad_input_odd", go)
        meta = dict(model=name, odd=list(spec["odd"]), input=list(spec["input"]), targets=TARGETS, acts=spec["acts"], grads=spec["grads"],
                    cams=spec["cams"], logits=logits.tolist(),
                    shapes={n: list(acts[n].shape) for n in names},
                    torch=torch.__version__, torchvision=torchvision.__version__)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(name, "logits", logits.detach().numpy().round(3).tolist())
    arch_shapes = {}
    for arch in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
                 "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "alexnet"]:
        m = getattr(torchvision.models, arch)()
        arch_shapes[arch] = dict(keys=[[k, list(v.shape)] for k, v in m.state_dict().items()],
                                 params=sum(p.numel() for p in m.parameters()))
        del m
    with open(os.path.join(OUT, "torchvision_shapes.json"), "w") as f:
        json.dump(arch_shapes, f, separators=(",", ":"))
    files = []
    for root, _, fs in os.walk(OUT):
        for f in sorted(fs):
            p = os.path.join(root, f)
            files.append("%-60s %8d" % (os.path.relpath(p, OUT), os.path.getsize(p)))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# ResNet/AlexNet golden fixtures (generated - do not edit)\n\nWritten by `scripts/gen_family_golden.py`;"
                " regenerate with `/usr/bin/python3 scripts/gen_family_golden.py`.\n\n```text\n" + __doc__.strip() +
                "\n```\n\n## Files\n\n```text\n" + "\n".join(sorted(files)) + "\n```\n")


if __name__ == "__main__":
    main()
