#!/usr/bin/python3
"""Convert an ONNX model to gapnet's JSON model format (docs/model-format.md); see docs/onnx.md.

As a program (Debian's system interpreter, with python3-onnx and python3-numpy):

    /usr/bin/python3 tools/onnx_to_gapnet.py MODEL.onnx OUT.json [--labels FILE]
        [--color grayscale|rgb|none] [--mean M ..] [--std S ..] [--scale S] [--name N]
        [--test-data DIR ..]

As a library:

    import onnx, onnx_to_gapnet
    model = onnx.load("model.onnx")
    doc = onnx_to_gapnet.to_gapnet(model, labels=[...])                # the gapnet dict
    # or in steps, e.g. with weights that are graph inputs bound to arrays, and recorded tests:
    conversion = onnx_to_gapnet.convert(model, constants={"W": w})     # layers and shapes
    doc = onnx_to_gapnet.document(conversion, labels)
    doc["tests"] = onnx_to_gapnet.test_cases(conversion, inputs, outputs)

Why a converter of its own: ONNX is what Keras/TensorFlow (via tf2onnx), PyTorch (torch.onnx.export)
and most other frameworks export to, so one converter brings their CNN classifiers to gapnet.

What it accepts: a directed acyclic graph (residual additions, concatenations, squeeze-and-excitation
gates) of Conv, BatchNormalization (inference), Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid,
HardSwish, Tanh, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean over H and W,
Add/Sum, Mul, Concat, Pad (zeros, folded into the Conv or AveragePool after it), Flatten, Gemm,
MatMul (optionally followed by an Add of a constant bias: one dense layer), Softmax, Reshape to a flat
vector per sample, and Dropout/Identity (skipped), from one float32 input [N, C, H, W] (an image) or
[N, F] (a vector), to one output. Weights come from initializers, Constant nodes (also through
Identity), or constants the caller binds to graph inputs.

The rule: gapnet must compute exactly what ONNX specifies. Every attribute of every node is read;
any value the engine cannot reproduce (a dilated pool, transA=1, a softmax over the wrong axis, a
bias that differs per sample, a broadcasting Add, a cycle, ...) is refused with one line naming the
node and the attribute. Nothing is approximated.

How the graph is walked: only the nodes the graph output depends on are converted (the others, e.g.
an auxiliary classifier's head, are pruned: gapnet refuses layers whose output nobody reads); they are
taken in a topological order (file order for a valid file, which ONNX requires to be topological).
Each ONNX tensor maps to the gapnet layer that produces it ("input" for the model input), so a node
reading several tensors becomes a layer with "inputs"; a layer reading anything but the layer right
before it names its "input".

How shapes are tracked: ONNX tensors carry the batch dimension N first; gapnet's layers see one
sample. For every tensor the converter keeps the ONNX per-sample shape and the gapnet shape. They are
equal, except that gapnet may hold the same values as a flat vector (after a global pool, where ONNX
has [C, 1, 1]); in row-major order the values are always the same, which is what makes the recorded
test outputs and the appended flattens exact. A 1x1 Conv on such a [C, 1, 1] tensor is a dense layer
(the same sums), and a Mul of a feature map [C, H, W] by it is gapnet's multiply by a vector. A
Sigmoid whose only reader multiplies it by the Sigmoid's own input (PyTorch's SiLU) is one silu layer.
"""
import argparse
import heapq
import math
import operator
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

import gapnet_file
import model_files
from gapnet_file import ConversionError, NonFinite as _NonFinite, tensor as _tensor

SUPPORTED_OPS = (
    "Conv",
    "BatchNormalization",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "Add",
    "Sum",
    "Mul",
    "Concat",
    "Pad",
    "Flatten",
    "Gemm",
    "MatMul",
    "Softmax",
    "Reshape",
    "Dropout",
    "Identity",
    "Constant",
)


# Attributes each operator may carry (any opset); anything else is refused, never ignored.
KNOWN_ATTRIBUTES = {
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "BatchNormalization": {"epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs"},
    "Relu": {"consumed_inputs"},
    "Clip": {"min", "max", "consumed_inputs"},
    "LeakyRelu": {"alpha", "consumed_inputs"},
    "Sigmoid": {"consumed_inputs"},
    "HardSigmoid": {"alpha", "beta", "consumed_inputs"},
    "HardSwish": set(),
    "Tanh": {"consumed_inputs"},
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"},
    "AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"},
    "GlobalAveragePool": set(),
    "GlobalMaxPool": set(),
    "ReduceMean": {"axes", "keepdims", "noop_with_empty_axes"},
    "Add": {"axis", "broadcast", "consumed_inputs"},
    "Sum": {"consumed_inputs"},
    "Mul": {"axis", "broadcast", "consumed_inputs"},
    "Concat": {"axis"},
    "Pad": {"mode", "pads", "value"},
    "Flatten": {"axis"},
    "Gemm": {"alpha", "beta", "transA", "transB", "broadcast"},
    "MatMul": set(),
    "Softmax": {"axis"},
    "Reshape": {"allowzero", "consumed_inputs"},
    "Dropout": {"ratio", "seed", "is_test", "consumed_inputs"},
    "Identity": set(),
}

# The type of every attribute above (the same for every operator and opset that has it), checked
# before any is read: a file with pads given as a float or an axis as a string is refused by name.
_A = onnx.AttributeProto
ATTRIBUTE_TYPES = {
    "auto_pad": _A.STRING,
    "mode": _A.STRING,
    "dilations": _A.INTS,
    "kernel_shape": _A.INTS,
    "pads": _A.INTS,
    "strides": _A.INTS,
    "axes": _A.INTS,
    "consumed_inputs": _A.INTS,
    "group": _A.INT,
    "ceil_mode": _A.INT,
    "count_include_pad": _A.INT,
    "storage_order": _A.INT,
    "axis": _A.INT,
    "keepdims": _A.INT,
    "noop_with_empty_axes": _A.INT,
    "transA": _A.INT,
    "transB": _A.INT,
    "broadcast": _A.INT,
    "allowzero": _A.INT,
    "spatial": _A.INT,
    "training_mode": _A.INT,
    "is_test": _A.INT,
    "seed": _A.INT,
    "alpha": _A.FLOAT,
    "beta": _A.FLOAT,
    "epsilon": _A.FLOAT,
    "momentum": _A.FLOAT,
    "min": _A.FLOAT,
    "max": _A.FLOAT,
    "value": _A.FLOAT,
    "ratio": _A.FLOAT,
}

# Operators whose every input is data (a computed tensor); the others read data at input 0 only, and
# constants (weights, shapes, bounds) at the rest.
ALL_DATA_INPUTS = {"Add", "Sum", "Mul", "Concat"}


@dataclass
class Conversion:
    """A converted graph: gapnet layers plus the shapes on both sides, per sample (no batch axis)."""

    input_name: str  # the ONNX data input
    onnx_input_shape: list  # e.g. [3, 224, 224] or [20]
    input_shape: list  # gapnet's input [C, H, W] ([F, 1, 1] for a vector input)
    vector_input: bool
    layers: list  # gapnet layer dicts, in order
    output_name: str  # the ONNX graph output
    onnx_output_shape: list
    output_shape: list  # gapnet's output shape (same values as ONNX's, row-major)
    opset: int


@dataclass
class _Value:
    """An ONNX data tensor as gapnet holds it: the layer that computes it ("input" for the model input)
    and its per-sample shapes. `pad` [top, left, bottom, right] marks the output of a Pad not yet
    applied: `layer` and `gap` are then the unpadded tensor's, `onnx` the padded one's."""

    layer: str
    onnx: list
    gap: list
    pad: list = None


def _show(values):
    """[2,2] as the error messages write lists."""
    return "[" + ",".join(str(v) for v in values) + "]"


