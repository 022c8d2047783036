#!/usr/bin/python3
"""Golden fixtures for cnnviz's DenseNet and MobileNet-V2 builders (testdata/golden_dense/).

RE-RUN (Debian's python3-torch 1.13 + python3-torchvision 0.14, no pip):

    /usr/bin/python3 scripts/gen_family_golden_dense.py

The script deletes and rewrites testdata/golden_dense/ completely. Fixed seeds,
deterministic algorithms, one thread: the output is reproducible.

MODELS (torchvision's own classes, so module paths and state_dict keys are
torchvision's exactly):
  tinydensenet   torchvision.models.DenseNet(growth_rate=8, block_config=(2,2,2,2),
                 num_init_features=16, bn_size=2, num_classes=10)
  tinymobilenet  torchvision.models.MobileNetV2(width_mult=0.25, num_classes=10)
                 (torchvision's 17-block inverted_residual_setting; channels
                 rounded to multiples of 8), with features.18 narrowed to
                 80 -> 160 channels and classifier.1 to 160 -> 10 (torchvision
                 keeps last_channel 1280 for width_mult < 1; 160 keeps the files small)
Every BatchNorm gets random affine terms (gamma in [0.5,1.5], beta ~ N(0, 0.2²))
and running statistics measured on random images in train mode, then perturbed
(mean += 0.1·σ·N(0,1), var *= U(0.7,1.3)), so activations stay alive in depth; the classifiers' weights are redrawn with
std 0.1 so that logits are not tiny. Weights are saved as
  <model>.pth           torch.save(state_dict) (num_batches_tracked int64 included)
  <model>.safetensors   float32 tensors only
  <model>_oldkeys.pth   (DenseNet only) the state dict with torchvision's published
                        old-style keys ("denselayer1.norm.1.weight")

INPUTS (N,C,H,W float32, seed-fixed normal; redrawn until every ReLU/ReLU6
input is at least 1e-5 away from a kink, so that float32 rounding cannot flip a
gradient mask):
  DenseNet: input_a [2,3,96,96] (batch of two), input_b [1,3,112,80] (non-square)
  MobileNet-V2: input_a [2,3,64,64], input_b [1,3,96,64]

RECORDED per model and input (under <model>/<input>/, .npy float32, NCHW):
  logits.npy
  act_<module>.npy        module outputs (forward hooks storing a clone:
                          the module's own output, before any later in-place op)
  grad_<module>.npy       d(sum_n logits[n, TARGET]) / d(module output)
  grad_input.npy          d(sum_n logits[n, TARGET]) / d(input)
  guided_input.npy        the same with every ReLU/ReLU6 (and DenseNet's functional
                          ReLU after `features`) replaced by the guided rule:
                          forward as usual; backward passes grad.clamp(min=0) where
                          the forward derivative is nonzero (0<x, or 0<x<6)
  gradcam_<module>.npy    pytorch-grad-cam's Grad-CAM definition at a module:
                          w[n,c] = mean_{h,w} grad[n,c]; cam = relu(sum_c w·A) [N,H,W]
                          with A the module's own output.
  gradcam_pgc_features.norm5.npy (DenseNet) the same as pytorch-grad-cam computes it
                          on CPU: torchvision's DenseNet.forward runs
                          F.relu(features, inplace=True), which overwrites the
                          tensor that pytorch-grad-cam's forward hook stored for
                          features.norm5, so its A is relu(norm5) (the gradient is
                          still the one w.r.t. norm5's output). The script checks
                          this claim on the stock model (stored hook output ==
                          relu(clone)).
Computations use the modules with inplace=False (so that tensor hooks see the
honest values); the stock in-place model is run too and must give the same logits.
"""
import json
import os
import shutil
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "golden_dense")
TARGET = 3

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name, t in tensors:
        b = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4")).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def randomise(model, seed, size):
    """Random BN affine terms; running statistics measured on random images
    (so that activations stay healthy through the depth), then perturbed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)
                m.reset_running_stats()
                m.momentum = None
        model.train()
        for _ in range(4):
            model(torch.randn(4, 3, size, size, generator=g))
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.momentum = 0.1
                m.running_mean.add_(torch.randn(c, generator=g) * 0.1 * m.running_var.sqrt())
                m.running_var.mul_(torch.rand(c, generator=g) * 0.6 + 0.7)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.1)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, top):
        ctx.save_for_backward(x)
        ctx.top = top
        return x.clamp(min=0) if top is None else x.clamp(0, top)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = (x > 0) if ctx.top is None else ((x > 0) & (x < ctx.top))
        return g.clamp(min=0) * d.to(g.dtype), None


class GuidedModule(nn.Module):
    def __init__(self, top):
        super().__init__()
        self.top = top

    def forward(self, x):
        return GuidedReLU.apply(x, self.top)


def set_inplace(model, flag):
    for m in model.modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6)):
            m.inplace = flag


def replace_guided(module):
    for name, ch in module.named_children():
        if isinstance(ch, nn.ReLU6):
            setattr(module, name, GuidedModule(6.0))
        elif isinstance(ch, nn.ReLU):
            setattr(module, name, GuidedModule(None))
        else:
            replace_guided(ch)


def forward(model, x, guided=False):
    """The model's forward with its functional parts written out (no in-place)."""
    if isinstance(model, torchvision.models.DenseNet):
        f = model.features(x)
        f = GuidedReLU.apply(f, None) if guided else F.relu(f)
        f = torch.flatten(F.adaptive_avg_pool2d(f, (1, 1)), 1)
        return model.classifier(f)
    return model(x)


