"""Small Keras models for tests/test_keras_import.py, written with h5py in Keras's own layouts: Spec (the
layers and their reference in PyTorch), Keras 2 HDF5 files, Keras 3 .keras archives, and the models."""

import copy
import json
import os
import tempfile
import zipfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from keras_import_reference import batch_norm_keras, conv_keras, depthwise_keras, keras_activation, pool_keras


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
