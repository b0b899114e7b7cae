"""Hand-made graphs of tests/test_onnx_conformance.py checked against NumPy: a classifier through
`gapnet classify`, and the paths and graphs the node tests do not reach under `gapnet verify`."""

import json
import os
import subprocess

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnx_conformance_common import (
    TOLERANCE,
    constant_node,
    make_model,
    np_conv,
    np_pool,
    np_softmax,
    run_converter,
    verify,
    write_model,
)
import onnx_to_gapnet  # noqa: E402


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