def run(model, x, taps, grads, cams):
    mods = dict(model.named_modules())
    acts, outs = {}, {}
    handles = []
    for name in sorted(set(taps) | set(grads) | set(cams)):
        def hook(_m, _i, out, name=name):
            acts[name] = out.detach().clone()
            if name in grads or name in cams:
                out.retain_grad()
                outs[name] = out
        handles.append(mods[name].register_forward_hook(hook))
    xi = x.clone().requires_grad_(True)
    logits = forward(model, xi)
    logits[:, TARGET].sum().backward()
    for h in handles:
        h.remove()
    res = {"logits": logits.detach(), "grad_input": xi.grad.detach()}
    for n in taps:
        res["act_" + n] = acts[n]
    for n in grads:
        res["grad_" + n] = outs[n].grad.detach()
    for n in cams:
        a, g = acts[n], outs[n].grad.detach()
        w = g.mean(dim=(2, 3), keepdim=True)
        res["gradcam_" + n] = F.relu((w * a).sum(dim=1))
        if n == "features.norm5":
            res["gradcam_pgc_" + n] = F.relu((w * F.relu(a)).sum(dim=1))
            assert not torch.allclose(res["gradcam_pgc_" + n], res["gradcam_" + n], rtol=1e-2), "pgc == honest"
    return res


def guided_input(model, x):
    import copy
    gm = copy.deepcopy(model)
    replace_guided(gm)
    xi = x.clone().requires_grad_(True)
    forward(gm, xi, guided=True)[:, TARGET].sum().backward()
    return xi.grad.detach()


MARGIN = 1e-5


def relu_margin(model, x):
    """Smallest distance of any ReLU/ReLU6 input (and DenseNet's functional
    ReLU input) to a kink (0, 6): inputs whose margin is below float32 noise
    would make gradient masks (hence gradients) differ by rounding alone."""
    ms = []
    hs = []
    for mod in model.modules():
        if isinstance(mod, nn.ReLU6):
            hs.append(mod.register_forward_hook(lambda _m, i, _o: ms.append(torch.minimum(i[0].abs(), (i[0] - 6).abs()).min().item())))
        elif isinstance(mod, nn.ReLU):
            hs.append(mod.register_forward_hook(lambda _m, i, _o: ms.append(i[0].abs().min().item())))
    if isinstance(model, torchvision.models.DenseNet):
        hs.append(model.features.register_forward_hook(lambda _m, _i, o: ms.append(o.abs().min().item())))
    with torch.no_grad():
        forward(model, x)
    for h in hs:
        h.remove()
    return min(ms)


def check_inplace_claim(model, x):
    """Stock model (in-place ReLUs, torchvision's forward): a hook's stored
    features.norm5 output is overwritten by F.relu(..., inplace=True)."""
    set_inplace(model, True)
    st = {}
    h = model.features.norm5.register_forward_hook(lambda _m, _i, o: st.update(raw=o, clone=o.detach().clone()))
    with torch.no_grad():
        y = model(x)
    h.remove()
    set_inplace(model, False)
    assert torch.equal(st["raw"], F.relu(st["clone"])), "in-place claim failed"
    assert (st["clone"] < 0).any(), "norm5 has no negative values: the check would be vacuous"
    return y