def _array(tensor, what):
    """A TensorProto's values. One stored as external data must have been read in first (load,
    read_external_data): numpy_helper would read it relative to the working directory, unchecked."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ConversionError(
            f"{what} is stored as external data that was not read in "
            "(load the model with onnx_to_gapnet.load, which confines it to the model's folder)"
        )
    return numpy_helper.to_array(tensor)


def _ceil_div(a, b):
    return -(-a // b)


def _per_sample(shape):
    """A per-sample shape as the messages show a tensor: [N,3,4,5]."""
    return _show(["N", *shape])


def _dimension(d):
    """An ONNX shape dimension for messages: its size, its symbolic name, or ?."""
    if d.HasField("dim_value"):
        return d.dim_value
    return d.dim_param or "?"


def _gapnet_window_count(size, before, after, extent, stride, ceil_mode):
    """Output positions along one axis as gapnet computes them (engine/layers/window2d.cpp): floor or
    ceil, and with ceil_mode a last window starting in the bottom/right padding is dropped (PyTorch's
    rule)."""
    padded = size + before + after
    count = (padded - extent + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (count - 1) * stride >= size + before:
        count -= 1
    return count


class _Node:
    """One ONNX node with its attributes decoded, and errors that name it."""

    def __init__(self, proto, index):
        self.proto = proto
        self.index = index
        self.op = proto.op_type
        self.name = proto.name or f"#{index}"
        self.attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        self.types = {a.name: a.type for a in proto.attribute}
        for key, value in list(self.attrs.items()):
            if isinstance(value, bytes):
                self.attrs[key] = value.decode("utf-8", "replace")

    def error(self, message):
        return ConversionError(f"node '{self.name}' ({self.op}): {message}")

    def describe(self):
        return f"node '{self.name}' ({self.op})"

    def get(self, key, default):
        return self.attrs.get(key, default)

    def ints(self, key, default, count, minimum):
        values = [int(v) for v in self.attrs.get(key, default)]
        if len(values) != count:
            raise self.error(f"{key} {_show(values)} needs {count} values (2-D only)")
        if any(v < minimum for v in values):
            raise self.error(f"{key} {_show(values)} must be >= {minimum}")
        return values


class _Converter:
    """Walks the graph's live nodes in topological order, keeping each data tensor's _Value."""

    def __init__(self, model, constants):
        self.model = model
        self.graph = model.graph
        self.opset = self._opset()
        self.constants = {t.name: _array(t, f"initializer '{t.name}'") for t in self.graph.initializer}
        graph_inputs = [i.name for i in self.graph.input]
        for name, value in (constants or {}).items():
            if name not in graph_inputs:
                raise ConversionError(
                    f"cannot bind '{name}': the graph has no input of that name " f"(inputs: {', '.join(graph_inputs)})"
                )
            self.constants[name] = np.asarray(value)
        self.layers, self.used_names = [], {"input"}
        self.values = {}  # ONNX data tensor name -> _Value
        self.vectors = {}  # gapnet layer holding a [C,1,1] map -> the flatten holding it as a vector
        self.dense_of_matmul = {}  # MatMul output tensor -> its dense layer dict (for a following bias Add)
        self.fused_mul = {}  # index of a Mul computing x * sigmoid(x) -> the silu layer's _Value

    def _opset(self):
        versions = [o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        if not versions:
            raise ConversionError("the model imports no version of the standard ONNX operator set")
        return int(versions[0])

    # ---- the input ---------------------------------------------------------------------------

    def data_input(self, live_tensors):
        candidates = [i for i in self.graph.input if i.name not in self.constants]
        if len(candidates) != 1:
            names = ", ".join(f"'{i.name}'" for i in candidates) or "none"
            raise ConversionError(
                f"the graph needs exactly one data input, it has {len(candidates)} ({names}); "
                "the others must be initializers or bound constants"
            )
        value = candidates[0]
        if value.name not in live_tensors:
            raise ConversionError(f"the graph output does not depend on the data input '{value.name}'")
        if not value.type.HasField("tensor_type"):
            raise ConversionError(f"input '{value.name}' is not a tensor ({value.type.WhichOneof('value')})")
        elem = value.type.tensor_type.elem_type
        if elem != onnx.TensorProto.FLOAT:
            raise ConversionError(
                f"input '{value.name}' is {onnx.TensorProto.DataType.Name(elem).lower()}; " "gapnet computes in float32"
            )
        if not value.type.tensor_type.HasField("shape"):
            raise ConversionError(f"input '{value.name}' has no declared shape")
        dims = value.type.tensor_type.shape.dim
        shown = _show(_dimension(d) for d in dims)
        if len(dims) not in (2, 4):
            raise ConversionError(
                f"input '{value.name}' has shape {shown}: gapnet takes a 4-D [N,C,H,W] " "image or a 2-D [N,F] vector"
            )
        per_sample = []
        for d in dims[1:]:
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise ConversionError(
                    f"input '{value.name}' has shape {shown}: every dimension but the " "batch needs a fixed size"
                )
            per_sample.append(int(d.dim_value))
        batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
        return value.name, per_sample, batch

    # ---- the graph: liveness and order ---------------------------------------------------------

    def live_nodes(self, nodes, outputs):
        """The nodes the graph `outputs` depend on, in a topological order (file order where the file is
        valid). Refuses a tensor produced twice, a read of a tensor nothing produces, and cycles."""
        producer = {}
        for node in nodes:
            for name in node.proto.output:
                if not name:
                    continue
                if name in producer:
                    raise node.error(f"its output '{name}' is also the output of {producer[name].describe()}")
                if name in self.constants or name in {i.name for i in self.graph.input}:
                    raise node.error(f"its output '{name}' is also a graph input or initializer")
                producer[name] = node
        live, live_tensors, stack = set(), set(outputs), list(outputs)
        while stack:
            node = producer.get(stack.pop())
            if node is None or node.index in live:
                continue
            live.add(node.index)
            for name in node.proto.input:
                if name and name not in live_tensors:
                    live_tensors.add(name)
                    stack.append(name)
        graph_inputs = {i.name for i in self.graph.input}
        # Kahn's algorithm, always taking the earliest node in the file that is ready.
        waiting, readers = {}, {}
        for index in live:
            node = nodes[index]
            sources = set()
            for name in node.proto.input:
                if not name:
                    continue
                if name in producer:
                    sources.add(producer[name].index)
                elif name not in self.constants and name not in graph_inputs:
                    raise node.error(f"reads '{name}', which is no graph input, initializer or node output")
            waiting[index] = len(sources)
            for source in sources:
                readers.setdefault(source, []).append(index)
        ready = [index for index, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            index = heapq.heappop(ready)
            order.append(nodes[index])
            for reader in readers.get(index, []):
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    heapq.heappush(ready, reader)
        if len(order) != len(live):
            stuck = nodes[min(set(live) - {n.index for n in order})]
            raise stuck.error("is on a cycle: its inputs depend on its own output (an ONNX graph is acyclic)")
        return order, live_tensors

    # ---- helpers -----------------------------------------------------------------------------

    def add_layer(self, layer, wanted, inputs):
        """Append a layer reading the gapnet layers `inputs`; returns its (unique) name. "input" is
        written only where it is not the layer just before (gapnet's default)."""
        name, n = wanted, 2
        while name in self.used_names:
            name, n = f"{wanted}_{n}", n + 1
        self.used_names.add(name)
        previous = self.layers[-1]["name"] if self.layers else "input"
        entry = {"type": layer.pop("type"), "name": name}
        if len(inputs) > 1:
            entry["inputs"] = list(inputs)
        elif inputs[0] != previous:
            entry["input"] = inputs[0]
        entry.update(layer)
        self.layers.append(entry)
        return name

    def layer_name(self, node, kind):
        return node.proto.name if node.proto.name else f"{kind}_{node.index}"

    def constant(self, node, position, what, required=True, dtype=np.float32):
        """The constant at input `position`, checked to be float32 (or integer for shapes)."""
        names = node.proto.input
        if position >= len(names) or names[position] == "":
            if required:
                raise node.error(f"{what} is missing")
            return None
        name = names[position]
        if name not in self.constants:
            raise node.error(
                f"{what} '{name}' is not a constant (an initializer, a Constant node or a "
                "bound input); gapnet's weights are fixed"
            )
        value = self.constants[name]
        if dtype is np.float32 and value.dtype != np.float32:
            raise node.error(f"{what} '{name}' is {value.dtype}; gapnet's weights are float32")
        if dtype is np.int64 and value.dtype.kind not in "iu":
            raise node.error(f"{what} '{name}' is {value.dtype}, not integers")
        return value

    def data(self, node, position=0):
        """The _Value the node reads at input `position`. A padded tensor is only for Conv and
        AveragePool, which check for it themselves (op_Pad refuses other readers)."""
        return self.values[node.proto.input[position]]

    def feature_map(self, node, value):
        """[C, H, W] of a data input that gapnet holds as a feature map."""
        if len(value.onnx) != 3:
            raise node.error(f"needs a 4-D [N,C,H,W] input, got {_per_sample(value.onnx)}")
        if len(value.gap) != 3:
            raise node.error(
                f"its input {_per_sample(value.onnx)} comes after a global pool or "
                "flatten, which gapnet holds as a vector; gapnet's 2-D layers need a feature map"
            )
        return value.onnx

    def as_vector(self, value):
        """The gapnet layer holding `value` as a vector: itself, or a flatten of a [C,1,1] feature map
        (the same values in the same order), made once per layer."""
        if len(value.gap) == 1:
            return value.layer
        if value.layer not in self.vectors:
            self.vectors[value.layer] = self.add_layer({"type": "flatten"}, f"{value.layer}_vector", [value.layer])
        return self.vectors[value.layer]

    def same_holding(self, values):
        """The gapnet layers for tensors of one ONNX shape, all held the same way: if any is a vector,
        the [C,1,1] feature maps among them are flattened too. Returns (layers, gapnet shape)."""
        if any(len(v.gap) == 1 for v in values):
            return [self.as_vector(v) for v in values], [int(np.prod(values[0].onnx))]
        return [v.layer for v in values], list(values[0].gap)

    @staticmethod
    def onnx_constant_node(node):
        a = node.attrs
        if "value" in a and isinstance(a["value"], onnx.TensorProto):
            try:
                return _array(a["value"], "its value")
            except Exception as e:  # external or malformed data: numpy_helper raises various types
                raise node.error(f"its value cannot be read: {e}")
        if "value_float" in a:
            return np.array(a["value_float"], dtype=np.float32)
        if "value_floats" in a:
            return np.array(a["value_floats"], dtype=np.float32)
        if "value_int" in a:
            return np.array(a["value_int"], dtype=np.int64)
        if "value_ints" in a:
            return np.array(a["value_ints"], dtype=np.int64)
        raise node.error(f"only tensor, float(s) and int(s) constants are supported, not {_show(a)}")

    # ---- the walk ----------------------------------------------------------------------------

    def run(self):
        # Nodes are converted before the number of outputs is checked, so that a node's own refusal
        # (BatchNormalization in training mode, a MaxPool's Indices) names the real reason.
        graph_outputs = [o.name for o in self.graph.output]
        if not graph_outputs:
            raise ConversionError("the graph has no output")
        nodes = [_Node(p, i) for i, p in enumerate(self.graph.node)]
        order, live_tensors = self.live_nodes(nodes, graph_outputs)

        input_name, in_shape, self.batch = self.data_input(live_tensors)
        vector_input = len(in_shape) == 1
        gap_input = [in_shape[0], 1, 1] if vector_input else list(in_shape)
        if vector_input:
            flat = self.add_layer({"type": "flatten"}, "input_flatten", ["input"])
            self.values[input_name] = _Value(flat, list(in_shape), [in_shape[0]])
        else:
            self.values[input_name] = _Value("input", list(in_shape), list(in_shape))

        self.readers = {name: ["the graph output"] for name in graph_outputs}
        for node in order:
            for name in node.proto.input:
                if name:
                    self.readers.setdefault(name, []).append(node)

        for node in order:
            self.convert_node(node)

        if len(graph_outputs) != 1:
            raise ConversionError(
                f"the graph outputs {', '.join(repr(o) for o in graph_outputs) or 'nothing'}; "
                "gapnet needs exactly one output"
            )
        output = graph_outputs[0]
        if output not in self.values:
            raise ConversionError(f"the graph output '{output}' is a constant, not computed from the input")
        result = self.values[output]
        self.check_declared_output(output, result.onnx)
        conversion = Conversion(
            input_name,
            list(in_shape),
            gap_input,
            vector_input,
            self.layers,
            output,
            list(result.onnx),
            list(result.gap),
            self.opset,
        )
        if not self.layers:  # document() refuses it, unless a caller appends layers (a flatten, say)
            return conversion
        # The output's layer is the last one: every live node reaches the output, so none comes after
        # the node computing it. gapnet also needs every other layer's output to be read.
        read = {name for layer in self.layers for name in layer.get("inputs", [layer.get("input")])}
        read |= {
            previous["name"]
            for previous, layer in zip(self.layers, self.layers[1:])
            if "input" not in layer and "inputs" not in layer
        }
        unread = [layer["name"] for layer in self.layers[:-1] if layer["name"] not in read]
        if result.layer != self.layers[-1]["name"] or unread:  # a converter bug, not a model problem
            raise ConversionError(
                f"internal error: output layer '{result.layer}', last layer "
                f"'{self.layers[-1]['name']}', unread layers {unread}"
            )
        return conversion

    def convert_node(self, node):
        if node.proto.domain not in ("", "ai.onnx"):
            raise node.error(f"operators of domain '{node.proto.domain}' are not supported")
        if node.op not in SUPPORTED_OPS:
            raise node.error(
                "operator not supported by gapnet (supported: "
                + ", ".join(op for op in SUPPORTED_OPS if op != "Constant")
                + ")"
            )
        if node.op == "Constant":
            self.constants[node.proto.output[0]] = self.onnx_constant_node(node)
            return
        unknown = sorted(set(node.attrs) - KNOWN_ATTRIBUTES[node.op])
        if unknown:
            raise node.error(f"attribute {unknown[0]} is not supported")
        for key, kind in node.types.items():
            if kind != ATTRIBUTE_TYPES[key]:
                name = onnx.AttributeProto.AttributeType.Name
                raise node.error(f"attribute {key} is of type {name(kind)}, not {name(ATTRIBUTE_TYPES[key])}")
        inputs = list(node.proto.input)
        data = [n for n in inputs if n and n not in self.constants]
        if not data:
            if node.op == "Identity" and inputs and inputs[0]:  # e.g. PyTorch's shared weights
                self.constants[node.proto.output[0]] = self.constants[inputs[0]]
                return
            raise node.error("computes only from constants; fold constants first (e.g. onnx-simplifier)")
        if node.op not in ALL_DATA_INPUTS:
            if not inputs[0] or inputs[0] in self.constants:
                raise node.error(f"its data input must be its first input, '{data[0]}' is not")
            for position, name in enumerate(inputs[1:], 1):
                if name and name not in self.constants:
                    self.constant(node, position, f"input {position}")  # refuses, naming it
        handler = getattr(self, "op_" + node.op)
        try:
            result = handler(node)
        except _NonFinite as e:
            raise node.error(str(e))
        for position, extra in enumerate(node.proto.output[1:], 2):
            if extra and self.readers.get(extra):
                raise node.error(f"its output {position} ('{extra}') is used; only the first output is supported")
        self.values[node.proto.output[0]] = result

    def check_declared_output(self, name, onnx_shape):
        value = self.graph.output[0]
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            return
        dims = value.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(declared) != len(onnx_shape) + 1 or any(
            d is not None and d != c for d, c in zip(declared[1:], onnx_shape)
        ):
            raise ConversionError(
                f"output '{name}' is declared as {_show(_dimension(d) for d in dims)}, "
                f"but the converter computes {_per_sample(onnx_shape)}"
            )

    # ---- operators ---------------------------------------------------------------------------

    def windows(self, node, in_hw, kernel, strides, dilations, pooling, outer=None):
        """Per-axis (pad_before, pad_after) from auto_pad or pads, and ONNX's output size, which must
        equal gapnet's (else refused). `in_hw` is the input ONNX sees; `outer` [t,l,b,r] the zeros a Pad
        before the node added to it, which gapnet's layer applies itself. Returns (gapnet's pads
        [t,l,b,r], these plus `outer`; out [h,w]; ceil_mode for gapnet)."""
        auto_pad = node.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
            raise node.error(f"auto_pad '{auto_pad}' is not supported")
        if auto_pad != "NOTSET" and "pads" in node.attrs and any(node.attrs["pads"]):
            raise node.error(
                f"auto_pad {auto_pad} and explicit pads {_show(node.attrs['pads'])} together " "are invalid ONNX"
            )
        ceil_mode = bool(node.get("ceil_mode", 0)) if pooling else False
        extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
        if auto_pad == "NOTSET":
            pads = node.ints("pads", [0, 0, 0, 0], 4, 0)
            before, after = pads[:2], pads[2:]
            out = []
            for i in range(2):
                span = in_hw[i] + before[i] + after[i] - extents[i]
                if span < 0:
                    raise node.error(
                        f"kernel extent {extents[i]} is larger than the padded input "
                        f"{in_hw[i] + before[i] + after[i]}"
                    )
                out.append((_ceil_div if ceil_mode else operator.floordiv)(span, strides[i]) + 1)
        else:
            if auto_pad == "VALID":
                out = [_ceil_div(in_hw[i] - extents[i] + 1, strides[i]) for i in range(2)]
                before, after = [0, 0], [0, 0]
            else:
                out = [_ceil_div(in_hw[i], strides[i]) for i in range(2)]
                total = [max(0, (out[i] - 1) * strides[i] + extents[i] - in_hw[i]) for i in range(2)]
                small = [t // 2 for t in total]
                big = [t - t // 2 for t in total]
                before, after = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
            if any(o < 1 for o in out):
                raise node.error(
                    f"auto_pad {auto_pad}: kernel {_show(kernel)} is larger than the input " f"{_show(in_hw)}"
                )
            if ceil_mode:
                # ONNX's auto_pad output sizes do not involve ceil_mode, runtimes differ on whether it
                # applies: accept it only where rounding up gives the same size anyway.
                for i in range(2):
                    padded = in_hw[i] + before[i] + after[i]
                    if _ceil_div(padded - extents[i], strides[i]) + 1 != out[i]:
                        raise node.error(
                            f"ceil_mode=1 with auto_pad {auto_pad} changes the output size, and "
                            "runtimes disagree on which applies"
                        )
                ceil_mode = False
        outer = outer or [0, 0, 0, 0]
        before = [before[0] + outer[0], before[1] + outer[1]]
        after = [after[0] + outer[2], after[1] + outer[3]]
        size = [in_hw[0] - outer[0] - outer[2], in_hw[1] - outer[1] - outer[3]]
        for i, axis in enumerate(("height", "width")):
            padded = size[i] + before[i] + after[i]
            if extents[i] > padded:
                raise node.error(f"kernel extent {extents[i]} is larger than the padded input {axis} {padded}")
            gap = _gapnet_window_count(size[i], before[i], after[i], extents[i], strides[i], ceil_mode)
            if gap != out[i] and ceil_mode:
                raise node.error(
                    f"ceil_mode=1: ONNX's {out[i]} outputs along the {axis} include a window "
                    "starting in the padding, which gapnet (like PyTorch) drops"
                )
            if gap != out[i]:
                raise node.error(f"ONNX's output {axis} {out[i]} differs from gapnet's {gap}")
        return [before[0], before[1], after[0], after[1]], out, ceil_mode

    def op_Conv(self, node):
        x = self.data(node)
        weight = self.constant(node, 1, "weight W")
        if weight.ndim != 4:
            raise node.error(f"weight of shape {_show(weight.shape)}: only 2-D convolution is supported")
        if len(x.onnx) != 3:
            raise node.error(f"needs a 4-D [N,C,H,W] input, got {_per_sample(x.onnx)}")
        c, h, w = x.onnx
        m, c_per_group, kh, kw = (int(v) for v in weight.shape)
        group = int(node.get("group", 1))
        if group < 1 or c % group or m % group or c // group != c_per_group:
            raise node.error(f"group {group} does not fit {c} input channels and weight {_show(weight.shape)}")
        if "kernel_shape" in node.attrs and [int(v) for v in node.attrs["kernel_shape"]] != [kh, kw]:
            raise node.error(
                f"kernel_shape {_show(node.attrs['kernel_shape'])} differs from the weight's " f"{_show([kh, kw])}"
            )
        strides = node.ints("strides", [1, 1], 2, 1)
        dilations = node.ints("dilations", [1, 1], 2, 1)
        pads, out, _ = self.windows(node, [h, w], [kh, kw], strides, dilations, pooling=False, outer=x.pad)
        bias = self.constant(node, 2, "bias B", required=False)
        if bias is not None and list(bias.shape) != [m]:
            raise node.error(f"bias of shape {_show(bias.shape)}, expected [{m}]")
        if len(x.gap) == 1:
            return self.conv_on_vector(node, x, weight, bias, group, pads)
        layer = {
            "type": "conv2d",
            "in_channels": c,
            "out_channels": m,
            "kernel_size": [kh, kw],
            "stride": strides,
            "padding": pads,
            "dilation": dilations,
            "groups": group,
            "weight": _tensor(weight),
        }
        if bias is not None:
            layer["bias"] = _tensor(bias)
        name = self.add_layer(layer, self.layer_name(node, "conv2d"), [x.layer])
        return _Value(name, [m] + out, [m] + out)

    def conv_on_vector(self, node, x, weight, bias, group, pads):
        """A Conv on a [C,1,1] map that gapnet holds as a vector (after a global pool, as in
        squeeze-and-excitation blocks): with a 1x1 kernel, no padding and one group each output is
        sum_c W[m,c] x[c] + B[m], a dense layer's arithmetic exactly."""
        m, c, kh, kw = (int(v) for v in weight.shape)
        where = (
            f"on {_per_sample(x.onnx)}, which gapnet holds as a vector (it comes after a global " "pool or flatten),"
        )
        if group != 1:
            raise node.error(f"group {group} {where} converts to a dense layer only with group 1")
        if [kh, kw] != [1, 1] or any(pads):
            raise node.error(
                f"kernel {_show([kh, kw])} with pads {_show(pads)} {where} converts to a dense "
                "layer only as a 1x1 kernel without padding"
            )
        layer = {"type": "dense", "in_features": c, "out_features": m, "weight": _tensor(weight.reshape(m, c))}
        if bias is not None:
            layer["bias"] = _tensor(bias)
        name = self.add_layer(layer, self.layer_name(node, "dense"), [x.layer])
        return _Value(name, [m, 1, 1], [m])

    def pool(self, node, kind):
        x = self.data(node)
        if x.pad is None:
            c, h, w = self.feature_map(node, x)
        else:
            c, h, w = x.onnx
        if "kernel_shape" not in node.attrs:
            raise node.error("kernel_shape is missing")
        kernel = node.ints("kernel_shape", [], 2, 1)
        strides = node.ints("strides", [1, 1], 2, 1)
        dilations = [int(v) for v in node.get("dilations", [1, 1])]
        if any(d != 1 for d in dilations):
            raise node.error(f"dilations {_show(dilations)} are not supported")
        include_pad = int(node.get("count_include_pad", 0))
        if include_pad not in (0, 1):
            raise node.error(f"count_include_pad {include_pad} is not 0 or 1")
        pads, out, ceil_mode = self.windows(node, [h, w], kernel, strides, [1, 1], pooling=True, outer=x.pad)
        if x.pad is not None and not include_pad and pads != x.pad:
            raise node.error(
                f"padding {_show([p - q for p, q in zip(pads, x.pad)])} of its own with "
                "count_include_pad=0 after a Pad: ONNX's divisor counts the Pad's zeros but not "
                "these, gapnet's counts all padding or none"
            )
        if any(p >= kernel[i % 2] for i, p in enumerate(pads)):
            raise node.error(
                f"pads {_show(pads)} must each be smaller than the kernel {_show(kernel)} "
                "(gapnet's pooling windows always overlap the input)"
            )
        layer = {"type": kind, "kernel_size": kernel, "stride": strides, "padding": pads, "ceil_mode": ceil_mode}
        if kind == "avg_pool2d":
            # A Pad's zeros are part of ONNX's input, so its divisor counts them: gapnet's
            # count_include_pad (which, like ONNX's pool on the padded input, leaves out only the part of
            # a ceil_mode window past the padding).
            include_pad = include_pad or x.pad is not None
            if include_pad and ceil_mode and int(node.get("count_include_pad", 0)):
                for i, axis in enumerate(("height", "width")):
                    if (out[i] - 1) * strides[i] + kernel[i] > [h, w][i] + pads[i] + pads[i + 2] - (
                        x.pad[i] + x.pad[i + 2] if x.pad else 0
                    ):
                        raise node.error(
                            f"count_include_pad=1 with ceil_mode=1: the last window along the "
                            f"{axis} reaches past the padding, where ONNX does not define the divisor"
                        )
            layer["count_include_pad"] = bool(include_pad)
        name = self.add_layer(layer, self.layer_name(node, kind), [x.layer])
        return _Value(name, [c] + out, [c] + out)

    def op_MaxPool(self, node):
        return self.pool(node, "max_pool2d")

    def op_AveragePool(self, node):
        return self.pool(node, "avg_pool2d")

    def global_pool(self, node, kind):
        x = self.data(node)
        c = self.feature_map(node, x)[0]
        name = self.add_layer({"type": kind}, self.layer_name(node, kind), [x.layer])
        return _Value(name, [c, 1, 1], [c])

    def op_GlobalAveragePool(self, node):
        return self.global_pool(node, "global_avg_pool2d")

    def op_GlobalMaxPool(self, node):
        return self.global_pool(node, "global_max_pool2d")

    def op_ReduceMean(self, node):
        """The mean over H and W of a feature map is a global average pool (keepdims 1 gives ONNX's
        [C,1,1], 0 gives [C]: the same values, which gapnet holds as a vector either way)."""
        x = self.data(node)
        rank = len(x.onnx) + 1
        if self.opset >= 18:
            axes = self.constant(node, 1, "axes", required=False, dtype=np.int64)
            axes = None if axes is None else [int(a) for a in axes.reshape(-1)]
            if not axes and int(node.get("noop_with_empty_axes", 0)):
                return x
        else:
            axes = node.get("axes", None)
        keepdims = int(node.get("keepdims", 1))
        normalized = sorted(a + rank if a < 0 else a for a in axes) if axes else list(range(rank))
        if rank != 4 or normalized != [2, 3]:
            shown = _show(axes) if axes else "all (none given)"
            raise node.error(
                f"axes {shown} on input {_per_sample(x.onnx)}: only the mean over H and W "
                "(axes [2,3]) of a 4-D tensor, a global average pool, is supported"
            )
        c = x.onnx[0]
        shape = [c, 1, 1] if keepdims else [c]
        if len(x.gap) == 1:  # already [C,1,1] held as a vector: a mean over one value changes nothing
            return _Value(x.layer, shape, x.gap)
        c = self.feature_map(node, x)[0]
        name = self.add_layer({"type": "global_avg_pool2d"}, self.layer_name(node, "global_avg_pool2d"), [x.layer])
        return _Value(name, shape, [c])

    def op_BatchNormalization(self, node):
        x = self.data(node)
        c = self.feature_map(node, x)[0]
        if int(node.get("training_mode", 0)) != 0:
            raise node.error("training_mode=1 is not supported (inference only: running statistics)")
        if int(node.get("spatial", 1)) != 1:
            raise node.error("spatial=0 (per-pixel statistics) is not supported")
        if self.opset < 7 and int(node.get("is_test", 0)) != 1:
            raise node.error(f"is_test={int(node.get('is_test', 0))} at opset {self.opset} means training mode")
        epsilon = float(node.get("epsilon", 1e-5))
        if not epsilon > 0:
            raise node.error(f"epsilon {epsilon} is not supported (gapnet needs epsilon > 0)")
        params = {}
        for position, key, what in (
            (1, "weight", "scale"),
            (2, "bias", "B"),
            (3, "running_mean", "input_mean"),
            (4, "running_var", "input_var"),
        ):
            value = self.constant(node, position, what)
            if list(value.shape) != [c]:
                raise node.error(f"{what} of shape {_show(value.shape)}, expected [{c}]")
            if key == "running_var" and np.any(value < 0):
                raise node.error("input_var holds a negative variance")
            params[key] = _tensor(value)
        name = self.add_layer(
            {"type": "batch_norm2d", "num_features": c, "eps": epsilon, **params},
            self.layer_name(node, "batch_norm2d"),
            [x.layer],
        )
        return _Value(name, x.onnx, x.gap)

    # Element-wise activations: any shape, held as it comes.

    def activation(self, node, layer, kind):
        x = self.data(node)
        name = self.add_layer(layer, self.layer_name(node, kind), [x.layer])
        return _Value(name, x.onnx, x.gap)

    def op_Relu(self, node):
        return self.activation(node, {"type": "relu"}, "relu")

    def op_Sigmoid(self, node):
        mul = self.silu_partner(node)
        if mul is None:
            return self.activation(node, {"type": "sigmoid"}, "sigmoid")
        # x * sigmoid(x): one silu layer, named after the Mul, whose output it computes.
        x = self.data(node)
        value = _Value(self.add_layer({"type": "silu"}, self.layer_name(mul, "silu"), [x.layer]), x.onnx, x.gap)
        self.fused_mul[mul.index] = value
        return value

    def silu_partner(self, node):
        """The Mul that multiplies this Sigmoid's input by its output, if that Mul is the output's only
        reader: the pair is x * sigmoid(x), gapnet's silu (PyTorch's SiLU exports as this pair)."""
        readers = self.readers.get(node.proto.output[0], [])
        if len(readers) != 1 or isinstance(readers[0], str):
            return None
        mul = readers[0]
        pair = sorted([node.proto.input[0], node.proto.output[0]])
        if mul.op != "Mul" or mul.proto.domain not in ("", "ai.onnx") or sorted(mul.proto.input) != pair:
            return None
        return mul

    def op_Tanh(self, node):
        return self.activation(node, {"type": "tanh"}, "tanh")

    def op_HardSwish(self, node):
        return self.activation(node, {"type": "hard_swish"}, "hard_swish")

    def op_HardSigmoid(self, node):
        # ONNX's defaults (0.2, 0.5) are written out: PyTorch's Hardsigmoid is 1/6, 0.5.
        alpha, beta = float(node.get("alpha", 0.2)), float(node.get("beta", 0.5))
        if not (math.isfinite(alpha) and math.isfinite(beta)):
            raise node.error(f"alpha {alpha} and beta {beta} must be finite")
        return self.activation(node, {"type": "hard_sigmoid", "alpha": alpha, "beta": beta}, "hard_sigmoid")

    def op_LeakyRelu(self, node):
        alpha = float(node.get("alpha", 0.01))
        if not math.isfinite(alpha):
            raise node.error(f"alpha {alpha} must be finite")
        return self.activation(node, {"type": "leaky_relu", "negative_slope": alpha}, "leaky_relu")

    def op_Clip(self, node):
        """Bounds are attributes before opset 11, optional constant scalar inputs from 11 on; an absent
        or infinite bound is no bound. Clip(0, 6) is written as relu6, Clip(0, none) as relu."""
        low = high = None
        for position, key in ((1, "min"), (2, "max")):
            if self.opset < 11:
                value = node.get(key, None)
            else:
                value = self.constant(node, position, key, required=False)
                if value is not None:
                    if value.size != 1:
                        raise node.error(f"{key} of shape {_show(value.shape)} is not a scalar")
                    value = value.reshape(-1)[0]
            if value is None:
                continue
            value = float(value)
            if math.isnan(value):
                raise node.error(f"{key} is NaN")
            if key == "min":
                low = None if value == -math.inf else value
            else:
                high = None if value == math.inf else value
        if low == math.inf or high == -math.inf:
            raise node.error(f"min {low} / max {high}: every output would be infinite")
        if low is not None and high is not None and low > high:
            raise node.error(
                f"min {low:g} > max {high:g}: ONNX then outputs max everywhere, gapnet's clip " "needs min <= max"
            )
        if low == 0 and high == 6:
            return self.activation(node, {"type": "relu6"}, "relu6")
        if low == 0 and high is None:
            return self.activation(node, {"type": "relu"}, "relu")
        layer = {"type": "clip"}
        if low is not None:
            layer["min"] = low
        if high is not None:
            layer["max"] = high
        return self.activation(node, layer, "clip")

    # Several data inputs.

    def several(self, node):
        """The node's data inputs; a constant among them is refused (gapnet's add, multiply and
        concat read computed tensors only)."""
        for name in node.proto.input:
            if name in self.constants:
                raise node.error(
                    f"reads the constant '{name}': gapnet's add, multiply and concat combine " "computed tensors only"
                )
        values = [self.values[name] for name in node.proto.input if name]
        if node.op in ("Add", "Mul") and len(values) != 2:
            raise node.error(f"has {len(values)} inputs, not 2")
        return values

    def equal_shapes(self, node, values, what):
        shapes = [v.onnx for v in values]
        if any(s != shapes[0] for s in shapes):
            raise node.error(
                f"inputs of shapes {', '.join(_per_sample(s) for s in shapes)}: gapnet {what} "
                "tensors of one shape (no broadcasting)"
            )

    def op_Add(self, node):
        if any(name in self.constants for name in node.proto.input):
            return self.bias_add(node)
        return self.op_Sum(node)

    def op_Sum(self, node):
        values = self.several(node)
        if len(values) == 1:
            return values[0]
        self.equal_shapes(node, values, "adds")
        layers, shape = self.same_holding(values)
        name = self.add_layer({"type": "add"}, self.layer_name(node, "add"), layers)
        return _Value(name, values[0].onnx, shape)

    def op_Mul(self, node):
        """Equal shapes, or a feature map [C,H,W] times a gate [C,1,1] (squeeze-and-excitation), which
        gapnet's multiply takes as a vector [C] broadcast over each map."""
        if node.index in self.fused_mul:  # the second half of a silu (op_Sigmoid)
            return self.fused_mul.pop(node.index)
        values = self.several(node)
        if values[0].onnx == values[1].onnx:
            layers, shape = self.same_holding(values)
            name = self.add_layer({"type": "multiply"}, self.layer_name(node, "multiply"), layers)
            return _Value(name, values[0].onnx, shape)
        if self.opset >= 7:
            for big, small in ((values[0], values[1]), (values[1], values[0])):
                if len(big.onnx) == 3 and small.onnx == [big.onnx[0], 1, 1] and len(big.gap) == 3:
                    layers = [big.layer if v is big else self.as_vector(v) for v in values]
                    name = self.add_layer({"type": "multiply"}, self.layer_name(node, "multiply"), layers)
                    return _Value(name, big.onnx, big.gap)
        raise node.error(
            f"inputs of shapes {_per_sample(values[0].onnx)} and {_per_sample(values[1].onnx)}: "
            "gapnet multiplies equal shapes, or a feature map [N,C,H,W] by a gate [N,C,1,1]"
        )

    def op_Concat(self, node):
        """Along the channels of feature maps (axis 1 of [N,C,H,W]) or the features of vectors (axis 1
        of [N,F]); [C,1,1] maps held as vectors are concatenated as vectors (the same values)."""
        values = self.several(node)
        rank = len(values[0].onnx) + 1
        if "axis" not in node.attrs and self.opset >= 4:
            raise node.error("axis is missing")
        axis = int(node.get("axis", 1))
        shapes = [v.onnx for v in values]
        if any(len(s) != rank - 1 for s in shapes) or not -rank <= axis < rank:
            raise node.error(f"axis {axis} on inputs {', '.join(_per_sample(s) for s in shapes)} is invalid")
        axis = axis + rank if axis < 0 else axis
        if axis != 1 or rank not in (2, 4) or any(s[1:] != shapes[0][1:] for s in shapes):
            raise node.error(
                f"axis {node.get('axis', 1)} on inputs {', '.join(_per_sample(s) for s in shapes)}: "
                "gapnet concatenates feature maps along the channels (axis 1 of [N,C,H,W]) or "
                "vectors (axis 1 of [N,F])"
            )
        if len(values) == 1:
            return values[0]
        total = sum(s[0] for s in shapes)
        onnx_shape = [total] + shapes[0][1:]
        if rank == 4 and any(len(v.gap) == 1 for v in values):  # all [C,1,1]: as vectors
            layers, shape = [self.as_vector(v) for v in values], [total]
        else:
            layers, shape = [v.layer for v in values], list(onnx_shape)
        name = self.add_layer({"type": "concat"}, self.layer_name(node, "concat"), layers)
        return _Value(name, onnx_shape, shape)

    def op_Pad(self, node):
        """Zero padding of H and W is applied by the Conv or AveragePool that reads it (their own
        padding); all-zero pads change nothing. Anything else (another reader, a non-zero value,
        another mode, padding N or C, cropping) is refused."""
        x = self.data(node)
        rank = len(x.onnx) + 1
        if self.opset < 11:
            pads = [int(p) for p in node.get("pads", [])]
            value = float(node.get("value", 0.0))
        else:
            pads = [int(p) for p in self.constant(node, 1, "pads", dtype=np.int64).reshape(-1)]
            constant_value = self.constant(node, 2, "constant_value", required=False)
            if constant_value is not None and constant_value.size != 1:
                raise node.error(f"constant_value of shape {_show(constant_value.shape)} is not a scalar")
            value = 0.0 if constant_value is None else float(constant_value.reshape(-1)[0])
            axes = self.constant(node, 3, "axes", required=False, dtype=np.int64)
            if axes is not None:  # opset 18: pads for these axes only
                axes = [int(a) + rank if a < 0 else int(a) for a in axes.reshape(-1)]
                if len(pads) != 2 * len(axes) or any(not 0 <= a < rank for a in axes):
                    raise node.error(f"pads {_show(pads)} do not fit axes {_show(axes)}")
                full = [0] * (2 * rank)
                for i, a in enumerate(axes):
                    full[a], full[rank + a] = pads[i], pads[len(axes) + i]
                pads = full
        if len(pads) != 2 * rank:
            raise node.error(f"pads {_show(pads)} need {2 * rank} values for a rank-{rank} input")
        if not any(pads):
            return x
        mode = node.get("mode", "constant")
        if mode != "constant" or value != 0.0:
            raise node.error(f"mode '{mode}' with value {value:g}: gapnet pads with zeros only")
        if rank != 4 or any(pads[i] for i in (0, 1, rank, rank + 1)):
            raise node.error(
                f"pads {_show(pads)} on input {_per_sample(x.onnx)}: gapnet pads H and W of a " "feature map only"
            )
        if any(p < 0 for p in pads):
            raise node.error(f"pads {_show(pads)}: negative pads (cropping) are not supported")
        if x.pad is not None:
            raise node.error("pads the output of another Pad")
        self.feature_map(node, x)
        for reader in self.readers.get(node.proto.output[0], []):
            if (
                isinstance(reader, str)
                or reader.op not in ("Conv", "AveragePool")
                or reader.proto.input[0] != node.proto.output[0]
            ):
                what = reader if isinstance(reader, str) else reader.describe()
                raise node.error(
                    f"its output is read by {what}: gapnet pads only inside a Conv or " "AveragePool reading it"
                )
        top, left, bottom, right = pads[2], pads[3], pads[rank + 2], pads[rank + 3]
        c, h, w = x.onnx
        return _Value(x.layer, [c, h + top + bottom, w + left + right], x.gap, [top, left, bottom, right])

    # Pass-through.

    def op_Identity(self, node):
        return self.data(node)

    def op_Dropout(self, node):
        if self.opset < 7 and int(node.get("is_test", 0)) != 1:
            raise node.error(f"is_test={int(node.get('is_test', 0))} at opset {self.opset} means training mode")
        if self.opset >= 12:
            training = self.constant(node, 2, "training_mode", required=False, dtype=None)
            if training is not None and bool(np.asarray(training).reshape(-1)[0]):
                raise node.error("training_mode is true (random dropout); only inference is supported")
        return self.data(node)

    # To a vector.

    def flatten_to_vector(self, x, name):
        """A gapnet flatten (C-H-W order: the values in ONNX's row-major order); the vector's _Value."""
        features = int(np.prod(x.onnx))
        layer = self.add_layer({"type": "flatten"}, name, [x.layer])
        return _Value(layer, [features], [features])

    def op_Flatten(self, node):
        x = self.data(node)
        rank = len(x.onnx) + 1
        axis = int(node.get("axis", 1))
        if not -rank <= axis <= rank:
            raise node.error(f"axis {axis} is out of range for a rank-{rank} input")
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise node.error(
                "axis 0 flattens the whole batch into one row; only per-sample flattening " "(axis 1) is supported"
            )
        if int(np.prod(x.onnx[: axis - 1])) != 1:
            raise node.error(
                f"axis {node.get('axis', 1)} moves per-sample dimensions into the batch "
                f"(input {_per_sample(x.onnx)}); only axis 1 is supported"
            )
        return self.flatten_to_vector(x, self.layer_name(node, "flatten"))

    def op_Reshape(self, node):
        x = self.data(node)
        if self.opset < 5:
            raise node.error(f"Reshape-{self.opset} (shape as an attribute) is not supported")
        target = [int(v) for v in self.constant(node, 1, "shape", dtype=np.int64).reshape(-1)]
        allowzero = int(node.get("allowzero", 0))
        features = int(np.prod(x.onnx))
        refused = node.error(
            f"shape {_show(target)} on input {_per_sample(x.onnx)} is not "
            f"supported: only a reshape to a flat vector per sample, [N,{features}]"
        )
        if len(target) != 2 or target.count(-1) > 1:
            raise refused
        first, second = target
        copies_batch = (first == 0 and not allowzero) or (self.batch is not None and first == self.batch)
        if second == 0 and not allowzero:
            second = x.onnx[0]
        if first == -1 and second == features:
            pass
        elif copies_batch and second in (features, -1):
            pass
        else:
            raise refused
        return self.flatten_to_vector(x, self.layer_name(node, "flatten"))

    def softmax_is_per_sample(self, node, onnx_shape):
        rank = len(onnx_shape) + 1
        default = 1 if self.opset < 13 else -1
        axis = int(node.get("axis", default))
        if not -rank <= axis < rank:
            raise node.error(f"axis {axis} is out of range for a rank-{rank} input")
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise node.error("axis 0 is the batch: softmax across samples is not supported")
        if self.opset < 13:  # coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
            ok = int(np.prod(onnx_shape[: axis - 1])) == 1
        else:  # along one axis only
            ok = all(d == 1 for i, d in enumerate(onnx_shape) if i != axis - 1)
        if not ok:
            raise node.error(
                f"axis {node.get('axis', default)} on input {_per_sample(onnx_shape)} at "
                f"opset {self.opset} is not a softmax over each sample's whole feature vector"
            )

    def op_Softmax(self, node):
        x = self.data(node)
        self.softmax_is_per_sample(node, x.onnx)
        source = x.layer
        if len(x.gap) != 1:
            source = self.flatten_to_vector(x, self.layer_name(node, "softmax") + "_flatten").layer
        name = self.add_layer({"type": "softmax"}, self.layer_name(node, "softmax"), [source])
        return _Value(name, x.onnx, [int(np.prod(x.onnx))])

    # Dense layers.

    def per_sample_bias(self, node, value, out, what):
        """A constant added to [N, out] must be the same for every sample: shape [], [1], [out],
        [1,1] or [1,out]. Returns it as a vector of `out` (exactly: broadcasting copies values)."""
        shape = list(value.shape)
        if len(shape) > 2 or (len(shape) == 2 and shape[0] != 1) or (shape and shape[-1] not in (1, out)):
            raise node.error(
                f"{what} of shape {_show(shape)} is not one bias for every sample "
                f"(expected [], [1], [{out}] or [1,{out}])"
            )
        return np.broadcast_to(value.reshape(-1), (out,)).astype(np.float32)

    def vector_features(self, node, onnx_shape):
        if len(onnx_shape) != 1:
            raise node.error(f"needs a 2-D [N,F] input, got {_per_sample(onnx_shape)} " "(add a Flatten before it)")
        return onnx_shape[0]

    def op_Gemm(self, node):
        x = self.data(node)
        features = self.vector_features(node, x.onnx)
        if int(node.get("transA", 0)) != 0:
            raise node.error("transA=1 is not supported (the data input A must be [N,K])")
        has_c = self.constant(node, 2, "C", required=False) is not None
        if self.opset < 7 and int(node.get("broadcast", 0)) != 1 and has_c:
            raise node.error(f"broadcast=0 at opset {self.opset}: C must already be [N,M]")
        b = self.constant(node, 1, "B")
        if b.ndim != 2:
            raise node.error(f"B of shape {_show(b.shape)} is not a matrix")
        weight = b if int(node.get("transB", 0)) else b.T  # gapnet: [out, in]
        if weight.shape[1] != features:
            raise node.error(
                f"B of shape {_show(b.shape)} (transB={int(node.get('transB', 0))}) does not take "
                f"{features} input features"
            )
        out = int(weight.shape[0])
        alpha, beta = float(node.get("alpha", 1.0)), float(node.get("beta", 1.0))
        # alpha and beta fold into the weight and bias: alpha*(A.B) + beta*C = A.(alpha*B) + beta*C.
        layer = {
            "type": "dense",
            "in_features": features,
            "out_features": out,
            "weight": _tensor(np.float32(alpha) * weight if alpha != 1.0 else weight),
        }
        c = self.constant(node, 2, "C", required=False)
        if c is not None and beta != 0.0:
            bias = self.per_sample_bias(node, c, out, "C")
            layer["bias"] = _tensor(np.float32(beta) * bias if beta != 1.0 else bias)
        name = self.add_layer(layer, self.layer_name(node, "dense"), [x.layer])
        return _Value(name, [out], [out])

    def op_MatMul(self, node):
        x = self.data(node)
        features = self.vector_features(node, x.onnx)
        b = self.constant(node, 1, "B")
        if b.ndim != 2 or b.shape[0] != features:
            raise node.error(f"B of shape {_show(b.shape)} is not a [{features},M] matrix")
        out = int(b.shape[1])
        name = self.add_layer(
            {"type": "dense", "in_features": features, "out_features": out, "weight": _tensor(b.T)},
            self.layer_name(node, "dense"),
            [x.layer],
        )
        self.dense_of_matmul[node.proto.output[0]] = self.layers[-1]
        return _Value(name, [out], [out])

    def bias_add(self, node):
        """An Add of a constant: only the bias of the MatMul that computes its other input (and whose
        output nothing else reads), which becomes that dense layer's bias."""
        names = [n for n in node.proto.input if n]
        data = [n for n in names if n not in self.constants]
        refused = node.error("an Add of a constant is supported only as the bias of the MatMul right before it")
        if len(names) != 2 or len(data) != 1 or data[0] not in self.dense_of_matmul:
            raise refused
        dense = self.dense_of_matmul[data[0]]
        if "bias" in dense or len(self.readers.get(data[0], [])) != 1:
            raise refused
        if self.opset < 7 and int(node.get("broadcast", 0)) != 1:
            raise node.error(f"broadcast=0 at opset {self.opset}: the bias must already be [N,M]")
        x = self.values[data[0]]
        value = self.constant(node, 1 if names[0] == data[0] else 0, "bias")
        dense["bias"] = _tensor(self.per_sample_bias(node, value, x.onnx[0], "bias"))
        return x


def convert(model, constants=None):
    """Convert an onnx ModelProto's graph to gapnet layers; `constants` binds graph inputs (by name)
    to fixed arrays (weights given as inputs, as ONNX's node tests do). Raises ConversionError."""
    return _Converter(model, constants).run()


def input_spec(conversion, color=None, mean=None, std=None, scale=None):
    """gapnet's "input" object (gapnet_file.input_spec)."""
    return gapnet_file.input_spec(
        conversion.input_shape, conversion.vector_input, f"input '{conversion.input_name}'", color, mean, std, scale
    )


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
    """The complete gapnet model dict for a conversion whose output is a vector."""
    if len(conversion.output_shape) != 1:
        raise ConversionError(
            f"output '{conversion.output_name}' is a feature map "
            f"{_per_sample(conversion.onnx_output_shape)}; gapnet models end in a "
            "vector (add a GlobalAveragePool or Flatten and a Gemm)"
        )
    outputs = conversion.output_shape[0]
    if labels is None:
        labels = [str(i) for i in range(outputs)]
    if len(labels) != outputs:
        raise ConversionError(f"{len(labels)} labels for {outputs} outputs")
    if not conversion.layers:
        raise ConversionError("the graph has no layer gapnet can run (only Identity/Dropout)")
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
    """gapnet "tests" from ONNX arrays: inputs [N, *input], outputs [N, *output], one case per sample,
    reshaped (row-major, so exactly) to gapnet's per-sample input and output shapes."""
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    for what, a, shape in (
        ("input", inputs, conversion.onnx_input_shape),
        ("output", outputs, conversion.onnx_output_shape),
    ):
        if a.dtype != np.float32:
            raise ConversionError(f"test {what} is {a.dtype}, not float32")
        if list(a.shape[1:]) != list(shape):
            raise ConversionError(f"test {what} has shape {_show(a.shape)}, the model's is {_per_sample(shape)}")
    if len(inputs) != len(outputs):
        raise ConversionError(f"{len(inputs)} test inputs but {len(outputs)} outputs")
    return [
        {"input": _tensor(x.reshape(conversion.input_shape)), "output": _tensor(y.reshape(conversion.output_shape))}
        for x, y in zip(inputs, outputs)
    ]


def provenance(model, conversion, source=None):
    """The "metadata" the converter writes: where the model came from."""
    metadata = {
        "converted_from": "onnx",
        "converter": "tools/onnx_to_gapnet.py",
        "opset": conversion.opset,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "onnx_input": conversion.input_name,
        "onnx_output": conversion.output_name,
    }
    if source:
        metadata["source"] = source
    return metadata


def to_gapnet(model, constants=None, labels=None, color=None, mean=None, std=None, scale=None, name=None):
    """The gapnet model dict for an onnx ModelProto (see convert, input_spec and document)."""
    conversion = convert(model, constants)
    return document(
        conversion, labels, color, mean, std, scale, name or model.graph.name or "model", provenance(model, conversion)
    )


def _read_test_data(directory, conversion, model):
    """input_*.pb / output_*.pb of an ONNX test data set (the layout of ONNX's model zoo and backend tests)."""

    def load(path):
        proto = onnx.TensorProto()
        with open(path, "rb") as f:
            try:
                proto.ParseFromString(f.read())
                return _array(proto, "the tensor")
            except Exception as e:  # protobuf's DecodeError, a bad shape, ...
                raise ConversionError(f"--test-data {path}: not an ONNX tensor ({e})")

    data_inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    position = data_inputs.index(conversion.input_name)
    x_path = os.path.join(directory, f"input_{position}.pb")
    y_path = os.path.join(directory, "output_0.pb")
    for path in (x_path, y_path):
        if not os.path.exists(path):
            raise ConversionError(f"--test-data {directory}: {os.path.basename(path)} is missing")
    return load(x_path), load(y_path)


def _tensor_protos(graph, where=""):
    """(what, TensorProto) for every tensor a graph holds: initializers (also of sparse ones) and node
    attributes, in subgraphs too (onnx's own loader walks the same ones)."""
    for t in graph.initializer:
        yield f"{where}initializer '{t.name}'", t
    for sparse in graph.sparse_initializer:
        yield f"{where}sparse initializer '{sparse.values.name}' values", sparse.values
        yield f"{where}sparse initializer '{sparse.values.name}' indices", sparse.indices
    for index, node in enumerate(graph.node):
        name = f"{where}node '{node.name or f'#{index}'}' ({node.op_type})"
        for a in node.attribute:
            if a.HasField("t"):
                yield f"{name} attribute '{a.name}'", a.t
            for t in a.tensors:
                yield f"{name} attribute '{a.name}'", t
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensor_protos(g, f"{name} subgraph: ")


EXTERNAL_DATA_KEYS = {"location", "offset", "length", "checksum"}


def _external_data_size(tensor, what):
    """The bytes a tensor's values take in raw_data: its element count times the element size."""
    np_type = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.get(tensor.data_type)
    if np_type is None or tensor.data_type == onnx.TensorProto.STRING:
        raise ConversionError(f"{what}: external data of element type {tensor.data_type} is not supported")
    if any(d < 0 for d in tensor.dims):
        raise ConversionError(f"{what}: shape {_show(tensor.dims)} has a negative dimension")
    return math.prod(tensor.dims) * np.dtype(np_type).itemsize


def read_external_data(model, folder):
    """Reads every tensor of `model` stored as external data into its raw_data, under model_files's
    rule: each location must name a regular file inside `folder` (after symlinks), and its offset and
    length must lie inside that file and match the tensor's size. Raises ConversionError naming the
    tensor and the location. onnx's own loader is not used for this: Debian's onnx 1.12 follows
    `weights/../../x` and symlinks out of the folder (CVE-2024-27318)."""
    for what, tensor in _tensor_protos(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {}
        for entry in tensor.external_data:
            if entry.key not in EXTERNAL_DATA_KEYS or entry.key in entries:
                raise ConversionError(f"{what}: external data key {entry.key!r} is unknown or repeated")
            entries[entry.key] = entry.value
        location = entries.get("location", "")
        shown = f"{what}: external data {location!r}"
        numbers = {}
        for key in ("offset", "length"):
            text = entries.get(key)
            if text is not None and not (text.isascii() and text.isdigit()):
                raise ConversionError(f"{shown}: {key} {text!r} is not a byte count")
            numbers[key] = None if text is None else int(text)
        with model_files.open_confined(folder, location, what) as f:
            file_size = os.fstat(f.fileno()).st_size
            offset = numbers["offset"] or 0
            size = _external_data_size(tensor, what)
            if offset > file_size:
                raise ConversionError(f"{shown}: offset {offset} is past the end of the file ({file_size} bytes)")
            length = numbers["length"] if numbers["length"] is not None else file_size - offset
            if offset + length > file_size:
                raise ConversionError(
                    f"{shown}: offset {offset} and length {length} reach past the end of the file ({file_size} bytes)"
                )
            if length != size:
                raise ConversionError(f"{shown}: length {length} bytes, the tensor's shape needs {size}")
            f.seek(offset)
            data = model_files.read_bounded(f, length, shown)
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def load(path):
    """The ONNX model at `path`, with its external data read by read_external_data (confined to the
    model's folder). Raises ConversionError."""
    try:
        with warnings.catch_warnings():  # onnx warns on stderr about some damaged files: one line only
            warnings.simplefilter("ignore")
            model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError, OSError, ...: one line, not a traceback
        raise ConversionError(f"cannot read the ONNX file: {e}")
    read_external_data(model, model_files.model_folder(path))
    return model


def main():
    ap = argparse.ArgumentParser(
        description="Convert an ONNX CNN classifier to gapnet's JSON model format " "(docs/onnx.md)."
    )
    ap.add_argument("model", help="the .onnx file")
    ap.add_argument("out", help="the gapnet JSON file to write")
    ap.add_argument("--labels", help="a text file with one class label per line (default: 0..n-1)")
    ap.add_argument(
        "--color",
        choices=["grayscale", "rgb", "none"],
        help="how images become the input (default: by channel count: 1 grayscale, 3 rgb, "
        "else none; a vector input is always none)",
    )
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean, after --scale")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel standard deviation")
    ap.add_argument("--scale", type=float, help="multiplies each 0..255 pixel (gapnet's default 1/255)")
    gapnet_file.add_image_arguments(ap)
    ap.add_argument("--name", help="the model name (default: the file name)")
    ap.add_argument(
        "--test-data",
        action="append",
        default=[],
        metavar="DIR",
        help="an ONNX test_data_set directory (input_0.pb, output_0.pb) to record as tests "
        "for `gapnet verify`; may be repeated",
    )
    args = ap.parse_args()

    try:
        labels = None
        if args.labels:
            with open(args.labels) as f:
                labels = [line.rstrip("\n") for line in f if line.strip()]
        model = load(args.model)
        name = args.name or os.path.splitext(os.path.basename(args.model))[0]
        conversion = convert(model)
        doc = document(
            conversion,
            labels,
            args.color,
            args.mean,
            args.std,
            args.scale,
            name,
            provenance(model, conversion, os.path.basename(args.model)),
            gapnet_file.image_options(args),
        )
        tests = []
        for directory in args.test_data:
            tests += test_cases(conversion, *_read_test_data(directory, conversion, model))
        gapnet_file.attach_tests(doc, tests)
    except (ConversionError, OSError) as e:
        sys.exit(f"onnx_to_gapnet: error: {args.model}: {e}")
    gapnet_file.write("onnx_to_gapnet", args.out, doc, conversion.input_shape)


if __name__ == "__main__":
    main()
