#!/usr/bin/python3
"""Bring a torchvision classifier to gapnet: torchvision.models -> torch.onnx.export -> onnx_to_gapnet.

    /usr/bin/python3 tools/export_torchvision.py resnet18 resnet18.json [--seed S] [--tests N]
        [--size PIXELS] [--softmax] [--onnx resnet18.onnx] [--check [--gapnet PATH]]
    /usr/bin/python3 tools/export_torchvision.py --list

Debian's python3-torchvision ships the architectures, not trained weights (and nothing may be
downloaded here), so the network gets seeded random weights. A freshly built torchvision model is
not a fair test, though: its batch norms are the identity (scale 1, shift 0, running mean 0, running
variance 1) and many biases are 0, and a converter or engine that mixed up two such parameters would
still pass. So every tensor that torchvision initialises to a constant c is perturbed, as training
would have moved it: a norm layer's scale to c + U(-0.4, 0.4), its shift to c + U(0.2, 0.6), any
other bias to c + N(0, 0.1^2), anything else around c. The running statistics are then measured, as
training measures them: one forward pass of the batch norms in training mode (momentum None: a plain
average) over a batch of seeded random images. They are the real means and positive variances of
the activations, so activations stay of order 1, logits are small (no saturated softmax) and the
squeeze-and-excitation gates sit around 0.5, neither open nor shut.

Numerical sanity needs two more choices. Random networks amplify rounding far more than trained
ones: after a batch norm whose statistics are measured like this, a ReLU passes a perturbation with
gain P(h > 0) / Var(relu(h)) relative to the signal, 1.47 per layer for h ~ N(0, 1). With shifts
around 0 and ResNet-50's residual branches at full scale, float32 rounding grew to 3e-5 (PyTorch)
and 5e-5 (gapnet) away from the float64 result on logits of order 1, 7e-5 apart: seven times
`gapnet verify`'s tolerance, from rounding alone (trained networks run in float16, whose rounding
is 8,000 times coarser, so they do not amplify it like that). Hence shifts drawn positive (gain 1.28
for h ~ N(0.4, 1): more units active), and ResNets built with torchvision's zero_init_residual=True,
whose residual branches' last batch-norm scale starts at 0 (then U(-0.4, 0.4)), so that each block
adds a modest correction to its identity path. All of MODELS then agree with PyTorch within 6e-6.

The model is exported with the TorchScript-based exporter (eval mode, opset 14, dynamic batch;
`dynamo=False` where torch.onnx.export has that parameter), converted by tools/onnx_to_gapnet.py,
and PyTorch's own outputs (the logits, or with --softmax the probabilities of an appended softmax)
for `--tests` seeded random images are recorded in the file, so `gapnet verify FILE` checks the
engine against PyTorch. Input: 3 x size x size RGB, ImageNet's mean and std; labels: the ImageNet
class names torchvision lists for the architecture's weights (no weights are downloaded for them).

Any classifier torchvision.models.get_model knows can be tried; MODELS lists the ones verified
(tests/test_torchvision.py runs some of them in CI). Errors are one line, exit status 1.
"""
import argparse
import inspect
import io
import json
import os
import subprocess
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

import export_pytorch  # noqa: E402  (random_inputs: seeded random pixels, preprocessed)
import gapnet_file  # noqa: E402
import onnx_to_gapnet  # noqa: E402

OPSET = 14  # HardSwish is an operator from 14 on; Debian's onnx 1.12 checks up to 17
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet's, as torchvision's weights use

# The architectures verified through gapnet, with the keyword arguments they are built with.
# ResNets: zero_init_residual (see the module docstring). GoogLeNet: no auxiliary classifiers (they
# only train), its own weight initialisation, and no transform_input (which re-normalises the input;
# gapnet's file already says how to).
MODELS = {
    "resnet18": {"zero_init_residual": True},
    "resnet50": {"zero_init_residual": True},
    "mobilenet_v2": {},
    "mobilenet_v3_small": {},
    "squeezenet1_1": {},
    "efficientnet_b0": {},
    "mnasnet0_5": {},
    "regnet_x_400mf": {},
    "densenet121": {},
    "googlenet": {"aux_logits": False, "init_weights": True, "transform_input": False},
    # also verified:
    "resnext50_32x4d": {"zero_init_residual": True},
    "mobilenet_v3_large": {},
    "efficientnet_b1": {},
    "regnet_y_400mf": {},
    "alexnet": {},
}

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NORM_WEIGHT = (-0.4, 0.4)  # a norm layer's scale c (torchvision: 1, or 0 with zero_init_residual): c + U(a, b)
NORM_BIAS = (0.2, 0.6)  # a norm layer's shift c (torchvision: 0): c + U(a, b); positive: see the docstring
BIAS_STD = 0.1  # any other bias torchvision starts at a constant c: c + N(0, s^2)


