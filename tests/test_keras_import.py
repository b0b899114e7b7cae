#!/usr/bin/python3
"""The Keras importer (tools/keras_to_gapnet.py) against an independent computation.

    /usr/bin/python3 tests/test_keras_import.py PATH/TO/gapnet

Keras and TensorFlow are not installed (and are not needed), so "what Keras computes" comes from
PyTorch modules written here, NCHW, that apply the Keras weights as Keras defines them: kernels as
stored, TensorFlow's `same` padding spelled out (odd pixel at the bottom/right), `same` max pooling
over -inf padding, `same` average pooling divided by the real pixels, Flatten in H-W-C order, Dense
as x @ kernel, a depthwise kernel's multiplier loop written out. None of that computation shares
code with the importer (whose module the test uses only to encode tensors and test cases).

1. The published model models/keras/fer2013_mini_XCEPTION.102-0.66.hdf5 (Keras 2.0.5) against
   `MiniXception`, a hand-written module of its architecture: the shipped
   models/emotion_mini_xception.json must be exactly what the importer writes, its recorded tests
   must be this module's outputs, `gapnet verify` must pass, and `gapnet classify` on the sample
   face must match the module through the whole image path.
2. Small models written with h5py in Keras's own layouts (a Keras 2 .h5, its `model_config` and
   `model_weights` exactly as the published file has them; a Keras 3 .keras zip with config.json and
   model.weights.h5) covering every supported layer: Flatten -> Dense, `same` pooling on odd sizes,
   separable and depthwise convolutions, ZeroPadding2D, Add/Concatenate/Multiply in a functional
   graph, a squeeze-and-excitation gate, and the Keras 2 vs Keras 3 meaning of hard_sigmoid. Each is
   imported, its reference outputs recorded, `gapnet verify` run, and a PNG classified. Three
   deliberate mistakes (Dense weights not permuted after Flatten, `same` padding's odd pixel on the
   wrong side, Keras 3's hard_sigmoid in a Keras 2 file) must make verify fail: the comparison can
   see them.
3. A table of bad files (truncated HDF5, a missing config key, a weight of the wrong shape, an
   unknown layer, a cycle, an unknown inbound layer, ...): each must give exactly one line on stderr
   naming the file and the layer, exit status 1, and no traceback.

Needs Debian's python3-h5py, python3-numpy, python3-torch and python3-pil; a missing one is a
failure, not a skip.

    /usr/bin/python3 tests/test_keras_import.py --write-reference OUT.npz

writes the shipped model's test inputs (3 seeded random images and the sample face, preprocessed,
channels last) and MiniXception's outputs for them, for `keras_to_gapnet.py --test-data`
(models/keras/README.md has the full command).
"""
import base64
import copy
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import keras_to_gapnet  # noqa: E402  (the importer as a library: its tensor encoding, test_cases)

IMPORTER = os.path.join(ROOT, "tools", "keras_to_gapnet.py")
KERAS_FILE = os.path.join(ROOT, "models", "keras", "fer2013_mini_XCEPTION.102-0.66.hdf5")
SHIPPED = os.path.join(ROOT, "models", "emotion_mini_xception.json")
LABELS_FILE = os.path.join(ROOT, "models", "keras", "fer2013_labels.txt")
METADATA_FILE = os.path.join(ROOT, "models", "keras", "fer2013_mini_XCEPTION.metadata.json")
FACE = os.path.join(ROOT, "data", "samples", "faces", "astronaut.png")
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
TOLERANCE = 1e-5
PYTHON = "/usr/bin/python3"

torch.set_num_threads(1)


# ---- Keras semantics in PyTorch (NCHW) -----------------------------------------------------------------


def tf_same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's `same`: ceil(size / stride) outputs; the padding they need, odd pixel after."""
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel, stride, dilation=(1, 1), value=0.0):
    top, bottom = tf_same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = tf_same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
    return F.pad(x, (left, right, top, bottom), value=value)


def keras_activation(x, name, keras_major):
    """Keras's activation functions by name; hard_sigmoid is version dependent."""
    if name in (None, "linear"):
        return x
    if name == "relu":
        return torch.clamp_min(x, 0.0)
    if name == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name in ("swish", "silu"):
        return x * torch.sigmoid(x)
    if name == "softmax":
        return torch.softmax(x, dim=-1)
    if name == "hard_sigmoid":
        if keras_major >= 3:  # Keras 3: relu6(x + 3) / 6
            return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0
        return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)  # Keras 2 (TensorFlow backend)
    if name in ("hard_silu", "hard_swish"):
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0
    if name == "leaky_relu":  # Keras 3's activations.leaky_relu, negative_slope 0.2
        return torch.where(x >= 0, x, 0.2 * x)
    raise ValueError(f"no reference for activation {name}")


def conv_keras(x, kernel, bias, strides, padding, dilation=(1, 1), groups=1):
    """Keras Conv2D: kernel [kh, kw, in/groups, out] applied as stored (cross-correlation)."""
    kernel = torch.from_numpy(kernel)
    if padding == "same":
        x = pad_same(x, kernel.shape[:2], strides, dilation)
    weight = kernel.permute(3, 2, 0, 1)
    return F.conv2d(
        x,
        weight,
        None if bias is None else torch.from_numpy(bias),
        stride=tuple(strides),
        dilation=tuple(dilation),
        groups=groups,
    )


def depthwise_keras(x, kernel, strides, padding, dilation=(1, 1)):
    """Keras's depthwise convolution, kernel [kh, kw, C, mult], as TensorFlow defines it: output
    channel c*mult + m is channel c filtered by kernel[:, :, c, m]. Written as one grouped convolution
    per multiplier, interleaved, rather than as a reshaped kernel (which is what the importer does)."""
    kernel = torch.from_numpy(kernel)
    channels, mult = kernel.shape[2], kernel.shape[3]
    if padding == "same":
        x = pad_same(x, kernel.shape[:2], strides, dilation)
    per_multiplier = [
        F.conv2d(
            x,
            kernel[:, :, :, m].permute(2, 0, 1).unsqueeze(1),
            stride=tuple(strides),
            dilation=tuple(dilation),
            groups=channels,
        )
        for m in range(mult)
    ]
    y = torch.stack(per_multiplier, dim=2)  # [N, C, mult, H, W]
    return y.reshape(y.shape[0], channels * mult, y.shape[3], y.shape[4])


def batch_norm_keras(x, gamma, beta, mean, variance, epsilon):
    shape = (1, -1, 1, 1)
    y = (x - torch.from_numpy(mean).view(shape)) / torch.sqrt(torch.from_numpy(variance).view(shape) + epsilon)
    if gamma is not None:
        y = y * torch.from_numpy(gamma).view(shape)
    if beta is not None:
        y = y + torch.from_numpy(beta).view(shape)
    return y


def pool_keras(x, kind, pool, strides, padding):
    """Keras pooling. `same` max pooling never takes the padding (-inf); `same` average pooling
    divides each window's sum by the number of real pixels in it."""
    if padding == "valid":
        op = F.max_pool2d if kind == "max" else F.avg_pool2d
        return op(x, tuple(pool), tuple(strides))
    if kind == "max":
        return F.max_pool2d(pad_same(x, pool, strides, value=-float("inf")), tuple(pool), tuple(strides))
    sums = F.avg_pool2d(pad_same(x, pool, strides), tuple(pool), tuple(strides), divisor_override=1)
    counts = F.avg_pool2d(
        pad_same(torch.ones_like(x[:1, :1]), pool, strides), tuple(pool), tuple(strides), divisor_override=1
    )
    return sums / counts


