#!/usr/bin/python3
"""Convert a Keras model file to gapnet's JSON model format (docs/model-format.md); see docs/keras.md.

As a program (Debian's system interpreter with python3-h5py and python3-numpy; no TensorFlow, no
Keras):

    /usr/bin/python3 tools/keras_to_gapnet.py MODEL.h5|MODEL.keras OUT.json [--labels FILE]
        [--color grayscale|rgb|none] [--scale S] [--mean M ..] [--std S ..] [--name N]
        [--test-data FILE.npz ..] [--metadata FILE.json]

As a library:

    import keras_to_gapnet                                    # tools/ on sys.path
    doc = keras_to_gapnet.to_gapnet("model.h5", labels=[...], mean=[0.5], std=[0.5])
    # or in steps:
    model = keras_to_gapnet.load("model.h5")                 # config, weights, version
    conversion = keras_to_gapnet.convert(model)              # gapnet layers and shapes
    doc = keras_to_gapnet.document(conversion, labels, ...)
    doc["tests"] = keras_to_gapnet.test_cases(conversion, x_nhwc, y)

What it reads: the two containers Keras writes a whole model to.
- HDF5 (`model.save("m.h5")`, Keras 2, tf.keras and Keras 3's legacy format): the `model_config`
  attribute (JSON) and the `model_weights` group, one group per layer whose `weight_names` attribute
  lists its arrays (e.g. `conv2d_1_1/kernel:0`), in the layer's own weight order.
- Keras 3 archives (`model.save("m.keras")`, also tf.keras 2.13+): a zip of `config.json`,
  `metadata.json` and `model.weights.h5`, in which a layer's arrays are `layers/<name>/vars/0, 1, ...`
  and <name> is the layer's CLASS in snake case, numbered by occurrence (`conv2d`, `conv2d_1`, ...),
  in the order of the config's layer list.

What it converts: Sequential and functional models whose layers are InputLayer, Conv2D,
SeparableConv2D, DepthwiseConv2D, BatchNormalization, Activation, ReLU, LeakyReLU, Softmax,
MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D (folded
into the convolution after it), Flatten, Dense, Dropout/SpatialDropout2D (skipped), Add,
Concatenate and Multiply; the graph becomes gapnet layers with `inputs`, in a topological order.

The rule, as for the ONNX importer: gapnet must compute exactly what Keras computes. Every key of
every layer's config is read; a value the engine cannot reproduce (a dilated strided convolution,
channels_first, a softmax over a feature map's channels, ReLU's threshold, an unknown layer, ...) is
refused with one line naming the layer, and nothing is approximated.

Channels-last to channels-first: Keras holds feature maps as H x W x C, gapnet as C x H x W.
Kernels are transposed ([kh,kw,in,out] -> [out,in,kh,kw]); a depthwise kernel [kh,kw,in,mult]
becomes [in*mult,1,kh,kw] with output channel c*mult+m, TensorFlow's order. A Flatten of an H x W x C
map yields its values in H-W-C order where gapnet's flatten yields C-H-W, so the converter tracks, for
every vector, which Keras position each gapnet position holds, and permutes the weight columns of the
Dense layer that reads it (the classic silent error of hand conversions: every shape checks, every
answer is wrong). TensorFlow's `same` padding puts the odd pixel at the bottom/right; it becomes
gapnet's per-side padding [top, left, bottom, right]; `same` average pooling divides by the real
pixels only (count_include_pad false).
"""
import argparse
import heapq
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field

import h5py
import numpy as np

import gapnet_file
import model_files
from gapnet_file import ConversionError, tensor as _tensor

MAX_CONFIG_BYTES = 64 << 20  # config.json and metadata.json in an archive: refuse absurd sizes before reading them

PROGRAM = "keras_to_gapnet"


# ---- small helpers ---------------------------------------------------------------------------------


def _show(values):
    """[3,3,1,8] as the messages write shapes and lists."""
    return "[" + ",".join(str(v) for v in values) + "]"