class ExportError(Exception):
    """The model cannot be built, exported or converted; one line."""


def input_spec(size):
    return {
        "channels": 3,
        "height": size,
        "width": size,
        "color": "rgb",
        "scale": 1.0 / 255.0,
        "mean": list(MEAN),
        "std": list(STD),
    }


def imagenet_resize(size):
    """torchvision's ImageNet evaluation transform: Resize(size / 0.875) (bilinear, antialiased), then
    CenterCrop(size): 256 then 224 for a 224x224 input."""
    return {"resize": "shorter_side", "shorter_side": round(size / 0.875), "filter": "bilinear"}


def labels_for(name, classes):
    """ImageNet's class names from torchvision's weight metadata (a table in the package, nothing
    downloaded), else "0".."n-1"."""
    try:
        categories = list(torchvision.models.get_model_weights(name).DEFAULT.meta["categories"])
    except (ValueError, KeyError, AttributeError):
        categories = []
    return categories if len(categories) == classes else [str(i) for i in range(classes)]


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _show_size(images):
    return "x".join(str(d) for d in images.shape[1:])


def _constant(t):
    return t.numel() > 0 and bool(torch.all(t == t.reshape(-1)[0]))


def perturb(model, generator):
    """Give every constant-initialised parameter and buffer a trained-looking value (see the module
    docstring); running statistics are left for calibrate(). Returns the names changed."""
    changed = []
    for module_name, module in model.named_modules():
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for name, t in tensors:
            if not t.is_floating_point() or name in ("running_mean", "running_var") or not _constant(t):
                continue
            c = float(t.reshape(-1)[0])
            with torch.no_grad():
                noise = torch.empty(t.shape)
                if name == "weight" and isinstance(module, NORMS):
                    t.copy_(c + noise.uniform_(*NORM_WEIGHT, generator=generator))
                elif name == "bias" and isinstance(module, NORMS):
                    t.copy_(c + noise.uniform_(*NORM_BIAS, generator=generator))
                elif name == "bias":
                    t.copy_(c + noise.normal_(0.0, BIAS_STD, generator=generator))
                else:  # anything else: c (1 + N(0, 0.2^2)), or N(0, 0.1^2) around 0
                    noise.normal_(0.0, 1.0, generator=generator)
                    t.copy_(c * (1 + 0.2 * noise) if c != 0 else 0.1 * noise)
            changed.append(f"{module_name}.{name}" if module_name else name)
    return changed


