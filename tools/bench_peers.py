#!/usr/bin/python3
"""gapnet against its peers, PyTorch, OpenCV DNN and ONNX Runtime, measured side by side; writes
docs/performance.md.

    /usr/bin/python3 tools/bench_peers.py [--rounds 5] [--iterations 100] [--models m1,m2,m3,...]
        [--out docs/performance.md] [--gapnet build/release/gapnet] [--ort-dir DIR] [--smoke]

Methodology
-----------
Models. M1-M3 are the reference models of the performance issue, built in PyTorch with seeded random
weights (He-normal weights, small uniform biases, so activations keep their scale through the layers
and the softmax is not flat); their parameter and MAC counts are checked against the issue's figures.
The real networks with a GAP head, ResNet-18, MobileNetV2, EfficientNet-B0 and SqueezeNet 1.1 at
224x224, come from torchvision as a user brings them to gapnet (tools/export_torchvision.py: the
architecture with seeded random weights, perturbed and calibrated, exported through ONNX and
converted; a softmax appended). The shipped trained models (models/emotion_mini_xception.json, the
mini-Xception imported from Keras; models/fashion_gap.json, models/fashion_flatten.json) are used as
they are. Every gapnet file but the reference models' is rebuilt in PyTorch from its own JSON
weights (torch_model_from_gapnet: one module per layer, any graph), so every engine runs exactly
the same network.

Files. Each reference model is written once to gapnet's format with tools/export_pytorch.py's
export() (base64 tensors; the file records PyTorch's outputs for seeded inputs); every model is
written to ONNX with torch.onnx.export (opset 10, dynamic batch), which OpenCV DNN and ONNX Runtime
read (opset 10: OpenCV 4.6 cannot read opset 11's Clip, MobileNetV2's ReLU6). For the largest model
(the smallest in --smoke) a second gapnet file with JSON number arrays is written, to measure how
fast that encoding loads.

Correctness first. Before any timing, `gapnet verify` re-runs the recorded cases of every gapnet file
(tolerance 1e-5); a failure stops the run. Every peer worker reads the recorded inputs from the
gapnet file, runs them through the engine it is about to time, in the same process, and reports the
largest difference from PyTorch's recorded outputs; a peer that differs by more than 1e-4 is refused
for that model: it is not timed again, its figures are not reported, and --smoke fails.

Engines. gapnet: `gapnet bench --json` (its own process). PyTorch: the model traced with
torch.jit.trace, frozen with torch.jit.freeze, run under torch.inference_mode(), once with oneDNN
(torch.backends.mkldnn) enabled and once disabled (convolutions and matrix products then go to BLAS,
OpenBLAS here); the faster of the two in each configuration is "best PyTorch". OpenCV DNN: the ONNX
file with cv2.dnn.readNetFromONNX, the OpenCV backend on the CPU. ONNX Runtime: the npm package
onnxruntime-node, version ORT_VERSION (1.30.0; its own prebuilt libonnxruntime, CPU execution
provider), run from Node.js by tools/ort_worker.js: InferenceSession.create on the ONNX file with
graphOptimizationLevel 'all', executionMode 'sequential', intraOpNumThreads n, interOpNumThreads 1
(ORT's other settings at their defaults, so its pool's threads spin while waiting, as a user gets),
one `await session.run(...)` per timed run (the output copied into a JavaScript typed array, as the
Python peers copy theirs into numpy). This script installs it on first use with
`npm install --ignore-scripts onnxruntime-node@1.30.0` (the package ships its CPU binaries; its
install script would only download GPU ones) into --ort-dir, outside the repository (default
$GAPNET_ORT_DIR or ~/.cache/gapnet/onnxruntime-node-1.30.0); if Node.js, npm or the install fails,
the run fails: no peer is skipped. Threads: gapnet --threads n; torch.set_num_threads(n) with
set_num_interop_threads(1); cv2.setNumThreads(n); ORT's intraOpNumThreads n (the calling thread is
one of them); and in every worker's environment OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
MKL_NUM_THREADS = n.

Timing. One block = one engine, model, thread count and batch size in a fresh process: load, check,
`warmup` untimed runs, then `iterations` timed runs of one forward pass over the batch (random inputs
uniform in [-1, 1], as gapnet bench uses). A block's figure is its median latency; throughput is
batch / median latency. Blocks are interleaved: for each round, for each model, thread count
(1, 2) and batch (1, 32), every engine runs one block, the engines' order rotating from round to
round, so a slow spell of a shared machine hits all engines alike. Each reported cell is the median
[min-max] over rounds of the block medians. Latency is batch 1, throughput batch 32. Iterations per
block are --iterations for small models and fewer for big ones (about --block-seconds of work, at
least --min-iterations), the same count for every engine.

After the first round, a peer more than --prune-factor (2) times slower than the best peer in a
configuration cannot be the best peer there and is not run again in it (its cell keeps the first
round's figure, marked †); without this, PyTorch without oneDNN on M3 at batch 32 takes most of a
full run. Most of a full run's time is M3 at batch 32: on a 2-core machine, `--rounds 3` took 25 to
50 minutes, up to 25 of them round 1's four PyTorch blocks there; later rounds, pruned, take 5 to 10
minutes each (the README's command uses 3 rounds, not the default 5, to keep a run under an hour).

Ratios compare gapnet's median with the best peer's (best PyTorch, OpenCV DNN or ONNX Runtime,
whichever is fastest in that configuration), both measured in this run.
"""
import argparse
import base64
import datetime
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

PEER_TOLERANCE = 1e-4
ONNX_OPSET = 10  # OpenCV 4.6 cannot read opset 11's Clip (its bounds are inputs there): MobileNetV2's ReLU6
ENGINES = ["gapnet", "pytorch", "pytorch-no-mkldnn", "opencv", "onnxruntime"]
PEERS = ENGINES[1:]
ENGINE_TITLES = {
    "gapnet": "gapnet",
    "pytorch": "PyTorch (oneDNN)",
    "pytorch-no-mkldnn": "PyTorch (no oneDNN)",
    "opencv": "OpenCV DNN",
    "onnxruntime": "ONNX Runtime",
}
# ONNX Runtime: the npm package onnxruntime-node at this version, installed by this script (outside
# the repository) and run by a Node.js worker.
ORT_VERSION = "1.30.0"
ORT_WORKER = os.path.join(ROOT, "tools", "ort_worker.js")
PYTHON_WORKERS = ["pytorch", "pytorch-no-mkldnn", "opencv"]  # the peers run by this script's --worker
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MiB = 1024 * 1024

# The reference models: key -> (title, input CxHxW, parameters, MACs per image).
REFERENCE = {
    "m1": ("M1 fmnist-gap", (1, 28, 28), 93_962, 7_452_416),
    "m2": ("M2 fmnist-flatten", (1, 28, 28), 1_592_326, 5_411_464),
    "m3": ("M3 vgg11-gap-224", (3, 224, 224), 9_733_480, 7_485_968_384),
}
# The real networks with a GAP head, from torchvision (tools/export_torchvision.py: seeded random
# weights, perturbed and calibrated; a softmax appended): key -> title, at 3x224x224.
TORCHVISION = {
    "resnet18": "ResNet-18",
    "mobilenet_v2": "MobileNetV2",
    "efficientnet_b0": "EfficientNet-B0",
    "squeezenet1_1": "SqueezeNet 1.1",
}
TORCHVISION_SIZE = 224
# The shipped trained models: key -> (title, file).
TRAINED = {
    "mini_xception": ("mini-Xception (emotion, trained)", "models/emotion_mini_xception.json"),
    "fashion_gap": ("fashion_gap (trained)", "models/fashion_gap.json"),
    "fashion_flatten": ("fashion_flatten (trained)", "models/fashion_flatten.json"),
}
ALL_MODELS = list(REFERENCE) + list(TORCHVISION) + list(TRAINED)
# --smoke's default: every kind of layer and file (the mini-Xception: depthwise convolutions, residual
# adds, uneven padding; EfficientNet-B0: squeeze-and-excitation, SiLU) without the slow exports.
SMOKE_MODELS = ["m1", "m2", "m3", "efficientnet_b0", "mini_xception", "fashion_gap", "fashion_flatten"]
# The performance issue's targets: gapnet / best peer, latency (batch 1) at most and throughput
# (batch 32) at least, on the reference models and the real GAP networks.
TARGETS = {key: (0.9, 1.2) for key in list(REFERENCE) + list(TORCHVISION) + ["mini_xception"]}
# Its scaling targets, for every model: batch 32 costs at most as much per image as batch 1 (per-image
# time at 32 / at 1 at most this), and 2 threads are at least this much faster than 1 at batch 32.
SCALING_BATCH_TARGET = 1.0
SCALING_THREADS_TARGET = 1.6
M3_LOAD_TARGET_SECONDS = 0.5
# The target for the GEMM and direct convolution kernels: a share of the measured FMA peak on
# M3's large layers (those with at least LARGE_LAYER_SHARE of its multiply-adds: conv2 to conv8).
CONV_KERNELS = ("gemm", "direct")
KERNEL_MODEL = "m3"
# Every kernel forced on every convolution (gapnet bench --conv-algorithm) of a model of small maps
# and one of large maps, at batch 1 and 32: the measurements behind the layer's choice of kernel
# (engine/layers/conv2d.cpp states the rule; this report holds the figures).
CHOICE_KERNELS = ("gemm", "direct", "winograd")
CHOICE_MODELS = ("m1", "m3")
KERNEL_PEAK_TARGET = 0.75
LARGE_LAYER_SHARE = 0.05


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Models: the reference models in PyTorch, and any gapnet file rebuilt in PyTorch.


