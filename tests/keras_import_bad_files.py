"""The bad files of tests/test_keras_import.py: each must be refused with one line on stderr naming the
file and the layer, exit status 1, and no traceback."""

import os
import zipfile

import h5py
import numpy as np

from keras_import_common import IMPORTER, KERAS_FILE, PYTHON, run
from keras_import_models import (
    chain_model,
    graph_model,
    keras2_config,
    keras3_config,
    write_keras2_h5,
    write_keras3_archive,
)


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
