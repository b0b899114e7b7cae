#!/usr/bin/python3
"""Randomized parity cases: small seeded PyTorch networks that gapnet must reproduce to 1e-5.

What: this draws small networks from every module and option gapnet reads, and writes each as a gapnet
model file whose "tests" hold PyTorch's outputs for fixed inputs. `gapnet verify` and
tests/test_parity.cpp re-run those inputs: every probability must be within 1e-5 (absolute) of
PyTorch's. Two kinds of network:

- sequential: an nn.Sequential of the modules tools/export_pytorch.py maps to gapnet (convolutions of
  kernel 1/3/5/7, stride 1 and 2, symmetric and per-side padding, dilation, groups and depthwise,
  with and without bias; batch norm with random running statistics, affine or not; ReLU; max and
  average pooling with padding, ceil_mode and count_include_pad; both global pools; the classifier
  heads; 1- and 3-channel, square and non-square inputs), ending in Softmax, written by
  export_pytorch.export() itself, so the exporter is tested too;
- graph: the same, plus blocks whose layers read several earlier layers (gapnet's "inputs", see
  docs/model-format.md): residual blocks (ResNet's basic block, MobileNetV2's inverted residual,
  identity / 1x1-projection / avg-pool shortcuts, sometimes three terms), concat blocks
  (SqueezeNet's Fire, GoogLeNet's inception, DenseNet's [x, f(x)]), squeeze-and-excitation gates
  (a feature map times a per-channel vector), gated convolutions (equal-shape maps multiplied),
  depthwise-separable convolutions, every activation (relu, relu6, clip, leaky_relu, sigmoid,
  hard_sigmoid, hard_swish, silu, tanh) at the positions the engine fuses (conv > act,
  conv > bn > act, conv > bn > add > act, dense > act) and as layers of their own, and two more heads
  (conv 1x1 to the classes > activation > global pool; concat of both global pools > dense). The
  PyTorch side is an ordinary nn.Module whose forward() computes the block the way PyTorch code
  does (`out = body(x) + shortcut(x)`, `torch.cat(...)`, `x * s`); this generator then writes the
  gapnet layers from the module's parameters (graph_layers), so a wiring mistake on either side
  shows as a verify failure, never as two copies of the same mistake.

Why: tests/test_layers.cpp checks each layer against values worked out by hand, which covers the cases
someone thought of. Random combinations (a ceil_mode window that starts in the padding, a dilated
grouped convolution on a non-square map, a residual add fused into the convolution that happens to be
computed last, a hard_sigmoid gate broadcast over a map, ...) find the ones nobody wrote down, with
PyTorch as the reference.

    /usr/bin/python3 tools/gen_parity_cases.py --out DIR [--seed 0] [--count 40] [--gapnet PATH]

How: network i of seed S depends only on (S, i), so a seed always gives the same files. Each network
is built around foci taken in turn from three lists, by position S + i: FOCI (a layer option it must
contain), GRAPH_FOCI (a graph block it must contain, or "sequential": none at all) and, for graph
networks, ACTIVATIONS (an activation it must hold both right after a convolution, where the engine
fuses it, and as a layer of its own); so any COVERAGE_COUNT consecutive networks contain every
option; everything else is random. What a network contains is read back from its modules and from
the gapnet layers written (not from the plan), printed one line per network, and summed up in a
coverage table; when --count is at least COVERAGE_COUNT, a feature no network contains is an error.
Weights are drawn so that activations keep their scale, and the last layer with weights is scaled so
the logits spread by 1 to 3: a softmax that is neither saturated nor uniform, so a wrong value shows.

With --gapnet, every file written is then checked with `gapnet verify --tolerance 1e-5`; the program
exits with status 1, naming each failing file and gapnet's message, if any fails. PyTorch must be
importable (Debian's python3-torch, for /usr/bin/python3): without it this fails, it never skips.
"""
import argparse
import collections
import copy
import glob
import json
import os
import random
import subprocess
import sys
import warnings

try:
    import torch
    import torch.nn as nn
except ImportError as error:
    sys.exit(
        f"gen_parity_cases: error: PyTorch is required ({error}); install python3-torch and run "
        "this with /usr/bin/python3"
    )

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402

TOLERANCE = 1e-5  # absolute, on probabilities: gapnet verify's T * max(1, |r|) with |r| <= 1
RANDOM_TESTS = 2  # seeded random-pixel inputs export() records per network...
GAUSSIAN_TESTS = 1  # ...plus this many of scale 1.5, larger and more often negative (gaussian_inputs)
BODY_BUDGET = 2400  # stored values (weights, biases, running statistics) before the head...
GRAPH_BODY_BUDGET = 4000  # ...in a graph network, whose blocks hold two to five convolutions each
FLATTEN_FEATURES = 160  # the flatten head's input is pooled down to at most this many values
DRAWS = 200  # attempts to draw a layer that fits the current activation shape
CANCELLATION = 3  # unit_scale removes a constant at most this many times what it leaves
REACH = 3.5  # unit_scale's output scale for a layer feeding relu6, hard_swish or hard_sigmoid
ROUNDING = TOLERANCE / 30  # PyTorch's float32 outputs must be this close to float64's (rounding_error)

# --- The options every set must contain ------------------------------------------------------------
# A focus is (kind, options): "conv", "max" or "avg" is a layer drawn with those options fixed,
# "net" sets options of the network as a whole.
FOCI = [
    ("conv", {"kernel": 1, "padding": "zero", "stride": 1, "bias": True, "relu": True}),
    ("conv", {"kernel": 3, "padding": "sym", "bias": True}),
    ("conv", {"kernel": 5, "padding": "hw"}),
    ("conv", {"kernel": 7, "padding": "sym"}),
    ("conv", {"stride": 2}),
    ("conv", {"stride": (1, 2)}),
    ("conv", {"kernel": (3, 5)}),
    ("conv", {"kernel": 4, "padding": "same", "dilation": 1}),
    ("conv", {"kernel": 2, "padding": "same", "dilation": 3}),
    ("conv", {"kernel": (4, 3), "padding": "same", "dilation": 1}),
    ("conv", {"padding": "zeropad"}),
    ("conv", {"kernel": 3, "dilation": 2}),
    ("conv", {"groups": "grouped"}),
    ("conv", {"groups": "depthwise", "multiplier": 1}),
    ("conv", {"groups": "depthwise", "multiplier": 2}),
    ("conv", {"bias": False}),
    ("conv", {"bn": "affine", "eps": 1e-5}),
    ("conv", {"bn": "no-affine"}),
    ("conv", {"bn": "affine", "eps": 1e-3}),
    ("max", {"ceil_mode": True, "padding": 1, "partial": True}),
    ("max", {"ceil_mode": True, "padding": 1, "partial": True, "kernel": 3, "stride": 2}),
    ("max", {"ceil_mode": False, "kernel": 3, "stride": 2}),
    ("max", {"kernel": (2, 3), "first": True}),
    ("max", {"padding": 1, "first": True}),  # max of negative values beside zero padding
    ("avg", {"ceil_mode": True, "padding": 1, "count_include_pad": True, "partial": True}),
    ("avg", {"ceil_mode": True, "padding": 1, "count_include_pad": False, "partial": True}),
    ("avg", {"ceil_mode": True, "padding": 1, "count_include_pad": True, "partial": True, "kernel": 3, "stride": 2}),
    ("avg", {"ceil_mode": True, "padding": 1, "count_include_pad": False, "partial": True, "kernel": (3, 2)}),
    ("avg", {"ceil_mode": False, "padding": 1, "count_include_pad": True}),
    ("avg", {"ceil_mode": False, "padding": 1, "count_include_pad": False}),
    ("net", {"skipped": True}),
    ("net", {"nested": True}),
    ("net", {"dense_bias": False}),
    ("net", {"softmax_dim": -1}),
]

# The graph block each network must contain: (kind, options), kind one of GRAPH_KINDS, or
# "sequential": a plain nn.Sequential, ReLU its only activation, written by export_pytorch.export (two
# in the cycle, so the exporter keeps being tested whole). "first": the block reads the model input.
GRAPH_KINDS = ["residual", "concat", "se", "gated", "separable"]
GRAPH_FOCI = [
    ("residual", {"body": "basic", "shortcut": "identity", "bn": True, "post_act": True, "se": False}),
    ("concat", {"style": "fire"}),
    ("se", {"gate": "sigmoid", "fc": "linear"}),
    ("residual", {"body": "basic", "shortcut": "projection", "stride": 2}),
    ("gated", {"inputs": 2}),
    ("separable", {"stride": 1}),
    ("sequential", {}),
    ("residual", {"body": "inverted", "shortcut": "identity"}),
    ("concat", {"style": "inception", "branches": 3}),
    ("se", {"gate": "hard_sigmoid", "fc": "conv1x1"}),
    ("residual", {"add_inputs": 3}),
    ("concat", {"style": "dense", "first": True}),
    ("residual", {"body": "basic", "bn": False, "shortcut": "projection", "stride": 1}),  # conv > add, no bn
    ("gated", {"inputs": 3}),
    ("se", {"gate": "hard_sigmoid-random", "order": "gate-first"}),
    ("separable", {"stride": 2}),
    ("residual", {"shortcut": "avgpool", "stride": 2}),
    ("concat", {"style": "inception", "branches": 2, "pool_branch": True}),
    ("sequential", {}),
    ("residual", {"se": True, "order": "shortcut-first"}),
    ("residual", {"first": True, "shortcut": "identity"}),
    ("residual", {"add_inputs": 3, "shortcut": "identity", "extra": "identity"}),  # x + x + body(x)
]
SEQUENTIAL_SLOTS = {i for i, (kind, _) in enumerate(GRAPH_FOCI) if kind == "sequential"}

