#!/usr/bin/python3
"""Convert an ONNX model to gapnet's JSON model format (docs/model-format.md); see docs/onnx.md.

As a program (Debian's system interpreter, with python3-onnx and python3-numpy):

    /usr/bin/python3 tools/onnx_to_gapnet.py MODEL.onnx OUT.json [--labels FILE]
        [--color grayscale|rgb|none] [--mean M ..] [--std S ..] [--scale S] [--name N]
        [--test-data DIR ..]

As a library:

    import onnx_to_gapnet
    model = onnx_to_gapnet.load("model.onnx")          # external data only from the model's folder
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

Where the parts are: tools/onnx_graph.py walks the graph (the supported operators and their
attributes, liveness, order, shapes); tools/onnx_ops.py converts each operator (op_Conv, op_Gemm, ...);
this file reads the ONNX file (its external data confined to the model's folder, tools/model_files.py),
writes the gapnet document and is the command line.
"""
import argparse
import math
import os
import sys
import warnings

import numpy as np
import onnx

import gapnet_file
import model_files
from gapnet_file import ConversionError, tensor as _tensor
from onnx_graph import (  # noqa: F401  (the library API: convert, Conversion, the operator tables)
    ALL_DATA_INPUTS,
    ATTRIBUTE_TYPES,
    KNOWN_ATTRIBUTES,
    SUPPORTED_OPS,
    Conversion,
    _array,
    convert,
)
from onnx_ops import _per_sample, _show


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
    length must lie inside that file and match the tensor's size, and all of them together within the
    import bound (model_files.Budget). Raises ConversionError naming the tensor and the location.
    onnx's own loader is not used for this: Debian's onnx 1.12 follows `weights/../../x` and symlinks
    out of the folder (CVE-2024-27318)."""
    budget = model_files.Budget()
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
            budget.take(length, shown)
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
