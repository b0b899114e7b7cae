"""Building one parity network from (seed, index): its foci, input and head, its random weights scaled so
activations keep their scale and the logits spread, and its test inputs."""

import collections
import copy
import json
import random

import export_pytorch
import torch
import torch.nn as nn

from gen_parity_coverage import features, trace
from gen_parity_draw import draw_block
from gen_parity_modules import ConcatPool, HardSigmoid, SKIPPED_MODULES, make_activation
from gen_parity_plan import (
    ACTIVATIONS,
    ACTIVATION_KEYS,
    ACTIVATION_WEIGHTS,
    BODY_BUDGET,
    CANCELLATION,
    FLATTEN_FEATURES,
    FOCI,
    GAUSSIAN_TESTS,
    GRAPH_BODY_BUDGET,
    GRAPH_FOCI,
    GRAPH_KINDS,
    HEAD_ACTIVATIONS,
    PIECEWISE,
    RANDOM_TESTS,
    REACH,
    ROUNDING,
    SEQUENTIAL_SLOTS,
    stored_values,
)
from gen_parity_writer import graph_layers


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