# ---- the published model, by hand --------------------------------------------------------------------------


class MiniXception(nn.Module):
    """fer2013_mini_XCEPTION.102-0.66.hdf5 as its authors' Keras code builds it (models/keras/README.md):
    two 3x3 valid convolutions without bias, each with batch norm and ReLU; four residual blocks
    (separable 3x3 `same` -> BN -> ReLU -> separable 3x3 `same` -> BN -> max pool 3x3 stride 2
    `same`, plus a 1x1 stride-2 `same` convolution + BN shortcut); a 3x3 `same` convolution to 7
    channels with bias; global average pooling; softmax. Weights are read by their Keras paths."""

    def __init__(self, path):
        super().__init__()
        self.weights_by_name = {}
        with h5py.File(path, "r") as f:
            group = f["model_weights"]
            for layer in group:
                for var_path in _datasets(group[layer]):
                    # model_weights/conv2d_1/conv2d_1_1/kernel:0 -> ("conv2d_1", "kernel")
                    var = var_path.split("/")[-1].split(":")[0]
                    self.weights_by_name[(layer, var)] = np.array(group[layer][var_path], dtype=np.float32)

    def w(self, layer, var):
        return self.weights_by_name[(layer, var)]

    def bn(self, x, name):
        return batch_norm_keras(
            x,
            self.w(name, "gamma"),
            self.w(name, "beta"),
            self.w(name, "moving_mean"),
            self.w(name, "moving_variance"),
            1e-3,
        )

    def separable(self, x, name):
        y = depthwise_keras(x, self.w(name, "depthwise_kernel"), (1, 1), "same")
        return conv_keras(y, self.w(name, "pointwise_kernel"), None, (1, 1), "valid")

    def forward(self, x):  # [N, 1, 64, 64], values in [-1, 1]
        x = F.relu(self.bn(conv_keras(x, self.w("conv2d_1", "kernel"), None, (1, 1), "valid"), "batch_normalization_1"))
        x = F.relu(self.bn(conv_keras(x, self.w("conv2d_2", "kernel"), None, (1, 1), "valid"), "batch_normalization_2"))
        for block in range(4):
            shortcut = conv_keras(x, self.w(f"conv2d_{block + 3}", "kernel"), None, (2, 2), "same")
            shortcut = self.bn(shortcut, f"batch_normalization_{3 * block + 3}")
            y = F.relu(
                self.bn(self.separable(x, f"separable_conv2d_{2 * block + 1}"), f"batch_normalization_{3 * block + 4}")
            )
            y = self.bn(self.separable(y, f"separable_conv2d_{2 * block + 2}"), f"batch_normalization_{3 * block + 5}")
            x = pool_keras(y, "max", (3, 3), (2, 2), "same") + shortcut
        x = conv_keras(x, self.w("conv2d_7", "kernel"), self.w("conv2d_7", "bias"), (1, 1), "same")
        return torch.softmax(x.mean(dim=(2, 3)), dim=1)


def _datasets(group, prefix=""):
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            yield prefix + key
        else:
            yield from _datasets(item, prefix + key + "/")


def face_input():
    """The sample face as the model reads it: 64x64 gray, x / 255, then (x - 0.5) / 0.5."""
    pixels = np.asarray(Image.open(FACE).convert("L"), dtype=np.float32)
    assert pixels.shape == (64, 64), f"{FACE}: {pixels.shape}, the model's input is 64x64"
    return ((pixels / 255.0 - 0.5) / 0.5)[None, :, :, None]  # [1, 64, 64, 1], channels last


def reference_inputs():
    """The shipped model's recorded inputs: 3 seeded random images and the sample face, [4, 64, 64, 1]."""
    rng = np.random.RandomState(0)
    pixels = rng.randint(0, 256, size=(3, 64, 64, 1)).astype(np.float32)
    return np.concatenate([(pixels / 255.0 - 0.5) / 0.5, face_input()]).astype(np.float32)


def mini_xception_outputs(x_nhwc):
    model = MiniXception(KERAS_FILE).eval()
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).numpy()


# ---- small Keras models written with h5py -------------------------------------------------------------------


def initializer(name):
    return {"class_name": name, "config": {"seed": None} if name != "Zeros" else {}}


def conv_like_config(name, kernel, strides, padding, activation, use_bias, dilation):
    """The keys Keras 2 writes for Conv2D and friends (regularizers and constraints are None)."""
    return {
        "name": name,
        "trainable": True,
        "kernel_size": list(kernel),
        "strides": list(strides),
        "padding": padding,
        "data_format": "channels_last",
        "dilation_rate": list(dilation),
        "activation": activation,
        "use_bias": use_bias,
        "activity_regularizer": None,
        "bias_initializer": initializer("Zeros"),
        "bias_regularizer": None,
        "bias_constraint": None,
    }


