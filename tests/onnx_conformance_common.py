"""What the parts of tests/test_onnx_conformance.py share: the paths and tolerance, reading and writing
files, `gapnet verify`, and the helpers that build hand-made ONNX graphs (onnx.helper) and their
NumPy references (convolution, pooling, softmax)."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTER = os.path.join(ROOT, "tools", "onnx_to_gapnet.py")
NODE_TESTS = "/usr/share/libonnx-testdata/data/node"
TOLERANCE = 1e-5


sys.path.insert(0, os.path.join(ROOT, "tools"))


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
