#!/usr/bin/python3
"""The PyTorch exporter, end to end: seeded random networks using every module and option the
exporter maps are exported, an image is classified by the gapnet binary, and its probabilities must
equal PyTorch's within 1e-5. Each file's recorded tests must pass `gapnet verify`, also after batch
norm is folded into the convolutions, and fail on a tampered file. Unsupported modules must be
refused with a message naming them.

    /usr/bin/python3 tests/test_export_pytorch.py PATH/TO/gapnet

Needs Debian's python3-torch, python3-numpy, python3-pil (installed by `make test`); a missing one
is a failure, not a skip.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import export_pytorch  # noqa: E402

TOLERANCE = 1e-5


def randomize_batch_norm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)


def networks():
    """(name, model, channels, height, width, mean, std, encoding)"""
    yield (
        "gap-all-options",
        nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding="same", dilation=2, groups=2),
            nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
            nn.Sequential(
                nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), bias=False), nn.BatchNorm2d(6, affine=False)
            ),
            nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
            nn.Dropout(0.3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 5),
            nn.Softmax(dim=1),
        ),
        1,
        20,
        18,
        [0.4],
        [0.3],
        "json",
    )
    yield (
        "rgb-depthwise-gmp",
        nn.Sequential(
            nn.Conv2d(3, 8, 4, padding="same"),
            nn.ReLU(),  # 'same' with an even kernel: asymmetric
            nn.Conv2d(8, 8, 3, groups=8),
            nn.Identity(),  # depthwise
            nn.AvgPool2d(3, stride=1, padding=1),  # count_include_pad=True
            nn.Conv2d(8, 8, 1, stride=2),
            nn.AdaptiveMaxPool2d((1, 1)),
            nn.Flatten(),
            nn.Linear(8, 4),
            nn.Softmax(dim=-1),
        ),
        3,
        16,
        16,
        [0.5, 0.4, 0.3],
        [0.2, 0.25, 0.3],
        "base64",
    )
    # Residual blocks (identity and projection shortcuts) and every activation module: a graph model.
    residual = export_pytorch.Residual
    yield (
        "residual-activations",
        nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.Hardswish(),
            residual(
                nn.Sequential(
                    nn.Conv2d(6, 6, 3, padding=1),
                    nn.BatchNorm2d(6),
                    nn.SiLU(),
                    nn.Conv2d(6, 6, 3, padding=1),
                    nn.BatchNorm2d(6),
                ),
                activation=nn.ReLU6(),
            ),
            residual(
                nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2)),
                shortcut=nn.Sequential(nn.Conv2d(6, 8, 1, stride=2), nn.BatchNorm2d(8)),
                activation=nn.Tanh(),
            ),
            residual(nn.Sequential(nn.Conv2d(8, 8, 1), nn.Hardsigmoid()), activation=nn.Hardtanh(-0.5, 1.5)),
            nn.Conv2d(8, 4, 1),
            nn.Sigmoid(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 4),
            nn.ReLU(),
            nn.Linear(4, 3),
            nn.Softmax(dim=1),
        ),
        3,
        15,
        13,
        [0.5, 0.4, 0.3],
        [0.2, 0.25, 0.3],
        "base64",
    )
    yield (
        "flatten-dense-head",
        nn.Sequential(
            nn.Conv2d(1, 3, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout2d(0.1),
            nn.Flatten(),
            nn.Linear(3 * 6 * 6, 7),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(7, 3),
            nn.Softmax(dim=1),
        ),
        1,
        14,
        14,
        [0.0],
        [1.0],
        "base64",
    )


def check_parity(gapnet, tmp, name, model, c, h, w, mean, std, encoding, seed):
    gen = torch.Generator().manual_seed(seed)
    randomize_batch_norm(model, gen)
    model.eval()
    labels = [f"class{i}" for i in range(model[-2].out_features)]
    path = os.path.join(tmp, name + ".json")
    export_pytorch.export(
        model,
        path,
        {"channels": c, "height": h, "width": w, "mean": mean, "std": std},
        labels,
        name=name,
        encoding=encoding,
    )

    rng = np.random.RandomState(seed)
    pixels = rng.randint(0, 256, size=(h, w, c) if c == 3 else (h, w), dtype=np.uint8)
    image_path = os.path.join(tmp, name + ".png")
    Image.fromarray(pixels, mode="RGB" if c == 3 else "L").save(image_path)

    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)
    x = x.permute(2, 0, 1) if c == 3 else x.unsqueeze(0)
    x = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    with torch.no_grad():
        expected = model(x.unsqueeze(0))[0].double().numpy()

    out = subprocess.run(
        [gapnet, "classify", "--model", path, "--top", str(len(labels)), "--json", image_path],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"{name}: gapnet failed: {out.stderr}"
    got = np.zeros(len(labels))
    for entry in json.loads(out.stdout)["top"]:
        got[entry["index"]] = entry["probability"]
    diff = np.abs(got - expected).max()
    assert (
        diff <= TOLERANCE
    ), f"{name}: largest difference {diff:.3g} > {TOLERANCE}\n gapnet  {got}\n pytorch {expected}"
    print(f"ok  {name}: {len(labels)} probabilities within {diff:.2g} of PyTorch")

    verify = subprocess.run([gapnet, "verify", path], capture_output=True, text=True)
    assert verify.returncode == 0, f"{name}: gapnet verify failed: {verify.stderr}"
    folded = os.path.join(tmp, name + "-folded.json")
    doc = export_pytorch.export(
        model,
        folded,
        {"channels": c, "height": h, "width": w, "mean": mean, "std": std},
        labels,
        name=name,
        encoding=encoding,
        fold_bn=True,
    )
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(layer["type"] == "batch_norm2d" for layer in doc["layers"]) == 0 or batch_norms == 0, name
    verify = subprocess.run([gapnet, "verify", "--json", folded], capture_output=True, text=True)
    assert verify.returncode == 0, f"{name}: the folded file does not verify: {verify.stderr}"
    print(
        f"ok  {name}: recorded tests verify; with {batch_norms} batch norm(s) folded, largest difference "
        f"{json.loads(verify.stdout)['largest_difference']:.2g}"
    )


def check_refusals():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    cases = [
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.LSTM(3, 3)), "module '1' (LSTM): not supported by gapnet"),
        (nn.Sequential(nn.AdaptiveAvgPool2d(2)), "output_size 2 is not supported (only 1, which is global pooling)"),
        (nn.Sequential(nn.MaxPool2d(2, dilation=2)), "dilation [2, 2] is not supported"),
        (
            nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")),
            "padding_mode 'reflect' is not supported",
        ),
        (nn.Sequential(nn.Softmax(dim=0)), "softmax over dim 0 is not supported"),
        (nn.Sequential(nn.Sequential(nn.ReLU(), Custom())), "module '0.1' (Custom): not supported by gapnet"),
        (
            nn.Sequential(nn.ZeroPad2d((1, 0, 2, 0)), nn.ReLU(), nn.Conv2d(1, 1, 3)),
            "module '0' (ZeroPad2d): a ZeroPad2d is only supported immediately before a Conv2d, whose padding "
            "it joins; it is followed by a ReLU",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 1, 3), nn.ZeroPad2d(1)),
            "module '1' (ZeroPad2d): a ZeroPad2d is only supported immediately before a Conv2d, whose padding "
            "it joins; it is followed by nothing",
        ),
        (
            nn.Sequential(nn.ZeroPad2d((1, -1, 0, 0)), nn.Conv2d(1, 1, 3)),
            "module '0' (ZeroPad2d): negative padding (1, -1, 0, 0) (cropping) is not supported",
        ),
        (Custom(), "the model is a Custom; only nn.Sequential can be exported"),
    ]
    for model, message in cases:
        try:
            export_pytorch.model_dict(model, {"channels": 1, "height": 8, "width": 8}, ["a"])
        except export_pytorch.ExportError as e:
            assert message in str(e), f"refusal message {str(e)!r} lacks {message!r}"
            continue
        raise AssertionError(f"{model} was not refused")
    print(f"ok  {len(cases)} unsupported models refused with a message naming the module")


def check_zero_pad_folding():
    """ZeroPad2d's (left, right, top, bottom) joins the next convolution's padding as gapnet's
    [top, left, bottom, right], added to the convolution's own padding (symmetric or 'same')."""
    cases = [
        (nn.Sequential(nn.ZeroPad2d((1, 0, 2, 3)), nn.Conv2d(1, 1, 3)), [2, 1, 3, 0]),
        (nn.Sequential(nn.ZeroPad2d((1, 0, 2, 3)), nn.Conv2d(1, 1, 3, padding=(1, 2))), [3, 3, 4, 2]),
        (nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 1, 4, padding="same")), [2, 2, 3, 3]),
    ]
    for model, padding in cases:
        layers = export_pytorch.layer_dicts(model)
        assert [layer["type"] for layer in layers] == ["conv2d"], layers
        assert layers[0]["padding"] == padding, f"{model}: padding {layers[0]['padding']}, expected {padding}"
    print(f"ok  ZeroPad2d folded into the next convolution's padding ({len(cases)} cases)")


