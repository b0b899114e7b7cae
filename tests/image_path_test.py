#!/usr/bin/python3
"""One image path: a JPEG photo is the same model input in every command that reads an image.

    /usr/bin/python3 tests/image_path_test.py build/release/gapnet SOURCE_DIR

The photo is data/test-images/coffee.jpg (600x400, scikit-image's public-domain coffee), which the
shipped 28x28 model decodes shrunk by libjpeg-turbo's DCT scaling. `classify` and `cam` once read it
differently (cam decoded it whole), and their scores disagreed in the third decimal. Checked here:
`features --layer input` (the exact input) is the same from the file and from standard input;
`classify`'s probabilities are what `features` gives for the softmax layer; `cam` prints classify's
top probability, from a file and from standard input. The same pixels decoded whole by Pillow and
written as PNG give another input: that is what lets the checks above fail.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def run(*args, stdin=None):
    p = subprocess.run(args, input=stdin, capture_output=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr.decode())
    return p.stdout.decode()


def features(gapnet, layer, path, stdin=None):
    return np.array(json.loads(run(gapnet, "features", "--layer", layer, "--json", path, stdin=stdin))["data"])


def main():
    gapnet, source = sys.argv[1], sys.argv[2]
    photo = os.path.join(source, "data", "test-images", "coffee.jpg")
    with open(photo, "rb") as f:
        photo_bytes = f.read()

    the_input = features(gapnet, "input", photo)
    assert the_input.shape == (28 * 28,), the_input.shape
    assert np.array_equal(features(gapnet, "input", "-", stdin=photo_bytes), the_input)

    top = json.loads(run(gapnet, "classify", "--json", "--top", "10", photo))["top"]
    probabilities = np.zeros(10)
    for p in top:
        probabilities[p["index"]] = p["probability"]
    from_features = features(gapnet, "softmax1", photo)
    assert np.abs(from_features - probabilities).max() < 1e-6, (from_features, probabilities)

    best = top[0]
    shown = f"{best['label']} ({best['probability']:.4f})"
    with tempfile.TemporaryDirectory() as tmp:
        cam_png = os.path.join(tmp, "cam.png")
        for source_arg, stdin in ((photo, None), ("-", photo_bytes)):
            line = run(gapnet, "cam", "-o", cam_png, source_arg, stdin=stdin).strip()
            assert line == f"wrote {cam_png}: {shown}", (line, shown)
        # The photo decoded whole (as cam once did), handed over losslessly: another input.
        whole = os.path.join(tmp, "coffee-whole.png")
        Image.open(photo).save(whole)
        other = features(gapnet, "input", whole)
        assert np.abs(other - the_input).max() > 1e-3, "a whole decode gave the same input: the test cannot fail"
    print(f"one image path: {photo}: input, classify, features and cam agree ({shown})")


if __name__ == "__main__":
    main()
