#!/usr/bin/python3
"""Export a PyTorch nn.Sequential (with residual blocks) to gapnet's JSON model format (docs/model-format.md).

As a program, on a whole pickled module (`torch.save(model, "model.pt")`):

    /usr/bin/python3 tools/export_pytorch.py model.pt out.json --input 1x28x28 --color grayscale \
        --labels labels.txt [--mean 0.286 --std 0.353] [--scale 0.00392156862745098] [--name NAME] \
        [--tests 3] [--fold-bn] [--check]

As a library, from a training script:

    import export_pytorch
    export_pytorch.export(model, "out.json", input_spec, labels)

Every file carries its own proof: `tests` fixed inputs (seeded random pixels, preprocessed as the file
says, plus any `test_inputs` given) and PyTorch's outputs for them, which `gapnet verify` re-runs.
`--check` runs it right away. `--fold-bn` folds each BatchNorm2d that directly follows a Conv2d into
the convolution (PyTorch's own fuse_conv_bn_eval); the recorded outputs come from the unfolded model,
so verifying the file checks the folding too.

Supported modules: Conv2d, BatchNorm2d, ReLU, ReLU6, Hardtanh, LeakyReLU, Sigmoid, Hardsigmoid,
Hardswish, SiLU, Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), AdaptiveMaxPool2d(1), Flatten,
Linear, Softmax, and `Residual` below (a residual block: gapnet's `add`); Dropout* and Identity are
skipped (they do nothing at inference); a ZeroPad2d immediately followed by a Conv2d is folded into
the convolution's padding (gapnet's per-side [top, left, bottom, right]), which is how asymmetric
padding is written in PyTorch. Anything else, or an option the engine cannot honour exactly, is
refused with a message naming the module. Layouts are PyTorch's own, so weights are written as they
are. Other graphs (torchvision's ResNets, MobileNets, ...) go through ONNX: tools/export_torchvision.py
and tools/onnx_to_gapnet.py.
"""
import argparse
import base64
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

import gapnet_file  # tools/, beside this script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ExportError(Exception):
    pass