def tiny_mobilenet():
    """MobileNetV2(width_mult=0.25) with a narrower last stage (features.18:
    80 -> 160 channels instead of 1280, classifier.1 160 -> 10): names and
    module classes stay torchvision's; the fixture stays small."""
    from torchvision.ops.misc import Conv2dNormActivation
    m = torchvision.models.MobileNetV2(width_mult=0.25, num_classes=10)
    m.features[18] = Conv2dNormActivation(80, 160, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(160, 10)
    nn.init.kaiming_normal_(m.features[18][0].weight, mode="fan_out")
    return m


MODELS = {
    "tinydensenet": dict(
        make=lambda: torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16,
                                                 bn_size=2, num_classes=10),
        inputs={"input_a": (2, 96, 96), "input_b": (1, 112, 80)},
        taps=["features.pool0", "features.denseblock1.denselayer2.norm1", "features.denseblock2.denselayer1.conv2",
              "features.denseblock2.denselayer1", "features.transition2", "features.transition2.pool",
              "features.denseblock4", "features.norm5", "features", "classifier"],
        grads=["features.transition2", "features.norm5"],
        cams=["features.norm5", "features.denseblock3"]),
    "tinymobilenet": dict(
        make=tiny_mobilenet,
        inputs={"input_a": (2, 64, 64), "input_b": (1, 96, 64)},
        taps=["features.0", "features.1", "features.1.conv.0", "features.3.conv.1", "features.3.conv.1.1",
              "features.3.conv", "features.3", "features.4", "features.14.conv.1.0", "features.17",
              "features.18", "classifier"],
        grads=["features.3.conv.1", "features.18"],
        cams=["features.18", "features.13"]),
}


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    meta = {"target_class": TARGET, "models": {}}
    for mi, (name, spec) in enumerate(MODELS.items()):
        torch.manual_seed(100 + mi)
        model = spec["make"]().eval()
        randomise(model, 200 + mi, spec["inputs"]["input_a"][1])
        g = torch.Generator().manual_seed(1234 + mi)
        inputs = {}
        set_inplace(model, False)
        for k, (n, h, w) in spec["inputs"].items():
            for tries in range(100):
                x = torch.randn(n, 3, h, w, generator=g)
                if relu_margin(model, x) >= MARGIN:
                    break
            else:
                raise SystemExit("no input with a ReLU margin of %g" % MARGIN)
            inputs[k] = x
        set_inplace(model, False)
        sd = model.state_dict()
        torch.save(sd, os.path.join(ROOT, name + ".pth"))
        write_safetensors(os.path.join(ROOT, name + ".safetensors"),
                          [(k, v) for k, v in sd.items() if v.dtype == torch.float32])
        if name == "tinydensenet":
            import re
            old = {}
            for k, v in sd.items():
                m = re.match(r"^(.*denselayer\d+\.(?:norm|relu|conv))((?:[12])\.(?:weight|bias|running_mean|running_var))$", k)
                old[m.group(1) + "." + m.group(2) if m else k] = v
            torch.save(old, os.path.join(ROOT, name + "_oldkeys.pth"))
        meta["models"][name] = {"taps": spec["taps"], "grads": spec["grads"], "cams": spec["cams"],
                                "keys": len(sd), "params": sum(p.numel() for p in model.parameters())}
        for iname, x in inputs.items():
            d = os.path.join(ROOT, name, iname)
            os.makedirs(d)
            np.save(os.path.join(d, "input.npy"), x.numpy().astype("<f4"))
            res = run(model, x, spec["taps"], spec["grads"], spec["cams"])
            res["guided_input"] = guided_input(model, x)
            if name == "tinydensenet":
                y = check_inplace_claim(model, x)
            else:
                set_inplace(model, True)
                with torch.no_grad():
                    y = model(x)
                set_inplace(model, False)
            assert torch.allclose(y, res["logits"], atol=1e-6), "stock forward differs"
            for k, v in res.items():
                assert torch.isfinite(v).all(), k
                np.save(os.path.join(d, k + ".npy"), v.numpy().astype("<f4"))
            print(name, iname, "logits", res["logits"][0, :4].tolist())
    with open(os.path.join(ROOT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    total = 0
    for dp, _, fs in os.walk(ROOT):
        for fn in fs:
            s = os.path.getsize(os.path.join(dp, fn))
            assert s < 2 << 20, (fn, s)
            total += s
    print("total bytes", total)


if __name__ == "__main__":
    main()