def build_reference_model(key, seed):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)

    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]

    pool = lambda: nn.MaxPool2d(2, 2)
    if key == "m1":
        layers = [
            *conv(1, 32),
            pool(),
            *conv(32, 64),
            pool(),
            *conv(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 10),
            nn.Softmax(dim=1),
        ]
    elif key == "m2":
        layers = [
            *conv(1, 32),
            pool(),
            *conv(32, 64),
            pool(),
            nn.Flatten(),
            nn.Linear(3136, 500),
            nn.ReLU(),
            nn.Linear(500, 10),
            nn.Softmax(dim=1),
        ]
    elif key == "m3":
        layers, channels = [], 3
        for v in [64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool", 512, 512, "pool"]:
            if v == "pool":
                layers.append(pool())
            else:
                layers += conv(channels, v)
                channels = v
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000), nn.Softmax(dim=1)]
    else:
        raise BenchError(f"unknown reference model '{key}'")
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.uniform_(m.bias, -0.1, 0.1)
    return model.eval()


def decode_tensor(t):
    """A gapnet JSON tensor -> numpy float32 array."""
    import numpy as np

    if t.get("encoding") == "base64":
        values = np.frombuffer(base64.b64decode(t["data"]), dtype="<f4").astype(np.float32)
    else:
        values = np.asarray(t["data"], dtype=np.float32)
    return values.reshape(t["shape"])


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, float)) else tuple(int(x) for x in v)


def torch_model_from_gapnet(doc):
    """The PyTorch module that computes a gapnet model (any graph of its layers), with its weights:
    one module per layer, run in file order, each reading the values its layer names."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def param(t):
        return nn.Parameter(torch.from_numpy(decode_tensor(t).copy()), requires_grad=False)

    class Function(nn.Module):  # a layer without weights, as a function of its inputs
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, *xs):
            return self.f(*xs)

    # A global pool's vector stays [N, C, 1, 1] until a flatten, and a dense layer reading it is a
    # 1x1 convolution, so that the squeeze-and-excitation gate multiplies its map by broadcasting, as
    # torchvision writes it (and as OpenCV DNN can read it: it fails on the reshapes otherwise needed).
    class Dense(nn.Linear):
        def forward(self, x):
            return F.conv2d(x, self.weight[:, :, None, None], self.bias) if x.dim() == 4 else super().forward(x)

    def product(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    activations = {
        "relu": lambda layer: nn.ReLU(),
        "relu6": lambda layer: nn.ReLU6(),
        "sigmoid": lambda layer: nn.Sigmoid(),
        "tanh": lambda layer: nn.Tanh(),
        "silu": lambda layer: nn.SiLU(),
        "hard_swish": lambda layer: nn.Hardswish(),
        "leaky_relu": lambda layer: nn.LeakyReLU(float(layer.get("negative_slope", 0.01))),
        "clip": lambda layer: Function(lambda x: torch.clamp(x, layer.get("min"), layer.get("max"))),
        "hard_sigmoid": lambda layer: Function(
            lambda x: torch.clamp(float(layer.get("alpha", 0.2)) * x + float(layer.get("beta", 0.5)), 0, 1)
        ),
    }

    def padding_of(layer, fill):
        """(a padding module for uneven padding or None, the symmetric padding left to the layer)."""
        padding = layer.get("padding", 0)
        padding = [int(padding)] * 2 if isinstance(padding, (int, float)) else [int(p) for p in padding]
        if len(padding) == 2:
            return None, tuple(padding)
        top, left, bottom, right = padding
        if (top, left) == (bottom, right):
            return None, (top, left)
        return nn.ConstantPad2d((left, right, top, bottom), fill), (0, 0)

    def module(layer):
        kind = layer["type"]
        if kind == "conv2d":
            pad, padding = padding_of(layer, 0.0)
            m = nn.Conv2d(
                layer["in_channels"],
                layer["out_channels"],
                _pair(layer["kernel_size"]),
                stride=_pair(layer.get("stride", 1)),
                padding=padding,
                dilation=_pair(layer.get("dilation", 1)),
                groups=int(layer.get("groups", 1)),
                bias="bias" in layer,
            )
            m.weight = param(layer["weight"])
            if "bias" in layer:
                m.bias = param(layer["bias"])
            return nn.Sequential(pad, m) if pad else m
        if kind == "batch_norm2d":
            m = nn.BatchNorm2d(layer["num_features"], eps=float(layer.get("eps", 1e-5)), affine=True)
            with torch.no_grad():
                if "weight" in layer:
                    m.weight.copy_(torch.from_numpy(decode_tensor(layer["weight"])))
                    m.bias.copy_(torch.from_numpy(decode_tensor(layer["bias"])))
                m.running_mean.copy_(torch.from_numpy(decode_tensor(layer["running_mean"])))
                m.running_var.copy_(torch.from_numpy(decode_tensor(layer["running_var"])))
            return m
        if kind in activations:
            return activations[kind](layer)
        if kind in ("max_pool2d", "avg_pool2d"):
            # Uneven padding (Keras's "same"): -inf around a max pool; zeros around an average pool that
            # counts them (one that does not cannot be written this way).
            include_pad = bool(layer.get("count_include_pad", True))
            pad, padding = padding_of(layer, -math.inf if kind == "max_pool2d" else 0.0)
            if pad and kind == "avg_pool2d" and not include_pad:
                raise BenchError(f"layer '{layer.get('name')}': uneven padding without count_include_pad")
            kernel = _pair(layer.get("kernel_size", 2))
            common = dict(
                kernel_size=kernel,
                stride=_pair(layer.get("stride", kernel)),
                padding=padding,
                ceil_mode=bool(layer.get("ceil_mode", False)),
            )
            m = (
                nn.MaxPool2d(**common)
                if kind == "max_pool2d"
                else nn.AvgPool2d(**common, count_include_pad=include_pad)
            )
            return nn.Sequential(pad, m) if pad else m
        if kind in ("global_avg_pool2d", "global_max_pool2d"):  # gapnet's vector [C], as [N, C, 1, 1]
            return nn.AdaptiveAvgPool2d(1) if kind == "global_avg_pool2d" else nn.AdaptiveMaxPool2d(1)
        if kind == "flatten":
            return nn.Flatten()
        if kind == "dense":  # its input is a vector: flattened, or [N, C, 1, 1] from a global pool
            m = Dense(layer["in_features"], layer["out_features"], bias="bias" in layer)
            m.weight = param(layer["weight"])
            if "bias" in layer:
                m.bias = param(layer["bias"])
            return m
        if kind == "softmax":
            return nn.Softmax(dim=1)
        if kind == "add":
            return Function(lambda *xs: sum(xs[1:], xs[0]))
        if kind == "concat":
            return Function(lambda *xs: torch.cat(xs, dim=1))
        if kind == "multiply":
            return Function(product)
        raise BenchError(f"layer '{layer.get('name')}': type '{kind}' cannot be rebuilt in PyTorch by this tool")

    class Graph(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.steps, modules, previous = [], [], "input"
            for i, layer in enumerate(layers):
                name = layer.get("name", f"{layer['type']}_{i}")
                reads = layer["inputs"] if "inputs" in layer else [layer.get("input", previous)]
                self.steps.append((name, reads))
                modules.append(module(layer))
                previous = name
            self.layers = nn.ModuleList(modules)

        def forward(self, x):
            values = {"input": x}
            for (name, reads), m in zip(self.steps, self.layers):
                values[name] = m(*(values[r] for r in reads))
            out = values[self.steps[-1][0]]
            return out.flatten(1) if out.dim() == 4 else out  # the model's output is a vector

    return Graph(doc["layers"]).eval()


def model_facts(model, input_chw):
    """Parameters (PyTorch's count: weights and biases), MACs per image and the largest activation of
    one image (elements, the input included), found by running the model once."""
    import torch
    import torch.nn as nn

    facts = {"macs": 0, "largest_activation": math.prod(input_chw)}

    def hook(module, inputs, output):
        per_image = output[0].numel()
        facts["largest_activation"] = max(facts["largest_activation"], per_image)
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            facts["macs"] += per_image * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            facts["macs"] += module.in_features * module.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if not isinstance(m, (nn.Sequential, nn.ModuleList)) and m is not model
    ]
    with torch.no_grad():
        model(torch.zeros(1, *input_chw))
    for h in handles:
        h.remove()
    facts["parameters"] = sum(p.numel() for p in model.parameters())
    return facts


def reference_cases(doc):
    """The recorded test inputs [N, C, H, W] and PyTorch's outputs [N, classes] of a gapnet file."""
    import numpy as np

    tests = doc.get("tests") or []
    if not tests:
        raise BenchError(f"model '{doc.get('name')}' records no tests to check the engines against")
    inputs = np.stack([decode_tensor(t["input"]) for t in tests])
    outputs = np.stack([decode_tensor(t["output"]) for t in tests])
    return inputs, outputs


def timing_input(doc, batch):
    import numpy as np

    spec = doc["input"]
    shape = (batch, spec["channels"], spec["height"], spec["width"])
    return np.random.default_rng(1).uniform(-1, 1, size=shape).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Workers: one engine, one block, in a process of its own; print one JSON object.


def time_runs(run, x, warmup, iterations):
    for _ in range(warmup):
        run(x)
    latencies = []
    for _ in range(iterations):
        start = time.perf_counter()
        run(x)
        latencies.append(1e3 * (time.perf_counter() - start))
    return latencies


def loaded_libraries(pattern):
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(p for p in paths if re.search(pattern, os.path.basename(p)))


def openblas_config(paths):
    import ctypes

    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib.openblas_get_config().decode()
        except (OSError, AttributeError):
            continue
    return None


def worker_info():
    """Versions and library facts of the peers, from a process set up as the workers are."""
    import numpy as np
    import torch
    import cv2

    torch.backends.mkldnn.enabled = False
    a = torch.randn(256, 256)
    torch.mm(a, a)  # loads BLAS
    blas = loaded_libraries(r"blas")
    config = torch.__config__.show()
    onednn = re.search(r"MKL-DNN v[\w.]+|oneDNN v[\w.]+", config)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cv2": cv2.__version__,
        "blas_libraries": blas,
        "torch_uses_openblas": any("openblas" in p for p in blas),
        "openblas_config": openblas_config(blas),
        "torch_blas_info": (re.search(r"BLAS_INFO=(\w+)", config) or [None, None])[1],
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "onednn_version": onednn.group(0) if onednn else None,
        "cv2_parallel": next(
            (
                line.split(":", 1)[1].strip()
                for line in cv2.getBuildInformation().splitlines()
                if "Parallel framework" in line
            ),
            None,
        ),
    }


