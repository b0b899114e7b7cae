"""The operator conversions of tools/onnx_to_gapnet.py: one method per ONNX operator (op_Conv, op_Gemm,
...) and the helpers they share, as the Operators mixin of the graph walk (tools/onnx_graph.py's
_Converter, whose state they read: self.values, self.constants, self.layers). Each method reads every
attribute of its node, refuses by name what gapnet cannot reproduce, and returns the _Value of the
node's output.
"""
import math
import operator
from dataclasses import dataclass

import numpy as np

from gapnet_file import tensor as _tensor


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


def _ceil_div(a, b):
    return -(-a // b)


def _per_sample(shape):
    """A per-sample shape as the messages show a tensor: [N,3,4,5]."""
    return _show(["N", *shape])


def _gapnet_window_count(size, before, after, extent, stride, ceil_mode):
    """Output positions along one axis as gapnet computes them (engine/layers/window2d.cpp): floor or
    ceil, and with ceil_mode a last window starting in the bottom/right padding is dropped (PyTorch's
    rule)."""
    padded = size + before + after
    count = (padded - extent + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (count - 1) * stride >= size + before:
        count -= 1
    return count


class Operators:
    """The conversions of the supported operators, mixed into the graph walk's _Converter."""

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
