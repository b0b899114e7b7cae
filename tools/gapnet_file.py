"""What gapnet's importers share (tools/onnx_to_gapnet.py, tools/keras_to_gapnet.py): the error they
raise, the tensor encoding they write, and the model's "input" object (docs/model-format.md)."""
import base64
import json
import sys

import numpy as np

MAX_TESTS = 100  # recorded test cases gapnet reads from one file (engine/io/model_json.cpp)


class ConversionError(Exception):
    """The model cannot be converted exactly; the message names the node or layer and the reason."""


class NonFinite(ConversionError):
    """A tensor to write holds NaN or Inf, which gapnet's format refuses."""


def tensor(array):
    """A gapnet tensor dict: base64 little-endian float32, as tools/export_pytorch.py writes them."""
    a = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    if not np.all(np.isfinite(a)):
        raise NonFinite("a tensor holds NaN or Inf, which gapnet's format cannot store")
    data = base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")
    return {"shape": list(a.shape), "dtype": "float32", "encoding": "base64", "data": data}


def input_spec(shape, vector, what, color=None, mean=None, std=None, scale=None):
    """gapnet's "input" object for an input of `shape` [C, H, W] (`what` names it in messages, e.g.
    "input 'x'"): an image, grayscale or rgb by its channel count unless `color` says otherwise, or a
    tensor ("none") for a `vector` input or any other channel count. The importers' --color, --mean,
    --std and --scale options, checked against the input."""
    c, h, w = shape
    if vector:
        if color not in (None, "none"):
            raise ConversionError(f"{what} is a vector of {c}, not an image: --color must be none")
        color = "none"
    elif color is None:
        color = {1: "grayscale", 3: "rgb"}.get(c, "none")
    elif color != "none" and c != {"grayscale": 1, "rgb": 3}[color]:
        raise ConversionError(f"--color {color} needs {1 if color == 'grayscale' else 3} channel(s); {what} has {c}")
    spec = {"channels": c, "height": h, "width": w, "color": color}
    if color == "none" and any(v is not None for v in (mean, std, scale)):
        raise ConversionError("--mean, --std and --scale describe image pixels; the input is a tensor (color none)")
    if scale is not None:
        if not scale > 0:
            raise ConversionError(f"--scale {scale} must be positive")
        spec["scale"] = float(scale)
    for key, values in (("mean", mean), ("std", std)):
        if values is not None:
            if len(values) != c:
                raise ConversionError(f"--{key} needs {c} value(s), one per channel, got {len(values)}")
            if key == "std" and any(not v > 0 for v in values):
                raise ConversionError("--std values must be positive")
            spec[key] = [float(v) for v in values]
    return spec


def add_image_arguments(ap):
    """The importers' options for how a photo becomes the input, beyond colour and normalization
    (docs/model-format.md#input)."""
    ap.add_argument(
        "--resize",
        choices=["stretch", "shorter_side", "letterbox"],
        help="how an image becomes the input size (default stretch)",
    )
    ap.add_argument(
        "--shorter-side",
        type=int,
        metavar="S",
        help="with --resize shorter_side: scale the shorter side to S, then crop the middle "
        "(torchvision: 256 for a 224x224 input)",
    )
    ap.add_argument("--pad", type=float, metavar="V", help="with --resize letterbox: the pad value, 0..255")
    ap.add_argument(
        "--filter",
        choices=["area", "bilinear"],
        help="the resampling filter where an image shrinks (default area; torchvision: bilinear)",
    )
    ap.add_argument("--channel-order", choices=["rgb", "bgr"], help="for rgb inputs (default rgb)")


def image_options(args):
    """The "input" keys the options of add_image_arguments set."""
    keys = {
        "resize": args.resize,
        "shorter_side": args.shorter_side,
        "pad": args.pad,
        "filter": args.filter,
        "channel_order": args.channel_order,
    }
    return {k: v for k, v in keys.items() if v is not None}


def add_image_options(spec, options):
    """`spec` with the image `options` (image_options), checked where the C++ loader would refuse them."""
    if not options:
        return spec
    if spec["color"] == "none":
        raise ConversionError(
            "--resize, --shorter-side, --pad, --filter and --channel-order describe images; "
            "the input is a tensor (color none)"
        )
    resize = options.get("resize", "stretch")
    if "shorter_side" in options:
        side = max(spec["height"], spec["width"])
        if resize != "shorter_side":
            raise ConversionError("--shorter-side needs --resize shorter_side")
        if not side <= options["shorter_side"] <= 8 * side:
            raise ConversionError(f"--shorter-side must be from {side} (the input's larger side) to {8 * side}")
    if "pad" in options:
        if resize != "letterbox":
            raise ConversionError("--pad needs --resize letterbox")
        if not 0 <= options["pad"] <= 255:
            raise ConversionError("--pad must be a pixel value from 0 to 255")
    if options.get("channel_order") == "bgr" and spec["color"] != "rgb":
        raise ConversionError("--channel-order bgr needs an rgb input")
    return dict(spec, **options)


def attach_tests(doc, tests):
    """Stores the recorded `tests` in `doc` (none: no key), at most MAX_TESTS of them."""
    if len(tests) > MAX_TESTS:
        raise ConversionError(f"--test-data gives {len(tests)} samples; a gapnet file holds at most {MAX_TESTS}")
    if tests:
        doc["tests"] = tests


def write(program, path, doc, input_shape):
    """Writes `doc` to `path` and says so on one line; an unwritable path exits with one error line."""
    try:
        with open(path, "w") as f:
            json.dump(doc, f)
            f.write("\n")
    except OSError as e:
        sys.exit(f"{program}: error: {path}: {e}")
    tests = len(doc.get("tests", []))
    print(
        f"wrote {path}: {len(doc['layers'])} layers, input [{','.join(str(v) for v in input_shape)}], "
        f"{len(doc['labels'])} outputs" + (f", {tests} test case(s)" if tests else "")
    )