def worker_block(args):
    import numpy as np

    with open(args.model_file) as f:
        doc = json.load(f)
    check_inputs, check_outputs = reference_cases(doc)
    x = timing_input(doc, args.batch)
    if args.worker in ("pytorch", "pytorch-no-mkldnn"):
        import torch

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        torch.backends.mkldnn.enabled = args.worker == "pytorch"
        model = torch_model_from_gapnet(doc)
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model, torch.from_numpy(x)).eval())

        def run(batch):
            with torch.inference_mode():
                return frozen(torch.from_numpy(batch)).numpy()

        threads = torch.get_num_threads()
    elif args.worker == "opencv":
        import cv2

        cv2.setNumThreads(args.threads)
        net = cv2.dnn.readNetFromONNX(args.onnx)
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

        def run(batch):
            net.setInput(batch)
            return net.forward()

        threads = cv2.getNumThreads()
    else:
        raise BenchError(f"unknown worker '{args.worker}'")
    got = np.asarray(run(np.ascontiguousarray(check_inputs))).reshape(check_outputs.shape)
    difference = float(np.max(np.abs(got - check_outputs)))
    result = {"engine": args.worker, "threads": threads, "batch": args.batch, "max_difference": difference}
    if not difference <= PEER_TOLERANCE:  # NaN fails too
        result["refused"] = f"outputs differ from PyTorch's recorded ones by {difference:.3g} > {PEER_TOLERANCE:g}"
    else:
        result["latencies_ms"] = time_runs(run, x, args.warmup, args.iterations)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


# ----------------------------------------------------------------------------------------------
# ONNX Runtime: onnxruntime-node from the npm registry, installed on first use into a folder of its
# own; its blocks are run by tools/ort_worker.js.