class Spec:
    """A Keras model: layers in topological order, each with its Keras config and its weights in
    Keras's layouts and order. `reference` evaluates it with the functions above."""

    def __init__(self, name, input_shape, seed, sequential=False):
        self.name, self.input_shape, self.sequential = name, list(input_shape), sequential
        self.rng = np.random.RandomState(seed)
        self.layers = []
        self.add(
            "InputLayer",
            "input_1",
            [],
            {"batch_input_shape": [None, *input_shape], "dtype": "float32", "sparse": False, "name": "input_1"},
        )

    @property
    def output(self):
        return self.layers[-1]["name"]

    def add(self, class_name, name, inputs, config, weights=()):
        if self.sequential and self.layers:
            assert inputs == [self.output], f"{name}: a Sequential model is a chain"
        config = {"name": name, "trainable": True, **config}
        self.layers.append(
            {"class_name": class_name, "name": name, "config": config, "inputs": list(inputs), "weights": list(weights)}
        )
        return name

    def random(self, *shape, low=-1.0, high=1.0):
        return self.rng.uniform(low, high, size=shape).astype(np.float32)

    def shape_of(self, name):
        """The Keras shape (without batch) of a layer's output, from one run of the reference on zeros
        (redone when layers were added since)."""
        if getattr(self, "_shapes_for", None) != len(self.layers):
            x = torch.zeros((1, *self.input_shape))
            values = {"input_1": x.permute(0, 3, 1, 2) if x.dim() == 4 else x}
            for layer in self.layers[1:]:
                values[layer["name"]] = self.apply(layer, [values[s] for s in layer["inputs"]], 2)
            self._shapes = {
                n: list(v.shape[1:]) if v.dim() == 2 else [v.shape[2], v.shape[3], v.shape[1]]
                for n, v in values.items()
            }
            self._shapes_for = len(self.layers)
        return self._shapes[name]

    # -- layers (Keras 2 config keys; the Keras 3 writer adapts them) --

    def conv(
        self,
        name,
        src,
        filters,
        kernel,
        strides=(1, 1),
        padding="valid",
        activation="linear",
        use_bias=True,
        dilation=(1, 1),
    ):
        channels = self.shape_of(src)[2]
        config = conv_like_config(name, kernel, strides, padding, activation, use_bias, dilation)
        config.update(
            {
                "filters": filters,
                "kernel_initializer": initializer("GlorotUniform"),
                "kernel_regularizer": None,
                "kernel_constraint": None,
            }
        )
        weights = [("kernel", self.random(*kernel, channels, filters) * 0.5)]
        if use_bias:
            weights.append(("bias", self.random(filters, low=-0.3, high=0.3)))
        return self.add("Conv2D", name, [src], config, weights)

    def depthwise(
        self, name, src, kernel, multiplier, strides=(1, 1), padding="valid", activation="linear", use_bias=True
    ):
        channels = self.shape_of(src)[2]
        config = conv_like_config(name, kernel, strides, padding, activation, use_bias, (1, 1))
        config.update(
            {
                "depth_multiplier": multiplier,
                "depthwise_initializer": initializer("GlorotUniform"),
                "depthwise_regularizer": None,
                "depthwise_constraint": None,
            }
        )
        weights = [("depthwise_kernel", self.random(*kernel, channels, multiplier))]
        if use_bias:
            weights.append(("bias", self.random(channels * multiplier, low=-0.3, high=0.3)))
        return self.add("DepthwiseConv2D", name, [src], config, weights)

    def separable(
        self,
        name,
        src,
        filters,
        kernel,
        multiplier,
        strides=(1, 1),
        padding="valid",
        activation="linear",
        use_bias=True,
    ):
        channels = self.shape_of(src)[2]
        config = conv_like_config(name, kernel, strides, padding, activation, use_bias, (1, 1))
        config.update({"filters": filters, "depth_multiplier": multiplier})
        for part in ("depthwise", "pointwise"):
            config.update(
                {
                    f"{part}_initializer": initializer("GlorotUniform"),
                    f"{part}_regularizer": None,
                    f"{part}_constraint": None,
                }
            )
        weights = [
            ("depthwise_kernel", self.random(*kernel, channels, multiplier)),
            ("pointwise_kernel", self.random(1, 1, channels * multiplier, filters) * 0.5),
        ]
        if use_bias:
            weights.append(("bias", self.random(filters, low=-0.3, high=0.3)))
        return self.add("SeparableConv2D", name, [src], config, weights)

    def batch_norm(self, name, src, epsilon=1e-3, scale=True, center=True):
        channels = self.shape_of(src)[2]
        config = {"axis": -1, "momentum": 0.99, "epsilon": epsilon, "center": center, "scale": scale}
        for var, init in (("beta", "Zeros"), ("gamma", "Ones")):
            config.update(
                {f"{var}_initializer": initializer(init), f"{var}_regularizer": None, f"{var}_constraint": None}
            )
        config.update(
            {"moving_mean_initializer": initializer("Zeros"), "moving_variance_initializer": initializer("Ones")}
        )
        weights = []
        if scale:
            weights.append(("gamma", self.random(channels, low=0.5, high=1.5)))
        if center:
            weights.append(("beta", self.random(channels, low=-0.5, high=0.5)))
        weights += [
            ("moving_mean", self.random(channels, low=-0.5, high=0.5)),
            ("moving_variance", self.random(channels, low=0.2, high=1.5)),
        ]
        return self.add("BatchNormalization", name, [src], config, weights)

    def dense(self, name, src, units, activation="linear", use_bias=True):
        features = self.shape_of(src)[0]
        config = {
            "units": units,
            "activation": activation,
            "use_bias": use_bias,
            "activity_regularizer": None,
            "kernel_initializer": initializer("GlorotUniform"),
            "kernel_regularizer": None,
            "kernel_constraint": None,
            "bias_initializer": initializer("Zeros"),
            "bias_regularizer": None,
            "bias_constraint": None,
        }
        weights = [("kernel", self.random(features, units) * (2.0 / np.sqrt(features)))]
        if use_bias:
            weights.append(("bias", self.random(units, low=-0.3, high=0.3)))
        return self.add("Dense", name, [src], config, weights)

    def pool(self, class_name, name, src, pool, strides, padding):
        return self.add(
            class_name,
            name,
            [src],
            {"pool_size": list(pool), "strides": list(strides), "padding": padding, "data_format": "channels_last"},
        )

    def simple(self, class_name, name, inputs, **config):
        return self.add(class_name, name, inputs if isinstance(inputs, list) else [inputs], config)

    # -- the reference --

    def reference(self, x_nhwc, keras_major):
        """Keras's output for inputs [N, H, W, C] (or [N, F]); maps are held NCHW, vectors in Keras order."""
        x = torch.from_numpy(np.asarray(x_nhwc, np.float32))
        values = {"input_1": x.permute(0, 3, 1, 2) if x.dim() == 4 else x}
        for layer in self.layers[1:]:
            values[layer["name"]] = self.apply(layer, [values[s] for s in layer["inputs"]], keras_major)
        return values[self.output]

    @staticmethod
    def apply(layer, xs, keras_major):
        c, w = layer["config"], dict(layer["weights"])
        cls, x = layer["class_name"], xs[0]
        if cls == "Conv2D":
            y = conv_keras(x, w["kernel"], w.get("bias"), c["strides"], c["padding"], c["dilation_rate"])
            return keras_activation(y, c["activation"], keras_major)
        if cls in ("DepthwiseConv2D", "SeparableConv2D"):
            y = depthwise_keras(x, w["depthwise_kernel"], c["strides"], c["padding"])
            if cls == "SeparableConv2D":
                y = conv_keras(y, w["pointwise_kernel"], None, (1, 1), "valid")
            if "bias" in w:
                y = y + torch.from_numpy(w["bias"]).view(1, -1, 1, 1)
            return keras_activation(y, c["activation"], keras_major)
        if cls == "BatchNormalization":
            return batch_norm_keras(
                x, w.get("gamma"), w.get("beta"), w["moving_mean"], w["moving_variance"], c["epsilon"]
            )
        if cls == "Activation":
            return keras_activation(x, c["activation"], keras_major)
        if cls == "ReLU":
            # Keras: max_value above it; x from threshold up; negative_slope * (x - threshold) below.
            top = float("inf") if c.get("max_value") is None else c["max_value"]
            below = c.get("negative_slope", 0.0) * (x - c.get("threshold", 0.0))
            return torch.where(x >= top, torch.full_like(x, top), torch.where(x >= c.get("threshold", 0.0), x, below))
        if cls == "LeakyReLU":
            slope = c.get("alpha", c.get("negative_slope"))
            return torch.where(x > 0, x, slope * x)
        if cls == "Softmax":
            return torch.softmax(x, dim=-1)
        if cls in ("MaxPooling2D", "AveragePooling2D"):
            return pool_keras(x, "max" if cls == "MaxPooling2D" else "avg", c["pool_size"], c["strides"], c["padding"])
        if cls == "GlobalAveragePooling2D":
            return x.mean(dim=(2, 3))
        if cls == "GlobalMaxPooling2D":
            return x.amax(dim=(2, 3))
        if cls == "ZeroPadding2D":
            (top, bottom), (left, right) = c["padding"]
            return F.pad(x, (left, right, top, bottom))
        if cls == "Flatten":  # Keras flattens H x W x C in that order
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x
        if cls == "Dense":
            y = x @ torch.from_numpy(w["kernel"])
            if "bias" in w:
                y = y + torch.from_numpy(w["bias"])
            return keras_activation(y, c["activation"], keras_major)
        if cls in ("Dropout", "SpatialDropout2D"):
            return x
        if cls == "Add":
            return sum(xs[1:], xs[0])
        if cls == "Multiply":
            # Keras expands a vector at axis 1 until the ranks match: (N, C) -> (N, 1, 1, C).
            y = xs[0]
            for z in xs[1:]:
                if y.dim() == 2 and z.dim() == 4:
                    y = y[:, :, None, None]
                if z.dim() == 2 and y.dim() == 4:
                    z = z[:, :, None, None]
                y = y * z
            return y
        if cls == "Concatenate":
            return torch.cat(xs, dim=1)  # the channel axis of NCHW maps, the only axis of vectors
        raise ValueError(f"no reference for {cls}")