# Every activation gapnet has, as (key, what it is); a key names a variant of a gapnet type (clip with
# one bound, leaky_relu with the default slope, hard_sigmoid with PyTorch's or random constants).
ACTIVATIONS = [
    ("relu", "relu"),
    ("relu6", "relu6"),
    ("clip", "clip(min, max), random bounds (nn.Hardtanh)"),
    ("clip-min", "clip with only min (torch.clamp(x, min=...))"),
    ("clip-max", "clip with only max (torch.clamp(x, max=...))"),
    ("leaky_relu", "leaky_relu, random negative_slope"),
    ("leaky_relu-default", "leaky_relu, attribute absent (default slope 0.01)"),
    ("sigmoid", "sigmoid"),
    ("hard_sigmoid", "hard_sigmoid, PyTorch's nn.Hardsigmoid (alpha 1/6, beta 0.5)"),
    ("hard_sigmoid-random", "hard_sigmoid, random alpha and beta (torch.clamp(alpha*x+beta, 0, 1))"),
    ("hard_swish", "hard_swish"),
    ("silu", "silu"),
    ("tanh", "tanh"),
]
ACTIVATION_KEYS = [key for key, _ in ACTIVATIONS]
ACTIVATION_WEIGHTS = [6 if key == "relu" else 1 for key in ACTIVATION_KEYS]  # ReLU is the usual one
# The activations made of linear pieces: a layer of each must see inputs on every piece (relu6 above
# 6, hard_swish beyond -3 and 3, ...), or a wrong corner would go unnoticed.
PIECEWISE = {
    "relu",
    "relu6",
    "clip",
    "clip-min",
    "clip-max",
    "leaky_relu",
    "leaky_relu-default",
    "hard_sigmoid",
    "hard_sigmoid-random",
    "hard_swish",
}
ACTIVATION_TYPES = {"relu", "relu6", "clip", "leaky_relu", "sigmoid", "hard_sigmoid", "hard_swish", "silu", "tanh"}
# The conv head's activation: unbounded above, so scaling the head convolution spreads the logits.
HEAD_ACTIVATIONS = ["relu", "relu", "leaky_relu", "leaky_relu-default", "relu6", "clip-min", "hard_swish", "silu"]

# A network's input, head and global pool cycle with its index (build_network), every 24 networks.
HEAD_CYCLE = 24
# Any this many consecutive networks contain every focus of FOCI and GRAPH_FOCI, every head, and at
# least len(ACTIVATIONS) graph networks (GRAPH_FOCI has 2 sequential slots in 22).
COVERAGE_COUNT = max(len(FOCI), len(GRAPH_FOCI), HEAD_CYCLE)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def stored_values(modules):
    """What gapnet counts as parameters: every weight, bias and running statistic."""
    model = nn.Sequential(*modules)
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    )


# --- The PyTorch modules of graph networks -------------------------------------------------------------
# Each computes its block the way PyTorch code does; graph_layers() writes the same computation as
# gapnet layers. Options that change what the block computes (the order of an add's or a multiply's
# terms) are attributes read by both; the order in which branches are written is the writer's choice.


class Clamp(nn.Module):
    """torch.clamp with one bound: gapnet's clip with `min` or `max` absent (nn.Hardtanh needs both)."""

    def __init__(self, min=None, max=None):
        super().__init__()
        self.min, self.max = min, max

    def forward(self, x):
        return torch.clamp(x, self.min, self.max)


class HardSigmoid(nn.Module):
    """clamp(alpha * x + beta, 0, 1): ONNX's HardSigmoid with any constants (nn.Hardsigmoid's are 1/6, 1/2)."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, x):
        return torch.clamp(self.alpha * x + self.beta, 0.0, 1.0)


class Residual(nn.Module):
    """act(body(x) + shortcut(x) [+ extra(x)]): ResNet's basic block (conv > conv), MobileNetV2's
    inverted residual (expand 1x1 > depthwise > project 1x1); the shortcut is x itself (nn.Identity),
    a 1x1 projection, or ResNet-D's average pool then 1x1."""

    def __init__(self, body, shortcut, extra=None, act=None, shortcut_first=False):
        super().__init__()
        self.body, self.shortcut, self.extra = body, shortcut, extra
        self.act = act if act is not None else nn.Identity()
        self.shortcut_first = shortcut_first

    def forward(self, x):
        body, shortcut = self.body(x), self.shortcut(x)
        out = shortcut + body if self.shortcut_first else body + shortcut
        if self.extra is not None:
            out = out + self.extra(x)
        return self.act(out)


class Branches(nn.Module):
    """Parallel branches joined along channels: SqueezeNet's Fire (a squeeze 1x1 first), GoogLeNet's
    inception, DenseNet's [x, f(x)] (an nn.Identity branch). `style` only names it."""

    def __init__(self, style, squeeze, branches, act=None):
        super().__init__()
        self.style = style
        self.squeeze = squeeze if squeeze is not None else nn.Identity()
        self.branches = nn.ModuleList(branches)
        self.act = act if act is not None else nn.Identity()

    def forward(self, x):
        x = self.squeeze(x)
        return self.act(torch.cat([branch(x) for branch in self.branches], dim=1))


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean of each channel)))): the squeeze-and-excitation gate, its FC layers as
    nn.Linear or, as torchvision writes them, 1x1 Conv2d on the pooled 1x1 map."""

    def __init__(self, channels, hidden, act, gate, conv=False, gate_first=False):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = conv
        layer = nn.Conv2d if conv else nn.Linear
        self.fc1 = layer(channels, hidden, 1) if conv else layer(channels, hidden)
        self.act = act
        self.fc2 = layer(hidden, channels, 1) if conv else layer(hidden, channels)
        self.gate = gate
        self.gate_first = gate_first

    def forward(self, x):
        s = self.pool(x)
        if not self.conv:
            s = torch.flatten(s, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s)))).reshape(x.shape[0], -1, 1, 1)
        return s * x if self.gate_first else x * s


class Gated(nn.Module):
    """value(x) * gate(x) [* x]: equal-shape feature maps multiplied (a gated convolution)."""

    def __init__(self, value, gate, with_input=False, input_first=False):
        super().__init__()
        self.value, self.gate = value, gate
        self.with_input, self.input_first = with_input, input_first

    def forward(self, x):
        value, gate = self.value(x), self.gate(x)
        if not self.with_input:
            return value * gate
        return x * value * gate if self.input_first else value * gate * x


class SeparableConv(nn.Sequential):
    """MobileNet's depthwise-separable convolution: depthwise [> bn] > act > pointwise 1x1 [> bn] [> act]."""


class ConcatPool(nn.Module):
    """fastai's AdaptiveConcatPool2d: each channel's mean and maximum, concatenated."""

    def __init__(self, max_first=False):
        super().__init__()
        self.avg, self.max = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)
        self.max_first = max_first

    def forward(self, x):
        pools = [self.max(x), self.avg(x)] if self.max_first else [self.avg(x), self.max(x)]
        return torch.cat(pools, dim=1)


ACTIVATION_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    Clamp,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Hardsigmoid,
    HardSigmoid,
    nn.Hardswish,
    nn.SiLU,
    nn.Tanh,
)
SKIPPED_MODULES = (nn.Dropout, nn.Dropout2d, nn.Identity)


def make_activation(rng, key):
    """The module for ACTIVATIONS key `key`, random constants where it has some."""
    if key == "relu":
        return nn.ReLU()
    if key == "relu6":
        return nn.ReLU6()
    if key == "clip":
        low = round(rng.uniform(-2.0, 0.5), 3)
        return nn.Hardtanh(low, round(low + rng.uniform(0.5, 4.0), 3))
    if key == "clip-min":
        return Clamp(min=round(rng.uniform(-1.5, 0.5), 3))
    if key == "clip-max":
        return Clamp(max=round(rng.uniform(-0.5, 2.0), 3))
    if key == "leaky_relu":
        return nn.LeakyReLU(round(rng.uniform(0.02, 0.5), 3))
    if key == "leaky_relu-default":
        return nn.LeakyReLU()
    if key == "sigmoid":
        return nn.Sigmoid()
    if key == "hard_sigmoid":
        return nn.Hardsigmoid()
    if key == "hard_sigmoid-random":  # both corners within 4.7 of 0 (a REACH-scale input passes them)
        return HardSigmoid(round(rng.uniform(0.15, 0.5), 3), round(rng.uniform(0.3, 0.7), 3))
    if key == "hard_swish":
        return nn.Hardswish()
    if key == "silu":
        return nn.SiLU()
    if key == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {key}")


# --- Drawing layers ----------------------------------------------------------------------------------


