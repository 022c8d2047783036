#!/usr/bin/python3
"""Generates models/onnx/testdata: small seed-fixed CNNs exported with Debian's
PyTorch 1.13 torch.onnx.export (no onnx Python package needed) and PyTorch
reference outputs the Go tests compare against.

    /usr/bin/python3 scripts/gen_onnx_fixtures.py

Models (random weights, randomised BatchNorm statistics, dynamic batch axis):
  resnet18n.onnx     torchvision ResNet-18 layout (BasicBlock [2,2,2,2]) with widths
                     8/16/32/64, 10 classes, input 3x64x64, opset 13 (Conv+BN fused
                     by the exporter).
  mobilenetv2n.onnx  torchvision mobilenet_v2(width_mult=0.25), 10 classes, input
                     3x64x64, opset 11 (ReLU6 as Clip with min/max inputs).
  tinynet.onnx       a non-torchvision CNN: 1-channel 28x28 input, its own module
                     names, one logit; BatchNormalization kept (TrainingMode.PRESERVE),
                     LeakyRelu, Sigmoid gate, Tanh, Concat, Pad, MaxPool(ceil_mode),
                     AveragePool(padding), view(x.size(0), -1) (Shape→Gather→Unsqueeze→
                     Concat→Reshape), opset 13.
  regnet.onnx        a regression head: 3x32x32 input, ReLU6, softmax attention pooling
                     (Reshape, Softmax, MatMul, Transpose), ReduceMean, one output, opset 16.

Reference file <name>.ref.npz: x (2,C,H,W), logits, input_grad (gradient of the sum over
examples of each example's top-1 logit — logit 0 for one-output models — w.r.t. x), and per
CAM layer L (pytorch-grad-cam's definitions, raw maps before ReLU):
  gradcam_raw/<L> = Σ_c mean_hw(∂y/∂A_c)·A_c        (N,h,w)
  scorecam_raw/<L> = Σ_c softmax_c(y(x·M_c))·A_c   (N,h,w), M_c = A_c upsampled
                     bilinear align_corners=True to (H,W), min-max normalised (+1e-8).
Layer names in refs.json.
"""
import json, os, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "onnx", "testdata")
torch.set_num_threads(2)


class NarrowResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every width divided by 8 (module names unchanged)."""

    def __init__(self, widths=(8, 16, 32, 64), num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, widths[0], 2)
        self.layer2 = self._make_layer(BasicBlock, widths[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, widths[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, widths[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.LeakyReLU(0.1))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.branch_a = nn.Conv2d(6, 4, 3, padding=1)
        self.gate = nn.Conv2d(6, 4, 1)
        self.branch_b = nn.Conv2d(6, 4, 3, stride=1, padding=0)
        self.mix = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.AvgPool2d(3, stride=2, padding=1)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8 * 8 * 8, 1)

    def forward(self, x):
        x = self.pool(self.stem(x))                      # 6x15x15 (ceil_mode)
        a = self.branch_a(x) * torch.sigmoid(self.gate(x))
        b = torch.tanh(F.pad(self.branch_b(x), (1, 1, 1, 1)))
        x = self.mix(torch.cat([a, b], 1))
        x = self.down(x)                                 # 8x8x8
        x = x.view(x.size(0), -1)
        return self.head(self.drop(x))


class RegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU6(),
                                      nn.Conv2d(8, 12, 3, padding=1), nn.ReLU())
        self.attn = nn.Conv2d(12, 1, 1)
        self.out = nn.Linear(24, 1)

    def forward(self, x):
        f = self.features(x)                                        # N,12,16,16
        n, c = f.shape[0], f.shape[1]
        att = torch.softmax(self.attn(f).reshape(n, 1, -1), dim=-1)  # N,1,256
        pooled = torch.matmul(f.reshape(n, c, -1), att.transpose(1, 2)).reshape(n, c)
        avg = f.mean(dim=(2, 3))
        return self.out(torch.cat([pooled, avg], 1))


def randomise(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


def module(model, path):
    m = model
    for a in path.split("."):
        m = m[int(a)] if a.isdigit() else getattr(m, a)
    return m


def forward_with(model, x, layers):
    acts = {}
    hs = [module(model, l).register_forward_hook(lambda mod, i, o, l=l: acts.__setitem__(l, o)) for l in layers]
    y = model(x)
    for h in hs:
        h.remove()
    return y, acts


def target_of(y):
    return y.argmax(1) if y.shape[1] > 1 else torch.zeros(y.shape[0], dtype=torch.long)


def references(model, x, gradcam_layers, scorecam_layer):
    ref = {"x": x.numpy()}
    xg = x.clone().requires_grad_(True)
    y, acts = forward_with(model, xg, gradcam_layers)
    cls = target_of(y)
    for a in acts.values():
        a.retain_grad()
    y.gather(1, cls[:, None]).sum().backward()
    ref["logits"] = y.detach().numpy()
    ref["classes"] = cls.numpy().astype(np.float32)
    ref["input_grad"] = xg.grad.numpy()
    for l, a in acts.items():
        w = a.grad.mean(dim=(2, 3), keepdim=True)
        ref["gradcam_raw/" + l] = (w * a).sum(1).detach().numpy()
    with torch.no_grad():
        _, acts = forward_with(model, x, [scorecam_layer])
        a = acts[scorecam_layer]
        n, c = a.shape[:2]
        up = F.interpolate(a, size=x.shape[2:], mode="bilinear", align_corners=True)
        flat = up.reshape(n, c, -1)
        mn, mx = flat.min(-1)[0][..., None, None], flat.max(-1)[0][..., None, None]
        up = (up - mn) / (mx - mn + 1e-8)
        scores = torch.zeros(n, c)
        for i in range(n):
            masked = x[i:i + 1] * up[i][:, None]          # C_layer, C_in, H, W
            scores[i] = model(masked)[:, cls[i]]
        w = torch.softmax(scores, dim=-1)[..., None, None]
        ref["scorecam_raw/" + scorecam_layer] = (w * a).sum(1).numpy()
    return ref


def export(name, model, shape, opset, training=torch.onnx.TrainingMode.EVAL):
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, torch.zeros(1, *shape), path, opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "n"}, "output": {0: "n"}},
                      training=training)
    model.eval()
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    specs = [
        ("resnet18n", lambda: NarrowResNet(), (3, 64, 64), 13, torch.onnx.TrainingMode.EVAL,
         ["layer4", "layer3.1"], "layer2"),
        ("mobilenetv2n", lambda: torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10), (3, 64, 64), 11,
         torch.onnx.TrainingMode.EVAL, ["features", "features.16.conv.1"], "features.2.conv.0"),
        ("tinynet", TinyNet, (1, 28, 28), 13, torch.onnx.TrainingMode.PRESERVE, ["mix", "stem"], "branch_a"),
        ("regnet", RegNet, (3, 32, 32), 16, torch.onnx.TrainingMode.EVAL, ["features", "features.1"], "features.1"),
    ]
    meta = {}
    for i, (name, make, shape, opset, training, layers, score_layer) in enumerate(specs):
        torch.manual_seed(1000 + i)
        g = torch.Generator().manual_seed(2000 + i)
        model = make()
        with torch.no_grad():
            randomise(model, g)
        model.eval()
        export(name, model, shape, opset, training)
        x = torch.randn(2, *shape, generator=g)
        ref = references(model, x, layers, score_layer)
        np.savez(os.path.join(OUT, name + ".ref.npz"), **ref)
        meta[name] = {"opset": opset, "input": list(shape), "gradcam": layers, "scorecam": score_layer,
                      "num_outputs": int(ref["logits"].shape[1])}
        print(name, "logits", ref["logits"][0][:4], os.path.getsize(os.path.join(OUT, name + ".onnx")), "bytes")
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
