#!/usr/bin/python3
"""gapnet's image preprocessing against Pillow's and torchvision's own transforms, on real photos.

    /usr/bin/python3 tests/test_preprocess.py build/release/gapnet

Each case writes a model whose input is the case's (scale 1, mean 0, std 1: the tensor is the
pixels, 0..255), asks `gapnet features --layer input -o x.npy` for the exact tensor gapnet feeds the
first layer, and compares it with what Pillow or torchvision computes for the same photo:

- filter "area" (shrinking): OpenCV's cv2.resize with INTER_AREA;
- filter "bilinear": Pillow's Image.resize with BILINEAR (antialiased when shrinking), also what
  enlarging uses with either filter;
- shorter_side: torchvision's Resize(S) + CenterCrop((H, W)), the ImageNet convention;
- letterbox: PIL.ImageOps.pad (contain + centre on the pad colour);
- grayscale: Image.convert("L") (ITU-R BT.601 luma) first; bgr: the RGB result's channels reversed;
- a JPEG at least twice the size needed: Image.draft() (libjpeg's DCT scaling) then the same resize,
  in RGB and in gray ("L" decodes the luma the file stores).

Pillow and OpenCV round their results to 8 bits (Pillow also between its horizontal and vertical
passes) and gapnet keeps floats; the bound is 1 grey level. The photos are scikit-image's public-domain coffee.png
(600x400) and rocket.jpg (640x427) (python3-skimage); the test fails, never skips, without them.
"""
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import skimage
import torchvision.transforms as T
from PIL import Image, ImageOps

PHOTOS = os.path.join(os.path.dirname(skimage.__file__), "data")
TOLERANCE = 1.001  # grey levels: two roundings of half a level each, plus Pillow's 22-bit fixed-point weights


def model_for(input_spec):
    """A valid model with `input_spec` (the layers only have to accept any input size)."""
    channels = input_spec["channels"]
    return {
        "format": "gapnet",
        "version": 1,
        "name": "preprocess-probe",
        "input": dict(input_spec, scale=1.0, mean=[0.0] * channels, std=[1.0] * channels),
        "labels": ["a", "b"],
        "layers": [
            {"type": "global_avg_pool2d", "name": "gap"},
            {
                "type": "dense",
                "name": "fc",
                "in_features": channels,
                "out_features": 2,
                "weight": {"shape": [2, channels], "data": [0.0] * (2 * channels)},
                "bias": {"shape": [2], "data": [0.0, 0.0]},
            },
        ],
    }


def gapnet_input(gapnet, workdir, input_spec, photo):
    """gapnet's input tensor for `photo`, as H x W x C."""
    model_path = os.path.join(workdir, "model.json")
    with open(model_path, "w") as f:
        json.dump(model_for(input_spec), f)
    out = os.path.join(workdir, "input.npy")
    subprocess.run([gapnet, "features", "--model", model_path, "--layer", "input", "-o", out, photo], check=True)
    return np.load(out).transpose(1, 2, 0)


def pixels(image):
    a = np.asarray(image, dtype=np.float32)
    return a[:, :, None] if a.ndim == 2 else a


def main():
    gapnet = sys.argv[1]
    coffee = Image.open(os.path.join(PHOTOS, "coffee.png")).convert("RGB")  # 600 x 400
    rocket_path = os.path.join(PHOTOS, "rocket.jpg")  # 640 x 427, a baseline JPEG
    failures = []
    with tempfile.TemporaryDirectory() as workdir:
        photo_png = os.path.join(workdir, "coffee.png")
        coffee.save(photo_png)
        small = coffee.resize((60, 40), Image.Resampling.BOX)  # a photo to enlarge
        small_png = os.path.join(workdir, "small.png")
        small.save(small_png)
        portrait = coffee.crop((100, 0, 367, 400))  # 267 x 400
        portrait_png = os.path.join(workdir, "portrait.png")
        portrait.save(portrait_png)

        rgb = {"channels": 3, "color": "rgb"}
        gray = {"channels": 1, "color": "grayscale"}
        bilinear = Image.Resampling.BILINEAR

        def crop(size, side, image):  # torchvision's ImageNet transforms (bilinear, antialiased)
            return T.CenterCrop(size)(T.Resize(side)(image))

        def drafted(mode, size):
            image = Image.open(rocket_path)
            image.draft(mode, size)
            assert image.size[0] < 640, "Pillow's draft() did not shrink the JPEG"
            return image.convert(mode).resize(size, bilinear)

        def area(image, size):  # OpenCV's INTER_AREA, the area filter gapnet documents
            return cv2.resize(pixels(image), size, interpolation=cv2.INTER_AREA).round()

        bil = dict(filter="bilinear")
        cases = [
            # name, gapnet input spec, photo path, OpenCV/Pillow/torchvision reference (H x W x C)
            ("area shrink rgb", dict(rgb, height=80, width=96), photo_png, area(coffee, (96, 80))),
            ("area shrink gray", dict(gray, height=80, width=96), photo_png, area(coffee.convert("L"), (96, 80))),
            (
                "area bgr",
                dict(rgb, height=80, width=96, channel_order="bgr"),
                photo_png,
                area(coffee, (96, 80))[:, :, ::-1],
            ),
            (
                "bilinear shrink rgb",
                dict(rgb, **bil, height=80, width=96),
                photo_png,
                coffee.resize((96, 80), bilinear),
            ),
            (
                "bilinear enlarge rgb",
                dict(rgb, **bil, height=100, width=150),
                small_png,
                small.resize((150, 100), bilinear),
            ),
            (
                "area enlarge rgb (bilinear)",
                dict(rgb, height=100, width=150),
                small_png,
                small.resize((150, 100), bilinear),
            ),
            (
                "shorter_side 128 crop 112x112",
                dict(rgb, **bil, height=112, width=112, resize="shorter_side", shorter_side=128),
                photo_png,
                crop((112, 112), 128, coffee),
            ),
            (
                "shorter_side 133 crop 101x120 (odd margins)",
                dict(rgb, **bil, height=101, width=120, resize="shorter_side", shorter_side=133),
                photo_png,
                crop((101, 120), 133, coffee),
            ),
            (
                "shorter_side portrait gray",
                dict(gray, **bil, height=64, width=64, resize="shorter_side", shorter_side=75),
                portrait_png,
                crop((64, 64), 75, portrait.convert("L")),
            ),
            (
                "letterbox landscape",
                dict(rgb, **bil, height=96, width=96, resize="letterbox", pad=114),
                photo_png,
                ImageOps.pad(coffee, (96, 96), method=bilinear, color=(114, 114, 114)),
            ),
            (
                "letterbox portrait",
                dict(rgb, **bil, height=50, width=97, resize="letterbox"),
                portrait_png,
                ImageOps.pad(portrait, (97, 50), method=bilinear, color=(0, 0, 0)),
            ),
            ("JPEG drafted rgb", dict(rgb, **bil, height=64, width=64), rocket_path, drafted("RGB", (64, 64))),
            ("JPEG drafted gray", dict(gray, **bil, height=100, width=150), rocket_path, drafted("L", (150, 100))),
        ]
        for name, spec, photo, reference in cases:
            got = gapnet_input(gapnet, workdir, spec, photo)
            want = pixels(reference)
            if got.shape != want.shape:
                failures.append(f"{name}: shape {got.shape}, Pillow/torchvision {want.shape}")
                continue
            worst = float(np.abs(got - want).max())
            print(f"{name:45s} largest difference {worst:.4f} grey levels")
            if worst > TOLERANCE:
                failures.append(f"{name}: differs by {worst:.3f} grey levels (bound {TOLERANCE})")
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
