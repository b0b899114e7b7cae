"""Part 1 of tests/test_onnx_conformance.py: ONNX's own node tests (libonnx-testdata), each converted
(lifted to 4-D where that changes no value) and verified, against the committed EXPECTED_PASSING."""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_conformance_common import NODE_TESTS, TOLERANCE, read_pb, verify, write_model
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