def default_ort_dir():
    """$GAPNET_ORT_DIR, or a folder of the user's cache: outside the repository, kept between runs."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("GAPNET_ORT_DIR") or os.path.join(cache, "gapnet", f"onnxruntime-node-{ORT_VERSION}")


def installed_ort_version(folder):
    try:
        with open(os.path.join(folder, "node_modules", "onnxruntime-node", "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def install_onnxruntime(folder):
    """Makes sure `folder` holds onnxruntime-node ORT_VERSION: if not, `npm install --ignore-scripts`
    it (the package ships its CPU binaries; its install script would only fetch GPU ones) into a
    staging folder beside it, then moves that into place. Any failure is an error, never a skip."""
    if installed_ort_version(folder) == ORT_VERSION:
        return
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        raise BenchError(f"the ONNX Runtime peer needs Node.js and npm; not found: {', '.join(missing)}")
    package = f"onnxruntime-node@{ORT_VERSION}"
    print(f"installing {package} into {folder}", flush=True)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".onnxruntime-node-", dir=os.path.dirname(folder))
    try:
        try:
            run_checked(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", staging, package],
                timeout=900,
            )
        except BenchError as e:
            raise BenchError(f"could not install {package}: {e}")
        if installed_ort_version(staging) != ORT_VERSION:
            raise BenchError(f"npm installed no onnxruntime-node {ORT_VERSION} into {staging}")
        os.chmod(staging, 0o755)  # mkdtemp's folder is private
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:
            if installed_ort_version(folder) != ORT_VERSION:  # not another run's install, done meanwhile
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# The orchestrator: prepare files, check, run the interleaved blocks, write the report.


def run_checked(command, env=None, timeout=3600):
    """Runs `command`, capturing its output; fails (BenchError, with the output's tail) unless it exits 0."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(command)}")
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BenchError(f"exit status {done.returncode}: {shlex.join(command)}\n{tail}")
    return done


def run_json(command, env=None, timeout=3600, echo=False):
    """Runs `command` and returns the JSON object on the last line of its output (its other lines are
    printed when `echo`)."""
    done = run_checked(command, env, timeout)
    lines = done.stdout.strip().splitlines()
    if echo and len(lines) > 1:
        print("\n".join(lines[:-1]), flush=True)
    try:
        return json.loads(lines[-1])
    except (ValueError, IndexError):
        raise BenchError(f"no JSON from {shlex.join(command)}:\n{done.stdout[-2000:]}")


def thread_env(threads):
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(threads)
    return env


def block_command(args, engine, model, threads, batch, iterations, warmup):
    """The command that runs one block of `engine`; each prints one JSON object."""
    if engine == "gapnet":
        return gapnet_command(args.gapnet, model["gapnet_file"], threads, batch, iterations, warmup)
    common = [
        "--model-file",
        model["gapnet_file"],
        "--onnx",
        model["onnx_file"],
        "--threads",
        str(threads),
        "--batch",
        str(batch),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
    ]
    if engine == "onnxruntime":
        return ["node", ORT_WORKER, "--ort-dir", args.ort_dir, "--tolerance", repr(PEER_TOLERANCE)] + common
    return [sys.executable, os.path.abspath(__file__), "--worker", engine] + common


def gapnet_command(gapnet, model_file, threads, batch, iterations, warmup, conv_algorithm="auto"):
    return [
        gapnet,
        "bench",
        "--model",
        model_file,
        "--batch",
        str(batch),
        "--threads",
        str(threads),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
        "--conv-algorithm",
        conv_algorithm,
        "--json",
    ]


def worker_prepare(args):
    """Writes each model's gapnet and ONNX files, and the number-arrays copy of one; returns
    {"models": {key: description}, "number_arrays": {"model": key, "file": path}}.

    A worker, so that the orchestrator stays small: a process inherits its launcher's peak RSS (the
    kernel keeps the high-water mark of the address space it replaces at exec), and gapnet's figure
    must not carry PyTorch's."""
    models = prepare_models(args, args.workdir)
    # Number arrays: for the biggest model (the smallest in smoke runs: the export is slow).
    by_size = sorted(models, key=lambda k: models[k]["parameters"])
    key = by_size[0] if args.smoke else by_size[-1]
    return {
        "models": models,
        "number_arrays": {"model": key, "file": write_number_arrays_copy(models[key], args.workdir)},
    }


def prepare_models(args, workdir):
    """Writes each model's gapnet and ONNX files; returns {key: model description}."""
    import torch
    import export_pytorch

    models = {}
    for key in args.models:
        if key in REFERENCE:
            title, chw, _, _ = REFERENCE[key]
            net = build_reference_model(key, args.seed)
            spec = {"channels": chw[0], "height": chw[1], "width": chw[2]}
            labels = [f"class{i}" for i in range(net[-2].out_features)]
            gapnet_file = os.path.join(workdir, f"{key}.json")
            export_pytorch.export(
                net,
                gapnet_file,
                spec,
                labels,
                name=key,
                tests=3,
                metadata={"made_by": "tools/bench_peers.py", "seed": args.seed},
            )
            source = None
        elif key in TORCHVISION:
            # The gapnet file as a user makes it (torchvision -> ONNX -> gapnet); every engine then runs
            # that file's network, rebuilt in PyTorch below, as for the trained models.
            import export_torchvision

            title = TORCHVISION[key]
            gapnet_file = os.path.join(workdir, f"{key}.json")
            export_torchvision.export(key, gapnet_file, seed=args.seed, tests=3, size=TORCHVISION_SIZE, softmax=True)
            with open(gapnet_file) as f:
                net = torch_model_from_gapnet(json.load(f))
            source = f"torchvision.models.{key}"
        else:
            title, relative = TRAINED[key]
            gapnet_file = os.path.join(ROOT, relative)
            with open(gapnet_file) as f:
                net = torch_model_from_gapnet(json.load(f))
            chw = None
            source = relative
        with open(gapnet_file) as f:
            doc = json.load(f)
        chw = (doc["input"]["channels"], doc["input"]["height"], doc["input"]["width"])
        facts = model_facts(net, chw)
        if key in REFERENCE:
            _, _, parameters, macs = REFERENCE[key]
            if (facts["parameters"], facts["macs"]) != (parameters, macs):
                raise BenchError(
                    f"{key}: built with {facts['parameters']:,} parameters and {facts['macs']:,} "
                    f"MACs, but the issue says {parameters:,} and {macs:,}"
                )
        onnx_file = os.path.join(workdir, f"{key}.onnx")
        torch.onnx.export(
            net,
            torch.zeros(1, *chw),
            onnx_file,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
        models[key] = {
            "key": key,
            "title": title,
            "source": source,
            "gapnet_file": gapnet_file,
            "onnx_file": onnx_file,
            "input": list(chw),
            "file_bytes": os.path.getsize(gapnet_file),
            **facts,
        }
        print(f"prepared {key}: {facts['parameters']:,} parameters, {facts['macs']:,} MACs", flush=True)
    return models


def write_number_arrays_copy(model, workdir):
    """The same file with its tensors as JSON number arrays instead of base64 (a load-speed comparison)."""

    def as_numbers(value):
        if isinstance(value, dict):
            if value.get("encoding") == "base64":
                # float32 -> Python float -> shortest repr: reads back as the same float32
                return {"shape": value["shape"], "data": decode_tensor(value).ravel().tolist()}
            return {k: as_numbers(v) for k, v in value.items()}
        if isinstance(value, list):
            return [as_numbers(v) for v in value]
        return value

    with open(model["gapnet_file"]) as f:
        doc = as_numbers(json.load(f))
    path = os.path.join(workdir, f"{model['key']}-numbers.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def check_gapnet(gapnet, models):
    for model in models.values():
        report = run_json([gapnet, "verify", model["gapnet_file"], "--json"])
        if not report.get("passed"):
            raise BenchError(f"gapnet verify failed on {model['gapnet_file']}: {report}")
        model["gapnet_verify"] = report
        print(f"gapnet verify {model['key']}: largest difference {report['largest_difference']:.3g}", flush=True)


def iterations_for(args, model, batch):
    """The same count for every engine: --iterations, or fewer where one run is long."""
    seconds_per_run = model["macs"] * batch / args.assumed_macs_per_second
    return max(args.min_iterations, min(args.iterations, int(args.block_seconds / max(seconds_per_run, 1e-9))))


def plan_configurations(args):
    """(model, threads, batch) triples to measure."""
    if args.smoke:
        # Every model at (1 thread, batch 1), and M1 also at (2 threads, batch 32), without the cost of
        # the whole matrix; PyTorch without oneDNN (the same code but for one flag) on M1 only.
        return [(key, 1, 1) for key in args.models] + [("m1", 2, 32)] * ("m1" in args.models)
    return [(key, t, b) for key in args.models for t in args.threads for b in args.batches]


def run_benchmark(args, models, number_arrays_file):
    configs = plan_configurations(args)
    blocks, refused = [], {}  # refused: (engine, model) -> reason
    pruned = {}  # (engine, model, threads, batch) -> the factor by which it trailed the best peer in round 1
    total = args.rounds * len(configs) * len(ENGINES)
    print(f"{len(configs)} configurations x {len(ENGINES)} engines x {args.rounds} rounds", flush=True)
    done = 0
    for round_index in range(args.rounds):
        shift = round_index % len(ENGINES)
        engines = ENGINES[shift:] + ENGINES[:shift]
        for key, threads, batch in configs:
            model = models[key]
            iterations = iterations_for(args, model, batch)
            # At least 2: TorchScript's profiling executor optimises the graph during the first runs.
            warmup = max(2, args.warmup if iterations >= 10 else 2)
            for engine in engines:
                done += 1
                if (
                    (engine, key) in refused
                    or (engine, key, threads, batch) in pruned
                    or (args.smoke and engine == "pytorch-no-mkldnn" and key != "m1")
                ):
                    continue
                started = time.time()
                try:
                    result = run_json(
                        block_command(args, engine, model, threads, batch, iterations, warmup), env=thread_env(threads)
                    )
                except BenchError as e:
                    if engine == "gapnet":
                        raise
                    # A peer that cannot run a model (an operator it lacks, a crash) is reported as
                    # refused there, with its error; --smoke still fails on it.
                    result = {"refused": "fails: " + str(e).splitlines()[-1][:300]}
                if engine == "gapnet":
                    median = result["latency_ms"]["median"]
                    counted = (result.get("parameters"), result.get("macs_per_image"))
                    if key in REFERENCE and counted != (model["parameters"], model["macs"]):
                        raise BenchError(
                            f"gapnet bench counts {counted[0]} parameters and {counted[1]} MACs "
                            f"in {key}, not {model['parameters']} and {model['macs']}: a different model?"
                        )
                else:
                    if "refused" in result:
                        refused[(engine, key)] = result["refused"]
                        print(f"  REFUSED {engine} on {key}: {result['refused']}", flush=True)
                        continue
                    median = statistics.median(result["latencies_ms"])
                block = {
                    "round": round_index,
                    "model": key,
                    "threads": threads,
                    "batch": batch,
                    "engine": engine,
                    "iterations": iterations,
                    "warmup": warmup,
                    "median_ms": median,
                    "throughput": batch * 1e3 / median,
                    "peak_rss_bytes": result.get("peak_rss_bytes"),
                    "result": result,
                }
                blocks.append(block)
                print(
                    f"[{done}/{total}] round {round_index + 1} {key} t{threads} b{batch} {engine}: "
                    f"{median:.3f} ms ({time.time() - started:.1f} s)",
                    flush=True,
                )
        # The convolution kernels on their own: every layer through each kernel (gapnet bench
        # --conv-algorithm), for the efficiency table (M3, batch 1) and the kernel-choice table.
        for key, batch in kernel_configurations(args, models):
            for threads in args.threads if not args.smoke else (1,):
                for algorithm in CHOICE_KERNELS:
                    iterations = iterations_for(args, models[key], batch)
                    result = run_json(
                        gapnet_command(
                            args.gapnet,
                            models[key]["gapnet_file"],
                            threads,
                            batch,
                            iterations,
                            max(2, min(args.warmup, iterations)),
                            algorithm,
                        ),
                        env=thread_env(threads),
                    )
                    blocks.append(
                        {
                            "round": round_index,
                            "model": key,
                            "engine": "gapnet-" + algorithm,
                            "threads": threads,
                            "batch": batch,
                            "result": result,
                        }
                    )
                    print(
                        f"  round {round_index + 1} {key} t{threads} b{batch} conv kernel {algorithm}: "
                        f"{result['latency_ms']['median']:.3f} ms",
                        flush=True,
                    )
        if number_arrays_file:
            result = run_json(gapnet_command(args.gapnet, number_arrays_file, 1, 1, 1, 0), env=thread_env(1))
            blocks.append(
                {
                    "round": round_index,
                    "model": "number_arrays",
                    "engine": "gapnet",
                    "threads": 1,
                    "batch": 1,
                    "result": result,
                }
            )
        if round_index == 0 and args.prune_factor > 0:
            pruned = prune_slow_peers(blocks, configs, args.prune_factor)
    return blocks, refused, pruned


def kernel_configurations(args, models):
    """(model, batch) pairs whose convolutions run through each kernel in turn: the efficiency table's
    model at batch 1, and CHOICE_MODELS at every batch (the smoke run: batch 1 only)."""
    pairs = [(KERNEL_MODEL if KERNEL_MODEL in models else args.models[-1], 1)]
    pairs += [(key, b) for key in CHOICE_MODELS if key in models for b in ((1,) if args.smoke else args.batches)]
    return list(dict.fromkeys(pairs))


def prune_slow_peers(blocks, configs, factor):
    """After the first round: the peers more than `factor` times slower than the best peer in a
    configuration, which cannot be the best peer there, are not run again in it (they keep their
    first-round figure). Saves most of the time of a full run (PyTorch without oneDNN on M3)."""
    pruned = {}
    for key, threads, batch in configs:
        medians = {
            b["engine"]: b["median_ms"]
            for b in blocks
            if (b["model"], b["threads"], b["batch"]) == (key, threads, batch) and b["engine"] in PEERS
        }
        if not medians:
            continue
        best = min(medians.values())
        for engine, median in medians.items():
            if median > factor * best:
                pruned[(engine, key, threads, batch)] = median / best
                print(
                    f"  not run again: {engine} on {key} t{threads} b{batch} ({median / best:.1f}x the best peer)",
                    flush=True,
                )
    return pruned


# ----------------------------------------------------------------------------------------------
# Machine facts.


def command_output(command, cwd=None):
    try:
        return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_facts(args):
    lscpu = command_output(["lscpu"])
    field = lambda name: next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith(name + ":")), "?"  # noqa: E731
    )
    flags = field("Flags").split()
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    openblas_package = command_output(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"])
    return {
        "cpu": field("Model name"),
        "cpus": os.cpu_count(),
        "threads_per_core": field("Thread(s) per core"),
        "hypervisor": field("Hypervisor vendor"),
        "simd": " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16") if f in flags),
        "kernel": platform.release(),
        "debian": debian,
        "openblas_package": openblas_package,
        "load_average_start": os.getloadavg(),
        "gapnet_version": command_output([args.gapnet, "--version"]),
        "git_describe": command_output(["git", "describe", "--always", "--dirty", "--tags"], cwd=ROOT),
        "compiler": command_output(["c++", "--version"]).splitlines()[0] if shutil.which("c++") else "?",
    }


