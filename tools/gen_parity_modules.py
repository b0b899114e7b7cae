"""The PyTorch modules of the parity generator's graph networks (residual, branches, squeeze-excite,
gated, separable, the concat pool), one per graph block, and the activations by key."""

import torch
import torch.nn as nn


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
