"""The Keras layer conversions of tools/keras_to_gapnet.py: a parsed config's layers (tools/keras_config.py)
become gapnet layers, one op_<ClassName> method per Keras layer class. Nothing here reads a file: the
converter is given a "Keras file" object with `config`, `keras_major`, `keras_version`, `backend` and
`weights(layers)` (an object whose get(layer, [(role, shape, names)]) returns the arrays by role), so
that the HDF5/.keras reader (tools/keras_files.py) and the TF.js layers-model importer share it.

Every key of every layer's config is read and a value gapnet cannot reproduce is refused by name
(the rule in tools/keras_to_gapnet.py).

Channels-last to channels-first: Keras holds feature maps as H x W x C, gapnet as C x H x W.
Kernels are transposed ([kh,kw,in,out] -> [out,in,kh,kw]); a depthwise kernel [kh,kw,in,mult]
becomes [in*mult,1,kh,kw] with output channel c*mult+m, TensorFlow's order. A Flatten of an H x W x C
map yields its values in H-W-C order where gapnet's flatten yields C-H-W, so the converter tracks, for
every vector, which Keras position each gapnet position holds, and permutes the weight columns of the
Dense layer that reads it (the classic silent error of hand conversions: every shape checks, every
answer is wrong). TensorFlow's `same` padding puts the odd pixel at the bottom/right; it becomes
gapnet's per-side padding [top, left, bottom, right]; `same` average pooling divides by the real
pixels only (count_include_pad false).
"""
import json
from dataclasses import dataclass

import numpy as np

from gapnet_file import ConversionError, tensor as _tensor
from keras_config import KNOWN_KEYS, SUPPORTED, Config, _is_int, _show, parse_graph, topological_order

# ---- small helpers ---------------------------------------------------------------------------------


