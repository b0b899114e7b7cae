"""Reading a parity network back: the one-line description of its modules, and the features it contains
(FEATURES), from its PyTorch modules and from the gapnet layers written, for the coverage table."""

import collections

import torch
import torch.nn as nn

from gen_parity_draw import has_partial_window
from gen_parity_modules import (
    ACTIVATION_MODULES,
    Branches,
    Clamp,
    ConcatPool,
    Gated,
    HardSigmoid,
    Residual,
    SKIPPED_MODULES,
    SeparableConv,
    SqueezeExcite,
)
from gen_parity_plan import ACTIVATIONS, ACTIVATION_TYPES, PIECEWISE, pair


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
