"""Drawing the parity generator's layers and graph blocks: a convolution or pool with some options
forced, each kind of graph block, and the checks that a drawn layer fits the activation shape."""

import torch
import torch.nn as nn

from gen_parity_modules import Branches, Gated, Residual, SeparableConv, SqueezeExcite, make_activation
from gen_parity_plan import DRAWS, pair, stored_values


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
