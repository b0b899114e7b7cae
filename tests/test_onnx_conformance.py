#!/usr/bin/python3
"""ONNX import, end to end: tools/onnx_to_gapnet.py against ONNX's own backend test suite, plus a few
hand-made graphs.

    /usr/bin/python3 tests/test_onnx_conformance.py PATH/TO/gapnet

1. Conformance. Every case in ONNX's node tests (Debian's libonnx-testdata, data/node/test_*) whose
   operators are all ones the converter supports is converted, its weights (W, B, scale, mean, var,
   Clip's bounds, ... given there as extra graph inputs) bound as constants from the case's input_*.pb
   files. The data set's input and expected output, split over the batch dimension N (one test per
   sample), go into the file's "tests"; a "flatten" is appended when the output is a feature map (C-H-W
   order, so the values are unchanged); then `gapnet verify --tolerance 1e-5` must pass. A case the
   converter cannot honour must be refused with its own one-line message, never by a crash. A table
   lists every case as pass or refused: reason. The run fails if any converted case fails
   verification, or if any case in EXPECTED_PASSING does not pass (a regression cannot silently turn
   a pass into a refusal). All cases pass at the default tolerance 1e-5 (|v - r| <= 1e-5 * max(1, |r|)).

   ONNX 1.12's cases for the graph operators (Add, Sum, Mul, Concat, Clip, the activations) use 1-D
   to 3-D tensors, and the binary ones two data inputs, while a gapnet model reads one image or
   vector. Where it changes no value, such a case is lifted to 4-D (lift(): unit axes appended,
   several data inputs packed along the channels and picked apart by exact 0/1 1x1 convolutions), so
   its numbers, ONNX's own, still go through gapnet; the table says "pass (as [3,4,5,1])". The others
   (broadcasting, integer types, shape-dependent operators) are converted as they are and refused.

2. Hand-made graphs (onnx.helper): unsupported operators, attribute values and graph structures
   (a cycle, a Pad not read by a Conv or AveragePool, broadcasting, a grouped or padded Conv on a
   pooled vector, two outputs, ...) are refused with the node named (also through the command line,
   exit status 1, one line); a Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax
   classifier converts and `gapnet classify` gives the probabilities NumPy computes for a real image
   file; graphs using the paths the node tests do not reach must match NumPy references under
   `gapnet verify`: MatMul + Add as one dense, Gemm alpha/beta folding, Reshape to a vector, grouped
   dilated SAME_UPPER convolution, ceil_mode, count_include_pad, opset-11 softmax of a feature map, a
   vector input; and graphs: a residual block with a squeeze-and-excitation gate, an inception-like
   block (Concat, Pads folded into a Conv and an AveragePool, Clip with constant bounds), the
   activations at opset 6 (attribute bounds, defaults; Sigmoid and Mul as one silu), 1x1 Convs on pooled
   vectors as dense layers with dead nodes pruned, and a 1x1 image mixing feature maps and vectors. For
   these the layer list (types, names, what each reads) is checked too.

Needs Debian's python3-onnx, python3-numpy and libonnx-testdata (installed by `make test`); a missing
one is a failure, not a skip.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTER = os.path.join(ROOT, "tools", "onnx_to_gapnet.py")
NODE_TESTS = "/usr/share/libonnx-testdata/data/node"
TOLERANCE = 1e-5

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    sys.exit(
        f"FAIL: {e}: install Debian's python3-onnx and python3-numpy "
        "(apt-get install python3-onnx python3-numpy, or make test)"
    )
sys.path.insert(0, os.path.join(ROOT, "tools"))
import onnx_to_gapnet  # noqa: E402

# The operators the converter documents (docs/onnx.md); a case is tried when all its nodes are these.
OPERATORS = {
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
}

# Operators whose cases may be lifted to 4-D (see lift()): element-wise, or with axes counted from the
# front (Concat, ReduceMean), so appending unit axes to every tensor changes no value.
LIFTABLE = {
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Add",
    "Sum",
    "Mul",
    "Dropout",
    "Identity",
    "Concat",
    "ReduceMean",
}

# Committed result: every one of these must convert and verify. More passing cases only print a note.
EXPECTED_PASSING = [
    "test_averagepool_2d_ceil",
    "test_averagepool_2d_default",
    "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad",
    "test_averagepool_2d_precomputed_pads",
    "test_averagepool_2d_precomputed_pads_count_include_pad",
    "test_averagepool_2d_precomputed_same_upper",
    "test_averagepool_2d_precomputed_strides",
    "test_averagepool_2d_same_lower",
    "test_averagepool_2d_same_upper",
    "test_averagepool_2d_strides",
    "test_basic_conv_with_padding",
    "test_basic_conv_without_padding",
    "test_conv_with_autopad_same",
    "test_conv_with_strides_and_asymmetric_padding",
    "test_conv_with_strides_no_padding",
    "test_conv_with_strides_padding",
    "test_batchnorm_epsilon",
    "test_batchnorm_example",
    "test_flatten_axis1",
    "test_flatten_default_axis",
    "test_flatten_negative_axis3",
    "test_gemm_alpha",
    "test_gemm_beta",
    "test_gemm_default_no_bias",
    "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias",
    "test_gemm_default_vector_bias",
    "test_gemm_default_zero_bias",
    "test_gemm_transposeB",
    "test_globalaveragepool",
    "test_globalaveragepool_precomputed",
    "test_globalmaxpool",
    "test_globalmaxpool_precomputed",
    "test_identity",
    "test_matmul_2d",
    "test_maxpool_2d_ceil",
    "test_maxpool_2d_default",
    "test_maxpool_2d_pads",
    "test_maxpool_2d_precomputed_pads",
    "test_maxpool_2d_precomputed_same_upper",
    "test_maxpool_2d_precomputed_strides",
    "test_maxpool_2d_same_lower",
    "test_maxpool_2d_same_upper",
    "test_maxpool_2d_strides",
    "test_softmax_example",
    "test_softmax_large_number",
    # Graph operators, lifted to 4-D (see lift()):
    "test_add",
    "test_mul",
    "test_mul_example",
    "test_sum_example",
    "test_sum_one_input",
    "test_sum_two_inputs",
    "test_concat_2d_axis_1",
    "test_concat_2d_axis_negative_1",
    "test_concat_3d_axis_1",
    "test_concat_3d_axis_negative_2",
    "test_clip",
    "test_clip_default_inbounds",
    "test_clip_default_max",
    "test_clip_default_min",
    "test_clip_example",
    "test_clip_inbounds",
    "test_clip_outbounds",
    "test_clip_splitbounds",
    "test_hardsigmoid",
    "test_hardsigmoid_default",
    "test_hardsigmoid_example",
    "test_hardswish",
    "test_hardswish_expanded",
    "test_leakyrelu",
    "test_leakyrelu_default",
    "test_leakyrelu_example",
    "test_sigmoid",
    "test_sigmoid_example",
    "test_tanh",
    "test_tanh_example",
    "test_relu",
    "test_dropout_default",
    "test_dropout_default_old",
    "test_dropout_default_ratio",
    "test_dropout_random_old",
]


def read_pb(path):
    proto = onnx.TensorProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return numpy_helper.to_array(proto)


def write_model(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f)


def verify(gapnet, path):
    """(passed, gapnet's line)"""
    run = subprocess.run([gapnet, "verify", "--tolerance", str(TOLERANCE), path], capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


# ---- 1. ONNX's node tests ---------------------------------------------------------------------


class Prepared:
    """A node test ready to convert: the model, the constants to bind, the data set's input and
    expected output, and how it was prepared (for the table)."""

    def __init__(self, model, constants, x, y, how=""):
        self.model, self.constants, self.x, self.y, self.how = model, constants, x, y, how


def data_inputs(model):
    """The graph inputs a case computes from: input 0, and any input Add/Sum/Mul/Concat read (every
    input of these is data). The others (weights, bounds, shapes) are bound as constants."""
    graph_inputs = [value.name for value in model.graph.input]
    names = graph_inputs[:1]
    for node in model.graph.node:
        if node.op_type in onnx_to_gapnet.ALL_DATA_INPUTS:
            names += [n for n in node.input if n in graph_inputs and n not in names]
    return names


def read_tensor(path):
    """An input_*.pb as an array, or None if it holds no tensor (an optional or a sequence, which the
    converter refuses from the model alone)."""
    try:
        return read_pb(path)
    except Exception:  # protobuf's DecodeError, numpy_helper's ValueError on a non-tensor
        return None


def prepare(model, arrays, expected):
    """The case as it is (input 0 the data, every other input bound as a constant), or, where that
    cannot run but lifting is exact, lifted to 4-D (see lift)."""
    data = data_inputs(model)
    as_is = Prepared(
        model, {v.name: arrays[v.name] for v in model.graph.input[1:]}, arrays[data[0]] if data else None, expected
    )
    if not data or expected is None or any(arrays[n] is None for n in data):
        return as_is
    ranks = {arrays[n].ndim for n in data}
    if len(data) == 1 and ranks <= {2, 4}:
        return as_is  # gapnet's own input kinds: nothing to do
    if (
        not {node.op_type for node in model.graph.node} <= LIFTABLE
        or len(model.graph.output) != 1
        or len(ranks) != 1
        or max(ranks) > 4
        or any(arrays[n].dtype != np.float32 for n in data)
    ):
        return as_is  # the converter refuses it, with its own message
    return lift(model, data, arrays, expected) or as_is


def lift(model, data, arrays, expected):
    """The case on 4-D tensors: each data input and the output get unit axes appended ([3,4,5] ->
    [3,4,5,1], i.e. N=3, C=4, H=5, W=1), negative axes are counted from the front, and several data
    inputs are packed along the channels into one input, from which 1x1 convolutions with 0/1 weights
    select each (1*x + 0*y... is x exactly). The numbers are ONNX's, unchanged: the lifted operators'
    result at each position does not depend on trailing unit axes. None if the inputs cannot be packed
    (shapes that differ beyond axis 1)."""
    rank = arrays[data[0]].ndim
    lifted = {n: arrays[n].reshape(arrays[n].shape + (1,) * (4 - rank)) for n in data}
    shapes = [lifted[n].shape for n in data]
    if any(s[:1] + s[2:] != shapes[0][:1] + shapes[0][2:] for s in shapes):
        return None
    nodes, initializers = [], []
    if len(data) == 1:
        input_name, x = data[0], lifted[data[0]]
    else:
        input_name, x = "packed", np.concatenate([lifted[n] for n in data], axis=1)
        offset = 0
        for i, name in enumerate(data):
            c = lifted[name].shape[1]
            select = np.zeros((c, x.shape[1], 1, 1), np.float32)
            select[np.arange(c), offset + np.arange(c), 0, 0] = 1
            initializers.append(numpy_helper.from_array(select, f"select_{i}"))
            nodes.append(helper.make_node("Conv", [input_name, f"select_{i}"], [name], name=f"select_{i}"))
            offset += c
    for node in model.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        for attribute in copy.attribute:
            if node.op_type == "Concat" and attribute.name == "axis" and attribute.i < 0:
                attribute.i += rank
            if node.op_type == "ReduceMean" and attribute.name == "axes":
                attribute.ints[:] = [a + rank if a < 0 else a for a in attribute.ints]
        nodes.append(copy)
    y = expected.reshape(expected.shape + (1,) * (4 - rank))
    output = model.graph.output[0]
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(x.shape))]
    inputs += [v for v in model.graph.input if v.name not in data]
    graph = helper.make_graph(
        nodes,
        model.graph.name,
        inputs,
        [helper.make_tensor_value_info(output.name, TensorProto.FLOAT, list(y.shape))],
        initializer=initializers,
    )
    lifted_model = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    onnx.checker.check_model(lifted_model)
    constants = {v.name: arrays[v.name] for v in model.graph.input if v.name not in data}
    how = f"as {_shape(x.shape)}" + (f", {len(data)} inputs packed" if len(data) > 1 else "")
    return Prepared(lifted_model, constants, x, y, how)


