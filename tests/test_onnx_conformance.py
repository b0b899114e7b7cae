#!/usr/bin/python3
"""ONNX import, end to end: tools/onnx_to_gapnet.py against ONNX's own backend test suite, plus a few
hand-made graphs.

    /usr/bin/python3 tests/test_onnx_conformance.py PATH/TO/gapnet

1. Conformance. Every case in ONNX's node tests (Debian's libonnx-testdata, data/node/test_*) whose
   operators are all ones the converter supports is converted, its weights (W, B, scale, mean, var, ...
   given there as extra graph inputs) bound as constants from the case's input_*.pb files. The data
   set's input and expected output, split over the batch dimension N (one test per sample), go into
   the file's "tests"; a "flatten" is appended when the output is a feature map (C-H-W order, so the
   values are unchanged); then `gapnet verify --tolerance 1e-5` must pass. A case the converter cannot
   honour must be refused with its own one-line message, never by a crash. A table lists every case
   as pass or refused: reason. The run fails if any converted case fails verification, or if any case
   in EXPECTED_PASSING does not pass (a regression cannot silently turn a pass into a refusal).
   All cases pass at the default tolerance 1e-5 (|v - r| <= 1e-5 * max(1, |r|)); none needs more.

2. Hand-made graphs (onnx.helper): unsupported operators and attribute values are refused with the
   node named (also through the command line, exit status 1, one line); a Conv -> Relu ->
   GlobalAveragePool -> Flatten -> Gemm -> Softmax classifier converts and `gapnet classify` gives the
   probabilities NumPy computes for a real image file; graphs using the paths the node tests do not
   reach (MatMul + Add as one dense, Gemm alpha/beta folding, Reshape to a vector, grouped dilated
   SAME_UPPER convolution, ceil_mode, count_include_pad, opset-11 softmax of a feature map, a vector
   input) must match NumPy references under `gapnet verify`.

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
    sys.exit(f"FAIL: {e}: install Debian's python3-onnx and python3-numpy "
             "(apt-get install python3-onnx python3-numpy, or make test)")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import onnx_to_gapnet  # noqa: E402

# The operators the converter documents (docs/onnx.md); a case is tried when all its nodes are these.
OPERATORS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
             "GlobalMaxPool", "Flatten", "Gemm", "MatMul", "Add", "Softmax", "Reshape", "Dropout", "Identity"}

# Committed result: every one of these must convert and verify. More passing cases only print a note.
EXPECTED_PASSING = [
    "test_averagepool_2d_ceil", "test_averagepool_2d_default", "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_pads",
    "test_averagepool_2d_precomputed_pads_count_include_pad", "test_averagepool_2d_precomputed_same_upper",
    "test_averagepool_2d_precomputed_strides", "test_averagepool_2d_same_lower", "test_averagepool_2d_same_upper",
    "test_averagepool_2d_strides",
    "test_basic_conv_with_padding", "test_basic_conv_without_padding", "test_conv_with_autopad_same",
    "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_strides_no_padding",
    "test_conv_with_strides_padding",
    "test_batchnorm_epsilon", "test_batchnorm_example",
    "test_flatten_axis1", "test_flatten_default_axis", "test_flatten_negative_axis3",
    "test_gemm_alpha", "test_gemm_beta", "test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias", "test_gemm_default_zero_bias",
    "test_gemm_transposeB",
    "test_globalaveragepool", "test_globalaveragepool_precomputed", "test_globalmaxpool",
    "test_globalmaxpool_precomputed",
    "test_identity", "test_matmul_2d",
    "test_maxpool_2d_ceil", "test_maxpool_2d_default", "test_maxpool_2d_pads", "test_maxpool_2d_precomputed_pads",
    "test_maxpool_2d_precomputed_same_upper", "test_maxpool_2d_precomputed_strides", "test_maxpool_2d_same_lower",
    "test_maxpool_2d_same_upper", "test_maxpool_2d_strides",
    "test_softmax_example", "test_softmax_large_number",
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

def conformance_case(gapnet, tmp, case):
    """'pass', or 'refused: REASON'; raises AssertionError on a verification failure or a crash."""
    folder = os.path.join(NODE_TESTS, case)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    data_sets = sorted(d for d in os.listdir(folder) if d.startswith("test_data_set_"))
    assert data_sets, f"{case}: no test_data_set_* folder"
    for data_set in data_sets:
        where = os.path.join(folder, data_set)
        try:
            # Input 0 is the data; the others (weights, bias, statistics, shapes) become constants.
            constants = {value.name: read_pb(os.path.join(where, f"input_{i}.pb"))
                         for i, value in enumerate(model.graph.input) if i > 0}
            conversion = onnx_to_gapnet.convert(model, constants)
            if len(conversion.output_shape) != 1:
                conversion.layers.append({"type": "flatten", "name": "conformance_flatten"})
                conversion.output_shape = [int(np.prod(conversion.output_shape))]
            doc = onnx_to_gapnet.document(conversion, color="none", name=case)
            doc["tests"] = onnx_to_gapnet.test_cases(conversion, read_pb(os.path.join(where, "input_0.pb")),
                                                     read_pb(os.path.join(where, "output_0.pb")))
        except onnx_to_gapnet.ConversionError as e:
            assert "\n" not in str(e), f"{case}: the refusal is not one line: {e!r}"
            return f"refused: {e}"
        except Exception as e:  # anything else is a converter bug, not a refusal
            raise AssertionError(f"{case}: the converter crashed: {type(e).__name__}: {e}")
        path = os.path.join(tmp, f"{case}-{data_set}.json")
        write_model(doc, path)
        passed, line = verify(gapnet, path)
        assert passed, f"{case}: converted, but gapnet verify fails: {line}"
    return "pass"


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
    passing = {c for c, r in results.items() if r == "pass"}
    print(f"{len(passing)} of {len(cases)} node tests with supported operators convert and verify "
          f"(tolerance {TOLERANCE:g}); {sum(r.startswith('refused') for r in results.values())} refused")

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


def make_model(nodes, input_shape, output_shape, initializers, opset=13, extra_inputs=(), extra_outputs=()):
    graph = helper.make_graph(
        nodes, "handmade", [tensor_input("x", input_shape), *extra_inputs],
        [tensor_input("y", output_shape), *extra_outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="handmade")
    onnx.checker.check_model(model)  # the test graphs themselves must be valid ONNX
    return model


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
        xs = x[:, g * c_group:(g + 1) * c_group]
        for i in range(kh):
            for j in range(kw):
                y0, x0 = i * dilations[0], j * dilations[1]
                patch = xs[:, :, y0:y0 + strides[0] * (oh - 1) + 1:strides[0],
                           x0:x0 + strides[1] * (ow - 1) + 1:strides[1]]
                out[:, g * m_group:(g + 1) * m_group] += np.einsum("nchw,mc->nmhw", patch,
                                                                   w[g * m_group:(g + 1) * m_group, :, i, j])
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
            window = x[:, :, y0:min(end[0], h), x0:min(end[1], w)].astype(np.float64)
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
    sigmoid = make_model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
                          helper.make_node("Sigmoid", ["c"], ["y"], name="act")],
                         ["N", 1, 6, 6], ["N", 2, 6, 6], {"w": w})
    dilated = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                                           dilations=[2, 2])], ["N", 1, 6, 6], ["N", 1, 4, 4], {})
    for model, name, expected in (
            (sigmoid, "sigmoid.onnx", "node 'act' (Sigmoid): operator not supported by gapnet (supported: Conv, "),
            (dilated, "dilated.onnx", "node 'pool' (MaxPool): dilations [2,2] are not supported")):
        path = os.path.join(tmp, name)
        onnx.save(model, path)
        run = run_converter(path, os.path.join(tmp, name + ".json"))
        assert run.returncode == 1, f"{name}: exit status {run.returncode}, expected 1: {run.stderr}"
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"onnx_to_gapnet: error: {path}: {expected}"), \
            f"{name}: stderr {run.stderr!r} is not the one line 'onnx_to_gapnet: error: {path}: {expected}...'"
        assert not os.path.exists(os.path.join(tmp, name + ".json")), f"{name}: a file was written"

    vector = ["N", 4]
    b = rng.randn(4, 3).astype(np.float32)
    cases = [
        (make_model([helper.make_node("Gemm", ["x", "b"], ["y"], name="fc", transA=1)], [4, 3], [3, 3], {"b": b}),
         "node 'fc' (Gemm): transA=1 is not supported"),
        (make_model([helper.make_node("Gemm", ["x", "b", "c"], ["y"], name="fc")], [2, 4], [2, 3],
                    {"b": b, "c": np.ones((2, 3), np.float32)}),
         "node 'fc' (Gemm): C of shape [2,3] is not one bias for every sample"),
        (make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)], ["N", 2, 3, 3],
                    ["N", 2, 3, 3], {}, opset=13),
         "node 'sm' (Softmax): axis 1 on input [N,2,3,3] at opset 13 is not a softmax over each sample's whole "
         "feature vector"),
        (make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], vector, vector, {}, opset=11),
         "node 'sm' (Softmax): axis 0 is the batch"),
        (make_model([helper.make_node("Relu", ["x"], ["r"], name="r1"),
                     helper.make_node("Conv", ["r", "w"], ["c"], name="c1", pads=[1, 1, 1, 1]),
                     helper.make_node("Add", ["r", "c"], ["y"], name="residual")],
                    ["N", 1, 6, 6], ["N", 2, 6, 6], {"w": w}),
         "node 'c1' (Conv): tensor 'r' is used 2 times (by several nodes or also as a graph output): "
         "the graph is not a chain"),
        (make_model([helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], strides=[2, 2],
                                      pads=[0, 0, 1, 1], ceil_mode=1)], ["N", 1, 4, 4], ["N", 1, 3, 3], {}),
         "node 'p' (MaxPool): ceil_mode=1: ONNX's 3 outputs along the height include a window starting in the "
         "padding"),
        (make_model([helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[2, 2],
                                      pads=[2, 2, 2, 2])], ["N", 1, 4, 4], ["N", 1, 7, 7], {}),
         "node 'p' (AveragePool): pads [2,2,2,2] must each be smaller than the kernel [2,2]"),
        (make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="c")], ["N", 1, 6, 6], ["N", 2, 4, 4], {},
                    extra_inputs=[tensor_input("W", [2, 1, 3, 3])]),
         "the graph needs exactly one data input, it has 2 ('x', 'W')"),
        (make_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], ["N", 2, 3, 3], ["N", 2, 9],
                    {"s": np.array([0, 2, 9], np.int64)}),
         "node 'rs' (Reshape): shape [0,2,9] on input [N,2,3,3] is not supported: only a reshape to a flat "
         "vector per sample, [N,18]"),
        (make_model([helper.make_node("Relu", ["x"], ["r"], name="r"),
                     helper.make_node("Add", ["r", "c"], ["y"], name="plus")], vector, vector,
                    {"c": np.ones(4, np.float32)}),
         "node 'plus' (Add): Add is supported only as the bias of the MatMul right before it"),
        (make_model([helper.make_node("Dropout", ["x", "ratio", "training"], ["y"], name="drop")], vector, vector,
                    {"ratio": np.array(0.5, np.float32), "training": np.array(True)}),
         "node 'drop' (Dropout): training_mode is true"),
        (make_model([helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop")], vector, vector, {},
                    extra_outputs=[helper.make_tensor_value_info("mask", TensorProto.BOOL, vector)]),
         "node 'drop' (Dropout): its output 2 ('mask') is used; only the first output is supported"),
        (make_model([helper.make_node("BatchNormalization", ["x", "s", "s", "s", "s"], ["y"], name="bn")],
                    vector, vector, {"s": np.ones(4, np.float32)}),
         "node 'bn' (BatchNormalization): needs a 4-D [N,C,H,W] input, got [N,4]"),
        (make_model([helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
                     helper.make_node("Conv", ["g", "w"], ["y"], name="head")],
                    ["N", 1, 6, 6], ["N", 2, 1, 1], {"w": np.ones((2, 1, 1, 1), np.float32)}),
         "node 'head' (Conv): its input [N,1,1,1] comes after a global pool or flatten, which gapnet holds as "
         "a vector"),
    ]
    for model, message in cases:
        expect_refusal(model, message)
    print(f"ok  {len(cases) + 2} unsupported graphs refused, naming the node and the reason "
          "(2 through the command line: exit status 1, one line)")


def classifier_model(rng):
    """Conv(1->4, 3x3, pads 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(transB=1) -> Softmax."""
    weights = {"conv_w": rng.randn(4, 1, 3, 3).astype(np.float32), "conv_b": rng.randn(4).astype(np.float32),
               "fc_w": rng.randn(5, 4).astype(np.float32) * 0.5, "fc_b": rng.randn(5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
             helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1)]
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
    run = run_converter(onnx_path, json_path, "--labels", labels_path, "--color", "grayscale",
                        "--mean", str(mean), "--std", str(std), "--test-data", data_dir)
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
    run = subprocess.run([gapnet, "classify", "--model", json_path, "--top", "5", "--json", image_path],
                         capture_output=True, text=True)
    assert run.returncode == 0, f"classifier: gapnet classify failed: {run.stderr}"
    top = json.loads(run.stdout)["top"]
    got = np.zeros(5)
    for entry in top:
        got[entry["index"]] = entry["probability"]
        assert entry["label"] == labels[entry["index"]], entry
    assert [e["index"] for e in top] == list(np.argsort(-expected)), f"ranking {top} vs NumPy {expected}"
    difference = np.abs(got - expected).max()
    assert difference <= TOLERANCE, f"classifier: gapnet {got} vs NumPy {expected} (difference {difference:.3g})"
    print(f"ok  Conv-Relu-GAP-Flatten-Gemm-Softmax classifier: gapnet classify of an image matches NumPy "
          f"within {difference:.2g}; the --test-data tests verify; top class '{top[0]['label']}'")


def handmade_numeric_models(rng):
    """(name, model, input shape per sample, NumPy reference) for paths the node tests do not reach."""
    f32 = np.float32

    # A vector input: MatMul + Add (one dense), Relu, Dropout, Gemm with alpha and beta, opset-11 Softmax.
    w1, b1 = rng.randn(6, 5).astype(f32), rng.randn(5).astype(f32)
    w2, c2 = rng.randn(5, 3).astype(f32), rng.randn(1, 3).astype(f32)
    mlp = make_model([helper.make_node("MatMul", ["x", "w1"], ["m"], name="mm"),
                      helper.make_node("Add", ["b1", "m"], ["h"], name="bias"),
                      helper.make_node("Relu", ["h"], ["r"], name="relu"),
                      helper.make_node("Dropout", ["r"], ["d"], name="drop", ratio=0.3),
                      helper.make_node("Gemm", ["d", "w2", "c2"], ["z"], name="fc", alpha=0.75, beta=0.5),
                      helper.make_node("Softmax", ["z"], ["y"], name="sm")],
                     ["N", 6], ["N", 3], {"w1": w1, "b1": b1, "w2": w2, "c2": c2}, opset=11)

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
    cnn = make_model([helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv", auto_pad="SAME_UPPER",
                                       group=2, dilations=[2, 1], strides=[2, 1]),
                      helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"],
                                       name="bn", epsilon=1e-3),
                      helper.make_node("Relu", ["bn"], ["r"], name="relu"),
                      helper.make_node("MaxPool", ["r"], ["p"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2],
                                       pads=[1, 0, 0, 0], ceil_mode=1),
                      helper.make_node("AveragePool", ["p"], ["a"], name="avgpool", kernel_shape=[2, 2],
                                       pads=[1, 1, 1, 0], count_include_pad=1),
                      helper.make_node("Constant", [], ["shape"], name="shape",
                                       value=numpy_helper.from_array(np.array([0, -1], np.int64))),
                      helper.make_node("Reshape", ["a", "shape"], ["v"], name="reshape"),
                      helper.make_node("MatMul", ["v", "dw"], ["m"], name="mm"),
                      helper.make_node("Add", ["m", "db"], ["y"], name="bias")],
                     ["N", 2, 9, 8], ["N", 3],
                     {"cw": conv_w, "cb": conv_b, "scale": scale, "shift": shift, "mean": mean, "var": var,
                      "dw": dense_w, "db": dense_b}, opset=13)

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
    coerced = make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)],
                         ["N", 2, 3, 3], ["N", 2, 3, 3], {}, opset=11)

    return [("mlp", mlp, [6], mlp_reference), ("cnn", cnn, [2, 9, 8], cnn_reference),
            ("softmax-opset11", coerced, [2, 3, 3], lambda x: np_softmax(x.reshape(len(x), -1).astype(np.float64)))]


def check_handmade_numerics(gapnet, tmp):
    rng = np.random.RandomState(3)
    for name, model, shape, reference in handmade_numeric_models(rng):
        conversion = onnx_to_gapnet.convert(model)
        if len(conversion.output_shape) != 1:
            conversion.layers.append({"type": "flatten", "name": "test_flatten"})
            conversion.output_shape = [int(np.prod(conversion.output_shape))]
        doc = onnx_to_gapnet.document(conversion, color="none", name=name)
        x = rng.randn(4, *shape).astype(np.float32) * 2
        expected = reference(x).reshape(len(x), *conversion.onnx_output_shape).astype(np.float32)
        doc["tests"] = onnx_to_gapnet.test_cases(conversion, x, expected)
        path = os.path.join(tmp, f"handmade-{name}.json")
        write_model(doc, path)
        passed, line = verify(gapnet, path)
        assert passed, f"{name}: gapnet verify fails: {line}"
        print(f"ok  hand-made '{name}' ({' '.join(l['type'] for l in doc['layers'])}): {line.split(': ', 1)[1]}")

    # ONNX's AveragePool default is count_include_pad=0, gapnet's is true: it must always be written.
    pool = make_model([helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[3, 3],
                                        pads=[1, 1, 1, 1])], ["N", 1, 5, 5], ["N", 1, 5, 5], {})
    layer = onnx_to_gapnet.convert(pool).layers[0]
    assert layer["count_include_pad"] is False and layer["stride"] == [1, 1], layer
    print("ok  AveragePool writes count_include_pad=false and stride [1,1] explicitly (ONNX's defaults)")


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
        for check in (check_refusals, check_classifier, check_handmade_numerics, check_conformance):
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