# ----------------------------------------------------------------------------------------------
# The report.


def spread(values):
    return statistics.median(values), min(values), max(values)


def fmt_number(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_spread(values):
    """median [min-max]; a single value alone."""
    median, low, high = spread(values)
    return fmt_number(median) if len(values) == 1 else f"{fmt_number(median)} [{fmt_number(low)}-{fmt_number(high)}]"


def fmt_bytes(n):
    return f"{n / MiB:,.1f} MiB"


def cell_values(blocks, key, threads, batch, engine, field):
    return [
        b[field] for b in blocks if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, engine)
    ]


def comparison_table(blocks, refused, pruned, models, threads, batch, field):
    """Markdown rows of one table (latency: field median_ms at batch 1; throughput: at batch 32) and
    the ratio rows for the summary."""
    latency = field == "median_ms"
    unit = "ms" if latency else "img/s"
    header = (
        ["model"]
        + [f"{ENGINE_TITLES[e]} ({unit})" for e in ENGINES]
        + ["best peer", "gapnet / best peer", "target", "met"]
    )
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 3) + " :---: | :---: |"]
    summary = []
    for key, model in models.items():
        row, medians = [model["title"]], {}
        for engine in ENGINES:
            values = cell_values(blocks, key, threads, batch, engine, field)
            if (engine, key) in refused:
                row.append("refused")
            elif values:
                mark = " †" if (engine, key, threads, batch) in pruned else ""
                row.append(fmt_spread(values) + mark)
                medians[engine] = statistics.median(values)
            else:
                row.append("—")
        peer_medians = {e: v for e, v in medians.items() if e != "gapnet"}
        if "gapnet" not in medians or not peer_medians:
            if any(cell_values(blocks, key, threads, batch, e, field) for e in ENGINES):
                lines.append("| " + " | ".join(row + ["—", "—", "—", "—"]) + " |")
            continue
        best = (min if latency else max)(peer_medians, key=peer_medians.get)
        ratio = medians["gapnet"] / peer_medians[best]
        target = TARGETS.get(key, (None, None))[0 if latency else 1]
        met = None if target is None else (ratio <= target if latency else ratio >= target)
        target_text = "—" if target is None else (f"≤ {target}" if latency else f"≥ {target}")
        met_text = "—" if met is None else ("yes" if met else "**no**")
        row += [ENGINE_TITLES[best], f"{ratio:.2f}×", target_text, met_text]
        lines.append("| " + " | ".join(row) + " |")
        summary.append(
            {
                "key": key,
                "model": model["title"],
                "what": f"{'latency, batch 1' if latency else 'throughput, batch 32'}",
                "threads": threads,
                "ratio": ratio,
                "target": target_text,
                "met": met_text,
                "best": ENGINE_TITLES[best],
            }
        )
    return lines, summary


def scaling_rows(blocks, models, args):
    """gapnet's scaling per model: per-image time at the largest batch against the smallest (each
    thread count), and the most threads against the fewest at the largest batch (median ms over rounds)."""

    def median(key, threads, batch):
        values = cell_values(blocks, key, threads, batch, "gapnet", "median_ms")
        return statistics.median(values) if values else None

    rows = []
    small, large = min(args.batches), max(args.batches)
    few, many = min(args.threads), max(args.threads)
    for key in models:
        for threads in args.threads:
            single, batch = median(key, threads, small), median(key, threads, large)
            if single and batch and large > small:
                rows.append(
                    {
                        "model": key,
                        "threads": threads,
                        "single_ms": single / small,
                        "batch_ms": batch / large,
                        "per_image_ratio": (batch / large) / (single / small),
                    }
                )
        one, two = median(key, few, large), median(key, many, large)
        if one and two and many > few:
            rows.append({"model": key, "batch": large, "one_ms": one, "two_ms": two, "speedup": one / two})
    return rows


def kernel_efficiency(blocks, models, args):
    """Per convolution step and thread count: GFLOP/s of the GEMM and direct kernels over rounds, the
    share of the FMA peak of each (median over rounds of the median runs; and the best run), and
    whether the step is a large layer."""
    rows = []
    for key in [KERNEL_MODEL if KERNEL_MODEL in models else args.models[-1]]:
        for threads in args.threads:
            runs = {
                k: [
                    b["result"]
                    for b in blocks
                    if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, 1, "gapnet-" + k)
                ]
                for k in CONV_KERNELS
            }
            if not all(runs.values()):
                continue
            first = runs["gemm"][0]
            total = sum(layer["macs"] for layer in first["layers"])
            for i, step in enumerate(first["layers"]):
                if not step["type"].startswith("conv2d"):
                    continue
                row = {
                    "model": key,
                    "step": step["step"],
                    "threads": threads,
                    "mac_share": step["macs"] / total,
                    "large": step["macs"] >= LARGE_LAYER_SHARE * total,
                }
                for k in CONV_KERNELS:
                    row[k] = [r["layers"][i]["gflops"] for r in runs[k]]
                    row[k + "_share"] = statistics.median(
                        r["layers"][i]["gflops"] / r["fma_peak_gflops"] for r in runs[k]
                    )
                    row[k + "_best"] = max(
                        2e-6 * step["macs"] / r["layers"][i]["min_ms"] / r["fma_peak_gflops"] for r in runs[k]
                    )
                row["best"] = max(row[k + "_share"] for k in CONV_KERNELS)
                row["best_run"] = max(row[k + "_best"] for k in CONV_KERNELS)
                rows.append(row)
    return rows


def kernel_choice(blocks, models, args):
    """Per model of CHOICE_MODELS, batch, thread count and convolution step: the median ms over rounds
    with each kernel forced (None where it does not apply: the step ran another), and the kernel and
    median ms of gapnet's own choice (the main blocks)."""
    rows = []
    for key in CHOICE_MODELS:
        if key not in models:
            continue
        for batch in args.batches:
            for threads in args.threads:

                def results(engine):
                    return [
                        b["result"]
                        for b in blocks
                        if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, engine)
                    ]

                auto = results("gapnet")
                forced = {k: results("gapnet-" + k) for k in CHOICE_KERNELS}
                if not auto or not all(forced.values()):
                    continue
                for i, step in enumerate(auto[0]["layers"]):
                    if not step["type"].startswith("conv2d"):
                        continue
                    row = {
                        "model": key,
                        "batch": batch,
                        "threads": threads,
                        "step": step["step"],
                        "macs": step["macs"],
                        "choice": step.get("kernel", ""),
                        "choice_ms": statistics.median(r["layers"][i]["median_ms"] for r in auto),
                    }
                    for k in CHOICE_KERNELS:
                        ran = [r["layers"][i] for r in forced[k] if r["layers"][i].get("kernel") == k]
                        row[k] = statistics.median(layer["median_ms"] for layer in ran) if ran else None
                    rows.append(row)
    return rows