# -- writing Keras 2 HDF5 files ------------------------------------------------------------------------------

KERAS2_WEIGHT_NAMES = {"DepthwiseConv2D": {"depthwise_kernel": "depthwise_kernel"}}


def keras2_config(spec, keras_version="2.4.0"):
    """model_config as Keras 2 writes it: Model, or Sequential: before Keras 2.2.5 a bare list of layers
    without an InputLayer, the first one carrying batch_input_shape; later a name and a layer list."""
    if spec.sequential and keras_version.startswith("2.0"):
        layers = [
            {"class_name": layer["class_name"], "config": copy.deepcopy(layer["config"])} for layer in spec.layers[1:]
        ]
        layers[0]["config"].update({"batch_input_shape": [None, *spec.input_shape], "dtype": "float32"})
        return {"class_name": "Sequential", "config": layers}
    layers = []
    for layer in spec.layers:
        entry = {"class_name": layer["class_name"], "name": layer["name"], "config": layer["config"]}
        if not spec.sequential:
            entry["inbound_nodes"] = [[[src, 0, 0, {}] for src in layer["inputs"]]] if layer["inputs"] else []
        layers.append(entry)
    if spec.sequential:
        return {"class_name": "Sequential", "config": {"name": spec.name, "layers": layers}}
    return {
        "class_name": "Model",
        "config": {
            "name": spec.name,
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [[spec.output, 0, 0]],
        },
    }


def write_keras2_h5(spec, path, keras_version="2.0.5", config=None):
    """A Keras 2 model.save() file, laid out as the published model is: root attributes
    keras_version, backend, model_config, training_config; model_weights/<layer>/<scope>/<var>:0
    with the layer group's weight_names listing them in order (an empty float64 array when none)."""
    old_style = keras_version.startswith("2.0")  # Keras 2.0 scopes variables as <layer>_1
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = keras_version
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config or keras2_config(spec, keras_version))
        f.attrs["training_config"] = json.dumps(
            {
                "loss": "categorical_crossentropy",
                "metrics": ["accuracy"],
                "optimizer_config": {"class_name": "Adam", "config": {"lr": 0.001}},
            }
        )
        weights = f.create_group("model_weights")
        weights.attrs["keras_version"] = keras_version
        weights.attrs["backend"] = "tensorflow"
        weights.attrs["layer_names"] = np.array([layer["name"].encode() for layer in spec.layers])
        for layer in spec.layers:
            group = weights.create_group(layer["name"])
            scope = layer["name"] + "_1" if old_style else layer["name"]
            names = []
            for role, value in layer["weights"]:
                names.append(f"{scope}/{role}:0")
                group.create_dataset(names[-1], data=value)
            group.attrs["weight_names"] = np.array([n.encode() for n in names]) if names else np.zeros(0)


# -- writing Keras 3 archives ------------------------------------------------------------------------------


def keras3_layer_config(layer):
    """Keras 3 spells a few things differently: a dtype policy, `groups` on Conv2D, LeakyReLU's
    negative_slope, initializers with their module."""
    config = copy.deepcopy(layer["config"])
    if layer["class_name"] == "InputLayer":
        shape = config.pop("batch_input_shape")
        return {"batch_shape": shape, "dtype": "float32", "sparse": False, "name": config["name"]}
    config["dtype"] = {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }
    if layer["class_name"] == "Conv2D":
        config["groups"] = 1
    if layer["class_name"] == "LeakyReLU":
        config["negative_slope"] = config.pop("alpha")
    if layer["class_name"] == "BatchNormalization":
        config["synchronized"] = False
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, dict):
            config[key] = {
                "module": "keras.initializers",
                "class_name": value["class_name"],
                "config": value["config"],
                "registered_name": None,
            }
    return config


def keras3_tensor(spec, name):
    shape = spec.shape_of(name)
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, *shape], "dtype": "float32", "keras_history": [name, 0, 0]},
    }


def keras3_config(spec):
    layers = []
    for layer in spec.layers:
        entry = {
            "module": "keras.layers",
            "class_name": layer["class_name"],
            "config": keras3_layer_config(layer),
            "registered_name": None,
        }
        if not spec.sequential:
            entry["name"] = layer["name"]
            if layer["inputs"]:
                tensors = [keras3_tensor(spec, s) for s in layer["inputs"]]
                # A merge layer is called on a list, the others on one tensor.
                entry["inbound_nodes"] = [{"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": {}}]
            else:
                entry["inbound_nodes"] = []
        layers.append(entry)
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    if spec.sequential:
        config = {
            "name": spec.name,
            "trainable": True,
            "dtype": policy,
            "layers": layers,
            "build_input_shape": [None, *spec.input_shape],
        }
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": [None, *spec.input_shape]},
            "compile_config": None,
        }
    # One input and one output are written unwrapped, as Keras 3 does for a single tensor.
    config = {
        "name": spec.name,
        "trainable": True,
        "layers": layers,
        "input_layers": ["input_1", 0, 0],
        "output_layers": [spec.output, 0, 0],
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": config,
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": None,
    }


def snake_case(class_name):
    """Keras 3's weights group name for a layer class (naming.to_snake_case), spelled out per class."""
    return {
        "InputLayer": "input_layer",
        "Conv2D": "conv2d",
        "DepthwiseConv2D": "depthwise_conv2d",
        "SeparableConv2D": "separable_conv2d",
        "BatchNormalization": "batch_normalization",
        "Dense": "dense",
        "Activation": "activation",
        "ReLU": "re_lu",
        "LeakyReLU": "leaky_re_lu",
        "Softmax": "softmax",
        "MaxPooling2D": "max_pooling2d",
        "AveragePooling2D": "average_pooling2d",
        "GlobalAveragePooling2D": "global_average_pooling2d",
        "GlobalMaxPooling2D": "global_max_pooling2d",
        "ZeroPadding2D": "zero_padding2d",
        "Flatten": "flatten",
        "Dropout": "dropout",
        "Add": "add",
        "Multiply": "multiply",
        "Concatenate": "concatenate",
    }[class_name]


def write_keras3_archive(spec, path, keras_version="3.3.3", config=None, weights_hook=None):
    """A Keras 3 model.save("m.keras"): config.json, metadata.json and model.weights.h5, whose
    layers/<class in snake case>[_k]/vars/0.. hold each layer's variables in creation order."""
    buffer = tempfile.NamedTemporaryFile(suffix=".h5", delete=False)
    buffer.close()
    seen = {}
    with h5py.File(buffer.name, "w") as f:
        f.create_group("vars")
        layers_group = f.create_group("layers")
        for layer in spec.layers:
            base = snake_case(layer["class_name"])
            count = seen.get(base, 0)
            seen[base] = count + 1
            if not layer["weights"]:
                continue
            group = layers_group.create_group(base if count == 0 else f"{base}_{count}").create_group("vars")
            for i, (_, value) in enumerate(layer["weights"]):
                group.create_dataset(str(i), data=value)
        if weights_hook:
            weights_hook(f)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": keras_version, "date_saved": "2024-05-01@12:00:00"}))
        z.writestr("config.json", json.dumps(config or keras3_config(spec)))
        z.write(buffer.name, "model.weights.h5")
    os.unlink(buffer.name)


