#!/usr/bin/python3
"""Convert a Keras model file to gapnet's JSON model format (docs/model-format.md); see docs/keras.md.

As a program (Debian's system interpreter with python3-h5py and python3-numpy; no TensorFlow, no
Keras):

    /usr/bin/python3 tools/keras_to_gapnet.py MODEL.h5|MODEL.keras OUT.json [--labels FILE]
        [--color grayscale|rgb|none] [--scale S] [--mean M ..] [--std S ..] [--name N]
        [--test-data FILE.npz ..] [--metadata FILE.json]

As a library:

    import keras_to_gapnet                                    # tools/ on sys.path
    doc = keras_to_gapnet.to_gapnet("model.h5", labels=[...], mean=[0.5], std=[0.5])
    # or in steps:
    model = keras_to_gapnet.load("model.h5")                 # config, weights, version
    conversion = keras_to_gapnet.convert(model)              # gapnet layers and shapes
    doc = keras_to_gapnet.document(conversion, labels, ...)
    doc["tests"] = keras_to_gapnet.test_cases(conversion, x_nhwc, y)

What it converts: Sequential and functional models whose layers are InputLayer, Conv2D,
SeparableConv2D, DepthwiseConv2D, BatchNormalization, Activation, ReLU, LeakyReLU, Softmax,
MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D (folded
into the convolution after it), Flatten, Dense, Dropout/SpatialDropout2D (skipped), Add,
Concatenate and Multiply; the graph becomes gapnet layers with `inputs`, in a topological order.

The rule, as for the ONNX importer: gapnet must compute exactly what Keras computes. Every key of
every layer's config is read; a value the engine cannot reproduce (a dilated strided convolution,
channels_first, a softmax over a feature map's channels, ReLU's threshold, an unknown layer, ...) is
refused with one line naming the layer, and nothing is approximated.

Where the parts are: tools/keras_files.py reads the two containers (HDF5 and .keras, confined and
bounded by tools/model_files.py; what each holds) and finds each layer's weights;
tools/keras_config.py reads the model config (the layer graph, each layer's keys);
tools/keras_layers.py converts the layers (how channels-last becomes channels-first; no HDF5 in it:
the TF.js layers-model importer shares it); this file writes the gapnet document and is the command
line.
"""
import argparse
import json
import os
import sys
import zipfile

import numpy as np

import gapnet_file
from gapnet_file import ConversionError, tensor as _tensor  # noqa: F401  (_tensor: tests/test_keras_import.py)
from keras_config import _show
from keras_files import KerasFile, load  # noqa: F401  (the library API)
from keras_layers import Conversion, convert  # noqa: F401  (the library API)

PROGRAM = "keras_to_gapnet"


# ---- the gapnet document ---------------------------------------------------------------------------------


def input_spec(conversion, color=None, mean=None, std=None, scale=None):
    """gapnet's "input" object (gapnet_file.input_spec)."""
    return gapnet_file.input_spec(
        conversion.input_shape, len(conversion.keras_input_shape) == 1, "the input", color, mean, std, scale
    )


def provenance(keras_file, conversion, source=None):
    metadata = {
        "converted_from": "keras",
        "converter": "tools/keras_to_gapnet.py",
        "keras_container": keras_file.container,
    }
    for key, value in (
        ("keras_version", conversion.keras_version),
        ("keras_backend", conversion.backend),
        ("keras_model_name", conversion.model_name),
        ("source", source),
    ):
        if value:
            metadata[key] = value
    return metadata


def document(
    conversion,
    labels=None,
    color=None,
    mean=None,
    std=None,
    scale=None,
    name="model",
    metadata=None,
    image_options=None,
):
    """The complete gapnet model dict."""
    outputs = conversion.output_size
    if labels is None:
        labels = [str(i) for i in range(outputs)]
    if len(labels) != outputs:
        raise ConversionError(f"{len(labels)} labels for {outputs} outputs")
    doc = {
        "format": "gapnet",
        "version": 1,
        "name": name,
        "input": gapnet_file.add_image_options(input_spec(conversion, color, mean, std, scale), image_options or {}),
        "labels": list(labels),
        "layers": conversion.layers,
    }
    if metadata:
        doc["metadata"] = metadata
    return doc