def write_report(path, args, machine, info, models, blocks, refused, pruned, number_arrays_file, elapsed):
    out = []
    add = out.append
    command = "/usr/bin/python3 tools/bench_peers.py " + shlex.join(args.argv)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    add("# Performance: gapnet against PyTorch, OpenCV DNN and ONNX Runtime\n")
    add(
        f"Generated by `{command.strip()}` on {now}, in {elapsed / 60:.1f} minutes. Everything in this file "
        "comes from that run; nothing is edited by hand. Re-running the command rewrites it.\n"
    )
    if args.smoke:
        add(
            "**Smoke run** (tiny iteration counts, a subset of the configurations): the figures only show "
            "that the benchmark works, not how fast anything is.\n"
        )
    add(
        f"Rounds: {args.rounds}. In each round every engine runs one block per model, thread count and "
        "batch, in its own process, the engines' order rotating between rounds. A cell is the median "
        "[min-max] over rounds of the blocks' median latency (ms, batch 1) or throughput (images/s, batch 32 "
        "= 32 / median latency). The ratio compares gapnet's median with the best peer's (the fastest of "
        "PyTorch with or without oneDNN, OpenCV DNN and ONNX Runtime) in the same configuration.\n"
    )
    add(
        "Method, in short: PyTorch runs its model traced (`torch.jit.trace`), frozen (`torch.jit.freeze`) "
        "and under `torch.inference_mode()`; OpenCV DNN and ONNX Runtime read the same network exported to "
        f"ONNX (opset {ONNX_OPSET}, dynamic batch); ONNX Runtime is the npm package `onnxruntime-node` (its CPU "
        "execution provider) run from Node.js, with `graphOptimizationLevel: 'all'` and "
        "`executionMode: 'sequential'`. Thread counts: `gapnet bench --threads n`, `torch.set_num_threads(n)` "
        "+ `set_num_interop_threads(1)`, `cv2.setNumThreads(n)`, ONNX Runtime's `intraOpNumThreads: n` + "
        "`interOpNumThreads: 1`, and OMP/OpenBLAS/MKL thread variables = n in every process. The inputs are "
        "random (uniform in [-1, 1]). The full methodology is the docstring of `tools/bench_peers.py`.\n"
    )

    add("## Machine and versions\n")
    add("| | |\n| --- | --- |")
    add(
        f"| CPU | {machine['cpu']}, {machine['cpus']} logical CPUs ({machine['threads_per_core']} thread per core), "
        f"hypervisor {machine['hypervisor']} |"
    )
    add(f"| SIMD | {machine['simd']} |")
    # The FMA peak gapnet bench measures at the start of each of its blocks (float32 multiply-adds of
    # 16-float vectors from registers, on every thread of the block): the largest over the blocks.
    peaks = {}
    for b in blocks:
        if b["engine"].startswith("gapnet") and "fma_peak_gflops" in b["result"]:
            peaks[b["threads"]] = max(peaks.get(b["threads"], 0), b["result"]["fma_peak_gflops"])
    add(
        "| measured FMA peak (float32, `gapnet bench`'s FMA loop, the largest over its blocks) | "
        + ", ".join(f"{peaks[t]:.0f} GFLOP/s with {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks))
        + " |"
    )
    add(f"| load average at start (1, 5, 15 min) | {', '.join(f'{v:.2f}' for v in machine['load_average_start'])} |")
    add(f"| load average at end | {', '.join(f'{v:.2f}' for v in os.getloadavg())} |")
    add(f"| OS | Debian {machine['debian']}, Linux {machine['kernel']} |")
    add(
        f"| gapnet | `{machine['gapnet_version']}`, git `{machine['git_describe']}`, built with {machine['compiler']} |"
    )
    add(f"| Python | {info['python']} (`/usr/bin/python3`), numpy {info['numpy']} |")
    add(
        f"| PyTorch | {info['torch']}; oneDNN: {info['onednn_version'] or 'not built in'} "
        f"(available: {'yes' if info['mkldnn_available'] else 'no'}); BLAS_INFO={info['torch_blas_info']} |"
    )
    blas = ", ".join(f"`{p}`" for p in info["blas_libraries"]) or "none found"
    add(f"| BLAS loaded by PyTorch | {blas}; OpenBLAS: {'yes' if info['torch_uses_openblas'] else '**no**'} |")
    add(
        f"| OpenBLAS | {info['openblas_config'] or '?'} "
        f"(package libopenblas0-pthread {machine['openblas_package'] or 'not installed'}) |"
    )
    add(f"| OpenCV | {info['cv2']}, parallel framework: {info['cv2_parallel']} |")
    add(
        f"| ONNX Runtime | {info['onnxruntime']} (npm `onnxruntime-node`, its own prebuilt CPU binaries; CPU "
        f"execution provider), on Node.js {info['node']} |\n"
    )

    add("## Models\n")
    add("| model | input | parameters | MACs per image | gapnet file | `gapnet verify` (largest difference) |")
    add("| --- | --- | ---: | ---: | --- | --- |")
    for key, m in models.items():
        where = (
            f"`{m['source']}`, random weights, seed {args.seed}"
            if key in TORCHVISION
            else f"`{m['source']}`"
            if m["source"]
            else f"random weights, seed {args.seed}"
        )
        add(
            f"| {m['title']} | {'×'.join(map(str, m['input']))} | {m['parameters']:,} | {m['macs']:,} | "
            f"{where}, {m['file_bytes'] / 1e6:.1f} MB | passed ({m['gapnet_verify']['largest_difference']:.2g}) |"
        )
    add(
        "\nParameters are PyTorch's count (weights and biases); gapnet's own count also includes batch norm's "
        "running statistics. Peers are checked on every block against PyTorch's recorded outputs "
        f"(tolerance {PEER_TOLERANCE:g}); largest differences seen:\n"
    )
    add("| model | " + " | ".join(ENGINE_TITLES[e] for e in PEERS) + " |")
    add("| --- |" + " ---: |" * len(PEERS))
    for key, m in models.items():
        cells = []
        for engine in PEERS:
            diffs = [b["result"]["max_difference"] for b in blocks if b["model"] == key and b["engine"] == engine]
            cells.append(
                f"refused: {refused[(engine, key)]}"
                if (engine, key) in refused
                else (f"{max(diffs):.2g}" if diffs else "—")
            )
        add(f"| {m['title']} | " + " | ".join(cells) + " |")
    add("")

    tables, summary = [], []
    for batch, field, title in (
        (1, "median_ms", "Latency (batch 1, ms; lower is better)"),
        (32, "throughput", "Throughput (batch 32, images/s; higher is better)"),
    ):
        for threads in args.threads:
            lines, rows = comparison_table(blocks, refused, pruned, models, threads, batch, field)
            if len(lines) > 2:
                tables.append((f"### {title}, {threads} thread{'s' if threads > 1 else ''}", lines))
                summary += rows

    order = list(models)
    summary.sort(key=lambda r: (order.index(r["key"]), r["what"], r["threads"]))
    add("## Targets\n")
    add(
        "Ratios of medians, gapnet / best peer; targets from the performance issue (the reference models and "
        "the real GAP networks).\n"
    )
    add("| model | measure | threads | gapnet / best peer | best peer | target | met |")
    add("| --- | --- | ---: | ---: | --- | :---: | :---: |")
    for s in summary:
        add(
            f"| {s['model']} | {s['what']} | {s['threads']} | {s['ratio']:.2f}× | {s['best']} "
            f"| {s['target']} | {s['met']} |"
        )
    add("")
    large = [r for r in kernel_efficiency(blocks, models, args) if r["large"]]
    for threads in sorted({r["threads"] for r in large}):
        rows = [r for r in large if r["threads"] == threads]
        median_worst = min(rows, key=lambda r: r["best"])
        best_worst = min(rows, key=lambda r: r["best_run"])

        def verdict(v):
            return "met" if v >= KERNEL_PEAK_TARGET else "**not met**"

        add(
            f"GEMM/direct kernels on {models[rows[0]['model']]['title']}'s large layers, {threads} thread(s), "
            f"target ≥ {100 * KERNEL_PEAK_TARGET:.0f} % of the measured FMA peak: "
            f"the better kernel's median run reaches {100 * median_worst['best']:.0f} % on its worst layer "
            f"({median_worst['step']}; {verdict(median_worst['best'])}), "
            f"its best run {100 * best_worst['best_run']:.0f} % "
            f"({best_worst['step']}; {verdict(best_worst['best_run'])}); "
            "see the kernels' table below.\n"
        )
    add("")

    scaling = scaling_rows(blocks, models, args)
    if scaling:
        add("## Scaling\n")
        add(
            "gapnet's own medians (over rounds) from the blocks above. Per image, batch "
            f"{max(args.batches)} against batch {min(args.batches)} (target: at most "
            f"{SCALING_BATCH_TARGET:g}×, a batch costs no more per image than one image); "
            f"{max(args.threads)} threads against {min(args.threads)} at batch {max(args.batches)} (target: at "
            f"least {SCALING_THREADS_TARGET:g}× faster).\n"
        )
        small, large, few, many = min(args.batches), max(args.batches), min(args.threads), max(args.threads)
        add(
            f"| model | threads | ms per image, batch {small} | ms per image, batch {large} | "
            f"batch {large} / batch {small} | met |"
        )
        add("| --- | ---: | ---: | ---: | ---: | :---: |")
        for r in scaling:
            if "per_image_ratio" in r:
                met = "yes" if r["per_image_ratio"] <= SCALING_BATCH_TARGET else "**no**"
                add(
                    f"| {models[r['model']]['title']} | {r['threads']} | {fmt_number(r['single_ms'])} | "
                    f"{fmt_number(r['batch_ms'])} | {r['per_image_ratio']:.2f}× | {met} |"
                )
        add("")
        add(f"| model | batch | ms, {few} thread{'s' if few > 1 else ''} | ms, {many} threads | speed-up | met |")
        add("| --- | ---: | ---: | ---: | ---: | :---: |")
        for r in scaling:
            if "speedup" in r:
                met = "yes" if r["speedup"] >= SCALING_THREADS_TARGET else "**no**"
                add(
                    f"| {models[r['model']]['title']} | {r['batch']} | {fmt_number(r['one_ms'])} | "
                    f"{fmt_number(r['two_ms'])} | {r['speedup']:.2f}× | {met} |"
                )
        add("")

    add("## Speed\n")
    if pruned:
        add(
            f"† first round only: more than {args.prune_factor:g}× slower than the best peer there, so not run "
            "again (`--prune-factor`).\n"
        )
    runs = sorted(
        {(b["model"], b["batch"], b["iterations"], b["warmup"]) for b in blocks if "iterations" in b},
        key=lambda r: (list(models).index(r[0]), r[1]),
    )
    add(
        "Timed runs (after untimed warm-up runs) per block, the same for every engine: "
        + "; ".join(f"{models[m]['title']} batch {b}: {n} ({w})" for m, b, n, w in runs)
        + ".\n"
    )
    for title, lines in tables:
        add(title + "\n")
        out.extend(lines)
        add("")

    add("## Loading\n")
    add("`load_seconds` of `gapnet bench`: reading and checking the file and building the graph.\n")
    add("| file | size | load time, s | MB/s | target |")
    add("| --- | ---: | ---: | ---: | --- |")
    for key, m in models.items():
        loads = [b["result"]["load_seconds"] for b in blocks if b["model"] == key and b["engine"] == "gapnet"]
        if not loads:
            continue
        target = (
            f"< {M3_LOAD_TARGET_SECONDS} s: {'yes' if statistics.median(loads) < M3_LOAD_TARGET_SECONDS else '**no**'}"
            if key == "m3"
            else "—"
        )
        add(
            f"| {m['title']}, base64 | {m['file_bytes'] / 1e6:.1f} MB | {fmt_spread(loads)} | "
            f"{m['file_bytes'] / 1e6 / statistics.median(loads):.0f} | {target} |"
        )
    numbers = [b["result"]["load_seconds"] for b in blocks if b["model"] == "number_arrays"]
    if numbers:
        size = os.path.getsize(number_arrays_file)
        add(
            f"| {models[args.number_arrays_model]['title']}, JSON number arrays | "
            f"{size / 1e6:.1f} MB | {fmt_spread(numbers)} | {size / 1e6 / statistics.median(numbers):.0f} | — |"
        )
    add("")

    add("## Memory\n")
    launcher_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    add(
        "Peak resident set size of the whole process (load included), batch 1, the largest over rounds. "
        "Budget (issue): weights + 3 × the largest activation + 64 MiB, with float32 weights "
        "(PyTorch's parameter count × 4 bytes) and the largest activation of one image (input included). "
        "The peers' figures include the Python interpreter and their libraries. A process started by "
        "another reports at least its launcher's peak RSS (Linux keeps the high-water mark across exec); "
        f"this script's own peak, the floor of every figure here, was {fmt_bytes(launcher_rss)}.\n"
    )
    add(
        "| model | threads | weights | largest activation | budget | gapnet peak RSS | within budget | "
        + " | ".join(f"{ENGINE_TITLES[e]} peak RSS" for e in PEERS)
        + " |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | :---: |" + " ---: |" * len(PEERS))
    for key, m in models.items():
        weights, activation = 4 * m["parameters"], 4 * m["largest_activation"]
        budget = weights + 3 * activation + 64 * MiB
        for threads in args.threads:
            rss = cell_values(blocks, key, threads, 1, "gapnet", "peak_rss_bytes")
            if not rss:
                continue
            peers = [cell_values(blocks, key, threads, 1, e, "peak_rss_bytes") for e in PEERS]
            ok = "yes" if max(rss) <= budget else "**no**"
            add(
                f"| {m['title']} | {threads} | {fmt_bytes(weights)} | {fmt_bytes(activation)} | {fmt_bytes(budget)} | "
                f"{fmt_bytes(max(rss))} | {ok} | " + " | ".join(fmt_bytes(max(p)) if p else "—" for p in peers) + " |"
            )
    add("")

    for key in ("m3",) if "m3" in models else ():
        add(f"## gapnet per step, {models[key]['title']}, batch 1\n")
        add(
            "From `gapnet bench --json`: each step's median time (median over rounds), its share of the "
            "steps' total, GFLOP/s (2 × MACs / time) and that as a share of the FMA peak `gapnet bench` "
            "measured in the same process (float32 multiply-adds from registers on every thread of the run); "
            "the kernel of each convolution. Winograd does fewer multiplications than the GFLOP/s count, "
            "so its share can pass 100 %.\n"
        )
        per_threads = {
            t: [
                b["result"]
                for b in blocks
                if (b["model"], b["batch"], b["threads"], b["engine"]) == (key, 1, t, "gapnet")
            ]
            for t in args.threads
        }
        per_threads = {t: v for t, v in per_threads.items() if v}
        if not per_threads:
            continue
        header = "| step | type |" + "".join(
            f" kernel | ms ({t} thr) | share | GFLOP/s | of peak |" for t in per_threads
        )
        add(header)
        add("| --- | --- |" + " --- | ---: | ---: | ---: | ---: |" * len(per_threads))
        first = next(iter(per_threads.values()))[0]["layers"]
        for i, step in enumerate(first):
            row = f"| {step['step']} | {step['type']} |"
            for runs in per_threads.values():
                ms = statistics.median(r["layers"][i]["median_ms"] for r in runs)
                share = statistics.median(r["layers"][i]["share"] for r in runs)
                gflops = statistics.median(r["layers"][i]["gflops"] for r in runs)
                of_peak = statistics.median(r["layers"][i]["gflops"] / r["fma_peak_gflops"] for r in runs)
                row += (
                    f" {step.get('kernel', '')} | {fmt_number(ms)} | {100 * share:.1f} % | "
                    f"{fmt_number(gflops) if gflops else ''} | {f'{100 * of_peak:.0f} %' if gflops else ''} |"
                )
            add(row)
        add("")

    kernel_rows = kernel_efficiency(blocks, models, args)
    if kernel_rows:
        key = kernel_rows[0]["model"]
        add(f"## The GEMM and direct convolution kernels, {models[key]['title']}, batch 1\n")
        add(
            "Every convolution of the model run through one kernel (`gapnet bench --conv-algorithm gemm`, then "
            "`direct`, in each round), whichever kernel gapnet would choose for it: GFLOP/s (2 × MACs / time, "
            "median [min-max] over rounds of the per-run medians) and their share of the FMA peak measured by "
            "the same process just before. Target (issue): at least "
            f"{100 * KERNEL_PEAK_TARGET:.0f} % on the large layers, here those with at least "
            f"{100 * LARGE_LAYER_SHARE:.0f} % of the model's multiply-adds (the better of the two kernels).\n"
        )
        add(
            "The machine's cores share their caches and memory with other tenants' work, which slows "
            "kernels that read memory (these) and not the FMA loop (registers only): the median runs measure "
            "that as well as the kernels. The best run of each (the fastest of its timed runs, against the "
            "peak of the same process) shows what the kernel reaches when left alone.\n"
        )
        add(
            "| step | share of MACs | threads | GEMM GFLOP/s | of peak (median; best run) | direct GFLOP/s | "
            "of peak (median; best run) | better kernel, of peak (median; best run) | target met (median; best run) |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
        for r in kernel_rows:
            met = (
                "—"
                if not r["large"]
                else " ; ".join("yes" if v >= KERNEL_PEAK_TARGET else "**no**" for v in (r["best"], r["best_run"]))
            )
            add(
                f"| {r['step']} | {100 * r['mac_share']:.1f} % | {r['threads']} | {fmt_spread(r['gemm'])} | "
                f"{100 * r['gemm_share']:.0f} %; {100 * r['gemm_best']:.0f} % | {fmt_spread(r['direct'])} | "
                f"{100 * r['direct_share']:.0f} %; {100 * r['direct_best']:.0f} % | "
                f"{100 * r['best']:.0f} %; {100 * r['best_run']:.0f} % | {met} |"
            )
        add("")

    choice_rows = kernel_choice(blocks, models, args)
    if choice_rows:
        add("## Which convolution kernel each layer runs\n")
        add(
            "Every convolution run through each kernel in turn (`gapnet bench --conv-algorithm gemm`, `direct`, "
            "`winograd`, in each round; — where the kernel does not apply to the layer), against the kernel "
            "gapnet chooses by itself (the main blocks above): median ms over rounds of the per-step medians. "
            "These are the measurements behind the rule in `engine/layers/conv2d.cpp` (Winograd for 3×3 "
            "stride-1 layers of 16+ channels when its waves are wide, direct convolution for small inputs "
            "and maps, im2col + GEMM otherwise); **bold** marks the fastest kernel of the row.\n"
        )
        add(
            "| model | batch | threads | step | MACs per image | GEMM ms | direct ms | Winograd ms "
            "| gapnet's choice | its ms |"
        )
        add("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |")
        for r in choice_rows:
            measured = {k: r[k] for k in CHOICE_KERNELS if r[k] is not None}
            fastest = min(measured, key=measured.get) if measured else None
            cells = " | ".join(
                "—" if r[k] is None else (f"**{fmt_number(r[k])}**" if k == fastest else fmt_number(r[k]))
                for k in CHOICE_KERNELS
            )
            add(
                f"| {models[r['model']]['title']} | {r['batch']} | {r['threads']} | {r['step']} | "
                f"{r['macs']:,} | {cells} | {r['choice']} | {fmt_number(r['choice_ms'])} |"
            )
        add("")

    add("## Reproduce\n")
    add("```\n" + command.strip() + "\n```\n")
    add(
        "`--smoke` (run by ctest as `bench_peers_smoke`) runs a tiny subset to keep the tool working; it "
        "asserts nothing about speed but fails on any error, including a peer that cannot be imported or "
        "disagrees with PyTorch."
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ----------------------------------------------------------------------------------------------


def parse_list(text, kind=str):
    return [kind(v) for v in text.split(",") if v.strip()]


def main():
    ap = argparse.ArgumentParser(
        description="Benchmark gapnet against PyTorch, OpenCV DNN and ONNX Runtime; " "write docs/performance.md."
    )
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5; smoke 1)")
    ap.add_argument("--iterations", type=int, help="timed runs per block for small models (default 100; smoke 2)")
    ap.add_argument("--min-iterations", type=int, help="timed runs per block at least (default 3; smoke 1)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per block (1 where a block has < 10 runs)")
    ap.add_argument(
        "--block-seconds",
        type=float,
        default=2.0,
        help="aim for about this much work per block when choosing the iterations of big models",
    )
    ap.add_argument(
        "--prune-factor",
        type=float,
        default=2.0,
        help="after round 1, stop running a peer more than this many times slower than the best "
        "peer in a configuration (0: never; default 2)",
    )
    ap.add_argument("--assumed-macs-per-second", type=float, default=25e9, help=argparse.SUPPRESS)
    ap.add_argument(
        "--models",
        help=f"comma-separated, from {','.join(ALL_MODELS)} (default: all; smoke: " f"{','.join(SMOKE_MODELS)})",
    )
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--batches", default="1,32", help="batch sizes (default 1,32: latency, throughput)")
    ap.add_argument("--out", help="the report (default docs/performance.md; smoke: a temporary file)")
    ap.add_argument("--raw", help="also write every block's raw result as JSON here")
    ap.add_argument("--gapnet", default=os.path.join(ROOT, "build", "release", "gapnet"), help="the gapnet program")
    ap.add_argument(
        "--ort-dir",
        default=default_ort_dir(),
        help=f"where onnxruntime-node {ORT_VERSION} is, or is installed with npm if missing "
        "(default $GAPNET_ORT_DIR, or ~/.cache/gapnet/onnxruntime-node-VERSION)",
    )
    ap.add_argument("--workdir", help="where the exported files go (default: a temporary directory, removed)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the reference models' weights")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny counts and a subset of configurations; fail on any error"
    )
    # Worker mode (internal): one block of one peer engine, printed as JSON.
    ap.add_argument("--worker", choices=["info", "prepare"] + PYTHON_WORKERS, help=argparse.SUPPRESS)
    ap.add_argument("--model-file", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "info":
            print(json.dumps(worker_info()))
        elif args.worker == "prepare":
            args.models = parse_list(args.models)
            print(json.dumps(worker_prepare(args)))
        else:
            args.threads = int(args.threads)
            print(json.dumps(worker_block(args)))
        return

    args.argv = sys.argv[1:]
    args.rounds = args.rounds or (1 if args.smoke else 5)
    args.iterations = args.iterations or (2 if args.smoke else 100)
    args.min_iterations = args.min_iterations or (1 if args.smoke else 3)
    if args.smoke:
        args.warmup = min(args.warmup, 1)
    args.models = parse_list(args.models or ",".join(SMOKE_MODELS if args.smoke else ALL_MODELS))
    args.threads = parse_list(args.threads, int)
    args.batches = parse_list(args.batches, int)
    unknown = [m for m in args.models if m not in ALL_MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODELS)}")
    if not os.path.isfile(args.gapnet) or not os.access(args.gapnet, os.X_OK):
        ap.error(f"no gapnet program at {args.gapnet}: build it, or pass --gapnet PATH")
    args.gapnet = os.path.abspath(args.gapnet)
    args.ort_dir = os.path.abspath(args.ort_dir)
    if args.out is None:
        args.out = (
            os.path.join(tempfile.gettempdir(), "gapnet-performance-smoke.md")
            if args.smoke
            else os.path.join(ROOT, "docs", "performance.md")
        )

    started = time.time()
    workdir = args.workdir or tempfile.mkdtemp(prefix="gapnet-bench-peers-")
    os.makedirs(workdir, exist_ok=True)
    try:
        install_onnxruntime(args.ort_dir)
        info = run_json([sys.executable, os.path.abspath(__file__), "--worker", "info"], env=thread_env(1))
        info.update(run_json(["node", ORT_WORKER, "--ort-dir", args.ort_dir, "--info"]))
        if not info["torch_uses_openblas"]:
            print("warning: PyTorch does not load OpenBLAS (install libopenblas0-pthread)", file=sys.stderr)
        print(
            f"peers: torch {info['torch']}, OpenCV {info['cv2']}, OpenBLAS: {info['torch_uses_openblas']}, "
            f"ONNX Runtime {info['onnxruntime']} on Node.js {info['node']} ({time.time() - started:.0f} s)",
            flush=True,
        )
        machine = machine_facts(args)
        print(f"machine: {machine['cpu']} ({time.time() - started:.0f} s)", flush=True)
        prepare = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "prepare",
            "--workdir",
            workdir,
            "--models",
            ",".join(args.models),
            "--seed",
            str(args.seed),
        ] + (["--smoke"] if args.smoke else [])
        prepared = run_json(prepare, env=thread_env(2), timeout=3600, echo=True)
        models = prepared["models"]
        args.number_arrays_model = prepared["number_arrays"]["model"]
        number_arrays_file = prepared["number_arrays"]["file"]
        print(f"models prepared ({time.time() - started:.0f} s)", flush=True)
        check_gapnet(args.gapnet, models)
        blocks, refused, pruned = run_benchmark(args, models, number_arrays_file)
        write_report(
            args.out, args, machine, info, models, blocks, refused, pruned, number_arrays_file, time.time() - started
        )
        if args.raw:
            with open(args.raw, "w") as f:
                json.dump(
                    {
                        "machine": machine,
                        "info": info,
                        "models": models,
                        "blocks": blocks,
                        "refused": {f"{e}/{m}": r for (e, m), r in refused.items()},
                        "pruned": {"/".join(map(str, k)): v for k, v in pruned.items()},
                    },
                    f,
                    indent=1,
                )
        print(f"wrote {args.out}")
        # The smoke run fails on a peer that disagrees with PyTorch anywhere, or cannot run M1 (it is
        # missing or broken); one that cannot run a particular network (OpenCV 4.6 fails on
        # EfficientNet-B0's batches) is reported as refused there, as in a full run.
        failing = {k: r for k, r in refused.items() if not r.startswith("fails: ") or k[1] == "m1"}
        if failing and args.smoke:
            sys.exit(
                "bench_peers: error: refused peers: " + "; ".join(f"{e} on {m}: {r}" for (e, m), r in failing.items())
            )
    except BenchError as e:
        sys.exit(f"bench_peers: error: {e}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
