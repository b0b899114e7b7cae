"""The ONNX graph walk of tools/onnx_to_gapnet.py: which operators and attributes are supported, which
nodes are live and in what order, each tensor's shapes on both sides; the operators themselves are
converted by tools/onnx_ops.py (the Operators methods this walk dispatches to).

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
import heapq
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gapnet_file import ConversionError, NonFinite as _NonFinite
from onnx_ops import Operators, _per_sample, _show, _Value

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


def _array(tensor, what):
    """A TensorProto's values. One stored as external data must have been read in first (load,
    read_external_data): numpy_helper would read it relative to the working directory, unchecked."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ConversionError(
            f"{what} is stored as external data that was not read in "
            "(load the model with onnx_to_gapnet.load, which confines it to the model's folder)"
        )
    return numpy_helper.to_array(tensor)


def _dimension(d):
    """An ONNX shape dimension for messages: its size, its symbolic name, or ?."""
    if d.HasField("dim_value"):
        return d.dim_value
    return d.dim_param or "?"


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


class _Converter(Operators):
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


def convert(model, constants=None):
    """Convert an onnx ModelProto's graph to gapnet layers; `constants` binds graph inputs (by name)
    to fixed arrays (weights given as inputs, as ONNX's node tests do). Raises ConversionError."""
    return _Converter(model, constants).run()
