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

What it accepts: a chain of Conv, BatchNormalization (inference), Relu, MaxPool, AveragePool,
GlobalAveragePool, GlobalMaxPool, Flatten, Gemm, MatMul (optionally followed by an Add of a constant
bias: one dense layer), Softmax, Reshape to a flat vector per sample, and Dropout/Identity (skipped),
from one float32 input [N, C, H, W] (an image) or [N, F] (a vector). Weights come from initializers,
Constant nodes, or constants the caller binds to graph inputs.

The rule: gapnet must compute exactly what ONNX specifies. Every attribute of every node is read;
any value the engine cannot reproduce (a dilated pool, transA=1, a softmax over the wrong axis, a
bias that differs per sample, a graph that branches, ...) is refused with one line naming the node
and the attribute. Nothing is approximated.

How shapes are tracked: ONNX tensors carry the batch dimension N first; gapnet's layers see one
sample. For every tensor along the chain the converter keeps the ONNX per-sample shape and the gapnet
shape. They are equal, except that gapnet may hold the same values as a flat vector (e.g. after a
global pool, where ONNX has [C, 1, 1]); in row-major order the values are always the same, which is
what makes the recorded test outputs and the appended flattens exact.
"""
import argparse
import base64
import json
import operator
import os
import sys
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

SUPPORTED_OPS = ("Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "GlobalMaxPool", "Flatten", "Gemm", "MatMul", "Add", "Softmax", "Reshape", "Dropout",
                 "Identity")

MAX_TESTS = 100  # recorded test cases gapnet reads from one file (engine/io/model_json.cpp)

# Attributes each operator may carry (any opset); anything else is refused, never ignored.
KNOWN_ATTRIBUTES = {
    "Conv": {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"},
    "BatchNormalization": {"epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs"},
    "Relu": {"consumed_inputs"},
    "MaxPool": {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"},
    "AveragePool": {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"},
    "GlobalAveragePool": set(),
    "GlobalMaxPool": set(),
    "Flatten": {"axis"},
    "Gemm": {"alpha", "beta", "transA", "transB", "broadcast"},
    "MatMul": set(),
    "Add": {"broadcast", "consumed_inputs"},
    "Softmax": {"axis"},
    "Reshape": {"allowzero", "consumed_inputs"},
    "Dropout": {"ratio", "seed", "is_test", "consumed_inputs"},
    "Identity": set(),
}


class ConversionError(Exception):
    """The model cannot be converted exactly; the message names the node and the reason."""


class _NonFinite(ConversionError):
    """A tensor to write holds NaN or Inf, which gapnet's format refuses."""


@dataclass
class Conversion:
    """A converted graph: gapnet layers plus the shapes on both sides, per sample (no batch axis)."""
    input_name: str            # the ONNX data input
    onnx_input_shape: list     # e.g. [3, 224, 224] or [20]
    input_shape: list          # gapnet's input [C, H, W] ([F, 1, 1] for a vector input)
    vector_input: bool
    layers: list               # gapnet layer dicts, in order
    output_name: str           # the ONNX graph output
    onnx_output_shape: list
    output_shape: list         # gapnet's output shape (same values as ONNX's, row-major)
    opset: int


def _tensor(array):
    """A gapnet tensor dict: base64 little-endian float32, as tools/export_pytorch.py writes them."""
    a = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    if not np.all(np.isfinite(a)):
        raise _NonFinite("a tensor holds NaN or Inf, which gapnet's format cannot store")
    data = base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")
    return {"shape": list(a.shape), "dtype": "float32", "encoding": "base64", "data": data}


def _show(values):
    """[2,2] as the error messages write lists."""
    return "[" + ",".join(str(v) for v in values) + "]"


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