def _text(value):
    """An HDF5 attribute as str (h5py returns bytes or str depending on how it was written)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return value if isinstance(value, str) else str(value)


def _snake_case(class_name):
    """Keras 3's name for a layer's weights group (keras/src/utils/naming.py: to_snake_case)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's `same`: the output has ceil(size/stride) positions; the padding that needs is
    split with the odd pixel AFTER (bottom/right). Returns (before, after, output size)."""
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


def _valid_size(size, kernel, stride, dilation=1):
    effective = dilation * (kernel - 1) + 1
    if effective > size:
        return None
    return (size - effective) // stride + 1


# ---- reading the files --------------------------------------------------------------------------------


@dataclass
class KerasFile:
    """What a Keras file holds, independent of the container."""

    path: str
    container: str  # "hdf5" or "keras"
    config: dict  # {"class_name": ..., "config": ...}
    keras_version: str  # "" when the file does not say
    backend: str
    legacy_weights: object = None  # h5py group model_weights (HDF5 files)
    v3_weights: object = None  # h5py file model.weights.h5 (archives)

    @property
    def keras_major(self):
        m = re.match(r"\s*(\d+)", self.keras_version or "")
        return int(m.group(1)) if m else None


def _json(text, what):
    try:
        value = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ConversionError(f"{what} is not valid JSON ({e})")
    if not isinstance(value, dict) or "class_name" not in value or "config" not in value:
        raise ConversionError(f"{what} is not a Keras model config (no class_name and config)")
    return value


def _load_hdf5(path, f):
    if "model_config" not in f.attrs:
        raise ConversionError(
            "no 'model_config' attribute: a weights-only file (model.save_weights) "
            "has no architecture; save the whole model with model.save"
        )
    config = _json(_text(f.attrs["model_config"]), "the model_config attribute")
    if "model_weights" not in f:
        raise ConversionError("no 'model_weights' group: the file holds the architecture but no weights")
    weights = f["model_weights"]
    version = _text(f.attrs.get("keras_version", weights.attrs.get("keras_version", "")))
    backend = _text(f.attrs.get("backend", weights.attrs.get("backend", "")))
    return KerasFile(path, "hdf5", config, version, backend, legacy_weights=weights)


def _load_archive(path):
    try:
        archive = zipfile.ZipFile(path)
        names = set(archive.namelist())
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                other = (
                    " (its weights are in model.weights.npz, which is not supported)"
                    if required == "model.weights.h5" and "model.weights.npz" in names
                    else ""
                )
                raise ConversionError(f"the .keras archive has no {required}{other}")
        small = min(MAX_CONFIG_BYTES, model_files.max_bytes())
        config = _json(model_files.read_member(archive, "config.json", small).decode("utf-8"), "config.json")
        version = ""
        if "metadata.json" in names:
            try:
                metadata = json.loads(model_files.read_member(archive, "metadata.json", small).decode("utf-8"))
                version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
            except ValueError as e:
                raise ConversionError(f"metadata.json is not valid JSON ({e})")
        # Inflated into an anonymous temporary file, bounded while streaming, not into memory.
        inflated = tempfile.TemporaryFile()
        model_files.copy_member(archive, "model.weights.h5", inflated)
        inflated.seek(0)
        weights = h5py.File(inflated, "r")
        model_files.check_hdf5_self_contained(weights, "model.weights.h5 in the archive")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError) as e:
        raise ConversionError(f"cannot read the .keras archive ({e})")
    except OSError as e:  # h5py: the weights file inside is damaged
        raise ConversionError(f"cannot read model.weights.h5 in the archive ({e})")
    return KerasFile(path, "keras", config, version, "", v3_weights=weights)


def load(path):
    """Open a Keras model file (.h5/.hdf5 or a .keras archive). Raises ConversionError."""
    if not os.path.exists(path):
        raise ConversionError("no such file")
    if zipfile.is_zipfile(path):
        return _load_archive(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"cannot read the file: neither a Keras HDF5 file nor a .keras archive ({e})")
    model_files.check_hdf5_self_contained(f, "the HDF5 file")
    try:
        return _load_hdf5(path, f)
    except (KeyError, OSError) as e:  # a damaged HDF5 structure found while reading it
        raise ConversionError(f"cannot read the HDF5 file ({e})")


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


# ---- weights ------------------------------------------------------------------------------------------------


class Weights:
    """Finds a layer's arrays in either container and checks them against what its config implies."""

    def __init__(self, keras_file, layers):
        self.file = keras_file
        # Keras 3 names a layer's group by its class and occurrence, in the config's layer order.
        self.v3_paths, seen = {}, {}
        for layer in layers:
            if layer.index < 0:
                continue
            base = _snake_case(layer.class_name)
            count = seen.get(base, 0)
            seen[base] = count + 1
            self.v3_paths[layer.name] = base if count == 0 else f"{base}_{count}"

    def _legacy(self, layer):
        """model_weights/<layer>: the arrays its weight_names attribute lists, by their base names
        ('conv2d_1_1/kernel:0' in Keras 2, 'sequential/conv2d/kernel' in Keras 3's legacy h5 -> kernel)."""
        group = self.file.legacy_weights
        where = f"model_weights/{layer.name}"
        if layer.name not in group:
            return where, []
        g = group[layer.name]
        names = g.attrs.get("weight_names", [])
        names = [_text(n) for n in np.asarray(names).reshape(-1)] if len(names) else []
        arrays = []
        for n in names:
            if n not in g:
                raise layer.error(f"weight '{n}' is listed in weight_names but not stored")
            arrays.append((n, g[n]))
        return where, arrays

    def _v3(self, layer):
        f = self.file.v3_weights
        root = "layers" if "layers" in f else "_layer_checkpoint_dependencies"  # the latter: tf.keras 2.13
        path = f"{root}/{self.v3_paths[layer.name]}"
        if path not in f or "vars" not in f[path]:
            return path, []
        group = f[path]["vars"]
        stored_name = group.attrs.get("name")
        if stored_name is not None and _text(stored_name) != layer.name:
            raise layer.error(
                f"its weights group {path} belongs to layer '{_text(stored_name)}': the "
                "archive's layers are not in the config's order"
            )
        keys = list(group.keys())
        if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
            raise layer.error(f"{path}/vars holds {', '.join(keys)}, not the arrays 0..n-1")
        return path + "/vars", [(str(i), group[str(i)]) for i in range(len(keys))]

    def get(self, layer, expected):
        """expected: [(role, shape, {accepted base names})] in the layer's weight order. HDF5 files name
        their arrays, so they are matched by name; an archive's are numbered, so by position."""
        where, stored = self._legacy(layer) if self.file.container == "hdf5" else self._v3(layer)
        roles = ", ".join(role for role, _, _ in expected) or "none"
        if len(stored) != len(expected):
            got = ", ".join(n for n, _ in stored) or "none"
            missing = "" if stored else f"; {where} is missing or empty"
            raise layer.error(
                f"the file stores {len(stored)} weight array(s) ({got}) where the config "
                f"implies {len(expected)} ({roles}){missing}"
            )
        if self.file.container == "hdf5":
            by_base = {}
            for stored_name, dataset in stored:
                base = stored_name.split("/")[-1].split(":")[0]
                if base in by_base:
                    raise layer.error(f"two weights are called '{base}'")
                by_base[base] = (stored_name, dataset)
            pairs = []
            for role, shape, names in expected:
                found = [by_base[n] for n in names if n in by_base]
                if len(found) != 1:
                    raise layer.error(
                        f"weights {', '.join(n for n, _ in stored)} are not the {roles} its config "
                        f"implies (no {role})"
                    )
                pairs.append(found[0])
        else:
            pairs = stored
        result = {}
        for (role, shape, _), (stored_name, dataset) in zip(expected, pairs):
            if not isinstance(dataset, h5py.Dataset):
                raise layer.error(f"weight '{stored_name}' is not an array")
            if tuple(dataset.shape) != tuple(shape):
                raise layer.error(
                    f"weight '{stored_name}' ({role}) has shape {_show(dataset.shape)}, the "
                    f"config implies {_show(shape)}"
                )
            if dataset.dtype != np.float32:
                raise layer.error(f"weight '{stored_name}' ({role}) is {dataset.dtype}; gapnet computes in float32")
            try:
                value = np.asarray(dataset[()], dtype=np.float32)
            except OSError as e:
                raise layer.error(f"weight '{stored_name}' cannot be read ({e})")
            if not np.all(np.isfinite(value)):
                raise layer.error(f"weight '{stored_name}' ({role}) holds NaN or Inf")
            result[role] = value
        return result


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