# -- the models ------------------------------------------------------------------------------------------------


def chain_model():
    """A Sequential chain on an odd-sized RGB input: `same` convolution with an uneven split, batch
    norm, `same` max and average pooling on odd sizes, ZeroPadding2D folded into a convolution, a
    depthwise convolution with multiplier 2, ReLU(max_value=6), LeakyReLU, Flatten -> Dense (the
    permutation), Dropout, Dense with softmax."""
    s = Spec("chain", [13, 11, 3], seed=1, sequential=True)
    s.conv("conv_a", "input_1", 6, (3, 4), strides=(2, 2), padding="same", activation="relu")  # 7x6x6, pads 1/1, 1/2
    s.batch_norm("bn_a", "conv_a")
    s.pool("MaxPooling2D", "pool_max", "bn_a", (3, 3), (2, 2), "same")  # 4x3, pads 1/1, 0/1
    s.simple("ZeroPadding2D", "zero_pad", "pool_max", padding=[[1, 0], [2, 1]], data_format="channels_last")
    s.conv("conv_b", "zero_pad", 5, (2, 2), activation="tanh", use_bias=False)  # 4x5x5
    s.depthwise("depthwise", "conv_b", (3, 3), 2, padding="same")  # 4x5x10
    s.simple("ReLU", "relu6", "depthwise", max_value=6.0, negative_slope=0.0, threshold=0.0)
    s.pool("AveragePooling2D", "pool_avg", "relu6", (2, 3), (1, 2), "same")  # 4x3, pads 0/1, 1/1
    s.simple("LeakyReLU", "leaky", "pool_avg", alpha=0.1)
    s.simple("Flatten", "flatten", "leaky", data_format="channels_last")  # 120 = 4x3x10
    s.dense("fc1", "flatten", 16, activation="relu")
    s.simple("Dropout", "dropout", "fc1", rate=0.5, noise_shape=None, seed=None)
    s.dense("fc2", "dropout", 5, activation="softmax")
    return s


def graph_model():
    """A functional graph on a gray 12x10 input: separable convolution (multiplier 2, stride 2),
    branches merged by Multiply, a 3-input Add and Concatenate, batch norm without gamma, a
    squeeze-and-excitation gate (global pool -> Dense -> Dense(sigmoid) -> Multiply with the map),
    hard_sigmoid (whose meaning depends on the Keras version), valid max pooling, and a head
    concatenating a global average pool, a Flatten (in channels-last order) and a global max pool."""
    s = Spec("graph", [12, 10, 1], seed=2)
    s.conv("stem", "input_1", 8, (3, 3), padding="same", activation="swish")
    s.separable("sep", "stem", 12, (3, 3), 2, strides=(2, 2), padding="same", activation="relu")  # 6x5x12
    s.conv("gate", "sep", 12, (1, 1), activation="sigmoid")
    s.depthwise("dw", "sep", (3, 3), 1, padding="same", activation="hard_sigmoid", use_bias=False)
    s.simple("Multiply", "mul", ["sep", "gate"])
    s.simple("Add", "add3", ["mul", "dw", "sep"])
    s.simple("Concatenate", "cat", ["add3", "gate"], axis=-1)  # 6x5x24
    s.batch_norm("bn", "cat", epsilon=1e-5, scale=False)
    s.simple("GlobalAveragePooling2D", "se_pool", "bn", data_format="channels_last")
    s.dense("se_reduce", "se_pool", 6, activation="relu")
    s.dense("se_expand", "se_reduce", 24, activation="sigmoid")
    s.simple("Multiply", "se_scale", ["bn", "se_expand"])
    s.simple("Activation", "act_tanh", "se_scale", activation="tanh")
    s.pool("MaxPooling2D", "pool", "act_tanh", (2, 2), (2, 2), "valid")  # 3x2x24
    s.simple("GlobalAveragePooling2D", "gap", "pool", data_format="channels_last")
    s.simple("Flatten", "flatten", "pool", data_format="channels_last")
    s.simple("GlobalMaxPooling2D", "gmp", "pool", data_format="channels_last")
    s.simple("Concatenate", "head", ["gap", "flatten", "gmp"], axis=-1)  # 24 + 144 + 24
    s.simple("Dropout", "head_dropout", "head", rate=0.2, noise_shape=None, seed=None)
    s.dense("logits", "head_dropout", 4)
    s.simple("Softmax", "probabilities", "logits", axis=-1)
    return s


def keras3_activations_model():
    """Keras 3's own activation names (relu6, hard_silu, leaky_relu, silu) and its hard_sigmoid, and a
    leaky ReLU capped by max_value."""
    s = Spec("activations3", [9, 9, 1], seed=3, sequential=True)
    s.conv("c1", "input_1", 4, (3, 3), activation="relu6")
    s.depthwise("d1", "c1", (3, 3), 1, padding="same", activation="hard_silu")
    s.conv("c2", "d1", 4, (3, 3), activation="leaky_relu")
    s.simple("Activation", "hs", "c2", activation="hard_sigmoid")
    s.conv("c3", "hs", 3, (1, 1), activation="silu")
    s.simple("ReLU", "capped", "c3", max_value=0.5, negative_slope=0.2, threshold=0.0)
    s.simple("GlobalAveragePooling2D", "gap", "capped", data_format="channels_last")
    s.dense("out", "gap", 3, activation="softmax")
    return s


def vector_model():
    """A multilayer perceptron on a vector input (gapnet: a [20, 1, 1] tensor, flattened), functional,
    with a Concatenate of two Dense branches."""
    s = Spec("mlp", [20], seed=4)
    s.dense("hidden_a", "input_1", 8, activation="relu")
    s.dense("hidden_b", "input_1", 6, activation="tanh", use_bias=False)
    s.simple("Concatenate", "both", ["hidden_a", "hidden_b"], axis=-1)
    s.dense("out", "both", 3, activation="softmax")
    return s


# ---- running things --------------------------------------------------------------------------------------


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def import_model(model_path, out_path, *options):
    result = run([PYTHON, IMPORTER, model_path, out_path, *options])
    assert result.returncode == 0, f"importing {model_path} failed: {result.stderr}"
    return json.load(open(out_path))


def verify(gapnet, path, expect_pass=True):
    result = run([gapnet, "verify", "--json", path])
    if not expect_pass:
        return result.returncode != 0
    assert result.returncode == 0, f"gapnet verify {path}: {result.stdout}{result.stderr}"
    report = json.loads(result.stdout)
    assert report["passed"] and report["cases"] >= 1, report
    return report["largest_difference"]


def classify(gapnet, model_path, image_path, classes):
    result = run([gapnet, "classify", "--model", model_path, "--top", str(classes), "--json", image_path])
    assert result.returncode == 0, f"gapnet classify {model_path} {image_path}: {result.stderr}"
    probabilities = np.zeros(classes)
    for entry in json.loads(result.stdout)["top"]:
        probabilities[entry["index"]] = entry["probability"]
    return probabilities


def random_batch(spec, count, seed):
    rng = np.random.RandomState(seed)
    return rng.uniform(-1.5, 1.5, size=(count, *spec.input_shape)).astype(np.float32)