def check_command_line(gapnet, tmp):
    """The exporter as a program, on a pickled module."""
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2), nn.Softmax(dim=1)
    )
    pt, out, labels = (os.path.join(tmp, n) for n in ("m.pt", "m.json", "labels.txt"))
    torch.save(model, pt)
    with open(labels, "w") as f:
        f.write("yes\nno\n")
    script = os.path.join(os.path.dirname(export_pytorch.__file__), "export_pytorch.py")
    run = subprocess.run(
        [sys.executable, script, pt, out, "--input", "1x8x8", "--labels", labels], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    summary = subprocess.run([gapnet, "summary", out, "--json"], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    info = json.loads(summary.stdout)
    assert info["parameters"] == 2 * 9 + 2 + 2 * 2 + 2, info
    assert info["head"]["parameters"] == 6, info
    print("ok  export_pytorch.py on a pickled module, read back by gapnet summary")


def check_tampered_file(gapnet, tmp):
    """verify must fail, naming the output position, value and recorded value."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3), nn.Softmax(dim=1))
    path = os.path.join(tmp, "tampered.json")
    doc = export_pytorch.export(
        model, path, {"channels": 1, "height": 6, "width": 6}, ["a", "b", "c"], encoding="json", tests=2
    )
    recorded = doc["tests"][1]["output"]["data"][2]
    doc["tests"][1]["output"]["data"][2] = recorded + 0.001
    with open(path, "w") as f:
        json.dump(doc, f)
    run = subprocess.run([gapnet, "verify", path], capture_output=True, text=True)
    assert run.returncode == 1, run
    assert f"gapnet: error: {path}: tests[1].output[2] (c): " in run.stderr, run.stderr
    assert "but the file records" in run.stderr and "> tolerance 1e-05" in run.stderr, run.stderr
    print("ok  a tampered recorded output fails gapnet verify at its position")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_export_pytorch.py PATH/TO/gapnet")
    gapnet = sys.argv[1]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (name, model, c, h, w, mean, std, encoding) in enumerate(networks()):
            check_parity(gapnet, tmp, name, model, c, h, w, mean, std, encoding, seed)
        check_tampered_file(gapnet, tmp)
        check_refusals()
        check_zero_pad_folding()
        check_command_line(gapnet, tmp)


if __name__ == "__main__":
    main()
