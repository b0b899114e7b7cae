"""The models of tools/bench_peers.py: the reference models built in PyTorch, any gapnet file rebuilt in
PyTorch (torch_model_from_gapnet), and their preparation (gapnet and ONNX files, in a worker)."""

import base64
import json
import math
import os

from bench_peers_config import BenchError, ONNX_OPSET, REFERENCE, ROOT, TORCHVISION, TORCHVISION_SIZE, TRAINED


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