def check_synthetic(gapnet, tmp, spec, container, keras_version):
    """Write `spec` as a Keras file, import it with reference outputs as its tests, verify them in
    gapnet, and classify a PNG through the whole image path."""
    major = int(keras_version.split(".")[0])
    label = f"{spec.name} ({container}, Keras {keras_version})"
    path = os.path.join(tmp, f"{spec.name}-{keras_version}.{'keras' if container == 'keras' else 'h5'}")
    if container == "keras":
        write_keras3_archive(spec, path, keras_version)
    else:
        write_keras2_h5(spec, path, keras_version)
    x = random_batch(spec, 4, seed=len(spec.layers))
    with torch.no_grad():
        y = spec.reference(x, major).numpy().astype(np.float32)
    assert np.all(np.abs(y.sum(axis=1) - 1) < 1e-5), f"{label}: the reference does not end in a softmax"
    npz = os.path.join(tmp, f"{spec.name}-{keras_version}.npz")
    np.savez(npz, x=x, y=y)
    out = os.path.join(tmp, f"{spec.name}-{keras_version}.json")
    if len(spec.input_shape) == 1:
        # A vector input is a tensor model (color none): its recorded tests are all there is to run.
        doc = import_model(path, out, "--test-data", npz)
        assert doc["input"] == {"channels": spec.input_shape[0], "height": 1, "width": 1, "color": "none"}, label
        assert doc["layers"][0]["type"] == "flatten", label
        difference = verify(gapnet, out)
        print(
            f"ok  {label}: {len(doc['layers'])} gapnet layers; recorded tests verify (largest difference "
            f"{difference:.2g}); a vector input, so no image to classify"
        )
        return out
    channels = spec.input_shape[2]
    mean, std = ["0.5"] * channels, ["0.25"] * channels
    doc = import_model(path, out, "--test-data", npz, "--mean", *mean, "--std", *std)
    assert len(doc["tests"]) == 4, label
    difference = verify(gapnet, out)

    # The image path: a PNG's pixels, normalized as the file says, through the reference and gapnet.
    rng = np.random.RandomState(7)
    h, w, c = spec.input_shape
    pixels = rng.randint(0, 256, size=(h, w, c), dtype=np.uint8)
    png = os.path.join(tmp, f"{spec.name}.png")
    Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, mode="L" if c == 1 else "RGB").save(png)
    x_image = ((pixels.astype(np.float32) / 255.0 - 0.5) / 0.25)[None]
    with torch.no_grad():
        expected = spec.reference(x_image, major).numpy()[0]
    got = classify(gapnet, out, png, len(expected))
    image_difference = np.abs(got - expected).max()
    assert image_difference <= TOLERANCE, (
        f"{label}: image probabilities differ by {image_difference:.3g}\n" f" gapnet  {got}\n reference {expected}"
    )
    print(
        f"ok  {label}: {len(doc['layers'])} gapnet layers; recorded tests verify (largest difference "
        f"{difference:.2g}); a PNG's probabilities within {image_difference:.2g} of the reference"
    )
    return out


