"""What Keras computes, written in PyTorch (NCHW) for tests/test_keras_import.py: `same` padding, pooling,
convolutions, batch norm and activations as Keras defines them, and MiniXception, the published
model's architecture by hand, with its reference inputs and outputs."""

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from keras_import_common import FACE, KERAS_FILE


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