class Residual(nn.Module):
    """A residual block, y = activation(body(x) + shortcut(x)) (He et al., 2016): the shortcut is the
    identity when None (or e.g. a strided 1x1 Conv2d + BatchNorm2d projection), the activation
    nothing when None. Put it in an nn.Sequential; it is exported as gapnet's `add`."""

    def __init__(self, body, shortcut=None, activation=None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.activation = activation

    def forward(self, x):
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.activation is None else self.activation(y)


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def _tensor(t, encoding):
    a = t.detach().cpu().to(torch.float32).contiguous().numpy()
    if not np.all(np.isfinite(a)):
        raise ExportError("tensor holds NaN or Inf")
    if encoding == "base64":
        data = base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")
        return {"shape": list(a.shape), "dtype": "float32", "encoding": "base64", "data": data}
    return {"shape": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}


def _leaves(module, prefix=""):
    """The modules of a (possibly nested) nn.Sequential, in order, with their dotted names."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), module


def _conv_padding(m):
    if isinstance(m.padding, str):  # 'valid' or 'same' (stride 1): PyTorch puts the odd pixel after
        if m.padding == "valid":
            return [0, 0]
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        top, left = total[0] // 2, total[1] // 2
        return [top, left, total[0] - top, total[1] - left]
    return _pair(m.padding)


def _zero_pad(m, what, following):
    """The padding [top, left, bottom, right] of ZeroPad2d `m`, to be added to the Conv2d that must
    come right after it (`following`: the next module, or None). ZeroPad2d's own order is
    (left, right, top, bottom)."""
    left, right, top, bottom = (int(v) for v in m.padding)
    if min(left, right, top, bottom) < 0:
        raise ExportError(f"{what}: negative padding {tuple(m.padding)} (cropping) is not supported")
    if not isinstance(following, nn.Conv2d):
        after = "nothing" if following is None else f"a {type(following).__name__}"
        raise ExportError(
            f"{what}: a ZeroPad2d is only supported immediately before a Conv2d, "
            f"whose padding it joins; it is followed by {after}"
        )
    return [top, left, bottom, right]


def _pool_common(m, what):
    if getattr(m, "return_indices", False):
        raise ExportError(f"{what}: return_indices=True is not supported")
    if isinstance(m, nn.MaxPool2d) and _pair(m.dilation) != [1, 1]:
        raise ExportError(f"{what}: dilation {_pair(m.dilation)} is not supported (only 1)")
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride) if m.stride is not None else kernel
    return {"kernel_size": kernel, "stride": stride, "padding": _pair(m.padding), "ceil_mode": bool(m.ceil_mode)}


def _is_one(size):
    return size == 1 or (isinstance(size, (tuple, list)) and list(size) == [1, 1])


def _fold_batch_norms(leaves):
    """Each Conv2d directly followed by a BatchNorm2d becomes one Conv2d computing both."""
    folded = []
    for path, m in leaves:
        if (
            isinstance(m, nn.BatchNorm2d)
            and folded
            and isinstance(folded[-1][1], nn.Conv2d)
            and m.running_mean is not None
            and folded[-1][1].out_channels == m.num_features
        ):
            folded[-1] = (folded[-1][0], fuse_conv_bn_eval(folded[-1][1], m))
        else:
            folded.append((path, m))
    return folded


def _activation(m):
    """The gapnet layer (type and attributes) of an activation module, or None if `m` is not one."""
    if isinstance(m, nn.ReLU):
        return {"type": "relu"}
    if isinstance(m, nn.ReLU6):
        return {"type": "relu6"}
    if isinstance(m, nn.Hardtanh):
        return {"type": "clip", "min": float(m.min_val), "max": float(m.max_val)}
    if isinstance(m, nn.LeakyReLU):
        return {"type": "leaky_relu", "negative_slope": float(m.negative_slope)}
    if isinstance(m, nn.Sigmoid):
        return {"type": "sigmoid"}
    if isinstance(m, nn.Hardsigmoid):  # relu6(x + 3) / 6 = clamp(x / 6 + 0.5, 0, 1)
        return {"type": "hard_sigmoid", "alpha": 1.0 / 6.0, "beta": 0.5}
    if isinstance(m, nn.Hardswish):
        return {"type": "hard_swish"}
    if isinstance(m, nn.SiLU):
        return {"type": "silu"}
    if isinstance(m, nn.Tanh):
        return {"type": "tanh"}
    return None


def layer_dicts(model, encoding="base64", fold_bn=False):
    """The gapnet layer list for `model`; raises ExportError naming the first unsupported module."""
    layers, counts = [], {}

    def name_for(short):
        counts[short] = counts.get(short, 0) + 1
        return f"{short}{counts[short]}"

    _append_layers(list(_leaves(model)), layers, name_for, encoding, fold_bn, None)
    return layers


def _append_layers(leaves, layers, name_for, encoding, fold_bn, reads):
    """Appends the gapnet layers of `leaves` (path, module) to `layers`; the first reads the layer
    named `reads` (None: the previous one). Returns the name of the last layer appended, or `reads`
    (the input, unchanged) when every module was skipped."""
    if fold_bn:
        leaves = _fold_batch_norms(leaves)
    last = reads if reads is not None else (layers[-1]["name"] if layers else "input")
    pad_before = None  # [top, left, bottom, right] from a ZeroPad2d just before a Conv2d
    for i, (path, m) in enumerate(leaves):
        what = f"module '{path}' ({type(m).__name__})"
        if isinstance(m, Residual):
            body = _append_layers(list(_leaves(m.body, f"{path}.body.")), layers, name_for, encoding, fold_bn, last)
            shortcut = (
                last
                if m.shortcut is None
                else _append_layers(
                    list(_leaves(m.shortcut, f"{path}.shortcut.")), layers, name_for, encoding, fold_bn, last
                )
            )
            if body == last and shortcut == last:
                raise ExportError(f"{what}: its body and shortcut compute nothing")
            layers.append({"type": "add", "name": name_for("add"), "inputs": [body, shortcut]})
            last = layers[-1]["name"]
            if m.activation is not None:
                act = _activation(m.activation)
                if act is None:
                    raise ExportError(f"{what}: activation {type(m.activation).__name__} is not supported")
                layers.append({**act, "name": name_for(act["type"].replace("_", ""))})
                last = layers[-1]["name"]
            continue
        if isinstance(m, nn.ZeroPad2d):
            pad_before = _zero_pad(m, what, leaves[i + 1][1] if i + 1 < len(leaves) else None)
            continue
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)):
            continue
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise ExportError(f"{what}: padding_mode '{m.padding_mode}' is not supported (only zeros)")
            d = {
                "type": "conv2d",
                "name": name_for("conv"),
                "in_channels": m.in_channels,
                "out_channels": m.out_channels,
                "kernel_size": _pair(m.kernel_size),
                "stride": _pair(m.stride),
                "padding": _conv_padding(m),
                "dilation": _pair(m.dilation),
                "groups": m.groups,
                "weight": _tensor(m.weight, encoding),
            }
            if pad_before is not None:  # zero padding twice is zero padding by the sum, per side
                own = d["padding"] if len(d["padding"]) == 4 else d["padding"] * 2
                d["padding"] = [a + b for a, b in zip(pad_before, own)]
                pad_before = None
            if m.bias is not None:
                d["bias"] = _tensor(m.bias, encoding)
        elif isinstance(m, nn.BatchNorm2d):
            if m.running_mean is None:
                raise ExportError(f"{what}: track_running_stats=False has no running statistics to export")
            d = {"type": "batch_norm2d", "name": name_for("bn"), "num_features": m.num_features, "eps": float(m.eps)}
            if m.affine:
                d["weight"] = _tensor(m.weight, encoding)
                d["bias"] = _tensor(m.bias, encoding)
            d["running_mean"] = _tensor(m.running_mean, encoding)
            d["running_var"] = _tensor(m.running_var, encoding)
        elif _activation(m) is not None:
            act = _activation(m)
            d = {**act, "name": name_for(act["type"].replace("_", ""))}
        elif isinstance(m, nn.MaxPool2d):
            d = {"type": "max_pool2d", "name": name_for("pool"), **_pool_common(m, what)}
        elif isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise ExportError(f"{what}: divisor_override is not supported")
            d = {
                "type": "avg_pool2d",
                "name": name_for("avgpool"),
                **_pool_common(m, what),
                "count_include_pad": bool(m.count_include_pad),
            }
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            if not _is_one(m.output_size):
                raise ExportError(
                    f"{what}: output_size {m.output_size} is not supported " "(only 1, which is global pooling)"
                )
            if getattr(m, "return_indices", False):
                raise ExportError(f"{what}: return_indices=True is not supported")
            avg = isinstance(m, nn.AdaptiveAvgPool2d)
            d = {"type": "global_avg_pool2d" if avg else "global_max_pool2d", "name": name_for("gap" if avg else "gmp")}
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ExportError(
                    f"{what}: start_dim={m.start_dim}, end_dim={m.end_dim} is not "
                    "supported (only start_dim=1, end_dim=-1)"
                )
            d = {"type": "flatten", "name": name_for("flatten")}
        elif isinstance(m, nn.Linear):
            d = {
                "type": "dense",
                "name": name_for("fc"),
                "in_features": m.in_features,
                "out_features": m.out_features,
                "weight": _tensor(m.weight, encoding),
            }
            if m.bias is not None:
                d["bias"] = _tensor(m.bias, encoding)
        elif isinstance(m, nn.Softmax):
            if m.dim not in (1, -1):
                raise ExportError(
                    f"{what}: softmax over dim {m.dim} is not supported (only the " "class dimension, dim=1)"
                )
            d = {"type": "softmax", "name": name_for("softmax")}
        else:
            raise ExportError(
                f"{what}: not supported by gapnet (supported: Conv2d, BatchNorm2d, "
                "ReLU, ReLU6, Hardtanh, LeakyReLU, Sigmoid, Hardsigmoid, Hardswish, SiLU, "
                "Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), AdaptiveMaxPool2d(1), "
                "Flatten, Linear, Softmax, Residual, Dropout, Identity, ZeroPad2d before a "
                "Conv2d; other graphs: export to ONNX and use tools/onnx_to_gapnet.py)"
            )
        if last != (layers[-1]["name"] if layers else "input"):
            d["input"] = last
        layers.append(d)
        last = d["name"]
    return last


def random_inputs(spec, count, seed=0):
    """`count` inputs [N, C, H, W] made of seeded random pixels 0..255, preprocessed as `spec` says."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (count, spec["channels"], spec["height"], spec["width"]), generator=gen)
    return preprocess(pixels.to(torch.float32), spec)


def preprocess(pixels, spec):
    """Pixels [N, C, H, W] on the 0..255 scale -> the model input: (p * scale - mean[c]) / std[c]."""
    mean = torch.tensor(spec["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels * spec["scale"] - mean) / std


def _complete_spec(input_spec):
    spec = {"scale": 1.0 / 255.0, **input_spec}
    channels = spec["channels"]
    spec.setdefault("color", "grayscale" if channels == 1 else "rgb")
    spec.setdefault("mean", [0.0] * channels)
    spec.setdefault("std", [1.0] * channels)
    return spec


def model_dict(
    model, input_spec, labels, name="model", encoding="base64", metadata=None, tests=3, test_inputs=None, fold_bn=False
):
    """The whole file as a dict. `tests` random inputs, plus `test_inputs` ([N, C, H, W], already
    preprocessed) if given, are recorded with the model's outputs for them."""
    if not isinstance(model, nn.Sequential):
        raise ExportError(f"the model is a {type(model).__name__}; only nn.Sequential can be exported")
    spec = _complete_spec(input_spec)
    doc = {
        "format": "gapnet",
        "version": 1,
        "name": name,
        "input": spec,
        "labels": list(labels),
        "layers": layer_dicts(model, encoding, fold_bn),
    }
    inputs = [random_inputs(spec, tests)] if tests else []
    if test_inputs is not None:
        inputs.append(torch.as_tensor(test_inputs, dtype=torch.float32))
    if inputs:
        x = torch.cat(inputs)
        with torch.no_grad():
            y = model(x)
        doc["tests"] = [{"input": _tensor(x[i], encoding), "output": _tensor(y[i], encoding)} for i in range(len(x))]
    if metadata:
        doc["metadata"] = metadata
    return doc


def export(
    model,
    path,
    input_spec,
    labels,
    name="model",
    encoding="base64",
    metadata=None,
    tests=3,
    test_inputs=None,
    fold_bn=False,
):
    """Write `model` (an nn.Sequential in eval mode) to `path` in gapnet's format; returns the dict.

    input_spec: {"channels", "height", "width", and optionally "color", "scale", "mean", "std"}.
    tests: how many seeded random inputs to record with PyTorch's outputs (gapnet verify re-runs them);
    test_inputs: more inputs to record, [N, C, H, W] already preprocessed (e.g. real images).
    fold_bn: fold each BatchNorm2d that follows a Conv2d into it.
    """
    model.eval()
    doc = model_dict(model, input_spec, labels, name, encoding, metadata, tests, test_inputs, fold_bn)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1 if encoding == "json" else None)
        f.write("\n")
    return doc


def check(path, gapnet=None):
    """Runs `gapnet verify` on the written file: PyTorch's recorded outputs against the engine's.
    Returns (passed, the line gapnet printed)."""
    gapnet = gapnet or os.path.join(ROOT, "build", "release", "gapnet")
    if not os.path.exists(gapnet):
        raise ExportError("--check needs the gapnet program: build it (make build) or pass --gapnet PATH")
    run = subprocess.run([gapnet, "verify", path], capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def _parse_input(text):
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input '{text}': expected CxHxW, e.g. 1x28x28")
    return c, h, w


def main():
    ap = argparse.ArgumentParser(description="Export a pickled PyTorch nn.Sequential to gapnet's format.")
    ap.add_argument("model", help="a whole module saved with torch.save(model, PATH)")
    ap.add_argument("out", help="the gapnet JSON file to write")
    ap.add_argument("--input", type=_parse_input, required=True, help="CxHxW, e.g. 1x28x28")
    ap.add_argument("--color", choices=["grayscale", "rgb"])
    ap.add_argument("--labels", required=True, help="a text file with one class label per line")
    ap.add_argument("--scale", type=float, default=1.0 / 255.0)
    ap.add_argument("--mean", type=float, nargs="+")
    ap.add_argument("--std", type=float, nargs="+")
    gapnet_file.add_image_arguments(ap)
    ap.add_argument("--name", default=None)
    ap.add_argument(
        "--encoding",
        choices=["base64", "json"],
        default="base64",
        help="tensor data as base64 float32 (default, fast to load) or JSON numbers",
    )
    ap.add_argument("--tests", type=int, default=3, help="random test inputs to record (default 3)")
    ap.add_argument("--fold-bn", action="store_true", help="fold batch norm into the preceding convolution")
    ap.add_argument(
        "--check", action="store_true", help="then run gapnet verify on the file and report the largest difference"
    )
    ap.add_argument("--gapnet", help="the gapnet program for --check (default: build/release/gapnet)")
    args = ap.parse_args()

    c, h, w = args.input
    spec = {"channels": c, "height": h, "width": w, "scale": args.scale}
    if args.color:
        spec["color"] = args.color
    if args.mean:
        spec["mean"] = args.mean
    if args.std:
        spec["std"] = args.std
    spec.update(gapnet_file.image_options(args))
    with open(args.labels) as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    try:
        model = torch.load(args.model, map_location="cpu")
        model.eval()
        export(
            model,
            args.out,
            spec,
            labels,
            args.name or args.model.rsplit("/", 1)[-1].split(".")[0],
            args.encoding,
            tests=args.tests,
            fold_bn=args.fold_bn,
        )
        print(f"wrote {args.out}")
        if args.check:
            passed, line = check(args.out, args.gapnet)
            print(line)
            if not passed:
                sys.exit(1)
    except ExportError as e:
        sys.exit(f"export_pytorch: error: {args.model}: {e}")


if __name__ == "__main__":
    main()