# ---- what flows along the edges ---------------------------------------------------------------------------


@dataclass
class Value:
    """A Keras tensor as gapnet holds it: the gapnet layer producing it ("input" for the model input),
    the Keras per-sample shape ([H, W, C] or [F]), and for vectors `order`: gapnet position i holds
    Keras element order[i] (None: the same order). `pad` is a ZeroPadding2D waiting for its
    convolution: [top, bottom, left, right] of zeros around the map (the map shape excludes it)."""

    producer: str
    shape: list
    order: object = None
    pad: object = None

    @property
    def is_map(self):
        return len(self.shape) == 3


# Keras activation names -> gapnet layers. hard_sigmoid differs between Keras 2 (0.2x + 0.5) and
# Keras 3 (relu6(x + 3) / 6 = x/6 + 0.5), both clipped to [0, 1]: resolved by the file's version.
def _activation_layers(name, keras_major, layer):
    if name is None or name == "linear":
        return []
    if not isinstance(name, str):  # a serialized custom activation (a dict)
        raise layer.error(f"activation {json.dumps(name)[:60]} is not a built-in Keras activation")
    simple = {
        "relu": "relu",
        "relu6": "relu6",
        "sigmoid": "sigmoid",
        "tanh": "tanh",
        "swish": "silu",
        "silu": "silu",
        "hard_silu": "hard_swish",
        "hard_swish": "hard_swish",
    }
    if name in simple:
        return [{"type": simple[name]}]
    if name == "softmax":
        return [{"type": "softmax"}]
    if name == "leaky_relu":  # Keras 3's activations.leaky_relu: negative_slope 0.2
        if keras_major is None or keras_major < 3:
            raise layer.error(
                "activation 'leaky_relu' needs Keras 3 (its slope there is 0.2); the file's "
                "Keras version does not say it is Keras 3"
            )
        return [{"type": "leaky_relu", "negative_slope": 0.2}]
    if name == "hard_sigmoid":
        if keras_major is None:
            raise layer.error(
                "activation 'hard_sigmoid' means 0.2x+0.5 in Keras 2 and x/6+0.5 in Keras 3, "
                "and the file does not say which Keras wrote it"
            )
        if keras_major >= 3:
            return [{"type": "hard_sigmoid", "alpha": 1.0 / 6.0, "beta": 0.5}]
        return [{"type": "hard_sigmoid", "alpha": 0.2, "beta": 0.5}]
    raise layer.error(
        f"activation '{name}' is not supported (supported: linear, relu, relu6, sigmoid, "
        "tanh, swish/silu, hard_sigmoid, hard_silu/hard_swish, leaky_relu, softmax)"
    )


# ---- the conversion -------------------------------------------------------------------------------------


@dataclass
class Conversion:
    """A converted model: gapnet layers plus the shapes on both sides, per sample."""

    layers: list  # gapnet layer dicts, in order
    keras_input_shape: list  # [H, W, C] or [F]
    input_shape: list  # gapnet's [C, H, W] ([F, 1, 1] for a vector input)
    output_size: int
    input_name: str
    output_name: str
    keras_version: str
    backend: str
    model_name: str