def _same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's `same`: the output has ceil(size/stride) positions; the padding that needs is
    split with the odd pixel AFTER (bottom/right). Returns (before, after, output size)."""
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2, out


def _valid_size(size, kernel, stride, dilation=1):
    effective = dilation * (kernel - 1) + 1
    if effective > size:
        return None
    return (size - effective) // stride + 1


# ---- what flows along the edges ---------------------------------------------------------------------------


@dataclass
class Value:
    """A Keras tensor as gapnet holds it: the gapnet layer producing it ("input" for the model input),
    the Keras per-sample shape ([H, W, C] or [F]), and for vectors `order`: gapnet position i holds
    Keras element order[i] (None: the same order). `pad` is a ZeroPadding2D waiting for its
    convolution: [top, bottom, left, right] of zeros around the map (the map shape excludes it)."""

    producer: str
    shape: list
    order: object = None
    pad: object = None

    @property
    def is_map(self):
        return len(self.shape) == 3


# Keras activation names -> gapnet layers. hard_sigmoid differs between Keras 2 (0.2x + 0.5) and
# Keras 3 (relu6(x + 3) / 6 = x/6 + 0.5), both clipped to [0, 1]: resolved by the file's version.
def _activation_layers(name, keras_major, layer):
    if name is None or name == "linear":
        return []
    if not isinstance(name, str):  # a serialized custom activation (a dict)
        raise layer.error(f"activation {json.dumps(name)[:60]} is not a built-in Keras activation")
    simple = {
        "relu": "relu",
        "relu6": "relu6",
        "sigmoid": "sigmoid",
        "tanh": "tanh",
        "swish": "silu",
        "silu": "silu",
        "hard_silu": "hard_swish",
        "hard_swish": "hard_swish",
    }
    if name in simple:
        return [{"type": simple[name]}]
    if name == "softmax":
        return [{"type": "softmax"}]
    if name == "leaky_relu":  # Keras 3's activations.leaky_relu: negative_slope 0.2
        if keras_major is None or keras_major < 3:
            raise layer.error(
                "activation 'leaky_relu' needs Keras 3 (its slope there is 0.2); the file's "
                "Keras version does not say it is Keras 3"
            )
        return [{"type": "leaky_relu", "negative_slope": 0.2}]
    if name == "hard_sigmoid":
        if keras_major is None:
            raise layer.error(
                "activation 'hard_sigmoid' means 0.2x+0.5 in Keras 2 and x/6+0.5 in Keras 3, "
                "and the file does not say which Keras wrote it"
            )
        if keras_major >= 3:
            return [{"type": "hard_sigmoid", "alpha": 1.0 / 6.0, "beta": 0.5}]
        return [{"type": "hard_sigmoid", "alpha": 0.2, "beta": 0.5}]
    raise layer.error(
        f"activation '{name}' is not supported (supported: linear, relu, relu6, sigmoid, "
        "tanh, swish/silu, hard_sigmoid, hard_silu/hard_swish, leaky_relu, softmax)"
    )


# ---- the conversion -------------------------------------------------------------------------------------


@dataclass
class Conversion:
    """A converted model: gapnet layers plus the shapes on both sides, per sample."""

    layers: list  # gapnet layer dicts, in order
    keras_input_shape: list  # [H, W, C] or [F]
    input_shape: list  # gapnet's [C, H, W] ([F, 1, 1] for a vector input)
    output_size: int
    input_name: str
    output_name: str
    keras_version: str
    backend: str
    model_name: str


class _Converter:
    def __init__(self, keras_file):
        self.file = keras_file
        self.major = keras_file.keras_major
        self.layers = []
        self.used_names = {"input"}
        self.values = {}  # Keras layer name -> Value

    # -- emitting gapnet layers --

    def emit(self, layer_type, wanted, sources, **attributes):
        """Append a gapnet layer reading `sources` (gapnet names); returns its unique name."""
        name, n = wanted, 2
        while name in self.used_names:
            name, n = f"{wanted}_{n}", n + 1
        self.used_names.add(name)
        entry = {"type": layer_type, "name": name}
        previous = self.layers[-1]["name"] if self.layers else "input"
        if len(sources) == 1:
            if sources[0] != previous:  # the default is the previous layer
                entry["input"] = sources[0]
        else:
            entry["inputs"] = list(sources)
        entry.update(attributes)
        self.layers.append(entry)
        return name

    def activation(self, layer, value, activation_name, suffix=True):
        """Append the layers of a Keras activation after `value`; returns the new Value."""
        layers = _activation_layers(activation_name, self.major, layer)
        for spec in layers:
            spec = dict(spec)
            kind = spec.pop("type")
            if kind == "softmax" and value.is_map:
                raise layer.error(
                    "softmax over the channels of a feature map is not supported: gapnet's "
                    "softmax works on a vector (add a global pool or Flatten first)"
                )
            wanted = f"{layer.name}_{activation_name}" if suffix else layer.name
            value = Value(self.emit(kind, wanted, [value.producer], **spec), value.shape, value.order)
        return value

    # -- per-layer handlers; each returns the Value of the layer's output --

    def single(self, layer, inputs, want_map=None):
        if len(inputs) != 1:
            raise layer.error(f"reads {len(inputs)} tensors; it takes one")
        value = inputs[0]
        if value.pad is not None and layer.class_name not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            raise layer.error("internal: a pending ZeroPadding2D reached a layer that is not a convolution")
        if want_map is True and not value.is_map:
            raise layer.error(f"needs a feature map (H x W x C), its input is a vector of {value.shape[0]}")
        if want_map is False and value.is_map:
            raise layer.error(
                f"needs a vector, its input is a feature map {_show(value.shape)} (add Flatten "
                "or a global pool first)"
            )
        return value

    def spatial(self, layer, cfg, value, kernel, strides, dilation, mode):
        """Padding [top, left, bottom, right] and output size for a convolution or pool, including a
        pending ZeroPadding2D (whose zeros the convolution reads as its own padding)."""
        h, w, _ = value.shape
        zero = value.pad or [0, 0, 0, 0]  # top, bottom, left, right
        h_in, w_in = h + zero[0] + zero[1], w + zero[2] + zero[3]
        if mode == "same":
            top, bottom, out_h = _same_padding(h_in, kernel[0], strides[0], dilation[0])
            left, right, out_w = _same_padding(w_in, kernel[1], strides[1], dilation[1])
        else:
            top = bottom = left = right = 0
            out_h = _valid_size(h_in, kernel[0], strides[0], dilation[0])
            out_w = _valid_size(w_in, kernel[1], strides[1], dilation[1])
            if out_h is None or out_w is None:
                raise layer.error(
                    f"its window {_show(kernel)} (dilation {_show(dilation)}) is larger than "
                    f"its {'padded ' if value.pad else ''}input {h_in}x{w_in} with valid padding"
                )
        padding = [top + zero[0], left + zero[2], bottom + zero[1], right + zero[3]]
        return padding, out_h, out_w

    def conv_common(self, layer, cfg, value):
        kernel = cfg.pair("kernel_size")
        strides = cfg.pair("strides", [1, 1])
        dilation = cfg.pair("dilation_rate", [1, 1])
        mode = cfg.padding_mode()
        cfg.channels_last()
        if max(dilation) > 1 and max(strides) > 1:
            raise layer.error(
                f"dilation_rate {_show(dilation)} with strides {_show(strides)} is not supported "
                "(Keras itself refuses the combination)"
            )
        use_bias = cfg.flag("use_bias", True)
        activation = cfg.get("activation", "linear")
        return kernel, strides, dilation, mode, use_bias, activation

    def op_Conv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        cfg.no_lora()
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        filters = cfg.get("filters")
        groups = cfg.get("groups", 1)
        if not _is_int(filters) or filters < 1:
            raise layer.error(f"filters {json.dumps(filters)} is not a positive integer")
        channels = value.shape[2]
        if not _is_int(groups) or groups < 1 or channels % groups or filters % groups:
            raise layer.error(
                f"groups {json.dumps(groups)} must divide the {channels} input channels and " f"the {filters} filters"
            )
        expected = [("kernel", [*kernel, channels // groups, filters], {"kernel"})]
        if use_bias:
            expected.append(("bias", [filters], {"bias"}))
        weights = self.weights.get(layer, expected)
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, dilation, mode)
        attributes = {"in_channels": channels, "out_channels": filters, "kernel_size": kernel, "stride": strides}
        if any(padding):
            attributes["padding"] = padding
        if max(dilation) > 1:
            attributes["dilation"] = dilation
        if groups > 1:
            attributes["groups"] = groups
        attributes["weight"] = _tensor(weights["kernel"].transpose(3, 2, 0, 1))  # [out, in/groups, kh, kw]
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("conv2d", layer.name, [value.producer], **attributes)
        return self.activation(layer, Value(name, [out_h, out_w, filters]), activation)

    def depthwise(self, layer, cfg, value, kernel, strides, dilation, mode, depthwise, wanted, bias=None):
        """A Keras depthwise kernel [kh, kw, C, mult] as a grouped conv2d: output channel c*mult + m is
        input channel c filtered by kernel[:, :, c, m] (TensorFlow's depthwise_conv2d order)."""
        kh, kw, channels, mult = depthwise.shape
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, dilation, mode)
        attributes = {
            "in_channels": channels,
            "out_channels": channels * mult,
            "kernel_size": kernel,
            "stride": strides,
        }
        if any(padding):
            attributes["padding"] = padding
        if max(dilation) > 1:
            attributes["dilation"] = dilation
        attributes["groups"] = channels
        attributes["weight"] = _tensor(depthwise.transpose(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw))
        if bias is not None:
            attributes["bias"] = _tensor(bias)
        name = self.emit("conv2d", wanted, [value.producer], **attributes)
        return Value(name, [out_h, out_w, channels * mult])

    def multiplier(self, layer, cfg):
        mult = cfg.get("depth_multiplier", 1)
        if not _is_int(mult) or mult < 1:
            raise layer.error(f"depth_multiplier {json.dumps(mult)} is not a positive integer")
        return mult

    def op_DepthwiseConv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        mult = self.multiplier(layer, cfg)
        # tf.keras writes the Conv2D keys it inherits as filters null and groups 1; other values would
        # not be a depthwise convolution as Keras defines it.
        if cfg.get("filters", None) is not None or cfg.get("groups", 1) not in (1, None):
            raise layer.error(
                f"filters {json.dumps(cfg.get('filters', None))} / groups "
                f"{json.dumps(cfg.get('groups', 1))} are not supported on a DepthwiseConv2D"
            )
        channels = value.shape[2]
        # Keras 2 calls the kernel depthwise_kernel, Keras 3 kernel.
        expected = [("depthwise_kernel", [*kernel, channels, mult], {"depthwise_kernel", "kernel"})]
        if use_bias:
            expected.append(("bias", [channels * mult], {"bias"}))
        weights = self.weights.get(layer, expected)
        out = self.depthwise(
            layer,
            cfg,
            value,
            kernel,
            strides,
            dilation,
            mode,
            weights["depthwise_kernel"],
            layer.name,
            weights.get("bias"),
        )
        return self.activation(layer, out, activation)

    def op_SeparableConv2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        kernel, strides, dilation, mode, use_bias, activation = self.conv_common(layer, cfg, value)
        mult = self.multiplier(layer, cfg)
        if cfg.get("groups", 1) not in (1, None):
            raise layer.error(f"groups {json.dumps(cfg.get('groups'))} is not supported on a SeparableConv2D")
        filters = cfg.get("filters")
        if not _is_int(filters) or filters < 1:
            raise layer.error(f"filters {json.dumps(filters)} is not a positive integer")
        channels = value.shape[2]
        expected = [
            ("depthwise_kernel", [*kernel, channels, mult], {"depthwise_kernel"}),
            ("pointwise_kernel", [1, 1, channels * mult, filters], {"pointwise_kernel"}),
        ]
        if use_bias:
            expected.append(("bias", [filters], {"bias"}))
        weights = self.weights.get(layer, expected)
        # Depthwise (stride, dilation, padding) then a 1x1 pointwise convolution carrying the bias.
        middle = self.depthwise(
            layer, cfg, value, kernel, strides, dilation, mode, weights["depthwise_kernel"], layer.name + "_depthwise"
        )
        attributes = {
            "in_channels": channels * mult,
            "out_channels": filters,
            "kernel_size": [1, 1],
            "weight": _tensor(weights["pointwise_kernel"].transpose(3, 2, 0, 1)),
        }
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("conv2d", layer.name, [middle.producer], **attributes)
        return self.activation(layer, Value(name, [middle.shape[0], middle.shape[1], filters]), activation)

    def op_BatchNormalization(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        if not value.is_map:
            raise layer.error(
                "batch normalization of a vector is not supported (gapnet's batch_norm2d "
                "normalizes the channels of a feature map)"
            )
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        if len(axes) != 1 or axes[0] not in (-1, 3):
            raise layer.error(f"axis {json.dumps(axis)} is not the channel axis (-1 or 3)")
        epsilon = cfg.number("epsilon", 1e-3)
        if not epsilon > 0:
            raise layer.error(f"epsilon {epsilon} must be > 0")
        for key in ("renorm", "synchronized"):
            if cfg.get(key, False) not in (False, None):
                # renorm changes training only, but also adds weights the file then carries.
                raise layer.error(f"{key}=true is not supported")
        for key in ("virtual_batch_size", "adjustment"):
            if cfg.get(key, None) is not None:
                raise layer.error(f"{key} is not supported")
        # momentum and fused are training settings: nothing to convert.
        scale, center = cfg.flag("scale", True), cfg.flag("center", True)
        channels = value.shape[2]
        expected = []
        if scale:
            expected.append(("gamma", [channels], {"gamma"}))
        if center:
            expected.append(("beta", [channels], {"beta"}))
        expected += [("moving_mean", [channels], {"moving_mean"}), ("moving_variance", [channels], {"moving_variance"})]
        weights = self.weights.get(layer, expected)
        if np.any(weights["moving_variance"] < 0):
            raise layer.error("moving_variance has a negative value")
        # (x - mean) / sqrt(var + eps) * gamma + beta; absent gamma/beta are Keras's 1 and 0 (written
        # out so that gapnet does not depend on how a half-affine layer is spelled).
        name = self.emit(
            "batch_norm2d",
            layer.name,
            [value.producer],
            num_features=channels,
            eps=epsilon,
            weight=_tensor(weights.get("gamma", np.ones(channels, np.float32))),
            bias=_tensor(weights.get("beta", np.zeros(channels, np.float32))),
            running_mean=_tensor(weights["moving_mean"]),
            running_var=_tensor(weights["moving_variance"]),
        )
        return Value(name, value.shape)

    def op_Activation(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        return self.activation(layer, value, cfg.get("activation"), suffix=False)

    def op_ReLU(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        max_value = cfg.number("max_value", None, allow_none=True)
        slope = cfg.number("negative_slope", 0.0)
        threshold = cfg.number("threshold", 0.0)
        # Keras: x >= max_value -> max_value; threshold <= x < max_value -> x; else slope*(x - threshold).
        if threshold != 0.0:
            raise layer.error(f"threshold {threshold} is not supported (only 0)")
        if max_value is not None and max_value < 0:
            raise layer.error(f"max_value {max_value} is negative")
        if slope < 0:
            raise layer.error(f"negative_slope {slope} is negative")
        names = []
        if slope == 0.0 and max_value is None:
            names.append(("relu", {}))
        elif slope == 0.0 and max_value == 6.0:
            names.append(("relu6", {}))
        elif slope == 0.0:
            names.append(("clip", {"min": 0.0, "max": max_value}))
        else:
            # leaky below 0, then the cap: min(leaky(x), max) equals Keras's piecewise definition
            # because max_value >= 0 and the leaky part is <= 0 there.
            names.append(("leaky_relu", {"negative_slope": slope}))
            if max_value is not None:
                names.append(("clip", {"max": max_value}))
        for i, (kind, attributes) in enumerate(names):
            wanted = layer.name if i == len(names) - 1 else f"{layer.name}_{kind}"
            value = Value(self.emit(kind, wanted, [value.producer], **attributes), value.shape, value.order)
        return value

    def op_LeakyReLU(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        if "alpha" in layer.config and "negative_slope" in layer.config:
            raise layer.error("config has both alpha and negative_slope")
        key = "alpha" if "alpha" in layer.config else "negative_slope"
        slope = cfg.number(key, 0.3)  # Keras's default for both (gapnet's default is 0.01: always written)
        name = self.emit("leaky_relu", layer.name, [value.producer], negative_slope=slope)
        return Value(name, value.shape, value.order)

    def op_Softmax(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, list) else [axis]
        if value.is_map or len(axes) != 1 or axes[0] not in (-1, 1):
            raise layer.error(
                f"softmax over axis {json.dumps(axis)} of a {_show(value.shape)} tensor is not "
                "supported: gapnet's softmax works on a whole vector"
            )
        name = self.emit("softmax", layer.name, [value.producer])
        return Value(name, value.shape, value.order)

    def op_MaxPooling2D(self, layer, cfg, inputs, kind="max_pool2d"):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        kernel = cfg.pair("pool_size", [2, 2])
        strides = kernel if cfg.get("strides", None) is None else cfg.pair("strides")
        mode = cfg.padding_mode()
        padding, out_h, out_w = self.spatial(layer, cfg, value, kernel, strides, [1, 1], mode)
        attributes = {"kernel_size": kernel, "stride": strides}
        if any(padding):
            attributes["padding"] = padding
            if kind == "avg_pool2d":  # TensorFlow averages over the real pixels of the window only
                attributes["count_include_pad"] = False
        name = self.emit(kind, layer.name, [value.producer], **attributes)
        return Value(name, [out_h, out_w, value.shape[2]])

    def op_AveragePooling2D(self, layer, cfg, inputs):
        return self.op_MaxPooling2D(layer, cfg, inputs, kind="avg_pool2d")

    def op_GlobalAveragePooling2D(self, layer, cfg, inputs, kind="global_avg_pool2d"):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        if cfg.get("keepdims", False) not in (False, None):
            raise layer.error("keepdims=true is not supported (gapnet's global pools output a vector)")
        name = self.emit(kind, layer.name, [value.producer])
        return Value(name, [value.shape[2]])

    def op_GlobalMaxPooling2D(self, layer, cfg, inputs):
        return self.op_GlobalAveragePooling2D(layer, cfg, inputs, kind="global_max_pool2d")

    def op_ZeroPadding2D(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=True)
        cfg.channels_last()
        raw = cfg.get("padding", 1)
        if _is_int(raw):
            pads = [raw] * 4
        elif isinstance(raw, list) and len(raw) == 2 and all(_is_int(v) for v in raw):
            pads = [raw[0], raw[0], raw[1], raw[1]]
        elif (
            isinstance(raw, list)
            and len(raw) == 2
            and all(isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) for v in raw)
        ):
            pads = [raw[0][0], raw[0][1], raw[1][0], raw[1][1]]
        else:
            raise layer.error(f"padding {json.dumps(raw)} is not an integer, two, or ((top, bottom), (left, right))")
        if any(p < 0 for p in pads):
            raise layer.error(f"padding {json.dumps(raw)} is negative")
        # Zero padding is exact only as a convolution's own padding: gapnet has no padding layer, and a
        # pool would treat the zeros differently (max pooling never takes padding, Keras's would).
        readers = self.consumers[layer.name]
        convs = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
        if len(readers) != 1 or readers[0].class_name not in convs:
            what = ", ".join(f"'{r.name}' ({r.class_name})" for r in readers)
            raise layer.error(
                f"is read by {what}: a ZeroPadding2D is only supported when one convolution "
                "reads it (it becomes that convolution's padding)"
            )
        if value.pad is not None:
            raise layer.error("follows another ZeroPadding2D")
        return Value(value.producer, value.shape, None, pads)

    def op_Flatten(self, layer, cfg, inputs):
        value = self.single(layer, inputs)
        cfg.channels_last()
        if not value.is_map:
            return value  # a vector stays as it is
        h, w, c = value.shape
        # gapnet flattens C-H-W; Keras H-W-C. gapnet position (c, y, x) holds Keras element (y, x, c).
        order = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
        name = self.emit("flatten", layer.name, [value.producer])
        return Value(name, [h * w * c], None if h * w == 1 or c == 1 else order)

    def op_Dense(self, layer, cfg, inputs):
        value = self.single(layer, inputs, want_map=False)
        cfg.no_lora()
        units = cfg.get("units")
        if not _is_int(units) or units < 1:
            raise layer.error(f"units {json.dumps(units)} is not a positive integer")
        use_bias = cfg.flag("use_bias", True)
        features = value.shape[0]
        expected = [("kernel", [features, units], {"kernel"})]
        if use_bias:
            expected.append(("bias", [units], {"bias"}))
        weights = self.weights.get(layer, expected)
        kernel = weights["kernel"]  # [in, out], Keras's x @ kernel
        if value.order is not None:
            kernel = kernel[value.order, :]  # gapnet's input position i is Keras's order[i]
        attributes = {"in_features": features, "out_features": units, "weight": _tensor(kernel.T)}
        if use_bias:
            attributes["bias"] = _tensor(weights["bias"])
        name = self.emit("dense", layer.name, [value.producer], **attributes)
        return self.activation(layer, Value(name, [units]), cfg.get("activation", "linear"))

    def op_Dropout(self, layer, cfg, inputs):
        cfg.get("rate", None)  # inference: the identity
        return self.single(layer, inputs)

    def op_SpatialDropout2D(self, layer, cfg, inputs):
        cfg.channels_last()
        return self.op_Dropout(layer, cfg, inputs)

    def merge_inputs(self, layer, inputs):
        if len(inputs) < 2:
            raise layer.error(f"reads {len(inputs)} tensor(s); a merge layer needs at least 2")
        if len(inputs) > 64:
            raise layer.error(f"reads {len(inputs)} tensors; gapnet's merge layers take at most 64")
        return [v.producer for v in inputs]

    def op_Add(self, layer, cfg, inputs, kind="add"):
        sources = self.merge_inputs(layer, inputs)
        first = inputs[0]
        for v in inputs[1:]:
            if v.shape != first.shape:
                broadcast = kind == "multiply"
                raise layer.error(
                    f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ"
                    + (" (only a vector of C may be broadcast over a map of C channels)" if broadcast else "")
                )
            if not _same_order(v.order, first.order):
                raise layer.error(
                    "its vector inputs are in different orders (Flattens of differently "
                    "shaped maps): gapnet would add mismatched elements"
                )
        name = self.emit(kind, layer.name, sources)
        return Value(name, first.shape, first.order)

    def op_Multiply(self, layer, cfg, inputs):
        maps = [v for v in inputs if v.is_map]
        if maps and len(maps) < len(inputs):
            # Keras expands a lower-rank input at axis 1 until the ranks match: a vector of C becomes
            # 1 x 1 x C and scales each channel (squeeze-and-excitation), which gapnet's multiply does.
            self.merge_inputs(layer, inputs)
            shape = maps[0].shape
            for v in inputs:
                if v.is_map and v.shape != shape:
                    raise layer.error(f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ")
                if not v.is_map and (v.shape != [shape[2]] or v.order is not None):
                    raise layer.error(
                        f"input shapes {', '.join(_show(i.shape) for i in inputs)}: only a vector "
                        f"of {shape[2]} in channel order may scale a map of {shape[2]} channels"
                    )
            name = self.emit("multiply", layer.name, [v.producer for v in inputs])
            return Value(name, shape)
        return self.op_Add(layer, cfg, inputs, kind="multiply")

    def op_Concatenate(self, layer, cfg, inputs):
        sources = self.merge_inputs(layer, inputs)
        axis = cfg.get("axis", -1)
        first = inputs[0]
        if any(v.is_map != first.is_map for v in inputs):
            raise layer.error("concatenates feature maps with vectors")
        if first.is_map:
            if axis not in (-1, 3):
                raise layer.error(f"axis {json.dumps(axis)} is not supported: only the channel axis (-1 or 3)")
            if any(v.shape[:2] != first.shape[:2] for v in inputs):
                raise layer.error(
                    f"input shapes {', '.join(_show(i.shape) for i in inputs)} differ in height " "or width"
                )
            shape, order = [*first.shape[:2], sum(v.shape[2] for v in inputs)], None
        else:
            if axis not in (-1, 1):
                raise layer.error(f"axis {json.dumps(axis)} is not supported on vectors (-1 or 1)")
            shape = [sum(v.shape[0] for v in inputs)]
            order, offset, pieces = None, 0, []
            for v in inputs:
                pieces.append((np.arange(v.shape[0]) if v.order is None else v.order) + offset)
                offset += v.shape[0]
            if any(v.order is not None for v in inputs):
                order = np.concatenate(pieces)
        name = self.emit("concat", layer.name, sources)
        return Value(name, shape, order)

    # -- the walk --

    def input_value(self, layer):
        cfg = Config(layer)
        shape = cfg.get("batch_input_shape", None)
        if shape is None:
            shape = cfg.get("batch_shape", None)
        if shape is None and cfg.get("shape", None) is not None:
            shape = [None, *cfg.get("shape")]
        if not isinstance(shape, list) or len(shape) not in (2, 4):
            raise layer.error(f"input shape {json.dumps(shape)} is not [batch, H, W, C] or [batch, F]")
        dims = shape[1:]
        if not all(_is_int(d) and d >= 1 for d in dims):
            raise layer.error(f"input shape {json.dumps(shape)}: every dimension but the batch needs a fixed " "size")
        for key in ("sparse", "ragged", "optional"):
            if cfg.get(key, False) not in (False, None):
                raise layer.error(f"{key} inputs are not supported")
        return Value("input", list(dims))

    def run(self):
        layers, input_name, output_name = parse_graph(self.file.config)
        order, consumers = topological_order(layers, input_name, output_name)
        self.consumers = consumers
        self.weights = self.file.weights(layers)
        input_layer = next(layer for layer in order if layer.name == input_name)
        input_value = self.input_value(input_layer)
        keras_input_shape = list(input_value.shape)
        if len(keras_input_shape) == 1:
            # A vector input: gapnet reads it as [F, 1, 1] and flattens it (values unchanged).
            f_count = keras_input_shape[0]
            gapnet_input = [f_count, 1, 1]
            input_value = Value(self.emit("flatten", "input_flatten", ["input"]), [f_count])
        else:
            h, w, c = keras_input_shape
            gapnet_input = [c, h, w]
        self.values[input_name] = input_value
        for layer in order:
            if layer.name == input_name:
                continue
            if layer.class_name == "InputLayer":
                raise layer.error("a second input layer")
            if layer.class_name not in KNOWN_KEYS:
                module = layer.raw.get("module")
                hint = " (a nested model)" if layer.class_name in ("Sequential", "Model", "Functional") else ""
                raise layer.error(
                    f"layer type not supported by gapnet{hint} (supported: {', '.join(SUPPORTED)})"
                    + (f"; module '{module}'" if module not in (None, "keras.layers") else "")
                )
            registered = layer.raw.get("registered_name")
            if registered not in (None, layer.class_name):
                raise layer.error(f"registered as '{registered}': a custom layer, not the built-in one")
            cfg = Config(layer)
            inputs = [self.values[source] for source in layer.inputs]
            self.values[layer.name] = getattr(self, "op_" + layer.class_name)(layer, cfg, inputs)
        out = self.values[output_name]
        output_layer = next(layer for layer in order if layer.name == output_name)
        if out.is_map:
            raise output_layer.error(
                f"the model's output is a feature map {_show(out.shape)}; gapnet models "
                "end in a vector (add a global pool or Flatten and Dense)"
            )
        if out.order is not None and not np.array_equal(out.order, np.arange(len(out.order))):
            raise output_layer.error(
                "the model's output is a Flatten of a feature map, whose channels-last "
                "order gapnet does not reproduce without a Dense after it"
            )
        if not self.layers:
            raise ConversionError("the model has no layer gapnet can run (only inputs and dropouts)")
        if out.producer != self.layers[-1]["name"]:
            raise output_layer.error("internal: the output is not the last layer written")
        model_name = (
            self.file.config.get("config", {}).get("name", "")
            if isinstance(self.file.config.get("config"), dict)
            else ""
        )
        return Conversion(
            self.layers,
            keras_input_shape,
            gapnet_input,
            out.shape[0],
            input_name,
            output_name,
            self.file.keras_version,
            self.file.backend,
            model_name or "",
        )


def _same_order(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def convert(keras_file):
    """Convert a loaded KerasFile to gapnet layers. Raises ConversionError."""
    return _Converter(keras_file).run()