def calibrate(model, images):
    """Running means and variances measured on `images`, as training measures them: the batch norms
    in training mode (the rest, dropout and stochastic depth, in eval mode), averaged (momentum None)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        with torch.no_grad():
            model(images)
    except RuntimeError as e:  # e.g. an input too small for the architecture
        raise ExportError(f"the model cannot run on {_show_size(images)} inputs: {_first_line(e)}")
    model.eval()
    for m in norms:
        if not bool(torch.all(m.running_var > 0)):
            raise ExportError("a batch norm measured a zero variance (a dead channel); try another --seed")


def build(name, seed=0, size=224, softmax=False):
    """The torchvision classifier `name` in eval mode, its weights seeded, perturbed and calibrated."""
    if not hasattr(torchvision.models, "get_model"):
        raise ExportError(f"torchvision {torchvision.__version__} has no models.get_model (0.14 or later)")
    torch.manual_seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torchvision.models.get_model(name, weights=None, **MODELS.get(name, {}))
    except (ValueError, TypeError) as e:
        raise ExportError(f"torchvision cannot build '{name}': {e}")
    generator = torch.Generator().manual_seed(seed)
    perturb(model, generator)
    calibrate(model, export_pytorch.random_inputs(input_spec(size), 8, seed=seed + 1000))
    if softmax:
        model = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    return model


def to_onnx(model, size):
    """torch.onnx.export (TorchScript-based, eval mode, opset OPSET, dynamic batch) as a ModelProto."""
    options = {
        "opset_version": OPSET,
        "input_names": ["input"],
        "output_names": ["output"],
        "dynamic_axes": {"input": {0: "N"}, "output": {0: "N"}},
        "training": torch.onnx.TrainingMode.EVAL,
        "do_constant_folding": True,
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 3, size, size), buffer, **options)
    except Exception as e:  # torch.onnx's own errors (an operator it cannot export, ...) are of many types
        raise ExportError(f"torch.onnx.export fails: {_first_line(e)}")
    return onnx.load_from_string(buffer.getvalue())


def write(model, name, path, seed=0, tests=3, size=224, onnx_path=None):
    """Export `model` (built by build()) through ONNX, convert it, record PyTorch's outputs for `tests`
    seeded random images and write the gapnet JSON to `path`; returns the gapnet dict."""
    proto = to_onnx(model, size)
    if onnx_path:
        onnx.save(proto, onnx_path)
    conversion = onnx_to_gapnet.convert(proto)
    classes = conversion.output_shape[0] if len(conversion.output_shape) == 1 else 0
    metadata = onnx_to_gapnet.provenance(proto, conversion)
    metadata.update(
        {
            "source": f"torchvision.models.{name}",
            "weights": f"random, seed {seed}, perturbed and " "calibrated (tools/export_torchvision.py)",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "exporter": "tools/export_torchvision.py",
        }
    )
    doc = onnx_to_gapnet.document(
        conversion, labels_for(name, classes), "rgb", MEAN, STD, 1.0 / 255.0, name, metadata, imagenet_resize(size)
    )
    if tests:
        x = export_pytorch.random_inputs(input_spec(size), tests, seed=seed)
        with torch.no_grad():
            y = model(x)
        doc["tests"] = onnx_to_gapnet.test_cases(conversion, x.numpy(), y.numpy().astype(np.float32))
    with open(path, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    return doc


def export(name, path, seed=0, tests=3, size=224, softmax=False, onnx_path=None):
    """build() then write(): the torchvision classifier `name` as a gapnet file. Raises ExportError or
    onnx_to_gapnet.ConversionError."""
    return write(build(name, seed, size, softmax), name, path, seed, tests, size, onnx_path)


def verify(path, gapnet):
    """`gapnet verify FILE`: (passed, the line it printed)."""
    run = subprocess.run([gapnet, "verify", path], capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def main():
    ap = argparse.ArgumentParser(
        description="Export a torchvision classifier, with seeded random weights, " "to gapnet's format through ONNX."
    )
    ap.add_argument("model", nargs="?", help="a torchvision.models name, e.g. resnet18 (--list: the verified ones)")
    ap.add_argument("out", nargs="?", help="the gapnet JSON file to write")
    ap.add_argument("--list", action="store_true", help="print the architectures verified through gapnet")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights and the test inputs (default 0)")
    ap.add_argument("--tests", type=int, default=3, help="seeded random test images to record (default 3)")
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--softmax", action="store_true", help="append a softmax: probabilities instead of logits")
    ap.add_argument("--onnx", metavar="PATH", help="also keep the exported ONNX file")
    ap.add_argument("--check", action="store_true", help="run `gapnet verify` on the written file")
    ap.add_argument(
        "--gapnet",
        default=os.path.join(ROOT, "build", "release", "gapnet"),
        help="the gapnet program for --check (default build/release/gapnet)",
    )
    args = ap.parse_args()
    if args.list:
        print("\n".join(MODELS))
        return
    if not args.model or not args.out:
        ap.error("a model name and an output file are needed")
    if not 0 <= args.tests <= gapnet_file.MAX_TESTS:
        ap.error(f"--tests must be 0..{gapnet_file.MAX_TESTS}")
    torch.set_num_threads(1)
    try:
        doc = export(args.model, args.out, args.seed, args.tests, args.size, args.softmax, args.onnx)
    except (ExportError, onnx_to_gapnet.ConversionError, OSError) as e:
        sys.exit(f"export_torchvision: error: {args.model}: {e}")
    print(f"wrote {args.out}: {args.model}, {len(doc['layers'])} layers, " f"{len(doc.get('tests', []))} test case(s)")
    if args.check:
        if not os.access(args.gapnet, os.X_OK):
            sys.exit(
                f"export_torchvision: error: --check needs the gapnet program ({args.gapnet}): "
                "build it (make build) or pass --gapnet PATH"
            )
        passed, line = verify(args.out, args.gapnet)
        print(line)
        if not passed:
            sys.exit(1)


if __name__ == "__main__":
    main()
