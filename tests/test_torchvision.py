#!/usr/bin/python3
"""Real torchvision networks through gapnet, end to end: tools/export_torchvision.py builds each with
seeded random weights, exports it with torch.onnx.export, converts it with tools/onnx_to_gapnet.py
and records PyTorch's outputs; `gapnet verify` must then reproduce them within its default tolerance
(|v - r| <= 1e-5 * max(1, |r|)).

    /usr/bin/python3 tests/test_torchvision.py PATH/TO/gapnet

The four networks cover what the graph format brought: ResNet-18 (residual additions), MobileNetV2
(Clip as relu6, inverted residuals), SqueezeNet 1.1 (concatenations; the head is a convolution,
then a global pool), EfficientNet-B0 (SiLU, exported as Sigmoid and Mul, as one silu layer;
squeeze-and-excitation: global pool, 1x1 convolutions on a vector as dense layers, a feature map times
a sigmoid gate). For each one the test
also checks that every tensor torchvision initialises to a constant was perturbed (a batch norm left
at the identity would hide a mixed-up parameter), that the file has the expected structure (layer
types and counts, with the output shapes `gapnet summary --json` infers; ImageNet labels; three tests
with non-trivial outputs);
SqueezeNet goes through the command line (`--check`), the others through the library.

Needs Debian's python3-torch, python3-torchvision, python3-onnx and python3-numpy: a missing one is
a failure, not a skip. Files are written to a temporary directory (ResNet-18's is 65 MB) and removed.
Takes under a minute on one core.
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "export_torchvision.py")

try:
    import numpy as np
    import onnx  # noqa: F401  (the exporter needs it: fail here, with the package to install)
    import torch
    import torchvision  # noqa: F401
except ImportError as e:
    sys.exit(f"FAIL: {e}: install Debian's python3-torch, python3-torchvision, python3-onnx and python3-numpy")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_torchvision  # noqa: E402

# name -> layer types (with counts) its gapnet file must hold; "multiply_vector" counts multiplies of
# a feature map by a vector (squeeze-and-excitation).
EXPECTED = {
    "resnet18": {"conv2d": 20, "add": 8, "max_pool2d": 1, "global_avg_pool2d": 1, "dense": 1},
    "mobilenet_v2": {"conv2d": 52, "relu6": 35, "add": 10, "dense": 1},
    "squeezenet1_1": {"conv2d": 26, "concat": 8, "max_pool2d": 3, "global_avg_pool2d": 1},
    "efficientnet_b0": {
        "conv2d": 49,
        "silu": 49,
        "sigmoid": 16,
        "multiply": 16,
        "multiply_vector": 16,
        "add": 9,
        "global_avg_pool2d": 17,
        "dense": 33,
    },
}
THROUGH_COMMAND_LINE = "squeezenet1_1"


def check_perturbed(name, model):
    """No floating-point parameter or buffer may be constant (batch-norm scale 1, shift 0, zero biases)."""
    constant = [
        key
        for key, t in model.state_dict().items()
        if t.is_floating_point() and t.numel() > 1 and bool(torch.all(t == t.reshape(-1)[0]))
    ]
    assert not constant, f"{name}: still constant after perturbation: {', '.join(constant[:5])}"
    variances = [t for key, t in model.state_dict().items() if key.endswith("running_var")]
    assert all(bool(torch.all(v > 0)) for v in variances), f"{name}: a running variance <= 0"


def check_structure(name, doc, shapes):
    """Layer types and counts, input, labels and tests; `shapes`: each layer's output shape, as
    `gapnet summary --json` gives them."""
    counts = {}
    for layer in doc["layers"]:
        counts[layer["type"]] = counts.get(layer["type"], 0) + 1
        if (
            layer["type"] == "multiply"
            and len(shapes[layer["name"]]) == 3
            and any(len(shapes[source]) == 1 for source in layer["inputs"])
        ):
            counts["multiply_vector"] = counts.get("multiply_vector", 0) + 1
    for kind, count in EXPECTED[name].items():
        assert counts.get(kind, 0) == count, f"{name}: {counts.get(kind, 0)} '{kind}' layers, expected {count}"
    assert shapes[doc["layers"][-1]["name"]] == [1000], f"{name}: the output is not 1000 values"
    assert doc["input"] == {
        "channels": 3,
        "height": 224,
        "width": 224,
        "color": "rgb",
        "scale": 1 / 255,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "resize": "shorter_side",
        "shorter_side": 256,
        "filter": "bilinear",
    }, doc["input"]
    assert len(doc["labels"]) == 1000 and doc["labels"][0] == "tench", doc["labels"][:3]
    assert len(doc["tests"]) == 3, f"{name}: {len(doc['tests'])} tests"
    outputs = [recorded_output(case) for case in doc["tests"]]
    assert all(
        o.shape == (1000,) and 0.01 < o.std() < 10 for o in outputs
    ), f"{name}: recorded outputs of std {[float(o.std()) for o in outputs]}"
    assert not np.allclose(outputs[0], outputs[1]), f"{name}: two test inputs give the same outputs"


def recorded_output(case):
    t = case["output"]
    return np.frombuffer(base64.b64decode(t["data"]), dtype="<f4").reshape(t["shape"])


def verify(gapnet, path):
    run = subprocess.run([gapnet, "verify", path], capture_output=True, text=True)
    line = (run.stdout + run.stderr).strip()
    assert run.returncode == 0, f"gapnet verify fails: {line}"
    match = re.search(r"largest difference ([0-9.eE+-]+)", line)
    assert match, f"gapnet verify printed no largest difference: {line}"
    return float(match.group(1))


def run_model(gapnet, tmp, name):
    path = os.path.join(tmp, f"{name}.json")
    start = time.time()
    if name == THROUGH_COMMAND_LINE:
        run = subprocess.run(
            [sys.executable, TOOL, name, path, "--check", "--gapnet", gapnet], capture_output=True, text=True
        )
        assert run.returncode == 0, f"{name}: export_torchvision.py failed: {run.stdout}{run.stderr}"
        assert "test case(s) match" in run.stdout, f"{name}: --check printed {run.stdout!r}"
        model = export_torchvision.build(name)
    else:
        model = export_torchvision.build(name)
        export_torchvision.write(model, name, path)
    check_perturbed(name, model)
    with open(path) as f:
        doc = json.load(f)
    summary = subprocess.run([gapnet, "summary", "--json", path], capture_output=True, text=True)
    assert summary.returncode == 0, f"{name}: gapnet summary fails: {summary.stderr}"
    shapes = {layer["name"]: layer["output_shape"] for layer in json.loads(summary.stdout)["layers"]}
    check_structure(name, doc, shapes)
    difference = verify(gapnet, path)
    size = os.path.getsize(path) / 1e6
    os.remove(path)
    print(
        f"ok  {name}: {len(doc['layers'])} layers, {size:.0f} MB, gapnet verify largest difference "
        f"{difference:.3g} (tolerance 1e-5), {time.time() - start:.1f} s",
        flush=True,
    )


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/gapnet")
    gapnet = sys.argv[1]
    if not os.access(gapnet, os.X_OK):
        sys.exit(f"FAIL: {gapnet} is not an executable gapnet program")
    torch.set_num_threads(1)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXPECTED:
            try:
                run_model(gapnet, tmp, name)
            except AssertionError as e:
                print(f"FAIL {name}: {e}", flush=True)
                failures += 1
            except Exception as e:  # one network's crash must not hide the others' results
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
                failures += 1
    if failures:
        sys.exit(f"FAIL: {failures} of {len(EXPECTED)} torchvision networks")
    print(f"all {len(EXPECTED)} torchvision networks match PyTorch through gapnet")


if __name__ == "__main__":
    main()
