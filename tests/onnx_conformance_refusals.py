"""Refusals in tests/test_onnx_conformance.py: unsupported operators, attributes and graph structures
refused with the node named, and damaged or hostile files refused on the command line with one line."""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnx_conformance_common import constant_node, make_model, run_converter, tensor_input
import onnx_to_gapnet  # noqa: E402


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