def test_cases(conversion, inputs, outputs):
    """gapnet "tests" from Keras-layout arrays: inputs [N, H, W, C] (or [N, F]), outputs [N, classes].
    Inputs are transposed to gapnet's [C, H, W]."""
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    for what, a, shape in (("x", inputs, conversion.keras_input_shape), ("y", outputs, [conversion.output_size])):
        if a.dtype != np.float32:
            raise ConversionError(f"test {what} is {a.dtype}, not float32")
        if list(a.shape[1:]) != list(shape):
            raise ConversionError(
                f"test {what} has shape {_show(a.shape)}; the model's is "
                f"{_show(['N', *shape])} (Keras's channels-last layout)"
            )
        if not np.all(np.isfinite(a)):
            raise ConversionError(f"test {what} holds NaN or Inf")
    if len(inputs) != len(outputs):
        raise ConversionError(f"{len(inputs)} test inputs but {len(outputs)} outputs")
    cases = []
    for x, y in zip(inputs, outputs):
        x = x.reshape(conversion.input_shape) if x.ndim == 1 else x.transpose(2, 0, 1)
        cases.append({"input": _tensor(x), "output": _tensor(y)})
    return cases


def read_test_data(path):
    """An .npz with x [N, H, W, C] (Keras's input layout, already preprocessed) and y [N, classes]
    (what Keras's model.predict returned for x)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise ConversionError(f"--test-data {path}: has no array '{missing[0]}' (needs x and y)")
            return data["x"], data["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ConversionError(f"--test-data {path}: not a readable .npz file ({e})")


def to_gapnet(path, labels=None, color=None, mean=None, std=None, scale=None, name=None):
    """The gapnet model dict for a Keras file (see load, convert and document)."""
    keras_file = load(path)
    conversion = convert(keras_file)
    name = name or os.path.splitext(os.path.basename(path))[0]
    return document(
        conversion, labels, color, mean, std, scale, name, provenance(keras_file, conversion, os.path.basename(path))
    )


def main():
    ap = argparse.ArgumentParser(
        description="Convert a Keras model file (.h5/.hdf5 or .keras) to gapnet's " "JSON model format (docs/keras.md)."
    )
    ap.add_argument("model", help="the Keras file: HDF5 (model.save('m.h5')) or a Keras 3 .keras archive")
    ap.add_argument("out", help="the gapnet JSON file to write")
    ap.add_argument("--labels", help="a text file with one class label per line (default: 0..n-1)")
    ap.add_argument(
        "--color",
        choices=["grayscale", "rgb", "none"],
        help="how images become the input (default by channel count: 1 grayscale, 3 rgb, else none)",
    )
    ap.add_argument("--scale", type=float, help="multiplies each 0..255 pixel (gapnet's default 1/255)")
    ap.add_argument("--mean", type=float, nargs="+", help="per-channel mean, after --scale")
    ap.add_argument("--std", type=float, nargs="+", help="per-channel standard deviation")
    gapnet_file.add_image_arguments(ap)
    ap.add_argument("--name", help="the model name (default: the file name)")
    ap.add_argument(
        "--metadata",
        metavar="FILE.json",
        help="a JSON object of extra metadata (provenance, licence, ...) stored in the file's "
        "metadata beside what the converter records",
    )
    ap.add_argument(
        "--test-data",
        action="append",
        default=[],
        metavar="FILE.npz",
        help="recorded tests for `gapnet verify`: an .npz with x [N,H,W,C] (preprocessed inputs in "
        "Keras's layout) and y [N,classes] (the model's outputs for them); may be repeated",
    )
    args = ap.parse_args()

    tests = []
    try:
        labels = None
        if args.labels:
            try:
                with open(args.labels) as f:
                    labels = [line.rstrip("\n") for line in f if line.strip()]
            except (OSError, UnicodeDecodeError) as e:
                sys.exit(f"{PROGRAM}: error: {args.labels}: {e}")
        extra = {}
        if args.metadata:
            try:
                with open(args.metadata) as f:
                    extra = json.load(f)
            except (OSError, ValueError) as e:
                sys.exit(f"{PROGRAM}: error: {args.metadata}: {e}")
            if not isinstance(extra, dict):
                sys.exit(f"{PROGRAM}: error: {args.metadata}: not a JSON object")
        keras_file = load(args.model)
        conversion = convert(keras_file)
        name = args.name or os.path.splitext(os.path.basename(args.model))[0]
        doc = document(
            conversion,
            labels,
            args.color,
            args.mean,
            args.std,
            args.scale,
            name,
            {**provenance(keras_file, conversion, os.path.basename(args.model)), **extra},
            gapnet_file.image_options(args),
        )
        for path in args.test_data:
            tests += test_cases(conversion, *read_test_data(path))
        gapnet_file.attach_tests(doc, tests)
    except ConversionError as e:
        sys.exit(f"{PROGRAM}: error: {args.model}: {e}")
    except Exception as e:  # a malformed file we did not foresee: still one line, never a traceback
        detail = str(e).splitlines()[0] if str(e) else ""
        sys.exit(f"{PROGRAM}: error: {args.model}: malformed model file ({type(e).__name__}: {detail})")
    gapnet_file.write(PROGRAM, args.out, doc, conversion.input_shape)


if __name__ == "__main__":
    main()