def check_mistakes_are_seen(gapnet, tmp, chain_json, graph_json):
    """The comparison must be able to fail: three conversion mistakes, applied by hand to the imported
    files, must make `gapnet verify` fail."""
    doc = json.load(open(chain_json))
    spec = chain_model()
    fc1 = next(layer for layer in doc["layers"] if layer["name"] == "fc1")
    kernel = dict(next(layer for layer in spec.layers if layer["name"] == "fc1")["weights"])["kernel"]
    fc1["weight"] = keras_to_gapnet._tensor(kernel.T)  # rows left in H-W-C order
    mistaken = os.path.join(tmp, "mistake-unpermuted.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "a Dense after Flatten with unpermuted weights verified"

    doc = json.load(open(chain_json))
    conv = next(layer for layer in doc["layers"] if layer["name"] == "conv_a")
    assert conv["padding"] == [1, 1, 1, 2], conv["padding"]  # TensorFlow: the odd pixel right
    conv["padding"] = [1, 2, 1, 1]  # ... put on the left instead
    mistaken = os.path.join(tmp, "mistake-padding.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "`same` padding on the wrong side verified"

    doc = json.load(open(graph_json))
    hard_sigmoids = [layer for layer in doc["layers"] if layer["type"] == "hard_sigmoid"]
    assert hard_sigmoids and hard_sigmoids[0]["alpha"] == 0.2, "Keras 2's hard_sigmoid is 0.2x + 0.5"
    hard_sigmoids[0]["alpha"] = 1.0 / 6.0  # Keras 3's meaning in a Keras 2 file
    mistaken = os.path.join(tmp, "mistake-hard-sigmoid.json")
    json.dump(doc, open(mistaken, "w"))
    assert verify(gapnet, mistaken, expect_pass=False), "hard_sigmoid with Keras 3's slope verified"
    print(
        "ok  unpermuted Dense weights, `same` padding on the wrong side and the wrong hard_sigmoid all fail "
        "gapnet verify"
    )


def check_structure(chain_json, graph_json):
    """What the importer must have written, beyond the numbers."""
    chain = {layer["name"]: layer for layer in json.load(open(chain_json))["layers"]}
    assert chain["pool_max"]["padding"] == [1, 0, 1, 1], chain["pool_max"]
    assert chain["pool_avg"]["padding"] == [0, 1, 1, 1] and chain["pool_avg"]["count_include_pad"] is False
    assert chain["conv_b"]["padding"] == [1, 2, 0, 1], "ZeroPadding2D ((1,0),(2,1)) as conv_b's padding"
    assert "zero_pad" not in chain and "dropout" not in chain
    assert chain["depthwise"]["groups"] == 5 and chain["depthwise"]["out_channels"] == 10
    assert chain["relu6"]["type"] == "relu6" and chain["leaky"]["negative_slope"] == 0.1
    graph = json.load(open(graph_json))["layers"]
    by_name = {layer["name"]: layer for layer in graph}
    # a layer with an activation is written as two: NAME, then NAME_<activation>
    assert by_name["add3"]["inputs"] == ["mul", "dw_hard_sigmoid", "sep_relu"]
    assert by_name["se_scale"]["type"] == "multiply" and by_name["se_scale"]["inputs"] == ["bn", "se_expand_sigmoid"]
    assert by_name["head"]["type"] == "concat" and by_name["head"]["inputs"] == ["gap", "flatten", "gmp"]
    assert by_name["sep_depthwise"]["groups"] == 8 and by_name["sep"]["kernel_size"] == [1, 1]
    # Every layer's output is read by a later one (gapnet refuses dead layers); the last is the output.
    read, previous = set(), "input"
    for layer in graph:
        read.update(layer["inputs"] if "inputs" in layer else [layer.get("input", previous)])
        previous = layer["name"]
    assert all(layer["name"] in read for layer in graph[:-1]), "a layer nobody reads"
    print("ok  the imported graphs: per-side padding, folded ZeroPadding2D, skipped Dropout, merge inputs in order")


# ---- the published model --------------------------------------------------------------------------------


def check_published_model(gapnet, tmp):
    with h5py.File(KERAS_FILE, "r") as f:
        assert f.attrs["keras_version"] == "2.0.5" and f.attrs["backend"] == "tensorflow"
        assert json.loads(f.attrs["model_config"])["class_name"] == "Model"

    # The shipped file is what the importer writes from the shipped Keras file today.
    shipped = json.load(open(SHIPPED))
    fresh = os.path.join(tmp, "emotion.json")
    doc = import_model(
        KERAS_FILE,
        fresh,
        "--labels",
        LABELS_FILE,
        "--scale",
        "0.00392156862745098",
        "--mean",
        "0.5",
        "--std",
        "0.5",
        "--name",
        "emotion_mini_xception",
        "--metadata",
        METADATA_FILE,
    )
    for key in ("format", "version", "name", "layers", "metadata"):
        assert doc[key] == shipped[key], f"models/emotion_mini_xception.json: '{key}' differs from a fresh import"
    assert (
        doc["input"]
        == shipped["input"]
        == {
            "channels": 1,
            "height": 64,
            "width": 64,
            "color": "grayscale",
            "scale": 0.00392156862745098,
            "mean": [0.5],
            "std": [0.5],
        }
    )
    assert shipped["labels"] == EMOTIONS

    # Its recorded tests are MiniXception's outputs for its recorded inputs (3 random images, the face).
    x = reference_inputs()
    y = mini_xception_outputs(x)
    tests = keras_to_gapnet.test_cases(keras_to_gapnet.convert(keras_to_gapnet.load(KERAS_FILE)), x, y)
    assert len(shipped["tests"]) == len(tests) == 4
    for i, (recorded, fresh_case) in enumerate(zip(shipped["tests"], tests)):
        assert recorded["input"] == fresh_case["input"], f"recorded test {i}: the input is not reference_inputs()[{i}]"
        a = np.frombuffer(base64.b64decode(recorded["output"]["data"]), "<f4")
        assert np.abs(a - y[i]).max() <= 1e-6, f"recorded test {i}: {a} is not MiniXception's {y[i]}"

    difference = verify(gapnet, SHIPPED)
    print(
        f"ok  models/emotion_mini_xception.json is a fresh import; its 4 recorded tests are MiniXception's "
        f"outputs; gapnet verify passes (largest difference {difference:.2g})"
    )

    # The whole image path on the sample face.
    expected = mini_xception_outputs(face_input())[0]
    got = classify(gapnet, SHIPPED, FACE, len(EMOTIONS))
    face_difference = np.abs(got - expected).max()
    assert face_difference <= TOLERANCE, f"face: gapnet {got} vs MiniXception {expected}"
    top = np.argsort(-expected)[:3]
    assert np.array_equal(np.argsort(-got)[:3], top), "gapnet and MiniXception rank the face differently"
    shown = ", ".join(f"{EMOTIONS[i]} {got[i]:.4f} (PyTorch {expected[i]:.4f})" for i in top)
    print(f"ok  {os.path.relpath(FACE, ROOT)}: {shown}; largest difference {face_difference:.2g}")

    # The same import as a Keras 3 archive would carry it must convert to the same layers: rewrite
    # the published weights in the .keras layout with a Keras-3-style config.
    spec = spec_from_published()
    archive = os.path.join(tmp, "mini_xception.keras")
    write_keras3_archive(spec, archive, "3.3.3")
    doc3 = import_model(archive, os.path.join(tmp, "emotion3.json"), "--name", "emotion_mini_xception")
    assert doc3["layers"] == shipped["layers"], "the .keras rewrite converts differently"
    print("ok  the published model rewritten as a Keras 3 .keras archive converts to the same gapnet layers")


def spec_from_published():
    """The published model as a Spec (its config and weights read with h5py), for the .keras rewrite."""
    with h5py.File(KERAS_FILE, "r") as f:
        config = json.loads(f.attrs["model_config"])["config"]
        weights = f["model_weights"]
        spec = Spec("model_1", [64, 64, 1], seed=0)
        spec.layers = []
        for layer in config["layers"]:
            group = weights[layer["name"]]
            names = [n.decode() for n in group.attrs["weight_names"]] if len(group.attrs["weight_names"]) else []
            spec.layers.append(
                {
                    "class_name": layer["class_name"],
                    "name": layer["name"],
                    "config": layer["config"],
                    "inputs": [i[0] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [],
                    "weights": [(n.split("/")[-1].split(":")[0], np.array(group[n])) for n in names],
                }
            )
    return spec


# ---- bad files --------------------------------------------------------------------------------------------


def _layer(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


def bad_cases(tmp):
    """(description, a function writing the file and returning its path, expected message after the path)."""

    def h5(name, mutate_config=None, mutate_spec=None, spec_fn=graph_model, version="2.4.0"):
        def write():
            spec = spec_fn()
            if mutate_spec:
                mutate_spec(spec)
            config = keras2_config(spec, version)
            if mutate_config:
                mutate_config(config)
            path = os.path.join(tmp, f"bad-{name}.h5")
            write_keras2_h5(spec, path, version, config)
            return path

        return write

    def archive(name, mutate_config=None, weights_hook=None, spec_fn=graph_model, members=None):
        def write():
            spec = spec_fn()
            config = keras3_config(spec)
            if mutate_config:
                mutate_config(config)
            path = os.path.join(tmp, f"bad-{name}.keras")
            write_keras3_archive(spec, path, "3.3.3", config, weights_hook)
            if members is not None:  # rewrite the zip keeping only some members
                with zipfile.ZipFile(path) as z:
                    kept = {n: z.read(n) for n in z.namelist() if n in members}
                with zipfile.ZipFile(path, "w") as z:
                    for n, data in kept.items():
                        z.writestr(n, data)
            return path

        return write

    def truncated():
        path = os.path.join(tmp, "bad-truncated.hdf5")
        data = open(KERAS_FILE, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        return path

    def not_keras():
        path = os.path.join(tmp, "bad-not-keras.h5")
        open(path, "wb").write(b"this is not a model\n" * 10)
        return path

    def weights_only():
        path = os.path.join(tmp, "bad-weights-only.h5")
        with h5py.File(path, "w") as f:
            f.attrs["keras_version"] = "2.4.0"
            f.create_group("conv2d_1")
        return path

    def set_key(layer, key, value):
        return lambda c: _layer(c, layer)["config"].__setitem__(key, value)

    def drop_key(layer, key):
        return lambda c: _layer(c, layer)["config"].pop(key)

    def set_inputs(layer, names):
        return lambda c: _layer(c, layer).__setitem__("inbound_nodes", [[[n, 0, 0, {}] for n in names]])

    def wrong_shape(spec):
        layer = next(entry for entry in spec.layers if entry["name"] == "stem")
        layer["weights"][0] = ("kernel", np.zeros((3, 3, 2, 8), np.float32))

    def rename_class(layer, class_name):
        return lambda c: _layer(c, layer).__setitem__("class_name", class_name)

    def shared(c):
        _layer(c, "gate")["inbound_nodes"].append([["sep", 0, 0, {}]])

    def drop_var(f):
        del f["layers/conv2d/vars/1"]

    def two_outputs(c):
        c["config"]["output_layers"] = [["probabilities", 0, 0], ["logits", 0, 0]]

    def pad_before_pool(spec):
        """A ZeroPadding2D between bn_a and pool_max of the chain (a Sequential list: order is wiring)."""
        index = next(i for i, layer in enumerate(spec.layers) if layer["name"] == "pool_max")
        spec.layers.insert(
            index,
            {
                "class_name": "ZeroPadding2D",
                "name": "zero",
                "inputs": ["bn_a"],
                "weights": [],
                "config": {
                    "name": "zero",
                    "trainable": True,
                    "padding": [[1, 1], [1, 1]],
                    "data_format": "channels_last",
                },
            },
        )

    return [
        ("truncated HDF5 file", truncated, "cannot read the file: neither a Keras HDF5 file nor a .keras archive"),
        ("not a Keras file", not_keras, "cannot read the file: neither a Keras HDF5 file nor a .keras archive"),
        ("weights-only HDF5", weights_only, "no 'model_config' attribute"),
        (
            "config missing a key",
            h5("missing-key", drop_key("stem", "kernel_size")),
            "layer 'stem' (Conv2D): config has no 'kernel_size'",
        ),
        (
            "unknown config key",
            h5("unknown-key", set_key("sep", "stride", [1, 1])),
            "layer 'sep' (SeparableConv2D): config key 'stride' is not supported",
        ),
        (
            "weight of the wrong shape",
            h5("wrong-shape", mutate_spec=wrong_shape),
            "layer 'stem' (Conv2D): weight 'stem/kernel:0' (kernel) has shape [3,3,2,8], the config implies [3,3,1,8]",
        ),
        (
            "unknown layer class",
            h5("unknown-class", rename_class("act_tanh", "Lambda")),
            "layer 'act_tanh' (Lambda): layer type not supported by gapnet",
        ),
        ("cycle", h5("cycle", set_inputs("sep", ["add3"])), "the graph has a cycle through it"),
        (
            "unknown inbound layer",
            h5("unknown-inbound", set_inputs("add3", ["mul", "nonexistent"])),
            "layer 'add3' (Add): reads 'nonexistent', which is not a layer of the model",
        ),
        (
            "shared layer",
            h5("shared", shared),
            "layer 'gate' (Conv2D): is called 2 times: shared layers are not supported",
        ),
        ("two outputs", h5("two-outputs", two_outputs), "the model has 2 outputs; gapnet models have exactly one"),
        (
            "channels_first",
            h5("channels-first", set_key("stem", "data_format", "channels_first")),
            "layer 'stem' (Conv2D): data_format \"channels_first\" is not supported",
        ),
        (
            "dilation with strides",
            h5("dilated-strided", lambda c: (set_key("sep", "dilation_rate", [2, 2])(c))),
            "layer 'sep' (SeparableConv2D): dilation_rate [2,2] with strides [2,2] is not supported",
        ),
        (
            "ReLU threshold",
            h5("threshold", spec_fn=_with_threshold),
            "layer 'relu6' (ReLU): threshold 0.5 is not supported (only 0)",
        ),
        (
            "softmax over a feature map",
            h5("softmax-map", set_key("act_tanh", "activation", "softmax")),
            "layer 'act_tanh' (Activation): softmax over the channels of a feature map is not supported",
        ),
        (
            "unsupported activation",
            h5("elu", set_key("stem", "activation", "elu")),
            "layer 'stem' (Conv2D): activation 'elu' is not supported",
        ),
        (
            "keepdims",
            h5("keepdims", set_key("gap", "keepdims", True)),
            "layer 'gap' (GlobalAveragePooling2D): keepdims=true is not supported",
        ),
        (
            "mixed precision",
            h5("float16", set_key("stem", "dtype", "float16")),
            "layer 'stem' (Conv2D): dtype \"float16\" is not supported: gapnet computes in float32",
        ),
        (
            "ZeroPadding2D before a pool",
            h5("pad-pool", spec_fn=chain_model, mutate_spec=pad_before_pool),
            "layer 'zero' (ZeroPadding2D): is read by 'pool_max' (MaxPooling2D): "
            "a ZeroPadding2D is only supported when one convolution reads it",
        ),
        (
            "hard_sigmoid of an unknown Keras version",
            h5("hard-sigmoid", version=""),
            "layer 'dw' (DepthwiseConv2D): activation 'hard_sigmoid' means 0.2x+0.5 in Keras 2 and x/6+0.5 in Keras 3",
        ),
        (
            ".keras without weights",
            archive("no-weights", members={"config.json", "metadata.json"}),
            "the .keras archive has no model.weights.h5",
        ),
        (
            ".keras with a variable missing",
            archive("missing-var", weights_hook=drop_var),
            "layer 'stem' (Conv2D): the file stores 1 weight array(s) (0) where the config implies 2 (kernel, bias)",
        ),
        (
            ".keras with a bad inbound tensor",
            archive(
                "bad-history",
                mutate_config=lambda c: _layer(c, "mul")["inbound_nodes"][0]["args"][0][1]["config"].__setitem__(
                    "keras_history", ["gate", 1, 0]
                ),
            ),
            "layer 'mul' (Multiply): reads call #1 of layer 'gate': "
            "layers called more than once (shared layers) are not supported",
        ),
    ]


def _with_threshold():
    spec = chain_model()
    next(layer for layer in spec.layers if layer["name"] == "relu6")["config"]["threshold"] = 0.5
    return spec


def check_bad_files(tmp):
    failures = []
    for description, write, expected in bad_cases(tmp):
        path = write()
        out = os.path.join(tmp, "bad-out.json")
        result = run([PYTHON, IMPORTER, path, out])
        lines = result.stderr.splitlines()
        prefix = f"keras_to_gapnet: error: {path}: "
        problems = []
        if result.returncode != 1:
            problems.append(f"exit status {result.returncode}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if "Traceback" in result.stderr:
            problems.append("a traceback")
        if result.stdout:
            problems.append(f"stdout {result.stdout!r}")
        if not lines or not lines[0].startswith(prefix) or expected not in lines[0]:
            problems.append(f"message {lines[:3]} does not hold {expected!r}")
        if problems:
            failures.append(f"{description}: " + "; ".join(problems))
        else:
            print(f"ok  refused, {description}: {lines[0][len(prefix):]}")
    assert not failures, "bad files not refused as they should be:\n  " + "\n  ".join(failures)


# ---- main ---------------------------------------------------------------------------------------------------


def write_reference(path):
    x = reference_inputs()
    y = mini_xception_outputs(x).astype(np.float32)
    np.savez(path, x=x, y=y)
    for i, row in enumerate(y):
        top = np.argsort(-row)[:3]
        print(f"input {i}: " + ", ".join(f"{EMOTIONS[j]} {row[j]:.4f}" for j in top))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-reference":
        write_reference(sys.argv[2])
        return
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: test_keras_import.py PATH/TO/gapnet   (or --write-reference OUT.npz)")
    gapnet = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        check_published_model(gapnet, tmp)
        outputs = {}
        for spec_fn, container, version in (
            (chain_model, "hdf5", "2.0.5"),
            (chain_model, "keras", "3.3.3"),
            (graph_model, "hdf5", "2.4.0"),
            (graph_model, "keras", "3.3.3"),
            (keras3_activations_model, "keras", "3.3.3"),
            (vector_model, "hdf5", "2.4.0"),
            (vector_model, "keras", "3.3.3"),
        ):
            outputs[(spec_fn.__name__, version)] = check_synthetic(gapnet, tmp, spec_fn(), container, version)
        check_structure(outputs[("chain_model", "2.0.5")], outputs[("graph_model", "2.4.0")])
        check_mistakes_are_seen(gapnet, tmp, outputs[("chain_model", "2.0.5")], outputs[("graph_model", "2.4.0")])
        check_bad_files(tmp)
    print("all Keras import tests passed")


if __name__ == "__main__":
    main()