class _Converter:
    def __init__(self, keras_file):
        self.file = keras_file
        self.major = keras_file.keras_major
        self.layers = []
        self.used_names = {"input"}
        self.values = {}  # Keras layer name -> Value

    # -- emitting gapnet layers --

    def emit(self, layer_type, wanted, sources, **attributes):
        """Append a gapnet layer reading `sources` (gapnet names); returns its unique name."""
        name, n = wanted, 2
        while name in self.used_names:
            name, n = f"{wanted}_{n}", n + 1
        self.used_names.add(name)
        entry = {"type": layer_type, "name": name}
        previous = self.layers[-1]["name"] if self.layers else "input"
        if len(sources) == 1:
            if sources[0] != previous:  # the default is the previous layer
                entry["input"] = sources[0]
        else:
            entry["inputs"] = list(sources)
        entry.update(attributes)
        self.layers.append(entry)
        return name

    def activation(self, layer, value, activation_name, suffix=True):
        """Append the layers of a Keras activation after `value`; returns the new Value."""
        layers = _activation_layers(activation_name, self.major, layer)
        for spec in layers:
            spec = dict(spec)
            kind = spec.pop("type")
            if kind == "softmax" and value.is_map:
                raise layer.error(
                    "softmax over the channels of a feature map is not supported: gapnet's "
                    "softmax works on a vector (add a global pool or Flatten first)"
                )
            wanted = f"{layer.name}_{activation_name}" if suffix else layer.name
            value = Value(self.emit(kind, wanted, [value.producer], **spec), value.shape, value.order)
        return value

    # -- per-layer handlers; each returns the Value of the layer's output --

    def single(self, layer, inputs, want_map=None):
        if len(inputs) != 1:
            raise layer.error(f"reads {len(inputs)} tensors; it takes one")
        value = inputs[0]
        if value.pad is not None and layer.class_name not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            raise layer.error("internal: a pending ZeroPadding2D reached a layer that is not a convolution")
        if want_map is True and not value.is_map:
            raise layer.error(f"needs a feature map (H x W x C), its input is a vector of {value.shape[0]}")
        if want_map is False and value.is_map:
            raise layer.error(
                f"needs a vector, its input is a feature map {_show(value.shape)} (add Flatten "
                "or a global pool first)"
            )
        return value

    def spatial(self, layer, cfg, value, kernel, strides, dilation, mode):
        """Padding [top, left, bottom, right] and output size for a convolution or pool, including a
        pending ZeroPadding2D (whose zeros the convolution reads as its own padding)."""
        h, w, _ = value.shape
        zero = value.pad or [0, 0, 0, 0]  # top, bottom, left, right
        h_in, w_in = h + zero[0] + zero[1], w + zero[2] + zero[3]
        if mode == "same":
            top, bottom, out_h = _same_padding(h_in, kernel[0], strides[0], dilation[0])
            left, right, out_w = _same_padding(w_in, kernel[1], strides[1], dilation[1])
        else:
            top = bottom = left = right = 0
            out_h = _valid_size(h_in, kernel[0], strides[0], dilation[0])
            out_w = _valid_size(w_in, kernel[1], strides[1], dilation[1])
            if out_h is None or out_w is None:
                raise layer.error(
                    f"its window {_show(kernel)} (dilation {_show(dilation)}) is larger than "
                    f"its {'padded ' if value.pad else ''}input {h_in}x{w_in} with valid padding"
                )
        padding = [top + zero[0], left + zero[2], bottom + zero[1], right + zero[3]]
        return padding, out_h, out_w

    def conv_common(self, layer, cfg, value):
        kernel = cfg.pair("kernel_size")
        strides = cfg.pair("strides", [1, 1])
        dilation = cfg.pair("dilation_rate", [1, 1])
        mode = cfg.padding_mode()
        cfg.channels_last()
        if max(dilation) > 1 and max(strides) > 1:
            raise layer.error(
                f"dilation_rate {_show(dilation)} with strides {_show(strides)} is not supported "
                "(Keras itself refuses the combination)"
            )
        use_bias = cfg.flag("use_bias", True)
        activation = cfg.get("activation", "linear")
        return kernel, strides, dilation, mode, use_bias, activation

    def op_Conv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        cfg.no_lora()
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        filters = cfg.get("filters")
        groups = cfg.get("groups", 1)
        if not _is_int(filters) or filters < 1:
            raise layer.error(f"filters {json.dumps(filters)} is not a positive integer")
        channels = value.shape[2]
        if not _is_int(groups) or groups < 1 or channels % groups or filters % groups:
            raise layer.error(
                f"groups {json.dumps(groups)} must divide the {channels} input channels and " f"the {filters} filters"
            )
        expected = [("kernel", [*kernel, channels // groups, filters], {"kernel"})]
        if use_bias:
            expected.append(("bias", [filters], {"bias"}))
        weights = self.weights.get(layer, expected)
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, dilation, mode)
        attributes = {"in_channels": channels, "out_channels": filters, "kernel_size": kernel, "stride": strides}
        if any(padding):
            attributes["padding"] = padding
        if max(dilation) > 1:
            attributes["dilation"] = dilation
        if groups > 1:
            attributes["groups"] = groups
        attributes["weight"] = _tensor(weights["kernel"].transpose(3, 2, 0, 1))  # [out, in/groups, kh, kw]
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("conv2d", layer.name, [value.producer], **attributes)
        return self.activation(layer, Value(name, [out_h, out_w, filters]), activation)

    def depthwise(self, layer, cfg, value, kernel, strides, dilation, mode, depthwise, wanted, bias=None):
        """A Keras depthwise kernel [kh, kw, C, mult] as a grouped conv2d: output channel c*mult + m is
        input channel c filtered by kernel[:, :, c, m] (TensorFlow's depthwise_conv2d order)."""
        kh, kw, channels, mult = depthwise.shape
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, dilation, mode)
        attributes = {
            "in_channels": channels,
            "out_channels": channels * mult,
            "kernel_size": kernel,
            "stride": strides,
        }
        if any(padding):
            attributes["padding"] = padding
        if max(dilation) > 1:
            attributes["dilation"] = dilation
        attributes["groups"] = channels
        attributes["weight"] = _tensor(depthwise.transpose(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw))
        if bias is not None:
            attributes["bias"] = _tensor(bias)
        name = self.emit("conv2d", wanted, [value.producer], **attributes)
        return Value(name, [out_h, out_w, channels * mult])

    def multiplier(self, layer, cfg):
        mult = cfg.get("depth_multiplier", 1)
        if not _is_int(mult) or mult < 1:
            raise layer.error(f"depth_multiplier {json.dumps(mult)} is not a positive integer")
        return mult

    def op_DepthwiseConv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        mult = self.multiplier(layer, cfg)
        # tf.keras writes the Conv2D keys it inherits as filters null and groups 1; other values would
        # not be a depthwise convolution as Keras defines it.
        if cfg.get("filters", None) is not None or cfg.get("groups", 1) not in (1, None):
            raise layer.error(
                f"filters {json.dumps(cfg.get('filters', None))} / groups "
                f"{json.dumps(cfg.get('groups', 1))} are not supported on a DepthwiseConv2D"
            )
        channels = value.shape[2]
        # Keras 2 calls the kernel depthwise_kernel, Keras 3 kernel.
        expected = [("depthwise_kernel", [*kernel, channels, mult], {"depthwise_kernel", "kernel"})]
        if use_bias:
            expected.append(("bias", [channels * mult], {"bias"}))
        weights = self.weights.get(layer, expected)
        out = self.depthwise(
            layer,
            cfg,
            value,
            kernel,
            strides,
            dilation,
            mode,
            weights["depthwise_kernel"],
            layer.name,
            weights.get("bias"),
        )
        return self.activation(layer, out, activation)

    def op_SeparableConv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        mult = self.multiplier(layer, cfg)
        if cfg.get("groups", 1) not in (1, None):
            raise layer.error(f"groups {json.dumps(cfg.get('groups'))} is not supported on a SeparableConv2D")
        filters = cfg.get("filters")
        if not _is_int(filters) or filters < 1:
            raise layer.error(f"filters {json.dumps(filters)} is not a positive integer")
        channels = value.shape[2]
        expected = [
            ("depthwise_kernel", [*kernel, channels, mult], {"depthwise_kernel"}),
            ("pointwise_kernel", [1, 1, channels * mult, filters], {"pointwise_kernel"}),
        ]
        if use_bias:
            expected.append(("bias", [filters], {"bias"}))
        weights = self.weights.get(layer, expected)
        # Depthwise (stride, dilation, padding) then a 1x1 pointwise convolution carrying the bias.
        middle = self.depthwise(
            layer, cfg, value, kernel, strides, dilation, mode, weights["depthwise_kernel"], layer.name + "_depthwise"
        )
        attributes = {
            "in_channels": channels * mult,
            "out_channels": filters,
            "kernel_size": [1, 1],
            "weight": _tensor(weights["pointwise_kernel"].transpose(3, 2, 0, 1)),
        }
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("conv2d", layer.name, [middle.producer], **attributes)
        return self.activation(layer, Value(name, [middle.shape[0], middle.shape[1], filters]), activation)

    def op_BatchNormalization(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        if not value.is_map:
            raise layer.error(
                "batch normalization of a vector is not supported (gapnet's batch_norm2d "
                "normalizes the channels of a feature map)"
            )
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        if len(axes) != 1 or axes[0] not in (-1, 3):
            raise layer.error(f"axis {json.dumps(axis)} is not the channel axis (-1 or 3)")
        epsilon = cfg.number("epsilon", 1e-3)
        if not epsilon > 0:
            raise layer.error(f"epsilon {epsilon} must be > 0")
        for key in ("renorm", "synchronized"):
            if cfg.get(key, False) not in (False, None):
                # renorm changes training only, but also adds weights the file then carries.
                raise layer.error(f"{key}=true is not supported")
        for key in ("virtual_batch_size", "adjustment"):
            if cfg.get(key, None) is not None:
                raise layer.error(f"{key} is not supported")
        # momentum and fused are training settings: nothing to convert.
        scale, center = cfg.flag("scale", True), cfg.flag("center", True)
        channels = value.shape[2]
        expected = []
        if scale:
            expected.append(("gamma", [channels], {"gamma"}))
        if center:
            expected.append(("beta", [channels], {"beta"}))
        expected += [("moving_mean", [channels], {"moving_mean"}), ("moving_variance", [channels], {"moving_variance"})]
        weights = self.weights.get(layer, expected)
        if np.any(weights["moving_variance"] < 0):
            raise layer.error("moving_variance has a negative value")
        # (x - mean) / sqrt(var + eps) * gamma + beta; absent gamma/beta are Keras's 1 and 0 (written
        # out so that gapnet does not depend on how a half-affine layer is spelled).
        name = self.emit(
            "batch_norm2d",
            layer.name,
            [value.producer],
            num_features=channels,
            eps=epsilon,
            weight=_tensor(weights.get("gamma", np.ones(channels, np.float32))),
            bias=_tensor(weights.get("beta", np.zeros(channels, np.float32))),
            running_mean=_tensor(weights["moving_mean"]),
            running_var=_tensor(weights["moving_variance"]),
        )
        return Value(name, value.shape)

    def op_Activation(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        return self.activation(layer, value, cfg.get("activation"), suffix=False)

    def op_ReLU(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        max_value = cfg.number("max_value", None, allow_none=True)
        slope = cfg.number("negative_slope", 0.0)
        threshold = cfg.number("threshold", 0.0)
        # Keras: x >= max_value -> max_value; threshold <= x < max_value -> x; else slope*(x - threshold).
        if threshold != 0.0:
            raise layer.error(f"threshold {threshold} is not supported (only 0)")
        if max_value is not None and max_value < 0:
            raise layer.error(f"max_value {max_value} is negative")
        if slope < 0:
            raise layer.error(f"negative_slope {slope} is negative")
        names = []
        if slope == 0.0 and max_value is None:
            names.append(("relu", {}))
        elif slope == 0.0 and max_value == 6.0:
            names.append(("relu6", {}))
        elif slope == 0.0:
            names.append(("clip", {"min": 0.0, "max": max_value}))
        else:
            # leaky below 0, then the cap: min(leaky(x), max) equals Keras's piecewise definition
            # because max_value >= 0 and the leaky part is <= 0 there.
            names.append(("leaky_relu", {"negative_slope": slope}))
            if max_value is not None:
                names.append(("clip", {"max": max_value}))
        for i, (kind, attributes) in enumerate(names):
            wanted = layer.name if i == len(names) - 1 else f"{layer.name}_{kind}"
            value = Value(self.emit(kind, wanted, [value.producer], **attributes), value.shape, value.order)
        return value

    def op_LeakyReLU(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        if "alpha" in layer.config and "negative_slope" in layer.config:
            raise layer.error("config has both alpha and negative_slope")
        key = "alpha" if "alpha" in layer.config else "negative_slope"
        slope = cfg.number(key, 0.3)  # Keras's default for both (gapnet's default is 0.01: always written)
        name = self.emit("leaky_relu", layer.name, [value.producer], negative_slope=slope)
        return Value(name, value.shape, value.order)

    def op_Softmax(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        if value.is_map or len(axes) != 1 or axes[0] not in (-1, 1):
            raise layer.error(
                f"softmax over axis {json.dumps(axis)} of a {_show(value.shape)} tensor is not "
                "supported: gapnet's softmax works on a whole vector"
            )
        name = self.emit("softmax", layer.name, [value.producer])
        return Value(name, value.shape, value.order)

    def op_MaxPooling2D(self, layer, cfg, inputs, kind="max_pool2d"):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        kernel = cfg.pair("pool_size", [2, 2])
        strides = kernel if cfg.get("strides", None) is None else cfg.pair("strides")
        mode = cfg.padding_mode()
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, [1, 1], mode)
        attributes = {"kernel_size": kernel, "stride": strides}
        if any(padding):
            attributes["padding"] = padding
            if kind == "avg_pool2d":  # TensorFlow averages over the real pixels of the window only
                attributes["count_include_pad"] = False
        name = self.emit(kind, layer.name, [value.producer], **attributes)
        return Value(name, [out_h, out_w, value.shape[2]])

    def op_AveragePooling2D(self, layer, cfg, inputs):
        return self.op_MaxPooling2D(layer, cfg, inputs, kind="avg_pool2d")

    def op_GlobalAveragePooling2D(self, layer, cfg, inputs, kind="global_avg_pool2d"):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        if cfg.get("keepdims", False) not in (False, None):
            raise layer.error("keepdims=true is not supported (gapnet's global pools output a vector)")
        name = self.emit(kind, layer.name, [value.producer])
        return Value(name, [value.shape[2]])

    def op_GlobalMaxPooling2D(self, layer, cfg, inputs):
        return self.op_GlobalAveragePooling2D(layer, cfg, inputs, kind="global_max_pool2d")

    def op_ZeroPadding2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        raw = cfg.get("padding", 1)
        if _is_int(raw):
            pads = [raw] * 4
        elif isinstance(raw, list) and len(raw) == 2 and all(_is_int(v) for v in raw):
            pads = [raw[0], raw[0], raw[1], raw[1]]
        elif (
            isinstance(raw, list)
            and len(raw) == 2
            and all(isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) for v in raw)
        ):
            pads = [raw[0][0], raw[0][1], raw[1][0], raw[1][1]]
        else:
            raise layer.error(f"padding {json.dumps(raw)} is not an integer, two, or ((top, bottom), (left, right))")
        if any(p < 0 for p in pads):
            raise layer.error(f"padding {json.dumps(raw)} is negative")
        # Zero padding is exact only as a convolution's own padding: gapnet has no padding layer, and a
        # pool would treat the zeros differently (max pooling never takes padding, Keras's would).
        readers = self.consumers[layer.name]
        convs = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
        if len(readers) != 1 or readers[0].class_name not in convs:
            what = ", ".join(f"'{r.name}' ({r.class_name})" for r in readers)
            raise layer.error(
                f"is read by {what}: a ZeroPadding2D is only supported when one convolution "
                "reads it (it becomes that convolution's padding)"
            )
        if value.pad is not None:
            raise layer.error("follows another ZeroPadding2D")
        return Value(value.producer, value.shape, None, pads)

    def op_Flatten(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        cfg.channels_last()
        if not value.is_map:
            return value  # a vector stays as it is
        h, w, c = value.shape
        # gapnet flattens C-H-W; Keras H-W-C. gapnet position (c, y, x) holds Keras element (y, x, c).
        order = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
        name = self.emit("flatten", layer.name, [value.producer])
        return Value(name, [h * w * c], None if h * w == 1 or c == 1 else order)

    def op_Dense(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=False)
        cfg.no_lora()
        units = cfg.get("units")
        if not _is_int(units) or units < 1:
            raise layer.error(f"units {json.dumps(units)} is not a positive integer")
        use_bias = cfg.flag("use_bias", True)
        features = value.shape[0]
        expected = [("kernel", [features, units], {"kernel"})]
        if use_bias:
            expected.append(("bias", [units], {"bias"}))
        weights = self.weights.get(layer, expected)
        kernel = weights["kernel"]  # [in, out], Keras's x @ kernel
        if value.order is not None:
            kernel = kernel[value.order, :]  # gapnet's input position i is Keras's order[i]
        attributes = {"in_features": features, "out_features": units, "weight": _tensor(kernel.T)}
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("dense", layer.name, [value.producer], **attributes)
        return self.activation(layer, Value(name, [units]), cfg.get("activation", "linear"))

    def op_Dropout(self, layer, cfg, inputs):
        cfg.get("rate", None)  # inference: the identity
        return self.single(layer, inputs)

    def op_SpatialDropout2D(self, layer, cfg, inputs):
        cfg.channels_last()
        return self.op_Dropout(layer, cfg, inputs)

    def merge_inputs(self, layer, inputs):
        if len(inputs) < 2:
            raise layer.error(f"reads {len(inputs)} tensor(s); a merge layer needs at least 2")
        if len(inputs) > 64:
            raise layer.error(f"reads {len(inputs)} tensors; gapnet's merge layers take at most 64")
        return [v.producer for v in inputs]

    def op_Add(self, layer, cfg, inputs, kind="add"):
        sources = self.merge_inputs(layer, inputs)
        first = inputs[0]
        for v in inputs[1:]:
            if v.shape != first.shape:
                broadcast = kind == "multiply"
                raise layer.error(
                    f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ"
                    + (" (only a vector of C may be broadcast over a map of C channels)" if broadcast else "")
                )
            if not _same_order(v.order, first.order):
                raise layer.error(
                    "its vector inputs are in different orders (Flattens of differently "
                    "shaped maps): gapnet would add mismatched elements"
                )
        name = self.emit(kind, layer.name, sources)
        return Value(name, first.shape, first.order)

    def op_Multiply(self, layer, cfg, inputs):
        maps = [v for v in inputs if v.is_map]
        if maps and len(maps) < len(inputs):
            # Keras expands a lower-rank input at axis 1 until the ranks match: a vector of C becomes
            # 1 x 1 x C and scales each channel (squeeze-and-excitation), which gapnet's multiply does.
            self.merge_inputs(layer, inputs)
            shape = maps[0].shape
            for v in inputs:
                if v.is_map and v.shape != shape:
                    raise layer.error(f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ")
                if not v.is_map and (v.shape != [shape[2]] or v.order is not None):
                    raise layer.error(
                        f"input shapes {', '.join(_show(i.shape) for i in inputs)}: only a vector "
                        f"of {shape[2]} in channel order may scale a map of {shape[2]} channels"
                    )
            name = self.emit("multiply", layer.name, [v.producer for v in inputs])
            return Value(name, shape)
        return self.op_Add(layer, cfg, inputs, kind="multiply")

    def op_Concatenate(self, layer, cfg, inputs):
        sources = self.merge_inputs(layer, inputs)
        axis = cfg.get("axis", -1)
        first = inputs[0]
        if any(v.is_map != first.is_map for v in inputs):
            raise layer.error("concatenates feature maps with vectors")
        if first.is_map:
            if axis not in (-1, 3):
                raise layer.error(f"axis {json.dumps(axis)} is not supported: only the channel axis (-1 or 3)")
            if any(v.shape[:2] != first.shape[:2] for v in inputs):
                raise layer.error(
                    f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ in height " "or width"
                )
            shape, order = [*first.shape[:2], sum(v.shape[2] for v in inputs)], None
        else:
            if axis not in (-1, 1):
                raise layer.error(f"axis {json.dumps(axis)} is not supported on vectors (-1 or 1)")
            shape = [sum(v.shape[0] for v in inputs)]
            order, offset, pieces = None, 0, []
            for v in inputs:
                pieces.append((np.arange(v.shape[0]) if v.order is None else v.order) + offset)
                offset += v.shape[0]
            if any(v.order is not None for v in inputs):
                order = np.concatenate(pieces)
        name = self.emit("concat", layer.name, sources)
        return Value(name, shape, order)

    # -- the walk --

    def input_value(self, layer):
        cfg = Config(layer)
        shape = cfg.get("batch_input_shape", None)
        if shape is None:
            shape = cfg.get("batch_shape", None)
        if shape is None and cfg.get("shape", None) is not None:
            shape = [None, *cfg.get("shape")]
        if not isinstance(shape, list) or len(shape) not in (2, 4):
            raise layer.error(f"input shape {json.dumps(shape)} is not [batch, H, W, C] or [batch, F]")
        dims = shape[1:]
        if not all(_is_int(d) and d >= 1 for d in dims):
            raise layer.error(f"input shape {json.dumps(shape)}: every dimension but the batch needs a fixed " "size")
        for key in ("sparse", "ragged", "optional"):
            if cfg.get(key, False) not in (False, None):
                raise layer.error(f"{key} inputs are not supported")
        return Value("input", list(dims))

    def run(self):
        layers, input_name, output_name = parse_graph(self.file.config)
        order, consumers = topological_order(layers, input_name, output_name)
        self.consumers = consumers
        self.weights = Weights(self.file, layers)
        input_layer = next(layer for layer in order if layer.name == input_name)
        input_value = self.input_value(input_layer)
        keras_input_shape = list(input_value.shape)
        if len(keras_input_shape) == 1:
            # A vector input: gapnet reads it as [F, 1, 1] and flattens it (values unchanged).
            f_count = keras_input_shape[0]
            gapnet_input = [f_count, 1, 1]
            input_value = Value(self.emit("flatten", "input_flatten", ["input"]), [f_count])
        else:
            h, w, c = keras_input_shape
            gapnet_input = [c, h, w]
        self.values[input_name] = input_value
        for layer in order:
            if layer.name == input_name:
                continue
            if layer.class_name == "InputLayer":
                raise layer.error("a second input layer")
            if layer.class_name not in KNOWN_KEYS:
                module = layer.raw.get("module")
                hint = " (a nested model)" if layer.class_name in ("Sequential", "Model", "Functional") else ""
                raise layer.error(
                    f"layer type not supported by gapnet{hint} (supported: {', '.join(SUPPORTED)})"
                    + (f"; module '{module}'" if module not in (None, "keras.layers") else "")
                )
            registered = layer.raw.get("registered_name")
            if registered not in (None, layer.class_name):
                raise layer.error(f"registered as '{registered}': a custom layer, not the built-in one")
            cfg = Config(layer)
            inputs = [self.values[source] for source in layer.inputs]
            self.values[layer.name] = getattr(self, "op_" + layer.class_name)(layer, cfg, inputs)
        out = self.values[output_name]
        output_layer = next(layer for layer in order if layer.name == output_name)
        if out.is_map:
            raise output_layer.error(
                f"the model's output is a feature map {_show(out.shape)}; gapnet models "
                "end in a vector (add a global pool or Flatten and Dense)"
            )
        if out.order is not None and not np.array_equal(out.order, np.arange(len(out.order))):
            raise output_layer.error(
                "the model's output is a Flatten of a feature map, whose channels-last "
                "order gapnet does not reproduce without a Dense after it"
            )
        if not self.layers:
            raise ConversionError("the model has no layer gapnet can run (only inputs and dropouts)")
        if out.producer != self.layers[-1]["name"]:
            raise output_layer.error("internal: the output is not the last layer written")
        model_name = (
            self.file.config.get("config", {}).get("name", "")
            if isinstance(self.file.config.get("config"), dict)
            else ""
        )
        return Conversion(
            self.layers,
            keras_input_shape,
            gapnet_input,
            out.shape[0],
            input_name,
            output_name,
            self.file.keras_version,
            self.file.backend,
            model_name or "",
        )


def _same_order(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def convert(keras_file):
    """Convert a loaded KerasFile to gapnet layers. Raises ConversionError."""
    return _Converter(keras_file).run()


# ---- the gapnet document ---------------------------------------------------------------------------------


def input_spec(conversion, color=None, mean=None, std=None, scale=None):
    """gapnet's "input" object (gapnet_file.input_spec)."""
    return gapnet_file.input_spec(
        conversion.input_shape, len(conversion.keras_input_shape) == 1, "the input", color, mean, std, scale
    )


def provenance(keras_file, conversion, source=None):
    metadata = {
        "converted_from": "keras",
        "converter": "tools/keras_to_gapnet.py",
        "keras_container": keras_file.container,
    }
    for key, value in (
        ("keras_version", conversion.keras_version),
        ("keras_backend", conversion.backend),
        ("keras_model_name", conversion.model_name),
        ("source", source),
    ):
        if value:
            metadata[key] = value
    return metadata


def document(
    conversion,
    labels=None,
    color=None,
    mean=None,
    std=None,
    scale=None,
    name="model",
    metadata=None,
    image_options=None,
):
    """The complete gapnet model dict."""
    outputs = conversion.output_size
    if labels is None:
        labels = [str(i) for i in range(outputs)]
    if len(labels) != outputs:
        raise ConversionError(f"{len(labels)} labels for {outputs} outputs")
    doc = {
        "format": "gapnet",
        "version": 1,
        "name": name,
        "input": gapnet_file.add_image_options(input_spec(conversion, color, mean, std, scale), image_options or {}),
        "labels": list(labels),
        "layers": conversion.layers,
    }
    if metadata:
        doc["metadata"] = metadata
    return doc


def test_cases(conversion, inputs, outputs):
    """gapnet "tests" from Keras-layout arrays: inputs [N, H, W, C] (or [N, F]), outputs [N, classes].
    Inputs are transposed to gapnet's [C, H, W]."""
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    for what, a, shape in (("x", inputs, conversion.keras_input_shape), ("y", outputs, [conversion.output_size])):
        if a.dtype != np.float32:
            raise ConversionError(f"test {what} is {a.dtype}, not float32")
        if list(a.shape[1:]) != list(shape):
            raise ConversionError(
                f"test {what} has shape {_show(a.shape)}; the model's is "
                f"{_show(['N', *shape])} (Keras's channels-last layout)"
            )
        if not np.all(np.isfinite(a)):
            raise ConversionError(f"test {what} holds NaN or Inf")
    if len(inputs) != len(outputs):
        raise ConversionError(f"{len(inputs)} test inputs but {len(outputs)} outputs")
    cases = []
    for x, y in zip(inputs, outputs):
        x = x.reshape(conversion.input_shape) if x.ndim == 1 else x.transpose(2, 0, 1)
        cases.append({"input": _tensor(x), "output": _tensor(y)})
    return cases


def read_test_data(path):
    """An .npz with x [N, H, W, C] (Keras's input layout, already preprocessed) and y [N, classes]
    (what Keras's model.predict returned for x)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise ConversionError(f"--test-data {path}: has no array '{missing[0]}' (needs x and y)")
            return data["x"], data["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ConversionError(f"--test-data {path}: not a readable .npz file ({e})")


def to_gapnet(path, labels=None, color=None, mean=None, std=None, scale=None, name=None):
    """The gapnet model dict for a Keras file (see load, convert and document)."""
    keras_file = load(path)
    conversion = convert(keras_file)
    name = name or os.path.splitext(os.path.basename(path))[0]
    return document(
        conversion, labels, color, mean, std, scale, name, provenance(keras_file, conversion, os.path.basename(path))
    )


def main():
    ap = argparse.ArgumentParser(
        description="Convert a Keras model file (.h5/.hdf5 or .keras) to gapnet's " "JSON model format (docs/keras.md)."
    )
    ap.add_argument("model", help="the Keras file: HDF5 (model.save('m.h5')) or a Keras 3 .keras archive")
    ap.add_argument("out", help="the gapnet JSON file to write")
    ap.add_argument("--labels", help="a text file with one class label per line (default: 0..n-1)")
    ap.add_argument(
        "--color",
        choices=["grayscale", "rgb", "none"],
        help="how images become the input (default by channel count: 1 grayscale, 3 rgb, else none)",
    )
    ap.add_argument("--scale", type=float, help="multiplies each 0..255 pixel (gapnet's default 1/255)")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean, after --scale")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel standard deviation")
    gapnet_file.add_image_arguments(ap)
    ap.add_argument("--name", help="the model name (default: the file name)")
    ap.add_argument(
        "--metadata",
        metavar="FILE.json",
        help="a JSON object of extra metadata (provenance, licence, ...) stored in the file's "
        "metadata beside what the converter records",
    )
    ap.add_argument(
        "--test-data",
        action="append",
        default=[],
        metavar="FILE.npz",
        help="recorded tests for `gapnet verify`: an .npz with x [N,H,W,C] (preprocessed inputs in "
        "Keras's layout) and y [N,classes] (the model's outputs for them); may be repeated",
    )
    args = ap.parse_args()

    tests = []
    try:
        labels = None
        if args.labels:
            try:
                with open(args.labels) as f:
                    labels = [line.rstrip("\n") for line in f if line.strip()]
            except (OSError, UnicodeDecodeError) as e:
                sys.exit(f"{PROGRAM}: error: {args.labels}: {e}")
        extra = {}
        if args.metadata:
            try:
                with open(args.metadata) as f:
                    extra = json.load(f)
            except (OSError, ValueError) as e:
                sys.exit(f"{PROGRAM}: error: {args.metadata}: {e}")
            if not isinstance(extra, dict):
                sys.exit(f"{PROGRAM}: error: {args.metadata}: not a JSON object")
        keras_file = load(args.model)
        conversion = convert(keras_file)
        name = args.name or os.path.splitext(os.path.basename(args.model))[0]
        doc = document(
            conversion,
            labels,
            args.color,
            args.mean,
            args.std,
            args.scale,
            name,
            {**provenance(keras_file, conversion, os.path.basename(args.model)), **extra},
            gapnet_file.image_options(args),
        )
        for path in args.test_data:
            tests += test_cases(conversion, *read_test_data(path))
        gapnet_file.attach_tests(doc, tests)
    except ConversionError as e:
        sys.exit(f"{PROGRAM}: error: {args.model}: {e}")
    except Exception as e:  # a malformed file we did not foresee: still one line, never a traceback
        detail = str(e).splitlines()[0] if str(e) else ""
        sys.exit(f"{PROGRAM}: error: {args.model}: malformed model file ({type(e).__name__}: {detail})")
    gapnet_file.write(PROGRAM, args.out, doc, conversion.input_shape)


if __name__ == "__main__":
    main()