class _Node:
    """One ONNX node with its attributes decoded, and errors that name it."""

    def __init__(self, proto, index):
        self.proto = proto
        self.op = proto.op_type
        self.name = proto.name or f"#{index}"
        self.attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        for key, value in list(self.attrs.items()):
            if isinstance(value, bytes):
                self.attrs[key] = value.decode("utf-8", "replace")

    def error(self, message):
        return ConversionError(f"node '{self.name}' ({self.op}): {message}")

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
    """Walks the chain node by node, keeping the current tensor's ONNX and gapnet shapes."""

    def __init__(self, model, constants):
        self.model = model
        self.graph = model.graph
        self.opset = self._opset()
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        graph_inputs = [i.name for i in self.graph.input]
        for name, value in (constants or {}).items():
            if name not in graph_inputs:
                raise ConversionError(f"cannot bind '{name}': the graph has no input of that name "
                                      f"(inputs: {', '.join(graph_inputs)})")
            self.constants[name] = np.asarray(value)
        self.layers, self.used_names = [], {"input"}
        self.last_matmul = None  # (its output tensor, its dense layer), for a following Add

    def _opset(self):
        versions = [o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        if not versions:
            raise ConversionError("the model imports no version of the standard ONNX operator set")
        return int(versions[0])

    # ---- the input ---------------------------------------------------------------------------

    def data_input(self):
        candidates = [i for i in self.graph.input if i.name not in self.constants]
        if len(candidates) != 1:
            names = ", ".join(f"'{i.name}'" for i in candidates) or "none"
            raise ConversionError(f"the graph needs exactly one data input, it has {len(candidates)} ({names}); "
                                  "the others must be initializers or bound constants")
        value = candidates[0]
        if not value.type.HasField("tensor_type"):
            raise ConversionError(f"input '{value.name}' is not a tensor ({value.type.WhichOneof('value')})")
        elem = value.type.tensor_type.elem_type
        if elem != onnx.TensorProto.FLOAT:
            raise ConversionError(f"input '{value.name}' is {onnx.TensorProto.DataType.Name(elem).lower()}; "
                                  "gapnet computes in float32")
        if not value.type.tensor_type.HasField("shape"):
            raise ConversionError(f"input '{value.name}' has no declared shape")
        dims = value.type.tensor_type.shape.dim
        shown = _show(_dimension(d) for d in dims)
        if len(dims) not in (2, 4):
            raise ConversionError(f"input '{value.name}' has shape {shown}: gapnet takes a 4-D [N,C,H,W] "
                                  "image or a 2-D [N,F] vector")
        per_sample = []
        for d in dims[1:]:
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise ConversionError(f"input '{value.name}' has shape {shown}: every dimension but the "
                                      "batch needs a fixed size")
            per_sample.append(int(d.dim_value))
        batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
        return value.name, per_sample, batch

    # ---- helpers -----------------------------------------------------------------------------

    def add_layer(self, layer, wanted):
        name, n = wanted, 2
        while name in self.used_names:
            name, n = f"{wanted}_{n}", n + 1
        self.used_names.add(name)
        self.layers.append({"type": layer.pop("type"), "name": name, **layer})

    def layer_name(self, node, index, kind):
        return node.proto.name if node.proto.name else f"{kind}_{index}"

    def constant(self, node, position, what, required=True, dtype=np.float32):
        """The constant at input `position`, checked to be float32 (or integer for shapes)."""
        names = node.proto.input
        if position >= len(names) or names[position] == "":
            if required:
                raise node.error(f"{what} is missing")
            return None
        name = names[position]
        if name not in self.constants:
            raise node.error(f"{what} '{name}' is not a constant (an initializer, a Constant node or a "
                             "bound input); gapnet's weights are fixed")
        value = self.constants[name]
        if dtype is np.float32 and value.dtype != np.float32:
            raise node.error(f"{what} '{name}' is {value.dtype}; gapnet's weights are float32")
        if dtype is np.int64 and value.dtype.kind not in "iu":
            raise node.error(f"{what} '{name}' is {value.dtype}, not integers")
        return value

    def feature_map(self, node, onnx_shape, gap_shape):
        if len(onnx_shape) != 3:
            raise node.error(f"needs a 4-D [N,C,H,W] input, got {_per_sample(onnx_shape)}")
        if len(gap_shape) != 3:
            raise node.error(f"its input {_per_sample(onnx_shape)} comes after a global pool or "
                             "flatten, which gapnet holds as a vector; gapnet's 2-D layers need a feature map")
        return onnx_shape

    @staticmethod
    def onnx_constant_node(node):
        a = node.attrs
        if "value" in a:
            return numpy_helper.to_array(a["value"])
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
        input_name, in_shape, self.batch = self.data_input()
        vector_input = len(in_shape) == 1
        gap_input = [in_shape[0], 1, 1] if vector_input else list(in_shape)
        onnx_shape, gap_shape = list(in_shape), list(gap_input)
        if vector_input:
            self.add_layer({"type": "flatten"}, "input_flatten")
            gap_shape = [in_shape[0]]

        nodes = [_Node(p, i) for i, p in enumerate(self.graph.node)]
        graph_outputs = [o.name for o in self.graph.output]
        uses = {}
        for node in nodes:
            for name in node.proto.input:
                if name:
                    uses[name] = uses.get(name, 0) + 1
        for name in graph_outputs:
            uses[name] = uses.get(name, 0) + 1

        current = input_name
        for index, node in enumerate(nodes):
            if node.proto.domain not in ("", "ai.onnx"):
                raise node.error(f"operators of domain '{node.proto.domain}' are not supported")
            if node.op == "Constant":
                self.constants[node.proto.output[0]] = self.onnx_constant_node(node)
                continue
            if node.op not in SUPPORTED_OPS:
                raise node.error("operator not supported by gapnet (supported: " + ", ".join(SUPPORTED_OPS) + ")")
            unknown = sorted(set(node.attrs) - KNOWN_ATTRIBUTES[node.op])
            if unknown:
                raise node.error(f"attribute {unknown[0]} is not supported")
            data = [n for n in node.proto.input if n and n not in self.constants]
            if not data:
                raise node.error("computes only from constants; fold constants first (e.g. onnx-simplifier)")
            if data != [current]:
                raise node.error(f"reads {', '.join(repr(d) for d in data)}, but the chain's current tensor is "
                                 f"'{current}': gapnet converts a single chain of layers, not a branching graph")
            if node.op != "Add" and node.proto.input[0] != current:
                raise node.error(f"its data input must be its first input, '{current}' is not")
            if uses.get(current, 0) != 1:
                raise node.error(f"tensor '{current}' is used {uses.get(current, 0)} times (by several nodes or "
                                 "also as a graph output): the graph is not a chain")
            handler = getattr(self, "op_" + node.op)
            try:
                onnx_shape, gap_shape = handler(node, index, onnx_shape, gap_shape)
            except _NonFinite as e:
                raise node.error(str(e))
            for position, extra in enumerate(node.proto.output[1:], 2):
                if extra and uses.get(extra, 0):
                    raise node.error(f"its output {position} ('{extra}') is used; only the first output is supported")
            current = node.proto.output[0]

        if graph_outputs != [current]:
            raise ConversionError(f"the graph outputs {', '.join(repr(o) for o in graph_outputs)}; gapnet needs "
                                  f"exactly one output, the end of the chain ('{current}')")
        self.check_declared_output(current, onnx_shape)
        return Conversion(input_name, list(in_shape), gap_input, vector_input, self.layers, current,
                          list(onnx_shape), list(gap_shape), self.opset)

    def check_declared_output(self, name, onnx_shape):
        value = self.graph.output[0]
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            return
        dims = value.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(declared) != len(onnx_shape) + 1 or any(
                d is not None and d != c for d, c in zip(declared[1:], onnx_shape)):
            raise ConversionError(f"output '{name}' is declared as {_show(_dimension(d) for d in dims)}, "
                                  f"but the converter computes {_per_sample(onnx_shape)}")

    # ---- operators ---------------------------------------------------------------------------

    def windows(self, node, in_hw, kernel, strides, dilations, pooling):
        """Per-axis (pad_before, pad_after) from auto_pad or pads, and ONNX's output size, which must
        equal gapnet's (else refused). Returns (pads [t,l,b,r], out [h,w], ceil_mode for gapnet)."""
        auto_pad = node.get("auto_pad", "NOTSET")
        if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
            raise node.error(f"auto_pad '{auto_pad}' is not supported")
        if auto_pad != "NOTSET" and "pads" in node.attrs and any(node.attrs["pads"]):
            raise node.error(f"auto_pad {auto_pad} and explicit pads {_show(node.attrs['pads'])} together "
                             "are invalid ONNX")
        ceil_mode = bool(node.get("ceil_mode", 0)) if pooling else False
        extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
        if auto_pad == "NOTSET":
            pads = node.ints("pads", [0, 0, 0, 0], 4, 0)
            before, after = pads[:2], pads[2:]
            out = []
            for i in range(2):
                span = in_hw[i] + before[i] + after[i] - extents[i]
                if span < 0:
                    raise node.error(f"kernel extent {extents[i]} is larger than the padded input "
                                     f"{in_hw[i] + before[i] + after[i]}")
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
                raise node.error(f"auto_pad {auto_pad}: kernel {_show(kernel)} is larger than the input "
                                 f"{_show(in_hw)}")
            if ceil_mode:
                # ONNX's auto_pad output sizes do not involve ceil_mode, runtimes differ on whether it
                # applies: accept it only where rounding up gives the same size anyway.
                for i in range(2):
                    padded = in_hw[i] + before[i] + after[i]
                    if _ceil_div(padded - extents[i], strides[i]) + 1 != out[i]:
                        raise node.error(f"ceil_mode=1 with auto_pad {auto_pad} changes the output size, and "
                                         "runtimes disagree on which applies")
                ceil_mode = False
        pads = [before[0], before[1], after[0], after[1]]
        # gapnet's output size (engine/layers/window2d.cpp): floor or ceil, and with ceil_mode a last
        # window starting in the bottom/right padding is dropped (PyTorch's rule).
        for i, axis in enumerate(("height", "width")):
            padded = in_hw[i] + before[i] + after[i]
            if extents[i] > padded:
                raise node.error(f"kernel extent {extents[i]} is larger than the padded input {axis} {padded}")
            gap = (padded - extents[i] + (strides[i] - 1 if ceil_mode else 0)) // strides[i] + 1
            if ceil_mode and (gap - 1) * strides[i] >= in_hw[i] + before[i]:
                gap -= 1
            if gap != out[i] and ceil_mode:
                raise node.error(f"ceil_mode=1: ONNX's {out[i]} outputs along the {axis} include a window "
                                 "starting in the padding, which gapnet (like PyTorch) drops")
            if gap != out[i]:
                raise node.error(f"ONNX's output {axis} {out[i]} differs from gapnet's {gap}")
        return pads, out, ceil_mode

    def op_Conv(self, node, index, onnx_shape, gap_shape):
        c, h, w = self.feature_map(node, onnx_shape, gap_shape)
        weight = self.constant(node, 1, "weight W")
        if weight.ndim != 4:
            raise node.error(f"weight of shape {_show(weight.shape)}: only 2-D convolution is supported")
        m, c_per_group, kh, kw = (int(v) for v in weight.shape)
        group = int(node.get("group", 1))
        if group < 1 or c % group or m % group or c // group != c_per_group:
            raise node.error(f"group {group} does not fit {c} input channels and weight {_show(weight.shape)}")
        if "kernel_shape" in node.attrs and [int(v) for v in node.attrs["kernel_shape"]] != [kh, kw]:
            raise node.error(f"kernel_shape {_show(node.attrs['kernel_shape'])} differs from the weight's "
                             f"{_show([kh, kw])}")
        strides = node.ints("strides", [1, 1], 2, 1)
        dilations = node.ints("dilations", [1, 1], 2, 1)
        pads, out, _ = self.windows(node, [h, w], [kh, kw], strides, dilations, pooling=False)
        layer = {"type": "conv2d", "in_channels": c, "out_channels": m, "kernel_size": [kh, kw],
                 "stride": strides, "padding": pads, "dilation": dilations, "groups": group,
                 "weight": _tensor(weight)}
        bias = self.constant(node, 2, "bias B", required=False)
        if bias is not None:
            if list(bias.shape) != [m]:
                raise node.error(f"bias of shape {_show(bias.shape)}, expected [{m}]")
            layer["bias"] = _tensor(bias)
        self.add_layer(layer, self.layer_name(node, index, "conv2d"))
        return [m] + out, [m] + out

    def pool(self, node, index, onnx_shape, gap_shape, kind):
        c, h, w = self.feature_map(node, onnx_shape, gap_shape)
        if "kernel_shape" not in node.attrs:
            raise node.error("kernel_shape is missing")
        kernel = node.ints("kernel_shape", [], 2, 1)
        strides = node.ints("strides", [1, 1], 2, 1)
        dilations = [int(v) for v in node.get("dilations", [1, 1])]
        if any(d != 1 for d in dilations):
            raise node.error(f"dilations {_show(dilations)} are not supported")
        pads, out, ceil_mode = self.windows(node, [h, w], kernel, strides, [1, 1], pooling=True)
        if any(p >= kernel[i % 2] for i, p in enumerate(pads)):
            raise node.error(f"pads {_show(pads)} must each be smaller than the kernel {_show(kernel)} "
                             "(gapnet's pooling windows always overlap the input)")
        layer = {"type": kind, "kernel_size": kernel, "stride": strides, "padding": pads,
                 "ceil_mode": ceil_mode}
        if kind == "avg_pool2d":
            include_pad = int(node.get("count_include_pad", 0))
            if include_pad not in (0, 1):
                raise node.error(f"count_include_pad {include_pad} is not 0 or 1")
            if include_pad and ceil_mode:
                for i, axis in enumerate(("height", "width")):
                    if (out[i] - 1) * strides[i] + kernel[i] > [h, w][i] + pads[i] + pads[i + 2]:
                        raise node.error(f"count_include_pad=1 with ceil_mode=1: the last window along the "
                                         f"{axis} reaches past the padding, where ONNX does not define the divisor")
            layer["count_include_pad"] = bool(include_pad)
        self.add_layer(layer, self.layer_name(node, index, kind))
        return [c] + out, [c] + out

    def op_MaxPool(self, node, index, onnx_shape, gap_shape):
        return self.pool(node, index, onnx_shape, gap_shape, "max_pool2d")

    def op_AveragePool(self, node, index, onnx_shape, gap_shape):
        return self.pool(node, index, onnx_shape, gap_shape, "avg_pool2d")

    def op_GlobalAveragePool(self, node, index, onnx_shape, gap_shape):
        c = self.feature_map(node, onnx_shape, gap_shape)[0]
        self.add_layer({"type": "global_avg_pool2d"}, self.layer_name(node, index, "global_avg_pool2d"))
        return [c, 1, 1], [c]

    def op_GlobalMaxPool(self, node, index, onnx_shape, gap_shape):
        c = self.feature_map(node, onnx_shape, gap_shape)[0]
        self.add_layer({"type": "global_max_pool2d"}, self.layer_name(node, index, "global_max_pool2d"))
        return [c, 1, 1], [c]

    def op_BatchNormalization(self, node, index, onnx_shape, gap_shape):
        c = self.feature_map(node, onnx_shape, gap_shape)[0]
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
        for position, key, what in ((1, "weight", "scale"), (2, "bias", "B"), (3, "running_mean", "input_mean"),
                                    (4, "running_var", "input_var")):
            value = self.constant(node, position, what)
            if list(value.shape) != [c]:
                raise node.error(f"{what} of shape {_show(value.shape)}, expected [{c}]")
            if key == "running_var" and np.any(value < 0):
                raise node.error("input_var holds a negative variance")
            params[key] = _tensor(value)
        self.add_layer({"type": "batch_norm2d", "num_features": c, "eps": epsilon, **params},
                       self.layer_name(node, index, "batch_norm2d"))
        return onnx_shape, gap_shape

    def op_Relu(self, node, index, onnx_shape, gap_shape):
        self.add_layer({"type": "relu"}, self.layer_name(node, index, "relu"))
        return onnx_shape, gap_shape

    def op_Identity(self, node, index, onnx_shape, gap_shape):
        return onnx_shape, gap_shape

    def op_Dropout(self, node, index, onnx_shape, gap_shape):
        if self.opset < 7 and int(node.get("is_test", 0)) != 1:
            raise node.error(f"is_test={int(node.get('is_test', 0))} at opset {self.opset} means training mode")
        if self.opset >= 12:
            training = self.constant(node, 2, "training_mode", required=False, dtype=None)
            if training is not None and bool(np.asarray(training).reshape(-1)[0]):
                raise node.error("training_mode is true (random dropout); only inference is supported")
        return onnx_shape, gap_shape

    def flatten_to_vector(self, onnx_shape, name):
        """A gapnet flatten (C-H-W order: the values in ONNX's row-major order); the vector's shape."""
        self.add_layer({"type": "flatten"}, name)
        return [int(np.prod(onnx_shape))]

    def op_Flatten(self, node, index, onnx_shape, gap_shape):
        rank = len(onnx_shape) + 1
        axis = int(node.get("axis", 1))
        if not -rank <= axis <= rank:
            raise node.error(f"axis {axis} is out of range for a rank-{rank} input")
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise node.error("axis 0 flattens the whole batch into one row; only per-sample flattening "
                             "(axis 1) is supported")
        if int(np.prod(onnx_shape[:axis - 1])) != 1:
            raise node.error(f"axis {node.get('axis', 1)} moves per-sample dimensions into the batch "
                             f"(input {_per_sample(onnx_shape)}); only axis 1 is supported")
        flat = self.flatten_to_vector(onnx_shape, self.layer_name(node, index, "flatten"))
        return flat, flat

    def op_Reshape(self, node, index, onnx_shape, gap_shape):
        if self.opset < 5:
            raise node.error(f"Reshape-{self.opset} (shape as an attribute) is not supported")
        target = [int(v) for v in self.constant(node, 1, "shape", dtype=np.int64).reshape(-1)]
        allowzero = int(node.get("allowzero", 0))
        features = int(np.prod(onnx_shape))
        refused = node.error(f"shape {_show(target)} on input {_per_sample(onnx_shape)} is not "
                             f"supported: only a reshape to a flat vector per sample, [N,{features}]")
        if len(target) != 2 or target.count(-1) > 1:
            raise refused
        first, second = target
        copies_batch = (first == 0 and not allowzero) or (self.batch is not None and first == self.batch)
        if second == 0 and not allowzero:
            second = onnx_shape[0]
        if first == -1 and second == features:
            pass
        elif copies_batch and second in (features, -1):
            pass
        else:
            raise refused
        flat = self.flatten_to_vector(onnx_shape, self.layer_name(node, index, "flatten"))
        return flat, flat

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
            ok = int(np.prod(onnx_shape[:axis - 1])) == 1
        else:                # along one axis only
            ok = all(d == 1 for i, d in enumerate(onnx_shape) if i != axis - 1)
        if not ok:
            raise node.error(f"axis {node.get('axis', default)} on input {_per_sample(onnx_shape)} at "
                             f"opset {self.opset} is not a softmax over each sample's whole feature vector")

    def op_Softmax(self, node, index, onnx_shape, gap_shape):
        self.softmax_is_per_sample(node, onnx_shape)
        if len(gap_shape) != 1:
            gap_shape = self.flatten_to_vector(onnx_shape, self.layer_name(node, index, "softmax") + "_flatten")
        self.add_layer({"type": "softmax"}, self.layer_name(node, index, "softmax"))
        return onnx_shape, gap_shape

    def per_sample_bias(self, node, value, out, what):
        """A constant added to [N, out] must be the same for every sample: shape [], [1], [out],
        [1,1] or [1,out]. Returns it as a vector of `out` (exactly: broadcasting copies values)."""
        shape = list(value.shape)
        if len(shape) > 2 or (len(shape) == 2 and shape[0] != 1) or (shape and shape[-1] not in (1, out)):
            raise node.error(f"{what} of shape {_show(shape)} is not one bias for every sample "
                             f"(expected [], [1], [{out}] or [1,{out}])")
        return np.broadcast_to(value.reshape(-1), (out,)).astype(np.float32)

    def vector_features(self, node, onnx_shape):
        if len(onnx_shape) != 1:
            raise node.error(f"needs a 2-D [N,F] input, got {_per_sample(onnx_shape)} "
                             "(add a Flatten before it)")
        return onnx_shape[0]

    def op_Gemm(self, node, index, onnx_shape, gap_shape):
        features = self.vector_features(node, onnx_shape)
        if int(node.get("transA", 0)) != 0:
            raise node.error("transA=1 is not supported (the data input A must be [N,K])")
        has_c = self.constant(node, 2, "C", required=False) is not None
        if self.opset < 7 and int(node.get("broadcast", 0)) != 1 and has_c:
            raise node.error(f"broadcast=0 at opset {self.opset}: C must already be [N,M]")
        b = self.constant(node, 1, "B")
        if b.ndim != 2:
            raise node.error(f"B of shape {_show(b.shape)} is not a matrix")
        weight = b if int(node.get("transB", 0)) else b.T            # gapnet: [out, in]
        if weight.shape[1] != features:
            raise node.error(f"B of shape {_show(b.shape)} (transB={int(node.get('transB', 0))}) does not take "
                             f"{features} input features")
        out = int(weight.shape[0])
        alpha, beta = float(node.get("alpha", 1.0)), float(node.get("beta", 1.0))
        # alpha and beta fold into the weight and bias: alpha*(A.B) + beta*C = A.(alpha*B) + beta*C.
        layer = {"type": "dense", "in_features": features, "out_features": out,
                 "weight": _tensor(np.float32(alpha) * weight if alpha != 1.0 else weight)}
        c = self.constant(node, 2, "C", required=False)
        if c is not None and beta != 0.0:
            bias = self.per_sample_bias(node, c, out, "C")
            layer["bias"] = _tensor(np.float32(beta) * bias if beta != 1.0 else bias)
        self.add_layer(layer, self.layer_name(node, index, "dense"))
        return [out], [out]

    def op_MatMul(self, node, index, onnx_shape, gap_shape):
        features = self.vector_features(node, onnx_shape)
        b = self.constant(node, 1, "B")
        if b.ndim != 2 or b.shape[0] != features:
            raise node.error(f"B of shape {_show(b.shape)} is not a [{features},M] matrix")
        out = int(b.shape[1])
        self.add_layer({"type": "dense", "in_features": features, "out_features": out, "weight": _tensor(b.T)},
                       self.layer_name(node, index, "dense"))
        self.last_matmul = (node.proto.output[0], self.layers[-1])
        return [out], [out]

    def op_Add(self, node, index, onnx_shape, gap_shape):
        matmul = self.last_matmul
        current = [n for n in node.proto.input if n not in self.constants][0]
        if matmul is None or matmul[0] != current or "bias" in matmul[1] or len(onnx_shape) != 1:
            raise node.error("Add is supported only as the bias of the MatMul right before it")
        if self.opset < 7 and int(node.get("broadcast", 0)) != 1:
            raise node.error(f"broadcast=0 at opset {self.opset}: the bias must already be [N,M]")
        other = 1 if node.proto.input[0] == current else 0
        value = self.constant(node, other, "bias")
        matmul[1]["bias"] = _tensor(self.per_sample_bias(node, value, onnx_shape[0], "bias"))
        return onnx_shape, gap_shape


def convert(model, constants=None):
    """Convert an onnx ModelProto's chain to gapnet layers; `constants` binds graph inputs (by name)
    to fixed arrays (weights given as inputs, as ONNX's node tests do). Raises ConversionError."""
    return _Converter(model, constants).run()


def input_spec(conversion, color=None, mean=None, std=None, scale=None):
    """gapnet's "input" object: an image [C,H,W] (grayscale or rgb by channel count unless `color` says
    otherwise), or a tensor ("none") for a vector input or any other channel count."""
    c, h, w = conversion.input_shape
    if conversion.vector_input:
        if color not in (None, "none"):
            raise ConversionError(f"input '{conversion.input_name}' is a vector of {c}, not an image: "
                                  "--color must be none")
        color = "none"
    elif color is None:
        color = {1: "grayscale", 3: "rgb"}.get(c, "none")
    elif color != "none" and c != {"grayscale": 1, "rgb": 3}[color]:
        raise ConversionError(f"--color {color} needs {1 if color == 'grayscale' else 3} channel(s); "
                              f"input '{conversion.input_name}' has {c}")
    spec = {"channels": c, "height": h, "width": w, "color": color}
    if color == "none" and any(v is not None for v in (mean, std, scale)):
        raise ConversionError("--mean, --std and --scale describe image pixels; the input is a tensor "
                              "(color none)")
    if scale is not None:
        if not scale > 0:
            raise ConversionError(f"--scale {scale} must be positive")
        spec["scale"] = float(scale)
    for key, values in (("mean", mean), ("std", std)):
        if values is not None:
            if len(values) != c:
                raise ConversionError(f"--{key} needs {c} value(s), one per channel, got {len(values)}")
            if key == "std" and any(not v > 0 for v in values):
                raise ConversionError("--std values must be positive")
            spec[key] = [float(v) for v in values]
    return spec


def document(conversion, labels=None, color=None, mean=None, std=None, scale=None, name="model", metadata=None):
    """The complete gapnet model dict for a conversion whose output is a vector."""
    if len(conversion.output_shape) != 1:
        raise ConversionError(f"output '{conversion.output_name}' is a feature map "
                              f"{_per_sample(conversion.onnx_output_shape)}; gapnet models end in a "
                              "vector (add a GlobalAveragePool or Flatten and a Gemm)")
    outputs = conversion.output_shape[0]
    if labels is None:
        labels = [str(i) for i in range(outputs)]
    if len(labels) != outputs:
        raise ConversionError(f"{len(labels)} labels for {outputs} outputs")
    if not conversion.layers:
        raise ConversionError("the graph has no layer gapnet can run (only Identity/Dropout)")
    doc = {"format": "gapnet", "version": 1, "name": name,
           "input": input_spec(conversion, color, mean, std, scale), "labels": list(labels),
           "layers": conversion.layers}
    if metadata:
        doc["metadata"] = metadata
    return doc


def test_cases(conversion, inputs, outputs):
    """gapnet "tests" from ONNX arrays: inputs [N, *input], outputs [N, *output], one case per sample,
    reshaped (row-major, so exactly) to gapnet's per-sample input and output shapes."""
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    for what, a, shape in (("input", inputs, conversion.onnx_input_shape),
                           ("output", outputs, conversion.onnx_output_shape)):
        if a.dtype != np.float32:
            raise ConversionError(f"test {what} is {a.dtype}, not float32")
        if list(a.shape[1:]) != list(shape):
            raise ConversionError(f"test {what} has shape {_show(a.shape)}, the model's is {_per_sample(shape)}")
    if len(inputs) != len(outputs):
        raise ConversionError(f"{len(inputs)} test inputs but {len(outputs)} outputs")
    return [{"input": _tensor(x.reshape(conversion.input_shape)),
             "output": _tensor(y.reshape(conversion.output_shape))} for x, y in zip(inputs, outputs)]


def provenance(model, conversion, source=None):
    """The "metadata" the converter writes: where the model came from."""
    metadata = {"converted_from": "onnx", "converter": "tools/onnx_to_gapnet.py", "opset": conversion.opset,
                "producer": f"{model.producer_name} {model.producer_version}".strip(),
                "onnx_input": conversion.input_name, "onnx_output": conversion.output_name}
    if source:
        metadata["source"] = source
    return metadata


def to_gapnet(model, constants=None, labels=None, color=None, mean=None, std=None, scale=None, name=None):
    """The gapnet model dict for an onnx ModelProto (see convert, input_spec and document)."""
    conversion = convert(model, constants)
    return document(conversion, labels, color, mean, std, scale, name or model.graph.name or "model",
                    provenance(model, conversion))


def _read_test_data(directory, conversion, model):
    """input_*.pb / output_*.pb of an ONNX test data set (the layout of ONNX's model zoo and backend tests)."""
    def load(path):
        proto = onnx.TensorProto()
        with open(path, "rb") as f:
            try:
                proto.ParseFromString(f.read())
                return numpy_helper.to_array(proto)
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


def main():
    ap = argparse.ArgumentParser(description="Convert an ONNX CNN classifier to gapnet's JSON model format "
                                             "(docs/onnx.md).")
    ap.add_argument("model", help="the .onnx file")
    ap.add_argument("out", help="the gapnet JSON file to write")
    ap.add_argument("--labels", help="a text file with one class label per line (default: 0..n-1)")
    ap.add_argument("--color", choices=["grayscale", "rgb", "none"],
                    help="how images become the input (default: by channel count: 1 grayscale, 3 rgb, "
                         "else none; a vector input is always none)")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean, after --scale")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel standard deviation")
    ap.add_argument("--scale", type=float, help="multiplies each 0..255 pixel (gapnet's default 1/255)")
    ap.add_argument("--name", help="the model name (default: the file name)")
    ap.add_argument("--test-data", action="append", default=[], metavar="DIR",
                    help="an ONNX test_data_set directory (input_0.pb, output_0.pb) to record as tests "
                         "for `gapnet verify`; may be repeated")
    args = ap.parse_args()

    try:
        labels = None
        if args.labels:
            with open(args.labels) as f:
                labels = [line.rstrip("\n") for line in f if line.strip()]
        try:
            model = onnx.load(args.model)
        except Exception as e:  # protobuf's DecodeError, OSError, ...: one line, not a traceback
            raise ConversionError(f"cannot read the ONNX file: {e}")
        name = args.name or os.path.splitext(os.path.basename(args.model))[0]
        conversion = convert(model)
        doc = document(conversion, labels, args.color, args.mean, args.std, args.scale, name,
                       provenance(model, conversion, os.path.basename(args.model)))
        tests = []
        for directory in args.test_data:
            tests += test_cases(conversion, *_read_test_data(directory, conversion, model))
        if len(tests) > MAX_TESTS:
            raise ConversionError(f"--test-data gives {len(tests)} samples; a gapnet file holds at most {MAX_TESTS}")
        if tests:
            doc["tests"] = tests
    except (ConversionError, OSError) as e:
        sys.exit(f"onnx_to_gapnet: error: {args.model}: {e}")
    try:
        with open(args.out, "w") as f:
            json.dump(doc, f)
            f.write("\n")
    except OSError as e:
        sys.exit(f"onnx_to_gapnet: error: {args.out}: {e}")
    print(f"wrote {args.out}: {len(doc['layers'])} layers, input {_show(conversion.input_shape)}, "
          f"{len(doc['labels'])} outputs" + (f", {len(tests)} test case(s)" if tests else ""))


if __name__ == "__main__":
    main()
