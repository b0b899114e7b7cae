"""Writing a parity graph network as gapnet layers: GraphWriter names and wires the layers, one
emitter per PyTorch module (emit), graph_layers the whole network."""

import export_pytorch
import torch.nn as nn

from gen_parity_modules import (
    ACTIVATION_MODULES,
    Branches,
    Clamp,
    ConcatPool,
    Gated,
    HardSigmoid,
    Residual,
    SKIPPED_MODULES,
    SqueezeExcite,
)


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
