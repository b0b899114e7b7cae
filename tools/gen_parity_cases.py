#!/usr/bin/python3
"""Randomized parity cases: small seeded PyTorch networks that gapnet must reproduce to 1e-5.

What: this draws small nn.Sequential networks from every module and option that
tools/export_pytorch.py maps to gapnet (convolutions of kernel 1/3/5/7, stride 1 and 2, symmetric and
per-side padding, dilation, groups and depthwise, with and without bias; batch norm with random
running statistics, affine or not; ReLU; max and average pooling with padding, ceil_mode and
count_include_pad; both global pools; both classifier heads; 1- and 3-channel, square and non-square
inputs), each ending in Softmax, and exports each with export_pytorch.export(), which records
PyTorch's outputs for fixed inputs in the file's "tests". `gapnet verify` and tests/test_parity.cpp
re-run those inputs: every probability must be within 1e-5 (absolute) of PyTorch's.

Why: tests/test_layers.cpp checks each layer against values worked out by hand, which covers the cases
someone thought of. Random combinations (a ceil_mode window that starts in the padding, a dilated
grouped convolution on a non-square map, max pooling of negative values next to zero padding, ...)
find the ones nobody wrote down, with PyTorch as the reference.

    /usr/bin/python3 tools/gen_parity_cases.py --out DIR [--seed 0] [--count 40] [--gapnet PATH]

How: network i of seed S depends only on (S, i), so a seed always gives the same files. Each network
is built around a "focus", an option it must contain, taken in turn from FOCI, so any len(FOCI)
consecutive networks contain every option; everything else in it is random. What a network contains
is read back from its modules (not from the plan), printed one line per network, and summed up in a
coverage table; when --count is at least len(FOCI), a feature no network contains is an error. Weights
are drawn so that activations keep their scale, and the last Linear layer is scaled so the logits
spread by 1 to 3: a softmax that is neither saturated nor uniform, so a wrong value shows.

With --gapnet, every file written is then checked with `gapnet verify --tolerance 1e-5`; the program
exits with status 1, naming each failing file and gapnet's message, if any fails. PyTorch must be
importable (Debian's python3-torch, for /usr/bin/python3): without it this fails, it never skips.
"""
import argparse
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
    sys.exit(f"gen_parity_cases: error: PyTorch is required ({error}); install python3-torch and run "
             "this with /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402

TOLERANCE = 1e-5          # absolute, on probabilities: gapnet verify's T * max(1, |r|) with |r| <= 1
RANDOM_TESTS = 2          # seeded random-pixel inputs export() records per network...
GAUSSIAN_TESTS = 1        # ...plus this many N(0, 1.5^2) inputs: larger and more often negative
BODY_BUDGET = 2400        # stored values (weights, biases, running statistics) before the head
FLATTEN_FEATURES = 160    # the flatten head's input is pooled down to at most this many values
DRAWS = 200               # attempts to draw a layer that fits the current activation shape

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
    ("max", {"padding": 1, "first": True}),            # max of negative values beside zero padding
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


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def stored_values(modules):
    """What gapnet counts as parameters: every weight, bias and running statistic."""
    model = nn.Sequential(*modules)
    return (sum(p.numel() for p in model.parameters())
            + sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")))


# --- Drawing layers ----------------------------------------------------------------------------------

def draw_conv(rng, cin, force):
    """A Conv2d (maybe after a ZeroPad2d, maybe followed by BatchNorm2d and ReLU) reading `cin`
    channels, with the options in `force` fixed; None when `force` cannot hold for `cin`."""
    k = force.get("kernel", rng.choice([1, 3, 3, 3, 5, 7]))
    kernel = pair(k)
    if "kernel" not in force and rng.random() < 0.15:
        kernel = (kernel[0], rng.choice([1, 3, 5]))
    stride = force.get("stride", rng.choices([1, 2, (1, 2), (2, 1)], weights=[6, 3, 0.5, 0.5])[0])
    dilation = force.get("dilation", 1 if max(kernel) == 1 else
                         rng.choices([1, 2, (2, 1), 3], weights=[7, 2, 0.5, 0.5])[0])

    groups_kind = force.get("groups", rng.choices(["none", "grouped", "depthwise"], weights=[6, 2, 2])[0])
    if groups_kind == "grouped":   # 1 < groups < cin
        divisors = [g for g in range(2, cin) if cin % g == 0]
        if not divisors:
            return None
        groups = rng.choice(divisors)
        cout = groups * rng.randint(1, max(1, 8 // groups))
    elif groups_kind == "depthwise":   # groups == cin, each output channel reads one input channel
        if cin < 2:
            return None
        groups = cin
        cout = cin * force.get("multiplier", rng.choice([1, 1, 2]))
    else:
        groups, cout = 1, force.get("channels", rng.randint(2, 8))

    padding_kind = force.get("padding", rng.choices(["zero", "sym", "hw", "same", "valid", "zeropad"],
                                                    weights=[2, 4, 2, 2, 1, 2])[0])
    reach = [d * (kk - 1) for d, kk in zip(pair(dilation), kernel)]   # how far a kernel reaches
    zero_pad = None
    if padding_kind == "same":
        if pair(stride) != (1, 1):
            return None   # PyTorch allows padding='same' only at stride 1
        padding = "same"
    elif padding_kind == "valid":
        padding = "valid"
    elif padding_kind == "zero":
        padding = 0
    elif padding_kind == "sym":
        padding = rng.randint(1, max(1, max(reach) // 2 + 1))
    elif padding_kind == "hw":   # symmetric per axis, different between axes
        ph, pw = rng.randint(0, reach[0] // 2 + 1), rng.randint(0, reach[1] // 2 + 1)
        if ph == pw:
            pw = ph + 1
        padding = (ph, pw)
    else:   # "zeropad": a ZeroPad2d (left, right, top, bottom) that is not symmetric, then the conv
        while True:
            zero_pad = tuple(rng.randint(0, 2) for _ in range(4))
            if zero_pad[0] != zero_pad[1] or zero_pad[2] != zero_pad[3]:
                break
        padding = rng.choice([0, 0, 1])

    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     bias=force.get("bias", rng.random() < 0.75))
    modules = ([nn.ZeroPad2d(zero_pad)] if zero_pad else []) + [conv]
    bn = force.get("bn", rng.choices(["none", "affine", "no-affine"], weights=[5, 3, 2])[0])
    if bn != "none":
        eps = force.get("eps", rng.choice([1e-5, 1e-5, 1e-3]))
        modules.append(nn.BatchNorm2d(cout, eps=eps, affine=bn == "affine"))
    if force.get("relu", rng.random() < 0.65):
        modules.append(nn.ReLU())
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
    return [nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=force.get("count_include_pad", rng.random() < 0.5))]


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


def draw_block(rng, kind, force, x, budget):
    """A block of `kind` that fits activation `x` and `budget`: (modules, its output), or None."""
    for _ in range(DRAWS):
        modules = draw_conv(rng, x.shape[1], force) if kind == "conv" else draw_pool(rng, kind, force)
        if modules is None or stored_values(modules) > budget:
            continue
        y = fits(modules, x, force)
        if y is not None:
            return modules, y
    return None


# --- Building a network --------------------------------------------------------------------------------

def build_network(seed, index, attempt=0):
    """Network `index` of `seed`: (model, input spec, extra test inputs, focus)."""
    rng = random.Random(f"gapnet-parity/{seed}/{index}/{attempt}")
    gen = torch.Generator().manual_seed(rng.getrandbits(62))
    focus_kind, focus = FOCI[(seed + index) % len(FOCI)]
    net = focus if focus_kind == "net" else {}

    def redraw(why):
        if attempt == 50:
            raise RuntimeError(f"seed {seed} network {index}: {why}, 50 times")
        return build_network(seed, index, attempt + 1)

    # The input and the head cycle with the index, so every 8 consecutive networks hold each
    # combination of 1 or 3 channels and GAP or flatten head, and both global pools.
    channels = 3 if (index // 2) % 2 else 1
    head = "flatten" if index % 2 else "gap"
    global_pool = "avg" if (index // 4) % 2 == 0 else "max"
    height = 32 if rng.random() < 0.1 else rng.randint(8, 24)
    width = height
    while width == height and index % 5 != 4:   # every fifth input is square
        width = 32 if rng.random() < 0.1 else rng.randint(8, 24)
    spec = {"channels": channels, "height": height, "width": width, "scale": 1.0 / 255.0,
            "mean": [round(rng.uniform(0.2, 0.6), 3) for _ in range(channels)],
            "std": [round(rng.uniform(0.2, 0.5), 3) for _ in range(channels)]}
    classes = rng.randint(2, 10)

    # The body: 2 to 4 random conv or pool blocks, the focus block among the first two.
    kinds = ["conv"] + rng.choices(["conv", "max", "avg"], weights=[5, 2, 2], k=rng.randint(1, 3))
    plan = [(kind, {}) for kind in kinds]
    if focus_kind != "net":
        plan.insert(0 if focus.get("first") else rng.randint(0, 1), (focus_kind, focus))
    x = torch.zeros(1, channels, height, width)
    body, budget = [], BODY_BUDGET
    for kind, force in plan:
        block = draw_block(rng, kind, force, x, budget)
        if block is None and force:   # e.g. groups need 4, 6 or 8 channels: a plain conv first, then retry
            for _ in range(3):
                plain = {"groups": "none", "stride": 1, "channels": rng.choice([4, 6, 8])}
                prep = draw_block(rng, "conv", plain, x, budget)
                if prep is None:
                    break
                body += prep[0]
                budget -= stored_values(prep[0])
                x = prep[1]
                block = draw_block(rng, kind, force, x, budget)
                if block is not None:
                    break
            if block is None:   # e.g. the map is too small by now for a partial ceil_mode window
                return redraw(f"cannot place the focus {kind} {force}")
        if block is None:
            continue   # this random block does not fit the activation any more: leave it out
        modules, x = block
        budget -= stored_values(modules)
        if kind == "conv" and (net.get("nested") or rng.random() < 0.1):
            modules = [nn.Sequential(*modules)]   # the exporter flattens nested Sequentials
        if net.get("skipped") or rng.random() < 0.08:
            modules.append(rng.choice([nn.Dropout(0.25), nn.Dropout2d(0.1), nn.Identity()]))
        body += modules

    # The head.
    dense_bias = net.get("dense_bias", rng.random() < 0.85)
    if head == "gap":
        size = rng.choice([1, (1, 1)])
        pool = nn.AdaptiveAvgPool2d(size) if global_pool == "avg" else nn.AdaptiveMaxPool2d(size)
        tail = [pool, nn.Flatten(), nn.Linear(x.shape[1], classes, bias=dense_bias)]
    else:
        while x[0].numel() > FLATTEN_FEATURES:   # pool down, so the dense layer stays small
            kernel = tuple(2 if n >= 2 else 1 for n in x.shape[2:])
            down = rng.choice([nn.MaxPool2d, nn.AvgPool2d])(kernel, ceil_mode=rng.random() < 0.5)
            body.append(down)
            x = down(x)
        hidden = rng.randint(4, 10)
        tail = [nn.Flatten(), nn.Linear(x[0].numel(), hidden, bias=dense_bias), nn.ReLU()]
        if net.get("skipped") or rng.random() < 0.2:
            tail.append(nn.Dropout(0.5))
        tail.append(nn.Linear(hidden, classes, bias=dense_bias))
    model = nn.Sequential(*body, *tail, nn.Softmax(dim=net.get("softmax_dim", rng.choice([1, 1, 1, -1]))))
    model.eval()

    randomize(model, gen)
    extra = torch.randn(GAUSSIAN_TESTS, channels, height, width, generator=gen) * 1.5
    if not spread_logits(model, spec, extra, rng.uniform(1.0, 3.0)):
        return redraw("the output hardly depends on the input")
    return model, spec, extra, (focus_kind, focus)


def randomize(model, gen):
    """Weights that keep activations at about unit scale; batch norm statistics far from identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = (3.0 / m.weight[0].numel()) ** 0.5   # variance 1 / fan_in
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


def spread_logits(model, spec, extra, target):
    """Scales the last Linear layer so the logits of the recorded inputs have standard deviation
    `target`. False if the logits hardly change from one input to another."""
    inputs = torch.cat([export_pytorch.random_inputs(spec, RANDOM_TESTS), extra])   # what export() records
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        logits = model[:-1](inputs)
        spread = float(logits.std())
        if spread < 1e-6:
            return False
        last.weight.mul_(target / spread)
        if last.bias is not None:
            last.bias.mul_(target / spread)
        across_inputs = float(model[:-1](inputs).std(dim=0).mean())
    return across_inputs > 0.1 * target


# --- Reading a network back: description and coverage ------------------------------------------------

def leaves(module):
    """The modules of a (possibly nested) nn.Sequential, in the order they run."""
    if isinstance(module, nn.Sequential):
        for child in module.children():
            yield from leaves(child)
    else:
        yield module


def walk(model, spec):
    """(module, input shape, output shape, whether the input may be negative) for each leaf module,
    in order, by running a zero input through them one at a time. Shapes are without the batch."""
    x = torch.zeros(1, spec["channels"], spec["height"], spec["width"])
    maybe_negative = True   # (pixel - mean) / std
    with torch.no_grad():
        for m in leaves(model):
            y = m(x)
            yield m, tuple(x.shape[1:]), tuple(y.shape[1:]), maybe_negative
            x = y
            if isinstance(m, nn.ReLU):
                maybe_negative = False
            elif isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
                maybe_negative = True


def hw(v):
    v = pair(v)
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def describe_module(m):
    """A short text for one module and its options."""
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
    return type(m).__name__.lower()


def describe(model, spec):
    """The network on one line: each module, and the shape after each convolution or pool."""
    parts = []
    for m, _, out, _ in walk(model, spec):
        shown = isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
        parts.append(describe_module(m) + (" [" + "x".join(str(n) for n in out) + "]" if shown else ""))
    return " > ".join(parts)


# Every feature a set must contain: (key, what it means). FOCI places each layer option; the input's
# channels and shape, the head and the global pool cycle with the network's index (build_network).
FEATURES = [
    ("input-1ch", "1-channel input"), ("input-3ch", "3-channel input"),
    ("input-nonsquare", "non-square input (H != W)"), ("input-square", "square input"),
    ("conv-k1", "conv kernel 1"), ("conv-k3", "conv kernel 3"), ("conv-k5", "conv kernel 5"),
    ("conv-k7", "conv kernel 7"), ("conv-k-even", "conv even kernel (2, 4 or 6)"),
    ("conv-k-nonsquare", "conv non-square kernel"),
    ("conv-s1", "conv stride 1"), ("conv-s2", "conv stride 2"), ("conv-s-aniso", "conv stride differs per axis"),
    ("conv-pad0", "conv no padding"), ("conv-pad-sym", "conv symmetric padding, same on both axes"),
    ("conv-pad-hw", "conv symmetric padding, different per axis"),
    ("conv-pad-same-asym", "conv asymmetric padding from padding='same' (even reach)"),
    ("conv-pad-zeropad", "conv asymmetric padding from ZeroPad2d"),
    ("conv-dilation", "conv dilation > 1"),
    ("conv-grouped", "conv grouped (1 < groups < in_channels)"),
    ("conv-depthwise", "conv depthwise (groups = in_channels = out_channels)"),
    ("conv-depthwise-x2", "conv depthwise, 2 outputs per channel"),
    ("conv-bias", "conv with bias"), ("conv-nobias", "conv without bias"),
    ("bn-affine", "batch norm, affine"), ("bn-noaffine", "batch norm, affine=False"),
    ("bn-eps", "batch norm, eps != 1e-5"),
    ("relu", "ReLU in the body"),
    ("max-floor", "max_pool2d ceil_mode=False"), ("max-ceil", "max_pool2d ceil_mode=True, partial last window"),
    ("max-pad", "max_pool2d padding > 0"),
    ("max-pad-negative", "max_pool2d padding > 0 on values that may be negative"),
    ("max-overlap", "max_pool2d stride < kernel (overlapping)"), ("max-nonsquare", "max_pool2d non-square kernel"),
    ("avg-floor", "avg_pool2d ceil_mode=False"), ("avg-ceil", "avg_pool2d ceil_mode=True, partial last window"),
    ("avg-pad-incl", "avg_pool2d padding > 0, count_include_pad=True"),
    ("avg-pad-excl", "avg_pool2d padding > 0, count_include_pad=False"),
    ("avg-ceil-pad-incl", "avg_pool2d partial ceil window + padding, count_include_pad=True"),
    ("avg-ceil-pad-excl", "avg_pool2d partial ceil window + padding, count_include_pad=False"),
    ("global-avg", "AdaptiveAvgPool2d(1)"), ("global-max", "AdaptiveMaxPool2d(1)"),
    ("head-gap", "head: global pool > flatten > dense > softmax"),
    ("head-flatten", "head: flatten > dense > ReLU > dense > softmax"),
    ("dense-nobias", "dense without bias"), ("softmax-dim-last", "Softmax(dim=-1)"),
    ("skipped", "Dropout / Identity (skipped by the exporter)"), ("nested", "nested nn.Sequential"),
]


def features(model, spec):
    """The FEATURES keys `model` contains, read from its modules and the shapes they see."""
    found = {"input-1ch" if spec["channels"] == 1 else "input-3ch",
             "input-square" if spec["height"] == spec["width"] else "input-nonsquare"}
    if any(isinstance(m, nn.Sequential) for m in model.children()):
        found.add("nested")
    steps = list(walk(model, spec))
    types = [type(m) for m, _, _, _ in steps]
    for i, (m, shape, out, maybe_negative) in enumerate(steps):
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
        elif isinstance(m, nn.ReLU) and nn.Flatten not in types[:i]:
            found.add("relu")
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            partial = has_partial_window(m, shape[1:], out[1:])
            padded = pair(m.padding) != (0, 0)
            found.add(f"{kind}-ceil" if partial else f"{kind}-floor")
            if kind == "max":
                if padded:
                    found.add("max-pad")
                    if maybe_negative:
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
            found.update({"global-avg", "head-gap"})
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            found.update({"global-max", "head-gap"})
        elif isinstance(m, nn.Flatten) and not {nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d} & set(types[:i]):
            rest = [t for t in types[i:] if t not in (nn.Dropout, nn.Identity)]
            if rest == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.Softmax]:
                found.add("head-flatten")
        elif isinstance(m, nn.Linear) and m.bias is None:
            found.add("dense-nobias")
        elif isinstance(m, nn.Softmax) and m.dim == -1:
            found.add("softmax-dim-last")
        elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
            found.add("skipped")
    return found


# --- Writing and verifying -----------------------------------------------------------------------------

def write_cases(out, seed, count):
    """Writes the networks; returns [(path, features)]. Prints one line per network."""
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(out, f"parity-{seed}-*.json")):
        os.remove(stale)   # a smaller --count must not leave the previous run's files behind
    written = []
    for index in range(count):
        model, spec, extra, (focus_kind, focus) = build_network(seed, index)
        name = f"parity-{seed}-{index:03d}"
        path = os.path.join(out, name + ".json")
        labels = [f"class{i}" for i in range(model[-2].out_features)]
        description = describe(model, spec)
        export_pytorch.export(model, path, spec, labels, name=name, tests=RANDOM_TESTS, test_inputs=extra,
                              metadata={"generator": "tools/gen_parity_cases.py", "seed": seed, "index": index,
                                        "focus": f"{focus_kind} {json.dumps(focus)}", "network": description})
        values = stored_values([model])
        print(f"{name}.json  {spec['channels']}x{spec['height']}x{spec['width']}  {values:,} values  {description}",
              flush=True)
        written.append((path, features(model, spec)))
    return written


def coverage_table(written):
    """The markdown table of FEATURES: how many networks contain each, and the first one."""
    lines = ["| feature | networks | first |", "|---|---:|---|"]
    for key, meaning in FEATURES:
        having = [os.path.basename(path) for path, found in written if key in found]
        lines.append(f"| {meaning} | {len(having)} | {having[0] if having else '**none**'} |")
    return "\n".join(lines)


def verify(gapnet, paths):
    """Runs `gapnet verify` on each file; returns (failures, largest difference, its file)."""
    failures, largest, worst = [], 0.0, None
    for path in paths:
        run = subprocess.run([gapnet, "verify", "--tolerance", str(TOLERANCE), "--json", path],
                             capture_output=True, text=True)
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
    ap = argparse.ArgumentParser(description="Write seeded random PyTorch networks, with PyTorch's outputs, "
                                             "as gapnet parity cases.")
    ap.add_argument("--out", required=True, help="the folder to write parity-SEED-NNN.json into")
    ap.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    ap.add_argument("--count", type=int, default=40,
                    help=f"how many networks (default 40; {len(FOCI)} or more contain every feature)")
    ap.add_argument("--gapnet", help="then run PATH verify on every file written; exit 1 if any fails")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.gapnet and not os.access(args.gapnet, os.X_OK):
        ap.error(f"--gapnet {args.gapnet}: not an executable file")

    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")   # speed, not results
    torch.set_num_threads(1)   # the recorded outputs then do not depend on the machine's core count
    written = write_cases(args.out, args.seed, args.count)
    print(f"\nwrote {len(written)} networks to {args.out} (seed {args.seed})\n")
    print(coverage_table(written))
    missing = [meaning for key, meaning in FEATURES if not any(key in found for _, found in written)]
    status = 0
    if missing and args.count >= len(FOCI):
        print(f"\ngen_parity_cases: error: no network contains: {'; '.join(missing)}", file=sys.stderr)
        status = 1
    if args.gapnet:
        failures, largest, worst = verify(args.gapnet, [path for path, _ in written])
        print(f"\ngapnet verify: {len(written) - len(failures)} of {len(written)} files match PyTorch within "
              f"{TOLERANCE:g}; largest difference {largest:.3g} ({worst})")
        for failure in failures:
            print(f"gen_parity_cases: error: gapnet verify failed: {failure}", file=sys.stderr)
        if failures:
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
