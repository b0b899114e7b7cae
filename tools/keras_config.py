"""A Keras model config (the JSON in an HDF5 file's model_config or a .keras archive's config.json, as
TF.js's model.json holds it too), read for tools/keras_to_gapnet.py: the layer graph (Sequential or
functional, each layer's inbound nodes, a topological order) and each layer's config keys, every one
of which must be known (Config), so that nothing is ignored.
"""
import heapq
import json
import math
from dataclasses import dataclass, field

from gapnet_file import ConversionError

# ---- small helpers ---------------------------------------------------------------------------------


def _show(values):
    """[3,3,1,8] as the messages write shapes and lists."""
    return "[" + ",".join(str(v) for v in values) + "]"


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


# ---- the layer graph -------------------------------------------------------------------------------------


@dataclass
class Layer:
    """One layer of the Keras model: its config and the layers it reads (node 0, output 0)."""

    index: int  # position in the config's layer list
    class_name: str
    name: str
    config: dict
    inputs: list  # names of the layers whose outputs it reads
    raw: dict = field(default_factory=dict)

    def error(self, message):
        return ConversionError(f"layer '{self.name}' ({self.class_name}): {message}")


def _node_error(where, message):
    return ConversionError(f"{where}: {message}")


def _history(entry, where):
    """[layer_name, node_index, tensor_index(, kwargs)] -> layer name; only node 0, output 0."""
    if (
        not isinstance(entry, (list, tuple))
        or len(entry) not in (3, 4)
        or not isinstance(entry[0], str)
        or not _is_int(entry[1])
        or not _is_int(entry[2])
    ):
        raise _node_error(where, f"inbound node entry {json.dumps(entry)[:80]} is not [layer, node, tensor]")
    if entry[1] != 0:
        raise _node_error(
            where,
            f"reads call #{entry[1]} of layer '{entry[0]}': layers called more than "
            "once (shared layers) are not supported",
        )
    if entry[2] != 0:
        raise _node_error(
            where, f"reads output #{entry[2]} of layer '{entry[0]}': layers with several " "outputs are not supported"
        )
    if len(entry) == 4:
        _check_call_kwargs(entry[3], where)
    return entry[0]


def _check_call_kwargs(kwargs, where):
    """Call arguments recorded with a node: only ones that change nothing at inference."""
    if not isinstance(kwargs, dict):
        raise _node_error(where, "the call's keyword arguments are not a dict")
    for key, value in kwargs.items():
        if key == "training" and value in (False, None):
            continue
        if key == "mask" and value is None:
            continue
        raise _node_error(where, f"is called with {key}={json.dumps(value)[:40]}, which is not supported")


def _keras3_tensors(value, where, out):
    """The Keras tensors in a Keras 3 node's `args` (nested lists, `__tuple__`), in order."""
    if isinstance(value, list):
        for v in value:
            _keras3_tensors(v, where, out)
    elif isinstance(value, dict) and value.get("class_name") == "__tuple__":
        inner = value.get("config", {})
        _keras3_tensors(inner.get("value", []) if isinstance(inner, dict) else [], where, out)
    elif isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        config = value.get("config")
        if not isinstance(config, dict) or "keras_history" not in config:
            raise _node_error(where, "a Keras tensor in inbound_nodes has no keras_history")
        out.append(_history(config["keras_history"], where))
    else:
        raise _node_error(
            where,
            f"is called with a constant argument {json.dumps(value)[:60]}; only "
            "tensors from other layers are supported",
        )


def _inbound(layer_dict, where):
    """The names of the layers a functional-model layer reads."""
    nodes = layer_dict.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise _node_error(where, "inbound_nodes is not a list")
    if not nodes:
        return []
    if len(nodes) > 1:
        raise _node_error(where, f"is called {len(nodes)} times: shared layers are not supported")
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        args, kwargs = node.get("args", []), node.get("kwargs", {})
        if not isinstance(args, list) or len(args) != 1:
            raise _node_error(
                where,
                "is called with several positional arguments; only one input " "(or one list of inputs) is supported",
            )
        _check_call_kwargs(kwargs, where)
        names = []
        _keras3_tensors(args[0], where, names)
        return names
    if isinstance(node, list):  # Keras 1/2: [[layer, node, tensor, kwargs], ...]
        return [_history(entry, where) for entry in node]
    raise _node_error(where, "its inbound node is neither a list nor a dict")