def draw_conv(rng, cin, force, act):
    """A Conv2d (maybe after a ZeroPad2d, maybe followed by BatchNorm2d and an activation from `act()`)
    reading `cin` channels, with the options in `force` fixed ("act": that ACTIVATIONS key; "relu":
    ReLU or none); None when `force` cannot hold for `cin`."""
    k = force.get("kernel", rng.choice([1, 3, 3, 3, 5, 7]))
    kernel = pair(k)
    if "kernel" not in force and rng.random() < 0.15:
        kernel = (kernel[0], rng.choice([1, 3, 5]))
    stride = force.get("stride", rng.choices([1, 2, (1, 2), (2, 1)], weights=[6, 3, 0.5, 0.5])[0])
    dilation = force.get(
        "dilation", 1 if max(kernel) == 1 else rng.choices([1, 2, (2, 1), 3], weights=[7, 2, 0.5, 0.5])[0]
    )

    groups_kind = force.get("groups", rng.choices(["none", "grouped", "depthwise"], weights=[6, 2, 2])[0])
    if groups_kind == "grouped":  # 1 < groups < cin
        divisors = [g for g in range(2, cin) if cin % g == 0]
        if not divisors:
            return None
        groups = rng.choice(divisors)
        cout = groups * rng.randint(1, max(1, 8 // groups))
    elif groups_kind == "depthwise":  # groups == cin, each output channel reads one input channel
        if cin < 2:
            return None
        groups = cin
        cout = cin * force.get("multiplier", rng.choice([1, 1, 2]))
    else:
        groups, cout = 1, force.get("channels", rng.randint(2, 8))

    padding_kind = force.get(
        "padding", rng.choices(["zero", "sym", "hw", "same", "valid", "zeropad"], weights=[2, 4, 2, 2, 1, 2])[0]
    )
    reach = [d * (kk - 1) for d, kk in zip(pair(dilation), kernel)]  # how far a kernel reaches
    zero_pad = None
    if padding_kind == "same":
        if pair(stride) != (1, 1):
            return None  # PyTorch allows padding='same' only at stride 1
        padding = "same"
    elif padding_kind == "valid":
        padding = "valid"
    elif padding_kind == "zero":
        padding = 0
    elif padding_kind == "sym":
        padding = rng.randint(1, max(1, max(reach) // 2 + 1))
    elif padding_kind == "hw":  # symmetric per axis, different between axes
        ph, pw = rng.randint(0, reach[0] // 2 + 1), rng.randint(0, reach[1] // 2 + 1)
        if ph == pw:
            pw = ph + 1
        padding = (ph, pw)
    else:  # "zeropad": a ZeroPad2d (left, right, top, bottom) that is not symmetric, then the conv
        while True:
            zero_pad = tuple(rng.randint(0, 2) for _ in range(4))
            if zero_pad[0] != zero_pad[1] or zero_pad[2] != zero_pad[3]:
                break
        padding = rng.choice([0, 0, 1])

    conv = nn.Conv2d(
        cin,
        cout,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=force.get("bias", rng.random() < 0.75),
    )
    modules = ([nn.ZeroPad2d(zero_pad)] if zero_pad else []) + [conv]
    bn = force.get("bn", rng.choices(["none", "affine", "no-affine"], weights=[5, 3, 2])[0])
    if bn != "none":
        eps = force.get("eps", rng.choice([1e-5, 1e-5, 1e-3]))
        modules.append(nn.BatchNorm2d(cout, eps=eps, affine=bn == "affine"))
    if "act" in force:
        modules.append(make_activation(rng, force["act"]))
    elif force.get("relu", rng.random() < 0.65):
        modules.append(nn.ReLU() if force.get("relu") else act())
    return modules


def draw_pool(rng, kind, force):
    """A MaxPool2d or AvgPool2d with the options in `force` fixed (PyTorch wants pad <= kernel / 2)."""
    kernel = pair(force.get("kernel", rng.choice([2, 2, 3, 3, (2, 3), (3, 2)])))
    stride = force.get("stride", rng.choice([None, None, 1, 2, 2, (1, 2)]))
    if "padding" in force:
        padding = force["padding"]
        if any(padding > kk // 2 for kk in kernel):
            return None
    else:
        padding = (rng.randint(0, kernel[0] // 2), rng.randint(0, kernel[1] // 2))
    ceil_mode = force.get("ceil_mode", rng.random() < 0.5)
    if kind == "max":
        return [nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)]
    return [
        nn.AvgPool2d(
            kernel,
            stride,
            padding,
            ceil_mode=ceil_mode,
            count_include_pad=force.get("count_include_pad", rng.random() < 0.5),
        )
    ]


def conv_bn(rng, cin, cout, kernel, stride=1, bn=True, act=None, dilation=1, groups=1):
    """Conv2d [> BatchNorm2d] [> act] that keeps the map's size at stride 1 (ceil(size / stride)
    otherwise), as the convolutions of residual and concat blocks must: odd kernels, padding
    dilation * (kernel - 1) / 2."""
    kernel = pair(kernel)
    padding = tuple(dilation * (k - 1) // 2 for k in kernel)
    modules = [
        nn.Conv2d(
            cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=not bn or rng.random() < 0.3
        )
    ]
    if bn:
        modules.append(nn.BatchNorm2d(cout, eps=rng.choice([1e-5, 1e-5, 1e-3]), affine=rng.random() < 0.8))
    if act is not None:
        modules.append(act)
    return modules


def draw_residual(rng, cin, force, act):
    """A Residual block reading `cin` channels."""
    stride = force.get("stride", rng.choice([1, 1, 1, 2]))
    if "shortcut" in force:
        shortcut = force["shortcut"]
    elif stride == 2:
        shortcut = rng.choice(["projection", "avgpool"])
    else:
        shortcut = rng.choice(["identity", "identity", "projection"])
    if shortcut == "identity":
        stride = 1  # x itself is only addable to a body of x's shape
    elif shortcut == "avgpool" and stride != 2:
        return None
    cout = cin if shortcut == "identity" else rng.randint(2, 8)
    body_kind = force.get("body", rng.choice(["basic", "basic", "inverted"]))
    bn = force.get("bn", rng.random() < 0.75)

    if body_kind == "basic":
        kernel = rng.choice([3, 3, 3, 5, 1, (3, 1)])
        dilation = 2 if kernel == 3 and rng.random() < 0.2 else 1
        body = conv_bn(rng, cin, cout, kernel, stride, bn, act(), dilation) + conv_bn(
            rng, cout, cout, rng.choice([3, 3, 1]), 1, bn
        )
    else:  # MobileNetV2: expand (unless t = 1), depthwise, then a linear projection
        t = rng.choice([1, 2, 3])
        hidden = cin * t
        body = (
            (conv_bn(rng, cin, hidden, 1, 1, bn, act()) if t > 1 else [])
            + conv_bn(rng, hidden, hidden, 3, stride, bn, act(), groups=hidden)
            + conv_bn(rng, hidden, cout, 1, 1, bn)
        )
    if force.get("se", rng.random() < 0.15):
        se = draw_se(rng, cout, {}, act)
        if se is None:
            return None
        body.append(se)

    def projection(kind):
        if kind == "identity":
            return nn.Identity()
        if kind == "avgpool":  # ResNet-D: a 2x2 average (ceil(size / 2), like the body's), then 1x1
            return nn.Sequential(
                nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), *conv_bn(rng, cin, cout, 1, 1, bn)
            )
        return nn.Sequential(*conv_bn(rng, cin, cout, rng.choice([1, 1, 3]), stride, bn))

    extra = None
    if force.get("add_inputs", 3 if rng.random() < 0.2 else 2) == 3:
        kind = force.get("extra", "identity" if cin == cout and stride == 1 and rng.random() < 0.4 else "projection")
        if kind == "identity" and (cin != cout or stride != 1):
            return None
        extra = projection(kind)
    post = force.get("post_act", rng.random() < (0.85 if body_kind == "basic" else 0.3))
    return Residual(
        nn.Sequential(*body),
        projection(shortcut),
        extra,
        act() if post else None,
        shortcut_first=force.get("order", rng.choice(["body-first", "body-first", "shortcut-first"]))
        == "shortcut-first",
    )


def draw_branches(rng, cin, force, act):
    """A Branches block (concat) reading `cin` channels."""
    style = force.get("style", rng.choice(["fire", "inception", "inception", "dense"]))
    bn = rng.random() < 0.5
    squeeze, post = None, None
    if style == "fire":  # squeeze 1x1 > [expand 1x1 | expand 3x3], each with its activation
        width = rng.randint(2, 6)
        squeeze = nn.Sequential(nn.Conv2d(cin, width, 1), act())
        branches = [
            nn.Sequential(nn.Conv2d(width, rng.randint(2, 6), 1), act()),
            nn.Sequential(nn.Conv2d(width, rng.randint(2, 6), 3, padding=1), act()),
        ]
    elif style == "dense":  # [x, f(x)]
        branches = [nn.Identity(), nn.Sequential(*conv_bn(rng, cin, rng.randint(2, 6), 3, 1, bn, act()))]
        post = act() if rng.random() < 0.3 else None
    else:

        def pool():  # 3x3 stride 1, padding 1: the map keeps its size
            if rng.random() < 0.6:
                return nn.MaxPool2d(3, 1, 1)
            return nn.AvgPool2d(3, 1, 1, count_include_pad=rng.random() < 0.5)

        def width():
            return rng.randint(2, 6)

        def branch(kind):
            if kind == "1x1":
                return nn.Sequential(*conv_bn(rng, cin, width(), 1, 1, bn, act()))
            if kind == "pool":
                return pool()
            if kind == "pool-1x1":
                return nn.Sequential(pool(), *conv_bn(rng, cin, width(), 1, 1, bn, act()))
            reduced = width()
            kernel, dilation = (3, 1) if kind == "3x3" else rng.choice([(5, 1), (3, 2)])
            return nn.Sequential(
                *conv_bn(rng, cin, reduced, 1, 1, bn, act()),
                *conv_bn(rng, reduced, width(), kernel, 1, bn, act(), dilation),
            )

        kinds = rng.sample(["1x1", "3x3", "5x5", "pool-1x1", "pool"], force.get("branches", rng.choice([2, 3, 3])))
        if force.get("pool_branch") and not {"pool", "pool-1x1"} & set(kinds):
            kinds[-1] = rng.choice(["pool", "pool-1x1"])
        branches = [branch(kind) for kind in kinds]
        post = act() if rng.random() < 0.3 else None
    return Branches(style, squeeze, branches, post)


def draw_se(rng, channels, force, act):
    """A SqueezeExcite gate over `channels` channels (at least 2: one channel has nothing to weigh)."""
    if channels < 2:
        return None
    hidden = max(1, channels // rng.choice([1, 2, 4]))
    gate = make_activation(
        rng, force.get("gate", rng.choice(["sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid-random"]))
    )
    conv = force.get("fc", rng.choice(["linear", "conv1x1"])) == "conv1x1"
    return SqueezeExcite(
        channels,
        hidden,
        act(),
        gate,
        conv,
        gate_first=force.get("order", rng.choice(["map-first", "map-first", "gate-first"])) == "gate-first",
    )


def draw_gated(rng, cin, force, act):
    """A Gated block reading `cin` channels: 2 maps multiplied, or 3 with x itself."""
    inputs = force.get("inputs", rng.choice([2, 2, 3]))
    cout = cin if inputs == 3 else rng.randint(2, 8)
    kernel, bn = rng.choice([1, 3, 3]), rng.random() < 0.5
    value = nn.Sequential(*conv_bn(rng, cin, cout, kernel, 1, bn, act() if rng.random() < 0.5 else None))
    gate_act = make_activation(rng, rng.choice(["sigmoid", "sigmoid", "hard_sigmoid", "hard_sigmoid-random", "tanh"]))
    gate = nn.Sequential(*conv_bn(rng, cin, cout, kernel, 1, bn, gate_act))
    return Gated(value, gate, inputs == 3, input_first=inputs == 3 and rng.random() < 0.5)


def draw_separable(rng, cin, force, act):
    """A SeparableConv reading `cin` channels (at least 2, or the depthwise step is a plain conv)."""
    if cin < 2:
        return None
    stride = force.get("stride", rng.choice([1, 1, 2]))
    kernel = rng.choice([3, 3, 5])
    dilation = 2 if kernel == 3 and rng.random() < 0.2 else 1
    multiplier, bn = rng.choice([1, 1, 2]), rng.random() < 0.7
    return SeparableConv(
        *conv_bn(rng, cin, cin * multiplier, kernel, stride, bn, act(), dilation, groups=cin),
        *conv_bn(rng, cin * multiplier, rng.randint(2, 8), 1, 1, bn, act() if rng.random() < 0.7 else None),
    )


GRAPH_DRAW = {
    "residual": draw_residual,
    "concat": draw_branches,
    "se": draw_se,
    "gated": draw_gated,
    "separable": draw_separable,
}


def floor_size(m, size):
    """A pool's output size (h, w) without ceil_mode."""
    k, s, p = pair(m.kernel_size), pair(m.stride if m.stride is not None else m.kernel_size), pair(m.padding)
    return tuple((n + 2 * pp - kk) // ss + 1 for n, kk, ss, pp in zip(size, k, s, p))


def has_partial_window(m, size, out):
    """ceil_mode made a difference at this input size: an extra last window that hangs past the
    (padded) input."""
    return m.ceil_mode and tuple(out) != floor_size(m, size)


def fits(modules, x, force):
    """The activation after `modules`, or None if PyTorch refuses the shape or it is empty, or a
    forced partial ceil_mode window did not happen at this size."""
    pool = modules[-1]
    try:
        with torch.no_grad():
            y = nn.Sequential(*modules).eval()(x)
    except RuntimeError:
        return None
    if y.numel() == 0:
        return None
    if force.get("partial") and not has_partial_window(pool, x.shape[2:], y.shape[2:]):
        return None
    return y


def draw_block(rng, kind, force, x, budget, act):
    """A block of `kind` that fits activation `x` and `budget`: (modules, its output), or None."""
    for _ in range(DRAWS):
        if kind == "conv":
            modules = draw_conv(rng, x.shape[1], force, act)
        elif kind in ("max", "avg"):
            modules = draw_pool(rng, kind, force)
        else:
            block = GRAPH_DRAW[kind](rng, x.shape[1], force, act)
            modules = [block] if block is not None else None
        if modules is None or stored_values(modules) > budget:
            continue
        y = fits(modules, x, force)
        if y is not None:
            return modules, y
    return None


# --- Building a network --------------------------------------------------------------------------------

Network = collections.namedtuple("Network", "model spec extra classes layers sequential focus")


def theme_index(position):
    """The ACTIVATIONS index of the graph network at `position` (seed + index): graph networks take
    them in turn, the sequential slots of GRAPH_FOCI skipped, so any len(ACTIVATIONS) consecutive graph
    networks hold every activation."""
    cycles, rest = divmod(position, len(GRAPH_FOCI))
    graphs = cycles * (len(GRAPH_FOCI) - len(SEQUENTIAL_SLOTS)) + sum(i not in SEQUENTIAL_SLOTS for i in range(rest))
    return graphs % len(ACTIVATIONS)


def build_network(seed, index, attempt=0):
    """Network `index` of `seed`, as a Network."""
    rng = random.Random(f"gapnet-parity/{seed}/{index}/{attempt}")
    gen = torch.Generator().manual_seed(rng.getrandbits(62))
    position = seed + index
    focus_kind, focus = FOCI[position % len(FOCI)]
    graph_kind, graph = GRAPH_FOCI[position % len(GRAPH_FOCI)]
    sequential = graph_kind == "sequential"
    # A graph network's theme: an activation it holds right after a convolution (fused by the
    # engine) and right after a pool (a layer of its own), and picks more often than the others.
    theme = None if sequential else ACTIVATION_KEYS[theme_index(position)]
    net = focus if focus_kind == "net" else {}

    def redraw(why):
        if attempt == 50:
            raise RuntimeError(f"seed {seed} network {index}: {why}, 50 times")
        return build_network(seed, index, attempt + 1)

    def act():
        """A random activation: ReLU in a sequential network (the exporter knows no other)."""
        if sequential:
            return nn.ReLU()
        key = theme if rng.random() < 0.3 else rng.choices(ACTIVATION_KEYS, weights=ACTIVATION_WEIGHTS)[0]
        return make_activation(rng, key)

    # The input and the head cycle with the index, so every HEAD_CYCLE consecutive networks hold each
    # combination of 1 or 3 channels and GAP-family or flatten head, both global pools, and each head
    # of the GAP family (dense; conv 1x1 to the classes; concat of both pools > dense).
    channels = 3 if (index // 2) % 2 else 1
    head = "flatten" if index % 2 else "gap"
    global_pool = "avg" if (index // 4) % 2 == 0 else "max"
    gap_head = ["dense", "conv", "concat"][(index // 2) % 3]
    if sequential and gap_head == "concat":
        gap_head = "dense"  # the exporter has no concat
    if "dense_bias" in net and gap_head == "conv":
        gap_head = "dense"  # the focus is a dense layer without bias
    height = 32 if rng.random() < 0.1 else rng.randint(8, 24)
    width = height
    while width == height and index % 5 != 4:  # every fifth input is square
        width = 32 if rng.random() < 0.1 else rng.randint(8, 24)
    spec = {
        "channels": channels,
        "height": height,
        "width": width,
        "scale": 1.0 / 255.0,
        "mean": [round(rng.uniform(0.2, 0.6), 3) for _ in range(channels)],
        "std": [round(rng.uniform(0.2, 0.5), 3) for _ in range(channels)],
    }
    classes = rng.randint(2, 10)

    # The body: 2 to 4 random conv or pool blocks, the focus block among the first two; in a graph
    # network also the graph focus block, 0 to 2 random graph blocks, and at least one pool.
    # A plan entry is (kind, forced options, whether the network must contain it).
    kinds = ["conv"] + rng.choices(["conv", "max", "avg"], weights=[5, 2, 2], k=rng.randint(1, 3))
    plan = [(kind, {}, False) for kind in kinds]
    if focus_kind != "net":
        plan.insert(0 if focus.get("first") else rng.randint(0, 1), (focus_kind, focus, True))
    if not sequential:
        for _ in range(rng.choice([0, 1, 1, 2])):
            plan.insert(rng.randint(1, len(plan)), (rng.choice(GRAPH_KINDS), {}, False))
        first = graph.get("first") and not focus.get("first")  # a pool focus that must come first wins
        plan.insert(0 if first else rng.randint(1, len(plan)), (graph_kind, graph, True))
        if not any(kind in ("max", "avg") for kind, _, _ in plan):
            plan.append((rng.choice(["max", "avg"]), {}, False))
    x = torch.zeros(1, channels, height, width)
    body, budget = [], BODY_BUDGET if sequential else GRAPH_BODY_BUDGET
    theme_fused = theme_alone = theme is None
    for kind, force, required in plan:
        if kind == "conv" and not theme_fused and "relu" not in force:
            force = {**force, "act": theme}
        block = draw_block(rng, kind, force, x, budget, act)
        if block is None and required:  # e.g. groups need 4, 6 or 8 channels: a plain conv first, then retry
            for _ in range(3):
                plain = {"groups": "none", "stride": 1, "channels": rng.choice([4, 6, 8])}
                prep = draw_block(rng, "conv", plain, x, budget, act)
                if prep is None:
                    break
                body += prep[0]
                budget -= stored_values(prep[0])
                x = prep[1]
                block = draw_block(rng, kind, force, x, budget, act)
                if block is not None:
                    break
            if block is None:  # e.g. the map is too small by now for a partial ceil_mode window
                return redraw(f"cannot place the focus {kind} {force}")
        if block is None:
            continue  # this random block does not fit the activation any more: leave it out
        modules, x = block
        budget -= stored_values(modules)
        theme_fused = theme_fused or "act" in force
        if kind in ("max", "avg") and not sequential:
            if not theme_alone:
                modules.append(make_activation(rng, theme))
                theme_alone = True
            elif rng.random() < 0.15:
                modules.append(act())
        if kind == "conv" and (net.get("nested") or rng.random() < 0.1):
            modules = [nn.Sequential(*modules)]  # the exporter flattens nested Sequentials
        if net.get("skipped") or rng.random() < 0.08:
            modules.append(rng.choice([nn.Dropout(0.25), nn.Dropout2d(0.1), nn.Identity()]))
        body += modules

    # The head. `last` is the layer spread_logits scales.
    dense_bias = net.get("dense_bias", rng.random() < 0.85)
    pool = nn.AdaptiveAvgPool2d if global_pool == "avg" else nn.AdaptiveMaxPool2d
    if head == "gap" and gap_head == "conv":  # SqueezeNet's: conv 1x1 to the classes > act > pool
        last = nn.Conv2d(x.shape[1], classes, 1, bias=dense_bias)
        head_act = nn.ReLU() if sequential else make_activation(rng, rng.choice(HEAD_ACTIVATIONS))
        tail = [last, head_act, pool(rng.choice([1, (1, 1)])), nn.Flatten()]
    elif head == "gap" and gap_head == "concat":
        last = nn.Linear(2 * x.shape[1], classes, bias=dense_bias)
        tail = [ConcatPool(max_first=rng.random() < 0.5), nn.Flatten(), last]
    elif head == "gap":
        last = nn.Linear(x.shape[1], classes, bias=dense_bias)
        tail = [pool(rng.choice([1, (1, 1)])), nn.Flatten(), last]
    else:
        while x[0].numel() > FLATTEN_FEATURES:  # pool down, so the dense layer stays small
            kernel = tuple(2 if n >= 2 else 1 for n in x.shape[2:])
            down = rng.choice([nn.MaxPool2d, nn.AvgPool2d])(kernel, ceil_mode=rng.random() < 0.5)
            body.append(down)
            x = down(x)
        hidden = rng.randint(4, 10)
        tail = [nn.Flatten(), nn.Linear(x[0].numel(), hidden, bias=dense_bias), act()]
        if net.get("skipped") or rng.random() < 0.2:
            tail.append(nn.Dropout(0.5))
        last = nn.Linear(hidden, classes, bias=dense_bias)
        tail.append(last)
    model = nn.Sequential(*body, *tail, nn.Softmax(dim=net.get("softmax_dim", rng.choice([1, 1, 1, -1]))))
    model.eval()

    randomize(model, gen)
    extra = gaussian_inputs(gen, channels, height, width)
    unit_scale(model, test_inputs(spec, extra), last, gen)
    if not spread_logits(model, spec, extra, rng.uniform(1.0, 3.0), last):
        return redraw("the output hardly depends on the input")
    if rounding_error(model, test_inputs(spec, extra)) > ROUNDING:
        return redraw("the output amplifies float32 rounding")
    if sequential:
        layers = export_pytorch.layer_dicts(model)
    else:
        layers = graph_layers(model, random.Random(rng.getrandbits(62)))
    text = f"{focus_kind} {json.dumps(focus)}; {graph_kind} {json.dumps(graph)}" + (f"; theme {theme}" if theme else "")
    network = Network(model, spec, extra, classes, layers, sequential, text)
    if theme:
        found = features(network, trace(model, test_inputs(spec, extra)))
        missing = [
            where
            for where in ("fused", "alone", "pieces")
            if f"act-{theme}-{where}" not in found and (where != "pieces" or theme in PIECEWISE)
        ]
        if missing:  # e.g. no pool fitted the map
            return redraw(f"the activation {theme} is missing ({', '.join(missing)})")
    return network


def randomize(model, gen):
    """Weights that keep activations at about unit scale; batch norm statistics far from identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = (3.0 / m.weight[0].numel()) ** 0.5  # variance 1 / fan_in
                m.weight.uniform_(-bound, bound, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.3, 0.3, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.3, 2.0, generator=gen)
                if m.affine:
                    sign = torch.randint(0, 2, (m.num_features,), generator=gen) * 2 - 1
                    m.weight.copy_(sign * torch.empty(m.num_features).uniform_(0.5, 1.5, generator=gen))
                    m.bias.uniform_(-0.5, 0.5, generator=gen)


def feeds_corners(following):
    """Whether the first of the leaf modules `following` a layer, batch norm, pools and skipped modules
    aside, is an activation with corners far from 0 (relu6 at 6, hard_swish and hard_sigmoid at +-3):
    a layer of unit scale would hardly ever reach them, and a wrong corner would go unnoticed."""
    for m in following:
        if not isinstance(m, (nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d) + SKIPPED_MODULES):
            return isinstance(m, (nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, HardSigmoid))
    return False


def unit_scale(model, inputs, last, gen):
    """A data-dependent initialization (as LSUV's): rescales each Conv2d and Linear but `last`, in the
    order they run, so that on `inputs` each output channel has standard deviation 1 (REACH if it
    feeds_corners) and, with a bias, a mean drawn from U(-0.3, 0.3).

    Why: randomize()'s fan-in rule assumes inputs of unit scale around 0. After squashing activations
    (sigmoid's outputs are about 0.5 +- 0.2) and pools, the signal is a small change on a large
    constant; a few such layers in a row leave an output that hardly depends on the input, and a
    constant below 0 leaves a ReLU dead. The gain is capped so that the constant removed is at most
    CANCELLATION times what is left, as a larger cancellation would amplify float32 rounding
    (rounding_error still rejects a network that does). A conv head's convolution is centred here,
    then scaled by spread_logits; a dense classifier (`last`) only there."""
    leaves = [m for m in trace(model, inputs) if not list(m.children())]
    with torch.no_grad():
        for i, layer in enumerate(leaves):
            if not (isinstance(layer, nn.Conv2d) or (isinstance(layer, nn.Linear) and layer is not last)):
                continue
            target = REACH if feeds_corners(leaves[i + 1 :]) else 1.0
            output = []
            handle = layer.register_forward_hook(lambda m, args, y: output.append(y))
            try:
                model(inputs)
            finally:
                handle.remove()
            y = output[0].transpose(0, 1).reshape(output[0].shape[1], -1)  # a row per output channel
            mean, spread = y.mean(dim=1), y.std(dim=1)
            if layer.bias is None:  # nothing to centre with: scale the root mean square
                gain = target / torch.clamp(y.square().mean(dim=1).sqrt(), min=1e-6)
            else:
                gain = target / torch.clamp(torch.maximum(spread, mean.abs() / CANCELLATION), min=1e-6)
                offset = torch.empty_like(mean).uniform_(-0.3, 0.3, generator=gen)
                layer.bias.copy_((layer.bias - mean) * gain + offset)
            layer.weight.mul_(gain.view(-1, *[1] * (layer.weight.dim() - 1)))


def gaussian_inputs(gen, channels, height, width):
    """GAUSSIAN_TESTS inputs of standard deviation about 1.5, larger and more often negative than
    preprocessed pixels: half pixel noise, half a smooth random field (4x4 values, bilinearly
    enlarged). Pooling averages pixel noise away, so after a few pools and squashing activations
    (sigmoid, tanh) inputs of pure noise all look alike; the field's shape survives."""
    noise = torch.randn(GAUSSIAN_TESTS, channels, height, width, generator=gen)
    coarse = torch.randn(GAUSSIAN_TESTS, channels, 4, 4, generator=gen)
    field = nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    return 1.5 * (noise + field * 1.3) / 2**0.5


def rounding_error(model, inputs):
    """The largest difference between PyTorch's outputs for `inputs` in float32 and in float64: how
    much the network amplifies rounding. gapnet rounds differently (other summation orders, Winograd,
    batch norm folded into the weights), so its outputs differ from PyTorch's by an amount of this
    order; a network where that comes near the tolerance would test the rounding, not the engine."""
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(inputs.double())
        return float((model(inputs).double() - exact).abs().max())


def test_inputs(spec, extra):
    """The inputs a file records: export()'s seeded random pixels, then `extra`."""
    return torch.cat([export_pytorch.random_inputs(spec, RANDOM_TESTS), extra])


def spread_logits(model, spec, extra, target, last):
    """Scales layer `last` (the classifier's dense or 1x1 conv) so the logits of the recorded inputs
    have standard deviation `target`; a few rounds, since an activation may follow a conv head. False
    if the logits hardly change from one input to another."""
    inputs = test_inputs(spec, extra)
    with torch.no_grad():
        for _ in range(8):
            spread = float(model[:-1](inputs).std())
            if spread < 1e-6:
                return False
            if abs(spread / target - 1) < 0.02:
                break
            last.weight.mul_(target / spread)
            if last.bias is not None:
                last.bias.mul_(target / spread)
        across_inputs = float(model[:-1](inputs).std(dim=0).mean())
    return across_inputs > 0.1 * target


# --- Writing a graph network as gapnet layers ----------------------------------------------------------


class GraphWriter:
    """The gapnet layer list being written: names each layer and wires its inputs."""

    def __init__(self, rng):
        self.rng, self.layers, self.counts = rng, [], {}

    def add(self, short, layer, inputs):
        """Appends `layer` (a gapnet layer dict; any "name" in it is replaced) reading the layers named
        `inputs`; returns its name."""
        self.counts[short] = self.counts.get(short, 0) + 1
        name = f"{short}{self.counts[short]}"
        layer = {key: value for key, value in layer.items() if key != "name"}
        previous = self.layers[-1]["name"] if self.layers else "input"
        wiring = {}
        if len(inputs) > 1:
            wiring["inputs"] = list(inputs)
        elif inputs[0] != previous:
            wiring["input"] = inputs[0]
        else:  # the previous layer is the default; now and then say so in either form the format has
            draw = self.rng.random()
            if draw < 0.06:
                wiring["inputs"] = [inputs[0]]
            elif draw < 0.12:
                wiring["input"] = inputs[0]
        self.layers.append({"type": layer.pop("type"), "name": name, **wiring, **layer})
        return name


def activation_layer(m):
    """The gapnet layer of activation module `m`."""
    if isinstance(m, nn.ReLU6):  # (a subclass of nn.Hardtanh)
        return {"type": "relu6"}
    if isinstance(m, nn.Hardtanh):
        return {"type": "clip", "min": float(m.min_val), "max": float(m.max_val)}
    if isinstance(m, Clamp):
        bounds = {"min": m.min, "max": m.max}
        return {"type": "clip", **{key: float(v) for key, v in bounds.items() if v is not None}}
    if isinstance(m, nn.LeakyReLU):  # PyTorch's default slope is left to gapnet's default
        return {"type": "leaky_relu", **({} if m.negative_slope == 0.01 else {"negative_slope": m.negative_slope})}
    if isinstance(m, nn.Hardsigmoid):  # relu6(x + 3) / 6
        return {"type": "hard_sigmoid", "alpha": 1.0 / 6.0, "beta": 0.5}
    if isinstance(m, HardSigmoid):
        return {"type": "hard_sigmoid", "alpha": m.alpha, "beta": m.beta}
    types = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Hardswish: "hard_swish", nn.SiLU: "silu", nn.Tanh: "tanh"}
    return {"type": types[type(m)]}


def dense_layer(m):
    """A Linear, or a 1x1 Conv2d applied to a 1x1 map (the same arithmetic), as a gapnet dense layer."""
    if isinstance(m, nn.Linear):
        (layer,) = export_pytorch.layer_dicts(nn.Sequential(m))
        return layer
    tensor = export_pytorch._tensor
    layer = {
        "type": "dense",
        "in_features": m.in_channels,
        "out_features": m.out_channels,
        "weight": tensor(m.weight.reshape(m.out_channels, m.in_channels), "base64"),
    }
    if m.bias is not None:
        layer["bias"] = tensor(m.bias, "base64")
    return layer


SHORT_NAMES = {
    "relu": "relu",
    "relu6": "relu6",
    "clip": "clip",
    "leaky_relu": "leaky",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hsigmoid",
    "hard_swish": "hswish",
    "silu": "silu",
    "tanh": "tanh",
}


def emit(m, w, source):
    """Writes module `m`, reading the layer named `source`, to GraphWriter `w`; returns the name of the
    layer holding its output."""
    if isinstance(m, nn.Sequential):
        children = list(m.children())
        i = 0
        while i < len(children):
            if isinstance(children[i], nn.ZeroPad2d):  # joins the Conv2d after it, as the exporter does
                (conv,) = export_pytorch.layer_dicts(nn.Sequential(children[i], children[i + 1]))
                source = w.add("conv", conv, [source])
                i += 2
            else:
                source = emit(children[i], w, source)
                i += 1
        return source
    if isinstance(m, SKIPPED_MODULES):  # nothing at inference: the next layer reads `source`
        return source
    if isinstance(m, Residual):
        # Any order of the branches is a valid graph; it decides which convolution the engine can
        # fuse the add into (the one computed right before it), so it is drawn too.
        branches = [("body", m.body), ("shortcut", m.shortcut)] + ([("extra", m.extra)] if m.extra is not None else [])
        w.rng.shuffle(branches)
        out = {key: emit(branch, w, source) for key, branch in branches}
        terms = [out["shortcut"], out["body"]] if m.shortcut_first else [out["body"], out["shortcut"]]
        if m.extra is not None:
            terms.append(out["extra"])
        return emit(m.act, w, w.add("add", {"type": "add"}, terms))
    if isinstance(m, Branches):
        source = emit(m.squeeze, w, source)
        outputs = [emit(branch, w, source) for branch in m.branches]
        return emit(m.act, w, w.add("concat", {"type": "concat"}, outputs))
    if isinstance(m, SqueezeExcite):
        s = w.add("gap", {"type": "global_avg_pool2d"}, [source])
        if w.rng.random() < 0.3:  # a flatten after a global pool changes nothing: allowed, seldom written
            s = w.add("flatten", {"type": "flatten"}, [s])
        s = w.add("fc", dense_layer(m.fc1), [s])
        s = emit(m.act, w, s)
        s = w.add("fc", dense_layer(m.fc2), [s])
        s = emit(m.gate, w, s)
        return w.add("mul", {"type": "multiply"}, [s, source] if m.gate_first else [source, s])
    if isinstance(m, Gated):
        branches = [("value", m.value), ("gate", m.gate)]
        w.rng.shuffle(branches)
        out = {key: emit(branch, w, source) for key, branch in branches}
        terms = [out["value"], out["gate"]]
        if m.with_input:
            terms = [source] + terms if m.input_first else terms + [source]
        return w.add("mul", {"type": "multiply"}, terms)
    if isinstance(m, ConcatPool):
        avg = w.add("gap", {"type": "global_avg_pool2d"}, [source])
        top = w.add("gmp", {"type": "global_max_pool2d"}, [source])
        return w.add("concat", {"type": "concat"}, [top, avg] if m.max_first else [avg, top])
    if isinstance(m, ACTIVATION_MODULES):
        layer = activation_layer(m)
        return w.add(SHORT_NAMES[layer["type"]], layer, [source])
    (layer,) = export_pytorch.layer_dicts(nn.Sequential(m))  # the exporter's own conversion
    return w.add(layer["name"].rstrip("0123456789"), layer, [source])


def graph_layers(model, rng):
    """The gapnet layers of `model`, wired with "input"/"inputs"; `rng` draws the writer's free choices
    (branch order, how a default input is written)."""
    w = GraphWriter(rng)
    emit(model, w, "input")
    return w.layers


def write_graph(path, network, name, metadata):
    """Writes a graph network's file as export_pytorch.export writes a sequential one: the input spec,
    the layers, and PyTorch's outputs for the test inputs."""
    spec = export_pytorch._complete_spec(network.spec)
    inputs = test_inputs(spec, network.extra)
    with torch.no_grad():
        outputs = network.model(inputs)
    tensor = export_pytorch._tensor
    doc = {
        "format": "gapnet",
        "version": 1,
        "name": name,
        "input": spec,
        "labels": [f"class{i}" for i in range(network.classes)],
        "layers": network.layers,
        "tests": [{"input": tensor(x, "base64"), "output": tensor(y, "base64")} for x, y in zip(inputs, outputs)],
        "metadata": metadata,
    }
    with open(path, "w") as f:
        json.dump(doc, f)
        f.write("\n")


# --- Reading a network back: description and coverage ------------------------------------------------


def activation_pieces(m):
    """The linear pieces of activation module `m`, as (name, test of its input x); [] for a smooth one."""
    if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
        return [("x < 0", lambda x: x < 0), ("x > 0", lambda x: x > 0)]
    if isinstance(m, nn.Hardtanh):  # nn.ReLU6 too: 0 and 6
        low, high = m.min_val, m.max_val
        return [
            ("x < min", lambda x: x < low),
            ("min < x < max", lambda x: (x > low) & (x < high)),
            ("x > max", lambda x: x > high),
        ]
    if isinstance(m, Clamp):
        bound = m.min if m.min is not None else m.max
        return [("x < bound", lambda x: x < bound), ("x > bound", lambda x: x > bound)]
    if isinstance(m, (nn.Hardsigmoid, HardSigmoid)):
        alpha, beta = (1.0 / 6.0, 0.5) if isinstance(m, nn.Hardsigmoid) else (m.alpha, m.beta)
        return [
            ("0", lambda x: alpha * x + beta < 0),
            ("1", lambda x: alpha * x + beta > 1),
            ("ramp", lambda x: (alpha * x + beta > 0) & (alpha * x + beta < 1)),
        ]
    if isinstance(m, nn.Hardswish):
        return [("x < -3", lambda x: x < -3), ("-3 < x < 3", lambda x: (x > -3) & (x < 3)), ("x > 3", lambda x: x > 3)]
    return []


def trace(model, inputs):
    """{module: (input shape, output shape, smallest input value, whether the input reached every linear
    piece of the module, for an activation)} for every module `inputs` ran through, in the order each
    finished (leaves in the order they ran). Shapes are without the batch."""
    seen = {}

    def hook(m, args, out):
        x = args[0]
        every_piece = all(bool(test(x).any()) for _, test in activation_pieces(m))
        seen.setdefault(m, (tuple(x.shape[1:]), tuple(out.shape[1:]), float(x.min()), every_piece))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def hw(v):
    v = pair(v)
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def describe_module(m):
    """A short text for one leaf module and its options."""
    if isinstance(m, nn.Conv2d):
        text = f"conv{hw(m.kernel_size)}({m.in_channels}>{m.out_channels}"
        if pair(m.stride) != (1, 1):
            text += f" s{hw(m.stride)}"
        if m.padding not in ((0, 0), "valid"):
            text += " same" if m.padding == "same" else f" p{hw(m.padding)}"
        if pair(m.dilation) != (1, 1):
            text += f" d{hw(m.dilation)}"
        if m.groups > 1:
            text += " dw" if m.groups == m.in_channels else f" g{m.groups}"
        return text + ("" if m.bias is not None else " nobias") + ")"
    if isinstance(m, nn.ZeroPad2d):
        return "zeropad(l,r,t,b=" + ",".join(str(v) for v in m.padding) + ")"
    if isinstance(m, nn.BatchNorm2d):
        options = ([] if m.affine else ["affine=False"]) + ([] if m.eps == 1e-5 else [f"eps={m.eps:g}"])
        return "bn" + (f"({' '.join(options)})" if options else "")
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        text = ("max" if isinstance(m, nn.MaxPool2d) else "avg") + f"pool{hw(m.kernel_size)}"
        options = [f"s{hw(m.stride)}"] if m.stride is not None and pair(m.stride) != pair(m.kernel_size) else []
        options += [f"p{hw(m.padding)}"] if pair(m.padding) != (0, 0) else []
        options += ["ceil"] if m.ceil_mode else []
        options += ["excl-pad"] if isinstance(m, nn.AvgPool2d) and not m.count_include_pad else []
        return text + (f"({' '.join(options)})" if options else "")
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return "global-avg"
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return "global-max"
    if isinstance(m, nn.Linear):
        return f"dense({m.in_features}>{m.out_features}{'' if m.bias is not None else ' nobias'})"
    if isinstance(m, nn.Softmax):
        return "softmax" + ("" if m.dim == 1 else f"(dim={m.dim})")
    if isinstance(m, nn.ReLU6):
        return "relu6"
    if isinstance(m, nn.Hardtanh):
        return f"clip({m.min_val:g},{m.max_val:g})"
    if isinstance(m, Clamp):
        return "clip(" + (f"min={m.min:g}" if m.min is not None else f"max={m.max:g}") + ")"
    if isinstance(m, nn.LeakyReLU):
        return f"leaky({m.negative_slope:g})"
    if isinstance(m, nn.Hardsigmoid):
        return "hsigmoid"
    if isinstance(m, HardSigmoid):
        return f"hsigmoid({m.alpha:g},{m.beta:g})"
    if isinstance(m, nn.Hardswish):
        return "hswish"
    return type(m).__name__.lower()


def describe(module, seen):
    """`module` on one line: each layer, the shape after each convolution, pool and graph block."""

    def shape(m):
        return " [" + "x".join(str(n) for n in seen[m][1]) + "]" if m in seen else ""

    def inner(m):  # a branch: x itself, or its layers
        return "x" if isinstance(m, nn.Identity) else describe(m, seen)

    def after(act):  # a block's activation after its merge, if any
        return "" if isinstance(act, nn.Identity) else " > " + describe_module(act)

    if type(module) is nn.Sequential:
        return " > ".join(describe(child, seen) for child in module.children())
    if isinstance(module, SeparableConv):
        return "separable(" + " > ".join(describe(child, seen) for child in module.children()) + ")" + shape(module)
    if isinstance(module, Residual):
        terms = [inner(module.body), inner(module.shortcut)]
        if module.shortcut_first:
            terms.reverse()
        terms += [inner(module.extra)] if module.extra is not None else []
        text = "residual(" + " + ".join(f"[{t}]" for t in terms) + ")"
        return text + after(module.act) + shape(module)
    if isinstance(module, Branches):
        squeeze = "" if isinstance(module.squeeze, nn.Identity) else describe(module.squeeze, seen) + " > "
        text = f"{module.style}({squeeze}cat(" + " | ".join(inner(b) for b in module.branches) + "))"
        return text + after(module.act) + shape(module)
    if isinstance(module, SqueezeExcite):
        gate = " > ".join(describe_module(m) for m in (module.fc1, module.act, module.fc2, module.gate))
        return f"se(gap > {gate}; {'s*x' if module.gate_first else 'x*s'})"
    if isinstance(module, Gated):
        terms = [f"[{describe(module.value, seen)}]", f"[{describe(module.gate, seen)}]"]
        if module.with_input:
            terms = ["x"] + terms if module.input_first else terms + ["x"]
        return "gated(" + " * ".join(terms) + ")" + shape(module)
    if isinstance(module, ConcatPool):
        return "cat(global-max, global-avg)" if module.max_first else "cat(global-avg, global-max)"
    shown = isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    return describe_module(module) + (shape(module) if shown else "")


# Every feature a set must contain: (key, what it means). FOCI places each layer option, GRAPH_FOCI each
# block, the graph networks' themes each activation's positions; the input's channels and shape, the
# head and the global pool cycle with the network's index (build_network). The rest (a flatten after a
# global pool, "inputs" of one name, ...) is drawn often enough to be in any COVERAGE_COUNT networks.
FEATURES = [
    ("input-1ch", "1-channel input"),
    ("input-3ch", "3-channel input"),
    ("input-nonsquare", "non-square input (H != W)"),
    ("input-square", "square input"),
    ("conv-k1", "conv kernel 1"),
    ("conv-k3", "conv kernel 3"),
    ("conv-k5", "conv kernel 5"),
    ("conv-k7", "conv kernel 7"),
    ("conv-k-even", "conv even kernel (2, 4 or 6)"),
    ("conv-k-nonsquare", "conv non-square kernel"),
    ("conv-s1", "conv stride 1"),
    ("conv-s2", "conv stride 2"),
    ("conv-s-aniso", "conv stride differs per axis"),
    ("conv-pad0", "conv no padding"),
    ("conv-pad-sym", "conv symmetric padding, same on both axes"),
    ("conv-pad-hw", "conv symmetric padding, different per axis"),
    ("conv-pad-same-asym", "conv asymmetric padding from padding='same' (even reach)"),
    ("conv-pad-zeropad", "conv asymmetric padding from ZeroPad2d"),
    ("conv-dilation", "conv dilation > 1"),
    ("conv-grouped", "conv grouped (1 < groups < in_channels)"),
    ("conv-depthwise", "conv depthwise (groups = in_channels = out_channels)"),
    ("conv-depthwise-x2", "conv depthwise, 2 outputs per channel"),
    ("conv-bias", "conv with bias"),
    ("conv-nobias", "conv without bias"),
    ("bn-affine", "batch norm, affine"),
    ("bn-noaffine", "batch norm, affine=False"),
    ("bn-eps", "batch norm, eps != 1e-5"),
    ("relu", "ReLU in the body"),
    ("max-floor", "max_pool2d ceil_mode=False"),
    ("max-ceil", "max_pool2d ceil_mode=True, partial last window"),
    ("max-pad", "max_pool2d padding > 0"),
    ("max-pad-negative", "max_pool2d padding > 0 on negative values"),
    ("max-overlap", "max_pool2d stride < kernel (overlapping)"),
    ("max-nonsquare", "max_pool2d non-square kernel"),
    ("avg-floor", "avg_pool2d ceil_mode=False"),
    ("avg-ceil", "avg_pool2d ceil_mode=True, partial last window"),
    ("avg-pad-incl", "avg_pool2d padding > 0, count_include_pad=True"),
    ("avg-pad-excl", "avg_pool2d padding > 0, count_include_pad=False"),
    ("avg-ceil-pad-incl", "avg_pool2d partial ceil window + padding, count_include_pad=True"),
    ("avg-ceil-pad-excl", "avg_pool2d partial ceil window + padding, count_include_pad=False"),
    ("global-avg", "AdaptiveAvgPool2d(1)"),
    ("global-max", "AdaptiveMaxPool2d(1)"),
    ("head-gap", "head: global pool > flatten > dense > softmax"),
    ("head-flatten", "head: flatten > dense > activation > dense > softmax"),
    ("dense-nobias", "dense without bias"),
    ("softmax-dim-last", "Softmax(dim=-1)"),
    ("skipped", "Dropout / Identity (skipped by the exporter)"),
    ("nested", "nested nn.Sequential"),
    # Graph networks: the kinds of network and head, and each block kind (from the modules).
    ("network-sequential", "sequential network, written by export_pytorch.export"),
    ("network-graph", "graph network, written by this generator's graph_layers"),
    ("head-conv", "head: conv 1x1 to the classes > activation > global pool > softmax"),
    ("head-concat-pool", "head: concat(global avg, global max) > dense > softmax"),
    ("residual-basic", "residual block: conv > conv (ResNet basic block)"),
    ("residual-inverted", "residual block: expand 1x1 > depthwise > project 1x1 (MobileNetV2)"),
    ("residual-identity", "residual block, identity shortcut"),
    ("residual-projection", "residual block, 1x1 conv projection shortcut"),
    ("residual-avgpool", "residual block, avg pool > 1x1 conv shortcut (ResNet-D)"),
    ("residual-strided", "residual block of stride 2"),
    ("residual-3", "residual block adding 3 terms"),
    ("residual-se", "residual block with an SE gate in its body (SE-ResNet)"),
    ("concat-fire", "concat block: Fire (squeeze 1x1, then expand 1x1 and expand 3x3)"),
    ("concat-inception", "concat block: inception branches"),
    ("concat-inception-3", "concat block: inception with 3 branches"),
    ("concat-pool-branch", "concat block: a branch that is or starts with a pool"),
    ("concat-dense", "concat block: [x, conv(x)] (DenseNet)"),
    ("se-sigmoid", "SE gate: sigmoid"),
    ("se-hard_sigmoid", "SE gate: hard_sigmoid"),
    ("se-linear", "SE gate: nn.Linear FC layers"),
    ("se-conv1x1", "SE gate: 1x1 Conv2d FC layers, written as dense"),
    ("gated-2", "gated block: conv(x) * gate(conv(x))"),
    ("gated-3", "gated block: 3 maps, x among them"),
    ("separable", "depthwise-separable conv"),
    ("separable-strided", "depthwise-separable conv, stride 2"),
    # ...and the new layer types as gapnet is given them (from the layers written).
    ("add-2", "add of 2 inputs"),
    ("add-3", "add of 3 inputs"),
    ("add-fused", "add right after one of its convs (> bn): fusable"),
    ("add-fused-act", "conv (> bn) > add > activation: fusable chain"),
    ("concat-maps-2", "concat of 2 feature maps"),
    ("concat-maps-3", "concat of 3 feature maps"),
    ("concat-vectors", "concat of vectors"),
    ("multiply-broadcast", "multiply: feature map by a per-channel vector"),
    ("multiply-vector-first", "multiply: the per-channel vector is inputs[0]"),
    ("multiply-maps", "multiply of equal-shape feature maps"),
    ("multiply-3", "multiply of 3 inputs"),
    ("merge-reads-input", "add / concat / multiply reading the model input"),
    ("merge-same-input-twice", "a merge reading one layer twice"),
    ("inputs-list-of-one", '"inputs": [one name]'),
    ("input-explicit", '"input": the previous layer, written'),
    ("act-after-dense", "activation right after a dense (fusable)"),
    ("act-on-vector", "activation of a vector"),
] + [
    (f"act-{key}-{where}", f"{meaning}: {text}")
    for key, meaning in ACTIVATIONS
    for where, text in (
        ("fused", "right after conv / conv > bn / dense / add (fusable)"),
        ("alone", "as a layer of its own"),
        ("pieces", "one layer's inputs on each of its linear pieces"),
    )
    if where != "pieces" or key in PIECEWISE
]


def features(network, seen):
    """The FEATURES keys of the modules of `network` (traced: `seen`)."""
    model, spec = network.model, network.spec
    found = {
        "input-1ch" if spec["channels"] == 1 else "input-3ch",
        "input-square" if spec["height"] == spec["width"] else "input-nonsquare",
        "network-sequential" if network.sequential else "network-graph",
    }
    if any(type(m) is nn.Sequential for m in model.children()):
        found.add("nested")
    steps = [(m, shape, out, low) for m, (shape, out, low, _) in seen.items() if not list(m.children())]
    types = [type(m) for m, _, _, _ in steps]
    for i, (m, shape, out, low) in enumerate(steps):
        after_pad = i > 0 and isinstance(steps[i - 1][0], nn.ZeroPad2d)
        if isinstance(m, nn.Conv2d):
            kernel, stride = pair(m.kernel_size), pair(m.stride)
            found.update(f"conv-k{k}" for k in kernel if k in (1, 3, 5, 7))
            if any(k % 2 == 0 for k in kernel):
                found.add("conv-k-even")
            if kernel[0] != kernel[1]:
                found.add("conv-k-nonsquare")
            found.add("conv-s-aniso" if stride[0] != stride[1] else f"conv-s{stride[0]}")
            reach = [d * (k - 1) for d, k in zip(pair(m.dilation), kernel)]
            if after_pad:
                found.add("conv-pad-zeropad")
            elif m.padding == "same" and any(reach):
                found.add("conv-pad-same-asym" if any(r % 2 for r in reach) else "conv-pad-sym")
            elif m.padding in ("same", "valid") or pair(m.padding) == (0, 0):
                found.add("conv-pad0")
            else:
                found.add("conv-pad-sym" if m.padding[0] == m.padding[1] else "conv-pad-hw")
            if pair(m.dilation) != (1, 1):
                found.add("conv-dilation")
            if m.groups > 1 and m.groups == m.in_channels:
                found.add("conv-depthwise" if m.out_channels == m.in_channels else "conv-depthwise-x2")
            elif m.groups > 1:
                found.add("conv-grouped")
            found.add("conv-bias" if m.bias is not None else "conv-nobias")
        elif isinstance(m, nn.BatchNorm2d):
            found.add("bn-affine" if m.affine else "bn-noaffine")
            if m.eps != 1e-5:
                found.add("bn-eps")
        elif type(m) is nn.ReLU and nn.Flatten not in types[:i]:
            found.add("relu")
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            partial = has_partial_window(m, shape[1:], out[1:])
            padded = pair(m.padding) != (0, 0)
            found.add(f"{kind}-ceil" if partial else f"{kind}-floor")
            if kind == "max":
                if padded:
                    found.add("max-pad")
                    if low < 0:
                        found.add("max-pad-negative")
                if any(s < k for s, k in zip(pair(m.stride), pair(m.kernel_size))):
                    found.add("max-overlap")
                if pair(m.kernel_size)[0] != pair(m.kernel_size)[1]:
                    found.add("max-nonsquare")
            elif padded:
                which = "incl" if m.count_include_pad else "excl"
                found.add(f"avg-pad-{which}")
                if partial:
                    found.add(f"avg-ceil-pad-{which}")
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            found.add("global-avg")
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            found.add("global-max")
        elif isinstance(m, nn.Linear) and m.bias is None:
            found.add("dense-nobias")
        elif isinstance(m, nn.Softmax) and m.dim == -1:
            found.add("softmax-dim-last")
        if isinstance(m, ACTIVATION_MODULES) and activation_pieces(m) and seen[m][3]:
            found.add(f"act-{activation_key_of(m)}-pieces")

    # The head, from the top level's modules (Dropout and Identity skipped, as the exporter does).
    top = [m for m in model.children() if not isinstance(m, SKIPPED_MODULES)]
    kinds = [type(m) for m in top]
    pools = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    if len(top) >= 4 and kinds[-4] in pools and kinds[-3:] == [nn.Flatten, nn.Linear, nn.Softmax]:
        found.add("head-gap")
    if (
        len(top) >= 5
        and kinds[-5:-3] == [nn.Flatten, nn.Linear]
        and isinstance(top[-3], ACTIVATION_MODULES)
        and kinds[-2:] == [nn.Linear, nn.Softmax]
    ):
        found.add("head-flatten")
    if (
        len(top) >= 5
        and kinds[-5] is nn.Conv2d
        and isinstance(top[-4], ACTIVATION_MODULES)
        and kinds[-3] in pools
        and kinds[-2:] == [nn.Flatten, nn.Softmax]
    ):
        found.add("head-conv")
    if len(top) >= 4 and kinds[-4:] == [ConcatPool, nn.Flatten, nn.Linear, nn.Softmax]:
        found.add("head-concat-pool")

    # Skipped modules: those the writers leave out, in a Sequential (a block's nn.Identity is x itself).
    for m in model.modules():
        if isinstance(m, nn.Sequential) and any(isinstance(c, SKIPPED_MODULES) for c in m.children()):
            found.add("skipped")

    # The graph blocks.
    for m in model.modules():
        if isinstance(m, Residual):
            depthwise = any(isinstance(c, nn.Conv2d) and c.groups > 1 for c in m.body.modules())
            found.add("residual-inverted" if depthwise else "residual-basic")
            for branch in [m.shortcut] + ([m.extra] if m.extra is not None else []):
                if isinstance(branch, nn.Identity):
                    found.add("residual-identity")
                elif any(isinstance(c, nn.AvgPool2d) for c in branch.modules()):
                    found.add("residual-avgpool")
                else:
                    found.add("residual-projection")
            if seen[m][0][1:] != seen[m][1][1:]:
                found.add("residual-strided")
            if m.extra is not None:
                found.add("residual-3")
            if any(isinstance(c, SqueezeExcite) for c in m.body.modules()):
                found.add("residual-se")
        elif isinstance(m, Branches):
            found.add(f"concat-{m.style}")
            if m.style == "inception" and len(m.branches) == 3:
                found.add("concat-inception-3")
            for branch in m.branches:
                first = next(iter(branch.children()), branch)
                if isinstance(first, (nn.MaxPool2d, nn.AvgPool2d)):
                    found.add("concat-pool-branch")
        elif isinstance(m, SqueezeExcite):
            found.add("se-sigmoid" if isinstance(m.gate, nn.Sigmoid) else "se-hard_sigmoid")
            found.add("se-conv1x1" if m.conv else "se-linear")
        elif isinstance(m, Gated):
            found.add("gated-3" if m.with_input else "gated-2")
        elif isinstance(m, SeparableConv):
            found.add("separable")
            if seen[m][0][1:] != seen[m][1][1:]:
                found.add("separable-strided")
    return found | graph_features(network.layers)


def activation_key_of(m):
    """The ACTIVATIONS key of activation module `m`."""
    if isinstance(m, nn.ReLU6):
        return "relu6"
    if isinstance(m, Clamp):
        return "clip-min" if m.min is not None else "clip-max"
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu-default" if m.negative_slope == 0.01 else "leaky_relu"
    types = {
        nn.ReLU: "relu",
        nn.Hardtanh: "clip",
        nn.Sigmoid: "sigmoid",
        nn.Hardsigmoid: "hard_sigmoid",
        HardSigmoid: "hard_sigmoid-random",
        nn.Hardswish: "hard_swish",
        nn.SiLU: "silu",
        nn.Tanh: "tanh",
    }
    return types[type(m)]


def activation_key(layer):
    """The ACTIVATIONS key of a gapnet activation layer."""
    kind = layer["type"]
    if kind == "clip":
        return "clip" if "min" in layer and "max" in layer else "clip-min" if "min" in layer else "clip-max"
    if kind == "leaky_relu":
        return "leaky_relu" if "negative_slope" in layer else "leaky_relu-default"
    if kind == "hard_sigmoid":
        return "hard_sigmoid" if (layer["alpha"], layer["beta"]) == (1.0 / 6.0, 0.5) else "hard_sigmoid-random"
    return kind


def graph_features(layers):
    """The FEATURES keys of gapnet layers `layers`: merges, and where each activation is."""
    found = set()
    index = {layer["name"]: i for i, layer in enumerate(layers)}
    sources = []
    for i, layer in enumerate(layers):
        if "inputs" in layer:
            sources.append(list(layer["inputs"]))
            if len(layer["inputs"]) == 1:
                found.add("inputs-list-of-one")
        elif "input" in layer:
            sources.append([layer["input"]])
            if i > 0 and layer["input"] == layers[i - 1]["name"]:
                found.add("input-explicit")
        else:
            sources.append([layers[i - 1]["name"] if i else "input"])
    readers = collections.Counter(name for names in sources for name in names)
    vector = {"input": False}  # whether each layer outputs a vector (else a feature map)
    for layer, names in zip(layers, sources):
        if layer["type"] in ("global_avg_pool2d", "global_max_pool2d", "flatten", "dense", "softmax"):
            vector[layer["name"]] = True
        else:  # element-wise layers, add and concat keep their first input's kind; multiply its largest
            vector[layer["name"]] = all(vector[n] for n in names) if layer["type"] == "multiply" else vector[names[0]]

    def conv_step(name):
        """Layer `name` is a conv2d, or a batch_norm2d right after the conv2d it alone reads: one step."""
        i = index.get(name)
        if i is None:
            return False
        if layers[i]["type"] == "conv2d":
            return True
        return (
            layers[i]["type"] == "batch_norm2d"
            and i > 0
            and sources[i] == [layers[i - 1]["name"]]
            and layers[i - 1]["type"] == "conv2d"
            and readers[layers[i - 1]["name"]] == 1
        )

    def fusable(i):
        """Layer i reads, alone, the step computed right before it, and the engine can fuse the two
        (Graph::fuse with the fused_with of conv2d, dense and the fused add)."""
        if i == 0:
            return False
        before = layers[i - 1]["name"]
        if before not in sources[i] or readers[before] != 1:
            return False
        if layers[i]["type"] == "add":
            return len(sources[i]) == 2 and conv_step(before)
        if layers[i]["type"] in ACTIVATION_TYPES:
            kind = layers[i - 1]["type"]
            return kind == "dense" or conv_step(before) or (kind == "add" and fusable(i - 1))
        return False

    for i, (layer, names) in enumerate(zip(layers, sources)):
        kind = layer["type"]
        if kind in ACTIVATION_TYPES:
            found.add(f"act-{activation_key(layer)}-{'fused' if fusable(i) else 'alone'}")
            if fusable(i) and layers[i - 1]["type"] == "dense":
                found.add("act-after-dense")
            if fusable(i) and layers[i - 1]["type"] == "add":
                found.add("add-fused-act")
            if vector[layer["name"]]:
                found.add("act-on-vector")
        elif kind == "add":
            found.add("add-2" if len(names) == 2 else "add-3")
            if fusable(i):
                found.add("add-fused")
        elif kind == "concat":
            if vector[names[0]]:
                found.add("concat-vectors")
            else:
                found.add("concat-maps-2" if len(names) == 2 else "concat-maps-3")
        elif kind == "multiply":
            kinds = [vector[n] for n in names]
            if any(kinds) and not all(kinds):
                found.add("multiply-broadcast")
                if kinds[0]:
                    found.add("multiply-vector-first")
            else:
                found.add("multiply-maps")
            if len(names) == 3:
                found.add("multiply-3")
        if len(names) > 1 and "input" in names:
            found.add("merge-reads-input")
        if len(set(names)) < len(names):
            found.add("merge-same-input-twice")
    return found


# --- Writing and verifying -----------------------------------------------------------------------------


def write_cases(out, seed, count):
    """Writes the networks; returns [(path, features, layer types)]. Prints one line per network."""
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(out, f"parity-{seed}-*.json")):
        os.remove(stale)  # a smaller --count must not leave the previous run's files behind
    written = []
    for index in range(count):
        network = build_network(seed, index)
        name = f"parity-{seed}-{index:03d}"
        path = os.path.join(out, name + ".json")
        seen = trace(network.model, test_inputs(network.spec, network.extra))
        description = describe(network.model, seen)
        metadata = {
            "generator": "tools/gen_parity_cases.py",
            "seed": seed,
            "index": index,
            "focus": network.focus,
            "network": description,
        }
        if network.sequential:
            labels = [f"class{i}" for i in range(network.classes)]
            export_pytorch.export(
                network.model,
                path,
                network.spec,
                labels,
                name=name,
                tests=RANDOM_TESTS,
                test_inputs=network.extra,
                metadata=metadata,
            )
        else:
            write_graph(path, network, name, metadata)
        spec = network.spec
        print(
            f"{name}.json  {spec['channels']}x{spec['height']}x{spec['width']}  "
            f"{stored_values([network.model]):,} values  {description}",
            flush=True,
        )
        types = collections.Counter(layer["type"] for layer in network.layers)
        written.append((path, features(network, seen), types))
    return written


def coverage_table(written):
    """The markdown table of FEATURES: how many networks contain each, and the first one; then how many
    layers of each type the files hold."""
    lines = ["| feature | networks | first |", "|---|---:|---|"]
    for key, meaning in FEATURES:
        having = [os.path.basename(path) for path, found, _ in written if key in found]
        lines.append(f"| {meaning} | {len(having)} | {having[0] if having else '**none**'} |")
    layers = sum((types for _, _, types in written), collections.Counter())
    lines += ["", "| layer type | layers | networks |", "|---|---:|---:|"]
    for kind, total in sorted(layers.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"| {kind} | {total} | {sum(1 for _, _, types in written if kind in types)} |")
    return "\n".join(lines)


def verify(gapnet, paths):
    """Runs `gapnet verify` on each file; returns (failures, largest difference, its file)."""
    failures, largest, worst = [], 0.0, None
    for path in paths:
        run = subprocess.run(
            [gapnet, "verify", "--tolerance", str(TOLERANCE), "--json", path], capture_output=True, text=True
        )
        message = run.stderr.strip()
        try:
            report = json.loads(run.stdout)
        except ValueError:
            report = None
        if run.returncode != 0 or report is None or not report["passed"]:
            failures.append(f"{path}: {message or run.stdout.strip() or f'exit status {run.returncode}'}")
        if report is not None and report["largest_difference"] >= largest:
            largest, worst = report["largest_difference"], path
    return failures, largest, worst


def main():
    ap = argparse.ArgumentParser(
        description="Write seeded random PyTorch networks, with PyTorch's outputs, " "as gapnet parity cases."
    )
    ap.add_argument("--out", required=True, help="the folder to write parity-SEED-NNN.json into")
    ap.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    ap.add_argument(
        "--count",
        type=int,
        default=40,
        help=f"how many networks (default 40; {COVERAGE_COUNT} or more contain every feature)",
    )
    ap.add_argument("--gapnet", help="then run PATH verify on every file written; exit 1 if any fails")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.gapnet and not os.access(args.gapnet, os.X_OK):
        ap.error(f"--gapnet {args.gapnet}: not an executable file")

    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")  # speed, not results
    torch.set_num_threads(1)  # the recorded outputs then do not depend on the machine's core count
    written = write_cases(args.out, args.seed, args.count)
    print(f"\nwrote {len(written)} networks to {args.out} (seed {args.seed})\n")
    print(coverage_table(written))
    missing = [meaning for key, meaning in FEATURES if not any(key in found for _, found, _ in written)]
    status = 0
    if missing and args.count >= COVERAGE_COUNT:
        print(f"\ngen_parity_cases: error: no network contains: {'; '.join(missing)}", file=sys.stderr)
        status = 1
    if args.gapnet:
        failures, largest, worst = verify(args.gapnet, [path for path, _, _ in written])
        print(
            f"\ngapnet verify: {len(written) - len(failures)} of {len(written)} files match PyTorch within "
            f"{TOLERANCE:g}; largest difference {largest:.3g} ({worst})"
        )
        for failure in failures:
            print(f"gen_parity_cases: error: gapnet verify failed: {failure}", file=sys.stderr)
        if failures:
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
