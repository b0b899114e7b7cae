#!/usr/bin/python3
"""Write M3, the performance issue's large model, with seeded random weights: VGG-11's convolution
stack on a 3x224x224 input, global average pooling and a dense layer 512 -> 1000 (9,733,480 float32
parameters, about 39 MB).

    /usr/bin/python3 tools/make_m3.py OUT.json [--encoding base64|json] [--tests N]

With base64 tensors (the default) the file is about 52 MB; with JSON number arrays, about 268 MB.
Time loading it with  /usr/bin/time -v build/release/gapnet summary OUT.json.
"""
import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402

VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def m3():
    torch.manual_seed(0)
    layers, channels = [], 3
    for v in VGG11:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1000)]
    return nn.Sequential(*layers).eval()


def main():
    ap = argparse.ArgumentParser(description="Write the M3 benchmark model (random weights).")
    ap.add_argument("out")
    ap.add_argument("--encoding", choices=["base64", "json"], default="base64")
    ap.add_argument("--tests", type=int, default=0, help="random test inputs to record (default 0)")
    args = ap.parse_args()
    spec = {"channels": 3, "height": 224, "width": 224}
    export_pytorch.export(
        m3(), args.out, spec, [f"class_{i}" for i in range(1000)], name="m3", encoding=args.encoding, tests=args.tests
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