def _shape(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def conformance_case(gapnet, tmp, case):
    """'pass', or 'refused: REASON'; raises AssertionError on a verification failure or a crash."""
    folder = os.path.join(NODE_TESTS, case)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    data_sets = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set_"))
    assert data_sets, f"{case}: no test_data_set_* folder"
    how = ""
    for data_set in data_sets:
        where = os.path.join(folder, data_set)
        arrays = {
            value.name: read_tensor(os.path.join(where, f"input_{i}.pb")) for i, value in enumerate(model.graph.input)
        }
        try:
            prepared = prepare(model, arrays, read_tensor(os.path.join(where, "output_0.pb")))
        except Exception as e:  # the test's own bug, not the converter's
            raise AssertionError(f"{case}: cannot prepare the case: {type(e).__name__}: {e}")
        how = prepared.how
        try:
            conversion = onnx_to_gapnet.convert(prepared.model, prepared.constants)
            if len(conversion.output_shape) != 1:
                conversion.layers.append({"type": "flatten", "name": "conformance_flatten"})
                conversion.output_shape = [int(np.prod(conversion.output_shape))]
            doc = onnx_to_gapnet.document(conversion, color="none", name=case)
            doc["tests"] = onnx_to_gapnet.test_cases(conversion, prepared.x, prepared.y)
        except onnx_to_gapnet.ConversionError as e:
            assert "\n" not in str(e), f"{case}: the refusal is not one line: {e!r}"
            return f"refused: {e}" + (f" ({how})" if how else "")
        except Exception as e:  # anything else is a converter bug, not a refusal
            raise AssertionError(f"{case}: the converter crashed: {type(e).__name__}: {e}")
        path = os.path.join(tmp, f"{case}-{data_set}.json")
        write_model(doc, path)
        passed, line = verify(gapnet, path)
        assert passed, f"{case}: converted, but gapnet verify fails: {line}"
    return "pass" + (f" ({how})" if how else "")


def check_conformance(gapnet, tmp):
    cases = []
    for case in sorted(os.listdir(NODE_TESTS)):
        model = onnx.load(os.path.join(NODE_TESTS, case, "model.onnx"))
        if {node.op_type for node in model.graph.node} <= OPERATORS:
            cases.append(case)
    assert cases, f"no node test in {NODE_TESTS} uses the supported operators"

    failures, results = [], {}
    for case in cases:
        try:
            results[case] = conformance_case(gapnet, tmp, case)
        except AssertionError as e:
            results[case] = "FAIL"
            failures.append(str(e))
    width = max(len(c) for c in cases)
    print(f"{'case':{width}}  status")
    for case in cases:
        print(f"{case:{width}}  {results[case]}")
    passing = {c for c, r in results.items() if r.startswith("pass")}
    lifted = sum(r.startswith("pass (") for r in results.values())
    print(
        f"{len(passing)} of {len(cases)} node tests with supported operators convert and verify "
        f"(tolerance {TOLERANCE:g}; {lifted} of them lifted to 4-D); "
        f"{sum(r.startswith('refused') for r in results.values())} refused"
    )

    lost = [c for c in EXPECTED_PASSING if c not in passing]
    if lost:
        failures.append(f"expected to pass but did not: {', '.join(lost)}")
    gained = sorted(passing - set(EXPECTED_PASSING))
    if gained:
        print(f"note: these now pass too; add them to EXPECTED_PASSING: {', '.join(gained)}")
    assert not failures, "\n".join(failures)


# ---- 2. Hand-made graphs ----------------------------------------------------------------------


def tensor_input(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def make_model(nodes, input_shape, output_shape, initializers, opset=13, extra_inputs=(), extra_outputs=(), check=True):
    graph = helper.make_graph(
        nodes,
        "handmade",
        [tensor_input("x", input_shape), *extra_inputs],
        [tensor_input("y", output_shape), *extra_outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="handmade")
    if check:  # the test graphs themselves must be valid ONNX (but for the cycle, which is not)
        onnx.checker.check_model(model)
    return model


def constant_node(name, value):
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(value)))


def np_conv(x, w, b, strides, pads, dilations, group):
    """ONNX Conv (cross-correlation) for x [N,C,H,W], pads [top, left, bottom, right], in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, _, h, wd = x.shape
    m, c_group, kh, kw = w.shape
    oh = (h - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, m, oh, ow))
    m_group = m // group
    for g in range(group):
        xs = x[:, g * c_group : (g + 1) * c_group]
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dilations[0], j * dilations[1]
                patch = xs[
                    :,
                    :,
                    y0 : y0 + strides[0] * (oh - 1) + 1 : strides[0],
                    x0 : x0 + strides[1] * (ow - 1) + 1 : strides[1],
                ]
                out[:, g * m_group : (g + 1) * m_group] += np.einsum(
                    "nchw,mc->nmhw", patch, w[g * m_group : (g + 1) * m_group, :, i, j]
                )
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def np_pool(x, kernel, strides, pads, ceil_mode, kind, count_include_pad=False):
    """ONNX MaxPool/AveragePool with explicit pads; windows are clipped to the input (and, for the
    count_include_pad divisor, to the padded input)."""
    n, c, h, w = x.shape
    size = [h, w]
    rounding = np.ceil if ceil_mode else np.floor
    out_size = [int(rounding((size[a] + pads[a] + pads[a + 2] - kernel[a]) / strides[a])) + 1 for a in range(2)]
    out = np.zeros((n, c, *out_size))
    for oy in range(out_size[0]):
        for ox in range(out_size[1]):
            start = [oy * strides[0] - pads[0], ox * strides[1] - pads[1]]
            end = [min(start[a] + kernel[a], size[a] + pads[a + 2]) for a in range(2)]
            divisor = (end[0] - start[0]) * (end[1] - start[1])
            y0, x0 = max(start[0], 0), max(start[1], 0)
            window = x[:, :, y0 : min(end[0], h), x0 : min(end[1], w)].astype(np.float64)
            if kind == "max":
                out[:, :, oy, ox] = window.max(axis=(2, 3))
            else:
                out[:, :, oy, ox] = window.sum(axis=(2, 3)) / (divisor if count_include_pad else window[0, 0].size)
    return out


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_converter(*args):
    return subprocess.run([sys.executable, CONVERTER, *args], capture_output=True, text=True)


def expect_refusal(model, message, constants=None):
    try:
        onnx_to_gapnet.convert(model, constants)
    except onnx_to_gapnet.ConversionError as e:
        assert message in str(e), f"refusal {str(e)!r} lacks {message!r}"
        return
    raise AssertionError(f"not refused; expected {message!r}")


def check_refusals(gapnet, tmp):
    rng = np.random.RandomState(1)
    w = rng.randn(2, 1, 3, 3).astype(np.float32)

    # On the command line: exit status 1 and exactly one line, naming the file and the node.
    sine = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
            helper.make_node("Sin", ["c"], ["y"], name="act"),
        ],
        ["N", 1, 6, 6],
        ["N", 2, 6, 6],
        {"w": w},
    )
    dilated = make_model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], dilations=[2, 2])],
        ["N", 1, 6, 6],
        ["N", 1, 4, 4],
        {},
    )
    for model, name, expected in (
        (sine, "sine.onnx", "node 'act' (Sin): operator not supported by gapnet (supported: Conv, "),
        (dilated, "dilated.onnx", "node 'pool' (MaxPool): dilations [2,2] are not supported"),
    ):
        path = os.path.join(tmp, name)
        onnx.save(model, path)
        run = run_converter(path, os.path.join(tmp, name + ".json"))
        assert run.returncode == 1, f"{name}: exit status {run.returncode}, expected 1: {run.stderr}"
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"onnx_to_gapnet: error: {path}: {expected}"
        ), f"{name}: stderr {run.stderr!r} is not the one line 'onnx_to_gapnet: error: {path}: {expected}...'"
        assert not os.path.exists(os.path.join(tmp, name + ".json")), f"{name}: a file was written"

    vector = ["N", 4]
    b = rng.randn(4, 3).astype(np.float32)
    cases = [
        (
            make_model([helper.make_node("Gemm", ["x", "b"], ["y"], name="fc", transA=1)], [4, 3], [3, 3], {"b": b}),
            "node 'fc' (Gemm): transA=1 is not supported",
        ),
        (
            make_model(
                [helper.make_node("Gemm", ["x", "b", "c"], ["y"], name="fc")],
                [2, 4],
                [2, 3],
                {"b": b, "c": np.ones((2, 3), np.float32)},
            ),
            "node 'fc' (Gemm): C of shape [2,3] is not one bias for every sample",
        ),
        (
            make_model(
                [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)],
                ["N", 2, 3, 3],
                ["N", 2, 3, 3],
                {},
                opset=13,
            ),
            "node 'sm' (Softmax): axis 1 on input [N,2,3,3] at opset 13 is not a softmax over each sample's whole "
            "feature vector",
        ),
        (
            make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], vector, vector, {}, opset=11),
            "node 'sm' (Softmax): axis 0 is the batch",
        ),
        (
            make_model(
                [
                    helper.make_node(
                        "MaxPool",
                        ["x"],
                        ["y"],
                        name="p",
                        kernel_shape=[2, 2],
                        strides=[2, 2],
                        pads=[0, 0, 1, 1],
                        ceil_mode=1,
                    )
                ],
                ["N", 1, 4, 4],
                ["N", 1, 3, 3],
                {},
            ),
            "node 'p' (MaxPool): ceil_mode=1: ONNX's 3 outputs along the height include a window starting in the "
            "padding",
        ),
        (
            make_model(
                [helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[2, 2], pads=[2, 2, 2, 2])],
                ["N", 1, 4, 4],
                ["N", 1, 7, 7],
                {},
            ),
            "node 'p' (AveragePool): pads [2,2,2,2] must each be smaller than the kernel [2,2]",
        ),
        (
            make_model(
                [helper.make_node("Conv", ["x", "W"], ["y"], name="c")],
                ["N", 1, 6, 6],
                ["N", 2, 4, 4],
                {},
                extra_inputs=[tensor_input("W", [2, 1, 3, 3])],
            ),
            "the graph needs exactly one data input, it has 2 ('x', 'W')",
        ),
        (
            make_model(
                [helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                ["N", 2, 3, 3],
                ["N", 2, 9],
                {"s": np.array([0, 2, 9], np.int64)},
            ),
            "node 'rs' (Reshape): shape [0,2,9] on input [N,2,3,3] is not supported: only a reshape to a flat "
            "vector per sample, [N,18]",
        ),
        (
            make_model(
                [
                    helper.make_node("Relu", ["x"], ["r"], name="r"),
                    helper.make_node("Add", ["r", "c"], ["y"], name="plus"),
                ],
                vector,
                vector,
                {"c": np.ones(4, np.float32)},
            ),
            "node 'plus' (Add): an Add of a constant is supported only as the bias of the MatMul right before it",
        ),
        (
            make_model(
                [helper.make_node("Dropout", ["x", "ratio", "training"], ["y"], name="drop")],
                vector,
                vector,
                {"ratio": np.array(0.5, np.float32), "training": np.array(True)},
            ),
            "node 'drop' (Dropout): training_mode is true",
        ),
        (
            make_model(
                [helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")],
                vector,
                vector,
                {},
                extra_outputs=[helper.make_tensor_value_info("mask", TensorProto.BOOL, vector)],
            ),
            "node 'drop' (Dropout): its output 2 ('mask') is used; only the first output is supported",
        ),
        (
            make_model(
                [helper.make_node("BatchNormalization", ["x", "s", "s", "s", "s"], ["y"], name="bn")],
                vector,
                vector,
                {"s": np.ones(4, np.float32)},
            ),
            "node 'bn' (BatchNormalization): needs a 4-D [N,C,H,W] input, got [N,4]",
        ),
        (
            make_model(
                [
                    helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
                    helper.make_node("BatchNormalization", ["g", "s", "s", "s", "s"], ["y"], name="bn"),
                ],
                ["N", 4, 6, 6],
                ["N", 4, 1, 1],
                {"s": np.ones(4, np.float32)},
            ),
            "node 'bn' (BatchNormalization): its input [N,4,1,1] comes after a global pool or flatten, which gapnet "
            "holds as a vector",
        ),
    ] + graph_refusals(rng)
    for model, message in cases:
        expect_refusal(model, message)
    print(
        f"ok  {len(cases) + 2} unsupported graphs refused, naming the node and the reason "
        "(2 through the command line: exit status 1, one line)"
    )


def graph_refusals(rng):
    """(model, message) for what the graph operators cannot convert exactly."""
    f32 = np.float32
    image, w1 = ["N", 2, 3, 3], rng.randn(1, 2, 1, 1).astype(f32)
    pads = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)

    def pad(reader_nodes, pads_value=pads, output_shape=("N", 2, 3, 3), opset=13, initializers=None, **attrs):
        nodes = [constant_node("pads", pads_value), helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", **attrs)]
        return make_model(nodes + reader_nodes, image, list(output_shape), initializers or {}, opset=opset)

    cycle = make_model(
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
            helper.make_node("Relu", ["a"], ["b"], name="n2"),
            helper.make_node("Relu", ["a"], ["y"], name="n3"),
        ],
        image,
        image,
        {},
        check=False,
    )
    return [
        (cycle, "node 'n1' (Add): is on a cycle: its inputs depend on its own output"),
        (
            pad([helper.make_node("Relu", ["p"], ["y"], name="r")], output_shape=("N", 2, 5, 5)),
            "node 'pad' (Pad): its output is read by node 'r' (Relu): gapnet pads only inside a Conv or AveragePool",
        ),
        (
            pad([helper.make_node("MaxPool", ["p"], ["y"], name="mp", kernel_shape=[3, 3])]),
            "node 'pad' (Pad): its output is read by node 'mp' (MaxPool)",
        ),
        (
            make_model(
                [constant_node("pads", pads), helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")],
                image,
                ["N", 2, 5, 5],
                {},
            ),
            "node 'pad' (Pad): its output is read by the graph output",
        ),
        (
            make_model(
                [
                    constant_node("pads", pads),
                    constant_node("one", np.array(1.0, f32)),
                    helper.make_node("Pad", ["x", "pads", "one"], ["p"], name="pad"),
                    helper.make_node("Conv", ["p", "w"], ["y"], name="c"),
                ],
                image,
                ["N", 1, 5, 5],
                {"w": w1},
            ),
            "node 'pad' (Pad): mode 'constant' with value 1: gapnet pads with zeros only",
        ),
        (
            pad(
                [helper.make_node("Conv", ["p", "w"], ["y"], name="c")],
                output_shape=("N", 1, 5, 5),
                initializers={"w": w1},
                mode="reflect",
            ),
            "node 'pad' (Pad): mode 'reflect' with value 0: gapnet pads with zeros only",
        ),
        (
            pad(
                [helper.make_node("Conv", ["p", "w"], ["y"], name="c")],
                np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64),
                output_shape=("N", 1, 3, 3),
                initializers={"w": rng.randn(1, 3, 1, 1).astype(f32)},
            ),
            "node 'pad' (Pad): pads [0,1,0,0,0,0,0,0] on input [N,2,3,3]: gapnet pads H and W of a feature map only",
        ),
        (
            pad(
                [helper.make_node("Conv", ["p", "w"], ["y"], name="c")],
                np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64),
                output_shape=("N", 1, 2, 3),
                initializers={"w": w1},
            ),
            "node 'pad' (Pad): pads [0,0,-1,0,0,0,0,0]: negative pads (cropping) are not supported",
        ),
        (
            pad(
                [helper.make_node("AveragePool", ["p"], ["y"], name="ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                output_shape=("N", 2, 5, 5),
            ),
            "node 'ap' (AveragePool): padding [1,1,1,1] of its own with count_include_pad=0 after a Pad",
        ),
        (
            make_model(
                [
                    helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
                    helper.make_node("Conv", ["g", "w"], ["y"], name="se", group=2),
                ],
                image,
                ["N", 2, 1, 1],
                {"w": rng.randn(2, 1, 1, 1).astype(f32)},
            ),
            "node 'se' (Conv): group 2 on [N,2,1,1], which gapnet holds as a vector (it comes after a global pool "
            "or flatten), converts to a dense layer only with group 1",
        ),
        (
            make_model(
                [
                    helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
                    helper.make_node("Conv", ["g", "w"], ["y"], name="head", pads=[1, 1, 1, 1]),
                ],
                image,
                ["N", 2, 1, 1],
                {"w": rng.randn(2, 2, 3, 3).astype(f32)},
            ),
            "node 'head' (Conv): kernel [3,3] with pads [1,1,1,1] on [N,2,1,1], which gapnet holds as a vector (it "
            "comes after a global pool or flatten), converts to a dense layer only as a 1x1 kernel without padding",
        ),
        (
            make_model(
                [
                    helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
                    helper.make_node("Add", ["x", "g"], ["y"], name="add"),
                ],
                image,
                image,
                {},
            ),
            "node 'add' (Add): inputs of shapes [N,2,3,3], [N,2,1,1]: gapnet adds tensors of one shape (no "
            "broadcasting)",
        ),
        (
            make_model(
                [helper.make_node("Mul", ["x", "c"], ["y"], name="scale")],
                image,
                image,
                {"c": np.full((1, 2, 1, 1), 2.0, f32)},
            ),
            "node 'scale' (Mul): reads the constant 'c': gapnet's add, multiply and concat combine computed tensors "
            "only",
        ),
        (
            make_model(
                [
                    helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
                    helper.make_node("Mul", ["x", "c"], ["y"], name="mul"),
                ],
                image,
                image,
                {"w": w1},
            ),
            "node 'mul' (Mul): inputs of shapes [N,2,3,3] and [N,1,3,3]: gapnet multiplies equal shapes, or a "
            "feature map [N,C,H,W] by a gate [N,C,1,1]",
        ),
        (
            make_model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2)], image, ["N", 2, 6, 3], {}),
            "node 'cat' (Concat): axis 2 on inputs [N,2,3,3], [N,2,3,3]: gapnet concatenates feature maps along the "
            "channels",
        ),
        (
            make_model(
                [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1])], image, ["N", 1, 3, 3], {}
            ),
            "node 'mean' (ReduceMean): axes [1] on input [N,2,3,3]: only the mean over H and W (axes [2,3]) of a 4-D "
            "tensor, a global average pool, is supported",
        ),
        (
            make_model(
                [
                    constant_node("low", np.array(2.0, f32)),
                    constant_node("high", np.array(1.0, f32)),
                    helper.make_node("Clip", ["x", "low", "high"], ["y"], name="clip"),
                ],
                image,
                image,
                {},
                opset=11,
            ),
            "node 'clip' (Clip): min 2 > max 1: ONNX then outputs max everywhere, gapnet's clip needs min <= max",
        ),
        (
            make_model(
                [helper.make_node("Relu", ["x"], ["y"], name="r"), helper.make_node("Sigmoid", ["x"], ["z"])],
                image,
                image,
                {},
                extra_outputs=[tensor_input("z", image)],
            ),
            "the graph outputs 'y', 'z'; gapnet needs exactly one output",
        ),
        (
            make_model(
                [
                    helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
                    helper.make_node("Add", ["m", "b"], ["biased"], name="bias"),
                    helper.make_node("Relu", ["m"], ["r"], name="r"),
                    helper.make_node("Add", ["biased", "r"], ["y"], name="sum"),
                ],
                ["N", 4],
                ["N", 3],
                {"w": rng.randn(4, 3).astype(f32), "b": rng.randn(3).astype(f32)},
            ),
            "node 'bias' (Add): an Add of a constant is supported only as the bias of the MatMul right before it",
        ),
    ]


def classifier_model(rng):
    """Conv(1->4, 3x3, pads 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(transB=1) -> Softmax."""
    weights = {
        "conv_w": rng.randn(4, 1, 3, 3).astype(np.float32),
        "conv_b": rng.randn(4).astype(np.float32),
        "fc_w": rng.randn(5, 4).astype(np.float32) * 0.5,
        "fc_b": rng.randn(5).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    model = make_model(nodes, ["N", 1, 8, 8], ["N", 5], weights, opset=13)

    def reference(x):
        hidden = np.maximum(np_conv(x, weights["conv_w"], weights["conv_b"], [1, 1], [1, 1, 1, 1], [1, 1], 1), 0)
        return np_softmax(hidden.mean(axis=(2, 3)) @ weights["fc_w"].T.astype(np.float64) + weights["fc_b"])

    return model, reference


def check_classifier(gapnet, tmp):
    rng = np.random.RandomState(7)
    model, reference = classifier_model(rng)
    onnx_path, json_path = os.path.join(tmp, "classifier.onnx"), os.path.join(tmp, "classifier.json")
    onnx.save(model, onnx_path)
    labels = ["cat", "dog", "bird", "fish", "frog"]
    labels_path = os.path.join(tmp, "labels.txt")
    with open(labels_path, "w") as f:
        f.write("\n".join(labels) + "\n")

    # Recorded tests through --test-data: a batch of 2 preprocessed inputs and NumPy's outputs.
    data_dir = os.path.join(tmp, "test_data_set_0")
    os.makedirs(data_dir)
    batch = rng.randn(2, 1, 8, 8).astype(np.float32)
    for name, array in (("input_0.pb", batch), ("output_0.pb", reference(batch).astype(np.float32))):
        with open(os.path.join(data_dir, name), "wb") as f:
            f.write(numpy_helper.from_array(array).SerializeToString())

    mean, std = 0.5, 0.25
    run = run_converter(
        onnx_path,
        json_path,
        "--labels",
        labels_path,
        "--color",
        "grayscale",
        "--mean",
        str(mean),
        "--std",
        str(std),
        "--test-data",
        data_dir,
    )
    assert run.returncode == 0, f"classifier: conversion failed: {run.stderr}"
    with open(json_path) as f:
        doc = json.load(f)
    types = [layer["type"] for layer in doc["layers"]]
    assert types == ["conv2d", "relu", "global_avg_pool2d", "flatten", "dense", "softmax"], types
    assert doc["labels"] == labels and doc["input"]["color"] == "grayscale", doc["input"]
    passed, line = verify(gapnet, json_path)
    assert passed and "2 test case(s) match" in line, f"classifier: --test-data tests do not verify: {line}"

    # A real image file (binary PGM, which stb_image reads), classified by the gapnet program.
    pixels = rng.randint(0, 256, size=(8, 8)).astype(np.uint8)
    image_path = os.path.join(tmp, "image.pgm")
    with open(image_path, "wb") as f:
        f.write(b"P5\n8 8\n255\n" + pixels.tobytes())
    x = ((pixels.astype(np.float32) * np.float32(1 / 255) - np.float32(mean)) / np.float32(std)).reshape(1, 1, 8, 8)
    expected = reference(x)[0]
    run = subprocess.run(
        [gapnet, "classify", "--model", json_path, "--top", "5", "--json", image_path], capture_output=True, text=True
    )
    assert run.returncode == 0, f"classifier: gapnet classify failed: {run.stderr}"
    top = json.loads(run.stdout)["top"]
    got = np.zeros(5)
    for entry in top:
        got[entry["index"]] = entry["probability"]
        assert entry["label"] == labels[entry["index"]], entry
    assert [e["index"] for e in top] == list(np.argsort(-expected)), f"ranking {top} vs NumPy {expected}"
    difference = np.abs(got - expected).max()
    assert difference <= TOLERANCE, f"classifier: gapnet {got} vs NumPy {expected} (difference {difference:.3g})"
    print(
        f"ok  Conv-Relu-GAP-Flatten-Gemm-Softmax classifier: gapnet classify of an image matches NumPy "
        f"within {difference:.2g}; the --test-data tests verify; top class '{top[0]['label']}'"
    )


def handmade_numeric_models(rng):
    """(name, model, input shape per sample, NumPy reference) for paths the node tests do not reach."""
    f32 = np.float32

    # A vector input: MatMul + Add (one dense), Relu, Dropout, Gemm with alpha and beta, opset-11 Softmax.
    w1, b1 = rng.randn(6, 5).astype(f32), rng.randn(5).astype(f32)
    w2, c2 = rng.randn(5, 3).astype(f32), rng.randn(1, 3).astype(f32)
    mlp = make_model(
        [
            helper.make_node("MatMul", ["x", "w1"], ["m"], name="mm"),
            helper.make_node("Add", ["b1", "m"], ["h"], name="bias"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Dropout", ["r"], ["d"], name="drop", ratio=0.3),
            helper.make_node("Gemm", ["d", "w2", "c2"], ["z"], name="fc", alpha=0.75, beta=0.5),
            helper.make_node("Softmax", ["z"], ["y"], name="sm"),
        ],
        ["N", 6],
        ["N", 3],
        {"w1": w1, "b1": b1, "w2": w2, "c2": c2},
        opset=11,
    )

    def mlp_reference(x):
        hidden = np.maximum(x.astype(np.float64) @ w1 + b1, 0)
        return np_softmax(0.75 * (hidden @ w2) + 0.5 * c2)

    # A feature map: grouped, dilated, strided SAME_UPPER Conv, BatchNormalization, Relu, MaxPool with
    # ceil_mode, AveragePool counting its padding, Reshape [0, -1], MatMul + Add. No softmax, so that
    # the logits themselves are compared (a saturated softmax would hide differences).
    conv_w, conv_b = rng.randn(4, 1, 3, 3).astype(f32), rng.randn(4).astype(f32)
    scale, shift = (rng.rand(4) + 0.5).astype(f32), rng.randn(4).astype(f32)
    mean, var = rng.randn(4).astype(f32), (rng.rand(4) + 0.2).astype(f32)
    # x 2x9x8 -> conv 4x5x8 (SAME_UPPER, strides [2,1]) -> maxpool 4x3x4 -> avgpool 4x4x4 -> 64 -> 3
    dense_w, dense_b = rng.randn(64, 3).astype(f32), rng.randn(1, 3).astype(f32)
    cnn = make_model(
        [
            helper.make_node(
                "Conv",
                ["x", "cw", "cb"],
                ["c"],
                name="conv",
                auto_pad="SAME_UPPER",
                group=2,
                dilations=[2, 1],
                strides=[2, 1],
            ),
            helper.make_node(
                "BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"], name="bn", epsilon=1e-3
            ),
            helper.make_node("Relu", ["bn"], ["r"], name="relu"),
            helper.make_node(
                "MaxPool",
                ["r"],
                ["p"],
                name="maxpool",
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 0, 0, 0],
                ceil_mode=1,
            ),
            helper.make_node(
                "AveragePool", ["p"], ["a"], name="avgpool", kernel_shape=[2, 2], pads=[1, 1, 1, 0], count_include_pad=1
            ),
            helper.make_node(
                "Constant", [], ["shape"], name="shape", value=numpy_helper.from_array(np.array([0, -1], np.int64))
            ),
            helper.make_node("Reshape", ["a", "shape"], ["v"], name="reshape"),
            helper.make_node("MatMul", ["v", "dw"], ["m"], name="mm"),
            helper.make_node("Add", ["m", "db"], ["y"], name="bias"),
        ],
        ["N", 2, 9, 8],
        ["N", 3],
        {
            "cw": conv_w,
            "cb": conv_b,
            "scale": scale,
            "shift": shift,
            "mean": mean,
            "var": var,
            "dw": dense_w,
            "db": dense_b,
        },
        opset=13,
    )

    def cnn_reference(x):
        # SAME_UPPER for 9x8, kernel 3x3 dilated [2,1] (extent 5x3), strides [2,1]: outputs ceil(9/2)=5 and 8,
        # total padding (5-1)*2+5-9 = 4 and (8-1)*1+3-8 = 2, split evenly: [2,1,2,1].
        c = np_conv(x, conv_w, conv_b, [2, 1], [2, 1, 2, 1], [2, 1], 2)
        bn = (c - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.astype(np.float64).reshape(1, -1, 1, 1) + 1e-3)
        r = np.maximum(bn * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1), 0)
        p = np_pool(r, [3, 3], [2, 2], [1, 0, 0, 0], True, "max")
        a = np_pool(p, [2, 2], [1, 1], [1, 1, 1, 0], False, "avg", count_include_pad=True)
        return a.reshape(len(x), -1) @ dense_w + dense_b

    # Softmax at opset 11 coerces [N,2,3,3] to [N,18]: one softmax over each sample (a flatten + softmax).
    coerced = make_model(
        [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)], ["N", 2, 3, 3], ["N", 2, 3, 3], {}, opset=11
    )

    return [
        ("mlp", mlp, [6], mlp_reference),
        ("cnn", cnn, [2, 9, 8], cnn_reference),
        ("softmax-opset11", coerced, [2, 3, 3], lambda x: np_softmax(x.reshape(len(x), -1).astype(np.float64))),
    ]


def graph_numeric_models(rng):
    """(name, model, input shape per sample, NumPy reference, expected layers) for graphs: a residual
    block with a squeeze-and-excitation gate, an inception-like block with concatenation and folded
    Pads, the element-wise activations at opset 6 (attributes), and 1x1 convolutions on pooled
    vectors. Expected layers are (type, name, what it reads), the reading as written in the file:
    "inputs" [...], "input" NAME, or "" for the layer before."""
    f32 = np.float32

    def dense(v, w, b=None):  # a 1x1 Conv on [N,C,1,1] held as a vector [N,C]
        return v @ w[:, :, 0, 0].T.astype(np.float64) + (0 if b is None else b)

    def hard_sigmoid(v, alpha, beta):
        return np.clip(alpha * v + beta, 0, 1)

    # Residual block with an SE gate (torchvision's MobileNetV3 order: the gate first in the Mul).
    w1, b1, w2 = (
        rng.randn(4, 4, 3, 3).astype(f32) * 0.3,
        rng.randn(4).astype(f32),
        rng.randn(4, 4, 3, 3).astype(f32) * 0.3,
    )
    wf1, bf1 = rng.randn(2, 4, 1, 1).astype(f32), rng.randn(2).astype(f32)
    wf2, bf2 = rng.randn(4, 2, 1, 1).astype(f32), rng.randn(4).astype(f32)
    wfc, bfc = rng.randn(3, 4).astype(f32), rng.randn(3).astype(f32)
    alpha = f32(1 / 6)
    residual = make_model(
        [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
            helper.make_node("Conv", ["r1", "w2"], ["c2"], name="c2", pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="se_pool"),
            helper.make_node("Conv", ["g", "wf1", "bf1"], ["f1"], name="se_fc1"),
            helper.make_node("Relu", ["f1"], ["a1"], name="se_relu"),
            helper.make_node("Conv", ["a1", "wf2", "bf2"], ["f2"], name="se_fc2"),
            helper.make_node("HardSigmoid", ["f2"], ["gate"], name="se_gate", alpha=float(alpha), beta=0.5),
            helper.make_node("Mul", ["gate", "c2"], ["m"], name="se_mul"),
            helper.make_node("Add", ["m", "r1"], ["s"], name="res"),
            helper.make_node("Relu", ["s"], ["o"], name="out_relu"),
            helper.make_node("ReduceMean", ["o"], ["p"], name="mean", axes=[2, 3], keepdims=0),
            helper.make_node("Gemm", ["p", "wfc", "bfc"], ["y"], name="fc", transB=1),
        ],
        ["N", 4, 6, 6],
        ["N", 3],
        {"w1": w1, "b1": b1, "w2": w2, "wf1": wf1, "bf1": bf1, "wf2": wf2, "bf2": bf2, "wfc": wfc, "bfc": bfc},
    )

    def residual_reference(x):
        r1 = np.maximum(np_conv(x, w1, b1, [1, 1], [1, 1, 1, 1], [1, 1], 1), 0)
        c2 = np_conv(r1, w2, None, [1, 1], [1, 1, 1, 1], [1, 1], 1)
        gate = hard_sigmoid(dense(np.maximum(dense(c2.mean(axis=(2, 3)), wf1, bf1), 0), wf2, bf2), alpha, 0.5)
        o = np.maximum(c2 * gate[:, :, None, None] + r1, 0)
        return o.mean(axis=(2, 3)) @ wfc.T.astype(np.float64) + bfc

    residual_layers = [
        ("conv2d", "c1", ""),
        ("relu", "r1", ""),
        ("conv2d", "c2", ""),
        ("global_avg_pool2d", "se_pool", ""),
        ("dense", "se_fc1", ""),
        ("relu", "se_relu", ""),
        ("dense", "se_fc2", ""),
        ("hard_sigmoid", "se_gate", ""),
        ("multiply", "se_mul", ["se_gate", "c2"]),
        ("add", "res", ["se_mul", "r1"]),
        ("relu", "out_relu", ""),
        ("global_avg_pool2d", "mean", ""),
        ("dense", "fc", ""),
    ]

    # Inception-like: branches of the input concatenated, Clip with constant bounds (opset 11), Pads
    # folded into a Conv and (PyTorch's AvgPool2d(padding=1) export) an AveragePool.
    wa, ba = rng.randn(2, 3, 1, 1).astype(f32), rng.randn(2).astype(f32)
    wb = rng.randn(3, 3, 3, 3).astype(f32) * 0.5
    wl, bl = rng.randn(8, 3).astype(f32), rng.randn(3).astype(f32)
    one_each_side = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)
    inception = make_model(
        [
            helper.make_node("Conv", ["x", "wa", "ba"], ["b1"], name="branch1"),
            helper.make_node("LeakyRelu", ["b1"], ["l1"], name="leaky", alpha=0.2),
            constant_node("pads", one_each_side),
            constant_node("zero", np.array(0.0, f32)),
            helper.make_node("Pad", ["x", "pads", "zero"], ["px"], name="pad_x"),
            helper.make_node("Conv", ["px", "wb"], ["b2"], name="branch2"),
            helper.make_node("MaxPool", ["x"], ["b3"], name="branch3", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Concat", ["l1", "b2", "b3"], ["cat"], name="cat", axis=1),
            constant_node("low", np.array(-1.0, f32)),
            constant_node("high", np.array(2.0, f32)),
            helper.make_node("Clip", ["cat", "low", "high"], ["cl"], name="clip"),
            helper.make_node("Pad", ["cl", "pads"], ["pc"], name="pad_pool"),
            helper.make_node("AveragePool", ["pc"], ["ap"], name="avg", kernel_shape=[3, 3], strides=[2, 2]),
            helper.make_node("GlobalMaxPool", ["ap"], ["gm"], name="gmax"),
            helper.make_node("Flatten", ["gm"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "wl", "bl"], ["y"], name="fc"),
        ],
        ["N", 3, 7, 7],
        ["N", 3],
        {"wa": wa, "ba": ba, "wb": wb, "wl": wl, "bl": bl},
        opset=11,
    )

    def inception_reference(x):
        b1 = np_conv(x, wa, ba, [1, 1], [0, 0, 0, 0], [1, 1], 1)
        l1 = np.where(b1 >= 0, b1, np.float64(f32(0.2)) * b1)
        b2 = np_conv(x, wb, None, [1, 1], [1, 1, 1, 1], [1, 1], 1)
        b3 = np_pool(x, [3, 3], [1, 1], [1, 1, 1, 1], False, "max")
        cl = np.clip(np.concatenate([l1, b2, b3], axis=1), -1, 2)
        ap = np_pool(np.pad(cl, ((0, 0), (0, 0), (1, 1), (1, 1))), [3, 3], [2, 2], [0, 0, 0, 0], False, "avg")
        return ap.max(axis=(2, 3)) @ wl.astype(np.float64) + bl

    inception_layers = [
        ("conv2d", "branch1", ""),
        ("leaky_relu", "leaky", ""),
        ("conv2d", "branch2", "input"),
        ("max_pool2d", "branch3", "input"),
        ("concat", "cat", ["leaky", "branch2", "branch3"]),
        ("clip", "clip", ""),
        ("avg_pool2d", "avg", ""),
        ("global_max_pool2d", "gmax", ""),
        ("flatten", "flat", ""),
        ("dense", "fc", ""),
    ]

    # The element-wise operators at opset 6, bounds and slopes as attributes (defaults where absent),
    # summed; SiLU as PyTorch exports it (Sigmoid, Mul of its input: one silu layer), and a Sigmoid
    # gating another tensor (two layers).
    wg, bg = rng.randn(3, 2).astype(f32), rng.randn(3).astype(f32)
    activations = make_model(
        [
            helper.make_node("Clip", ["x"], ["a"], name="clip", min=-0.5, max=0.75),
            helper.make_node("Clip", ["x"], ["a6"], name="relu6", min=0.0, max=6.0),
            helper.make_node("HardSigmoid", ["x"], ["b"], name="hsig"),
            helper.make_node("LeakyRelu", ["x"], ["c"], name="leaky"),
            helper.make_node("Tanh", ["x"], ["d"], name="tanh"),
            helper.make_node("Sum", ["a", "a6", "b", "c", "d"], ["s"], name="sum"),
            helper.make_node("Sigmoid", ["s"], ["e"], name="sigmoid"),
            helper.make_node("Mul", ["s", "e"], ["f"], name="silu"),
            helper.make_node("Sigmoid", ["d"], ["e2"], name="sigmoid2"),
            helper.make_node("Mul", ["a", "e2"], ["f2"], name="gate"),
            helper.make_node("Add", ["f", "f2"], ["t"], name="plus"),
            helper.make_node("GlobalAveragePool", ["t"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["h"], name="flat"),
            helper.make_node("Gemm", ["h", "wg", "bg"], ["y"], name="fc", transB=1, broadcast=1),
        ],
        ["N", 2, 4, 4],
        ["N", 3],
        {"wg": wg, "bg": bg},
        opset=6,
    )

    def activations_reference(x):
        x = x.astype(np.float64)
        s = (
            np.clip(x, -0.5, 0.75)
            + np.clip(x, 0, 6)
            + hard_sigmoid(x, np.float64(f32(0.2)), 0.5)
            + np.where(x >= 0, x, np.float64(f32(0.01)) * x)
            + np.tanh(x)
        )
        t = s / (1 + np.exp(-s)) + np.clip(x, -0.5, 0.75) / (1 + np.exp(-np.tanh(x)))
        return t.mean(axis=(2, 3)) @ wg.T.astype(np.float64) + bg

    activations_layers = [
        ("clip", "clip", ""),
        ("relu6", "relu6", "input"),
        ("hard_sigmoid", "hsig", "input"),
        ("leaky_relu", "leaky", "input"),
        ("tanh", "tanh", "input"),
        ("add", "sum", ["clip", "relu6", "hsig", "leaky", "tanh"]),
        ("silu", "silu", ""),
        ("sigmoid", "sigmoid2", "tanh"),
        ("multiply", "gate", ["clip", "sigmoid2"]),
        ("add", "plus", ["silu", "gate"]),
        ("global_avg_pool2d", "gap", ""),
        ("flatten", "flat", ""),
        ("dense", "fc", ""),
    ]

    # Pad folded into a strided Conv with pads of its own, HardSwish (opset 14), ReduceMean keepdims=1,
    # 1x1 Convs on the pooled vectors (one weight reached through Identity) as dense layers, a Mul and
    # a Concat of vectors; dead nodes (an unsupported Sin among them) are pruned.
    wc, bc = rng.randn(4, 3, 3, 3).astype(f32) * 0.4, rng.randn(4).astype(f32)
    wv, bv = rng.randn(6, 4, 1, 1).astype(f32), rng.randn(6).astype(f32)
    wv2 = rng.randn(2, 4, 1, 1).astype(f32)
    vectors = make_model(
        [
            constant_node("pads", np.array([0, 0, 2, 0, 0, 0, 1, 3], np.int64)),
            helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
            helper.make_node("Conv", ["p", "wc", "bc"], ["c"], name="conv", strides=[2, 2], pads=[1, 0, 0, 1]),
            helper.make_node("Sin", ["x"], ["dead1"], name="dead_sin"),
            helper.make_node("Relu", ["c"], ["dead2"], name="dead_relu"),
            helper.make_node("HardSwish", ["c"], ["h"], name="hswish"),
            helper.make_node("ReduceMean", ["h"], ["g"], name="mean", axes=[-1, -2], keepdims=1),
            helper.make_node("Identity", ["wv_stored"], ["wv"], name="shared_weight"),
            helper.make_node("Conv", ["g", "wv", "bv"], ["v1"], name="fc1"),
            helper.make_node("Tanh", ["v1"], ["t"], name="tanh"),
            helper.make_node("Mul", ["t", "v1"], ["mt"], name="mul"),
            helper.make_node("GlobalMaxPool", ["h"], ["g2"], name="gmax"),
            helper.make_node("Conv", ["g2", "wv2"], ["v2"], name="fc2"),
            helper.make_node("Concat", ["mt", "v2"], ["cat"], name="cat", axis=1),
            helper.make_node("Flatten", ["cat"], ["y"], name="flat"),
        ],
        ["N", 3, 5, 5],
        ["N", 8],
        {"wc": wc, "bc": bc, "wv_stored": wv, "bv": bv, "wv2": wv2},
        opset=14,
    )

    def vectors_reference(x):
        xp = np.pad(x, ((0, 0), (0, 0), (2, 1), (0, 3)))
        c = np_conv(xp, wc, bc, [2, 2], [1, 0, 0, 1], [1, 1], 1)
        h = c * np.clip(c / 6 + 0.5, 0, 1)
        v1 = dense(h.mean(axis=(2, 3)), wv, bv)
        return np.concatenate([np.tanh(v1) * v1, dense(h.max(axis=(2, 3)), wv2)], axis=1)

    vectors_layers = [
        ("conv2d", "conv", ""),
        ("hard_swish", "hswish", ""),
        ("global_avg_pool2d", "mean", ""),
        ("dense", "fc1", ""),
        ("tanh", "tanh", ""),
        ("multiply", "mul", ["tanh", "fc1"]),
        ("global_max_pool2d", "gmax", "hswish"),
        ("dense", "fc2", ""),
        ("concat", "cat", ["mul", "fc2"]),
        ("flatten", "flat", ""),
    ]

    # A 1x1 image: the input [4,1,1] is a feature map, its global pool a vector; combining the two
    # flattens the map (once, for all three readers).
    mixed = make_model(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
            helper.make_node("Add", ["x", "g"], ["a"], name="add"),
            helper.make_node("Mul", ["g", "x"], ["m"], name="mul"),
            helper.make_node("Concat", ["a", "m", "x"], ["cat"], name="cat", axis=1),
            helper.make_node("Flatten", ["cat"], ["y"], name="flat"),
        ],
        ["N", 4, 1, 1],
        ["N", 12],
        {},
        opset=13,
    )

    def mixed_reference(x):
        v = x.reshape(len(x), -1).astype(np.float64)
        return np.concatenate([v + v, v * v, v], axis=1)

    mixed_layers = [
        ("global_avg_pool2d", "gap", ""),
        ("flatten", "input_vector", "input"),
        ("add", "add", ["input_vector", "gap"]),
        ("multiply", "mul", ["gap", "input_vector"]),
        ("concat", "cat", ["add", "mul", "input_vector"]),
        ("flatten", "flat", ""),
    ]

    return [
        ("residual-se", residual, [4, 6, 6], residual_reference, residual_layers),
        ("inception", inception, [3, 7, 7], inception_reference, inception_layers),
        ("activations-opset6", activations, [2, 4, 4], activations_reference, activations_layers),
        ("pad-conv-vectors", vectors, [3, 5, 5], vectors_reference, vectors_layers),
        ("mixed-holding", mixed, [4, 1, 1], mixed_reference, mixed_layers),
    ]


def layers_read(doc):
    """(type, name, what it reads) per layer, as graph_numeric_models writes the expected layers."""
    return [(layer["type"], layer["name"], layer.get("inputs", layer.get("input", ""))) for layer in doc["layers"]]


def check_handmade_numerics(gapnet, tmp):
    rng = np.random.RandomState(3)
    models = [(*m, None) for m in handmade_numeric_models(rng)] + graph_numeric_models(np.random.RandomState(4))
    for name, model, shape, reference, expected_layers in models:
        conversion = onnx_to_gapnet.convert(model)
        if len(conversion.output_shape) != 1:
            conversion.layers.append({"type": "flatten", "name": "test_flatten"})
            conversion.output_shape = [int(np.prod(conversion.output_shape))]
        doc = onnx_to_gapnet.document(conversion, color="none", name=name)
        if expected_layers is not None:
            assert layers_read(doc) == expected_layers, f"{name}: layers {layers_read(doc)}"
        x = rng.randn(4, *shape).astype(np.float32) * 2
        expected = reference(x).reshape(len(x), *conversion.onnx_output_shape).astype(np.float32)
        doc["tests"] = onnx_to_gapnet.test_cases(conversion, x, expected)
        path = os.path.join(tmp, f"handmade-{name}.json")
        write_model(doc, path)
        passed, line = verify(gapnet, path)
        assert passed, f"{name}: gapnet verify fails: {line}"
        print(f"ok  hand-made '{name}' ({' '.join(l['type'] for l in doc['layers'])}): {line.split(': ', 1)[1]}")

    # Padding folded from a Pad: the Conv's own pads plus the Pad's, per side.
    vectors = [m[1] for m in models if m[0] == "pad-conv-vectors"][0]
    conv = [layer for layer in onnx_to_gapnet.convert(vectors).layers if layer["name"] == "conv"][0]
    assert conv["padding"] == [3, 0, 1, 4], conv["padding"]
    # ONNX's AveragePool default is count_include_pad=0, gapnet's is true: it must always be written.
    pool = make_model(
        [helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        ["N", 1, 5, 5],
        ["N", 1, 5, 5],
        {},
    )
    layer = onnx_to_gapnet.convert(pool).layers[0]
    assert layer["count_include_pad"] is False and layer["stride"] == [1, 1], layer
    print(
        "ok  AveragePool writes count_include_pad=false and stride [1,1] explicitly (ONNX's defaults); "
        "a Pad before a Conv adds to its padding per side"
    )


def check_hostile_files(gapnet, tmp):
    """Damaged and hostile files on the command line: each is refused with exit status 1 and exactly
    one stderr line naming the file (never a Python traceback), and no output file is written."""
    w = np.ones((2, 1, 3, 3), np.float32)

    def conv(nodes=None, weight=w, **attrs):
        return make_model(
            nodes or [helper.make_node("Conv", ["x", "w"], ["y"], name="c", **attrs)],
            ["N", 1, 6, 6],
            ["N", 2, 4, 4],
            {"w": weight},
            check=False,
        )

    good = conv().SerializeToString()
    cycle = make_model(
        [
            helper.make_node("Relu", ["b"], ["a"], name="n1"),
            helper.make_node("Relu", ["a"], ["b"], name="n2"),
            helper.make_node("Conv", ["a", "w"], ["y"], name="c"),
        ],
        ["N", 1, 6, 6],
        ["N", 2, 4, 4],
        {"w": w},
        check=False,
    )
    cases = [  # (file name, bytes or a model, the start of the message after "FILE: ")
        ("truncated.onnx", good[: len(good) // 2], "cannot read the ONNX file"),
        ("garbage.onnx", b"\x00\x01 not a protobuf \xff", "cannot read the ONNX file"),
        ("empty.onnx", b"", "the model imports no version of the standard ONNX operator set"),
        ("weight-shape.onnx", conv(weight=np.ones((2, 1, 3), np.float32)), "node 'c' (Conv): weight of shape [2,1,3]"),
        (
            "kernel-mismatch.onnx",
            conv(kernel_shape=[5, 5]),
            "node 'c' (Conv): kernel_shape [5,5] differs from the weight's [3,3]",
        ),
        ("missing-weight.onnx", conv([helper.make_node("Conv", ["x"], ["y"], name="c")]), "node 'c' (Conv): "),
        (
            "unknown-operator.onnx",
            conv(
                [
                    helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
                    helper.make_node("Gelu", ["c"], ["y"], name="g"),
                ]
            ),
            "node 'g' (Gelu): operator not supported by gapnet",
        ),
        ("cycle.onnx", cycle, "node 'n1' (Relu): is on a cycle"),
        ("float-pads.onnx", conv(pads=[1.5, 1.5, 1.5, 1.5]), "node 'c' (Conv): "),
        ("no-output.onnx", conv([helper.make_node("Relu", ["x"], ["r"], name="r")]), ""),
    ]
    for name, content, expected in cases:
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.SerializeToString())
        out = os.path.join(tmp, name + ".json")
        run = run_converter(path, out)
        lines = run.stderr.splitlines()
        assert run.returncode == 1, f"{name}: exit status {run.returncode}, expected 1: {run.stderr}"
        assert len(lines) == 1 and lines[0].startswith(
            f"onnx_to_gapnet: error: {path}: {expected}"
        ), f"{name}: stderr {run.stderr!r} is not one line starting 'onnx_to_gapnet: error: {path}: {expected}'"
        assert not os.path.exists(out), f"{name}: a file was written"
    missing = os.path.join(tmp, "no-such-file.onnx")
    run = run_converter(missing, os.path.join(tmp, "x.json"))
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1 and missing in run.stderr, run.stderr
    print(f"ok  {len(cases) + 1} damaged or hostile files refused with one line naming the file")


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/gapnet")
    gapnet = sys.argv[1]
    if not os.access(gapnet, os.X_OK):
        sys.exit(f"FAIL: {gapnet} is not an executable gapnet program")
    if not os.path.isdir(NODE_TESTS):
        sys.exit(f"FAIL: ONNX's node tests are missing ({NODE_TESTS}): apt-get install libonnx-testdata")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for check in (
            check_refusals,
            check_hostile_files,
            check_classifier,
            check_handmade_numerics,
            check_conformance,
        ):
            try:
                check(gapnet, tmp)
            except AssertionError as e:
                print(f"FAIL {check.__name__}: {e}")
                failures += 1
            except Exception as e:  # a crash in one check must not hide the others' results
                print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
                failures += 1
    if failures:
        sys.exit(f"FAIL: {failures} check(s) failed")
    print("all ONNX checks passed")


if __name__ == "__main__":
    main()
