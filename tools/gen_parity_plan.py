"""What every parity set must contain (FOCI, GRAPH_FOCI, ACTIVATIONS, the head cycle) and the
generator's budgets and tolerances; tools/gen_parity_cases.py's docstring says how they are used."""

import torch.nn as nn


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