def _endpoint(value, what):
    """input_layers/output_layers: one [name, 0, 0] (possibly wrapped in a list)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or len(value) != 1:
        count = len(value) if isinstance(value, list) else "?"
        raise ConversionError(f"the model has {count} {what}s; gapnet models have exactly one")
    return _history(value[0], f"the model's {what}")


def _layer_entry(raw, index, where):
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("class_name"), str)
        or not isinstance(raw.get("config"), dict)
    ):
        raise ConversionError(f"{where}: layer #{index} of the config has no class_name and config")
    name = raw.get("name", raw["config"].get("name"))
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}: layer #{index} ({raw['class_name']}) has no name")
    return raw["class_name"], name


def parse_graph(model_config):
    """The model's layers (Sequential or functional) as Layer records plus the input and output layer
    names. The Sequential input is synthesized as an InputLayer when the first layer carries it."""
    cls, config = model_config.get("class_name"), model_config.get("config")
    if cls == "Sequential":
        entries = config if isinstance(config, list) else (config or {}).get("layers")  # Keras <= 2.2.4: a list
        if not isinstance(entries, list) or not entries:
            raise ConversionError("the Sequential config has no layers")
        layers = []
        for i, raw in enumerate(entries):
            class_name, name = _layer_entry(raw, i, "Sequential")
            layers.append(Layer(i, class_name, name, raw["config"], [], raw))
        if layers[0].class_name != "InputLayer":
            first = layers[0].config
            shape = first.get("batch_input_shape", first.get("batch_shape"))
            if shape is None and isinstance(config, dict):
                shape = config.get("build_input_shape")
            if shape is None:
                raise ConversionError("the Sequential model records no input shape (it was never built)")
            dtype = first.get("dtype", "float32")
            layers.insert(0, Layer(-1, "InputLayer", "(input)", {"batch_input_shape": shape, "dtype": dtype}, [], {}))
        for previous, layer in zip(layers, layers[1:]):
            layer.inputs = [previous.name]
        return layers, layers[0].name, layers[-1].name
    if cls in ("Model", "Functional"):
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ConversionError(f"the {cls} config has no layer list")
        layers = []
        for i, raw in enumerate(config["layers"]):
            class_name, name = _layer_entry(raw, i, cls)
            where = f"layer '{name}' ({class_name})"
            layers.append(Layer(i, class_name, name, raw["config"], _inbound(raw, where), raw))
        for key in ("input_layers", "output_layers"):
            if key not in config:
                raise ConversionError(f"the {cls} config has no {key}")
        return layers, _endpoint(config["input_layers"], "input"), _endpoint(config["output_layers"], "output")
    raise ConversionError(
        f"the model is a '{cls}'; only Sequential and functional (Model/Functional) "
        "models are supported (a subclassed model has no config to read)"
    )


def topological_order(layers, input_name, output_name):
    """The layers the output depends on, each after the layers it reads; earlier in the config first
    among the ready ones, so a file already in order keeps it. Layers the output does not need are
    dropped (gapnet refuses a layer whose output nobody reads)."""
    by_name = {}
    for layer in layers:
        if layer.name in by_name:
            raise layer.error("the name is used by two layers")
        by_name[layer.name] = layer
    for layer in layers:
        for source in layer.inputs:
            if source not in by_name:
                raise layer.error(f"reads '{source}', which is not a layer of the model")
    for name, what in ((input_name, "input"), (output_name, "output")):
        if name not in by_name:
            raise ConversionError(f"the model's {what} '{name}' is not a layer of the model")
    # Depth-first from the output: what it needs, and a cycle if the walk meets a layer it is inside.
    live, state = set(), {}
    stack = [(output_name, iter(by_name[output_name].inputs))]
    state[output_name] = "open"
    while stack:
        name, pending = stack[-1]
        source = next(pending, None)
        if source is None:
            stack.pop()
            state[name] = "done"
            live.add(name)
        elif state.get(source) == "open":
            raise by_name[source].error(f"the graph has a cycle through it (via '{name}')")
        elif source not in state:
            state[source] = "open"
            stack.append((source, iter(by_name[source].inputs)))
    consumers = {name: [] for name in live}
    waiting = {}
    for name in live:
        layer = by_name[name]
        if not layer.inputs and layer.class_name != "InputLayer":
            raise layer.error("reads no layer and is not an InputLayer")
        for source in set(layer.inputs):
            consumers[source].append(name)
        waiting[name] = len(set(layer.inputs))
    inputs = sorted(n for n in live if by_name[n].class_name == "InputLayer")
    if len(inputs) > 1:
        raise ConversionError(
            f"the output depends on {len(inputs)} input layers ({', '.join(inputs)}); " "gapnet models have one"
        )
    if inputs != [input_name]:
        raise ConversionError(f"the output does not depend on the model's input '{input_name}'")
    ready = [(by_name[n].index, n) for n in live if waiting[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(by_name[name])
        for consumer in consumers[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, (by_name[consumer].index, consumer))
    return order, {n: sorted((by_name[c] for c in cs), key=lambda layer: layer.index) for n, cs in consumers.items()}


# ---- layer configs -------------------------------------------------------------------------------------------

# Keys every layer may carry that change nothing at inference (training settings, bookkeeping).
COMMON_KEYS = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_dtype"}
INIT_REG = lambda *ws: {f"{w}_{kind}" for w in ws for kind in ("initializer", "regularizer", "constraint")}
CONV_KEYS = {
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "groups",
    "activation",
    "use_bias",
    "activity_regularizer",
    "lora_rank",
    "lora_alpha",
    "quantization_config",
} | INIT_REG("kernel", "bias")
KNOWN_KEYS = {
    "InputLayer": {"batch_input_shape", "batch_shape", "shape", "dtype", "sparse", "ragged", "name", "optional"},
    "Conv2D": CONV_KEYS,
    "DepthwiseConv2D": {
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "depth_multiplier",
        "activation",
        "use_bias",
        "activity_regularizer",
        "filters",
        "groups",
        "kernel_initializer",
        "kernel_regularizer",
        "kernel_constraint",
    }
    | INIT_REG("depthwise", "bias"),
    "SeparableConv2D": {
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "depth_multiplier",
        "activation",
        "use_bias",
        "activity_regularizer",
        "groups",
    }
    | INIT_REG("depthwise", "pointwise", "bias", "kernel"),
    "BatchNormalization": {
        "axis",
        "momentum",
        "epsilon",
        "center",
        "scale",
        "renorm",
        "renorm_clipping",
        "renorm_momentum",
        "fused",
        "virtual_batch_size",
        "adjustment",
        "synchronized",
    }
    | INIT_REG("beta", "gamma")
    | {"moving_mean_initializer", "moving_variance_initializer"},
    "Activation": {"activation"},
    "ReLU": {"max_value", "negative_slope", "threshold"},
    "LeakyReLU": {"alpha", "negative_slope"},
    "Softmax": {"axis"},
    "MaxPooling2D": {"pool_size", "strides", "padding", "data_format"},
    "AveragePooling2D": {"pool_size", "strides", "padding", "data_format"},
    "GlobalAveragePooling2D": {"data_format", "keepdims"},
    "GlobalMaxPooling2D": {"data_format", "keepdims"},
    "ZeroPadding2D": {"padding", "data_format"},
    "Flatten": {"data_format"},
    "Dense": {
        "units",
        "activation",
        "use_bias",
        "activity_regularizer",
        "lora_rank",
        "lora_alpha",
        "quantization_config",
    }
    | INIT_REG("kernel", "bias"),
    "Dropout": {"rate", "noise_shape", "seed"},
    "SpatialDropout2D": {"rate", "noise_shape", "seed", "data_format"},
    "Add": set(),
    "Multiply": set(),
    "Concatenate": {"axis"},
}
SUPPORTED = sorted(KNOWN_KEYS)
REQUIRED = object()


class Config:
    """A layer's config, read key by key; unknown keys are refused so that nothing is ignored."""

    def __init__(self, layer):
        self.layer = layer
        known = KNOWN_KEYS[layer.class_name] | COMMON_KEYS
        unknown = sorted(set(layer.config) - known)
        if unknown:
            raise layer.error(f"config key '{unknown[0]}' is not supported")
        self._check_dtype()

    def _check_dtype(self):
        dtype = self.layer.config.get("dtype")
        name = dtype
        if isinstance(dtype, dict):  # a dtype policy: {"class_name": "DTypePolicy", "config": {"name": ...}}
            inner = dtype.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
        if name not in (None, "float32"):
            raise self.layer.error(f"dtype {json.dumps(name)} is not supported: gapnet computes in float32")

    def get(self, key, default=REQUIRED):
        if key in self.layer.config:
            return self.layer.config[key]
        if default is REQUIRED:
            raise self.layer.error(f"config has no '{key}'")
        return default

    def flag(self, key, default=REQUIRED):
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.layer.error(f"{key} {json.dumps(value)} is not true or false")
        return value

    def number(self, key, default=REQUIRED, allow_none=False):
        value = self.get(key, default)
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.layer.error(f"{key} {json.dumps(value)} is not a number")
        return float(value)

    def pair(self, key, default=REQUIRED, minimum=1):
        """kernel_size, strides, ...: an integer or two; returns [h, w]."""
        value = self.get(key, default)
        values = [value, value] if _is_int(value) else value
        if not isinstance(values, (list, tuple)) or len(values) != 2 or not all(_is_int(v) for v in values):
            raise self.layer.error(f"{key} {json.dumps(value)} is not one or two integers (2-D only)")
        if any(v < minimum for v in values):
            raise self.layer.error(f"{key} {json.dumps(value)} must be >= {minimum}")
        return list(values)

    def channels_last(self):
        fmt = self.get("data_format", "channels_last")
        if fmt != "channels_last":
            raise self.layer.error(
                f"data_format {json.dumps(fmt)} is not supported (only channels_last, "
                "Keras's default" + ("; null means the user's keras.json default" if fmt is None else "") + ")"
            )

    def padding_mode(self):
        mode = self.get("padding")
        if not isinstance(mode, str) or mode.lower() not in ("valid", "same"):
            raise self.layer.error(f"padding {json.dumps(mode)} is not supported (valid or same)")
        return mode.lower()

    def no_lora(self):
        """Keras 3's LoRA adapters and quantized layers store other variables than kernel and bias."""
        if self.get("lora_rank", None) is not None:
            raise self.layer.error("LoRA (lora_rank) is not supported: merge the adapters into the kernel first")
        if self.get("quantization_config", None) is not None:
            raise self.layer.error("quantized layers are not supported: gapnet computes in float32")
