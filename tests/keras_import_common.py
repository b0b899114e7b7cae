"""What the parts of tests/test_keras_import.py share: the published model's files, the tolerance, and
running the importer and gapnet (import, verify, classify)."""

import json
import os
import subprocess
import sys

import numpy as np


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))


IMPORTER = os.path.join(ROOT, "tools", "keras_to_gapnet.py")
KERAS_FILE = os.path.join(ROOT, "models", "keras", "fer2013_mini_XCEPTION.102-0.66.hdf5")
SHIPPED = os.path.join(ROOT, "models", "emotion_mini_xception.json")
LABELS_FILE = os.path.join(ROOT, "models", "keras", "fer2013_labels.txt")
METADATA_FILE = os.path.join(ROOT, "models", "keras", "fer2013_mini_XCEPTION.metadata.json")
FACE = os.path.join(ROOT, "data", "samples", "faces", "astronaut.png")
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
TOLERANCE = 1e-5
PYTHON = "/usr/bin/python3"


# ---- running things --------------------------------------------------------------------------------------


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def import_model(model_path, out_path, *options):
    result = run([PYTHON, IMPORTER, model_path, out_path, *options])
    assert result.returncode == 0, f"importing {model_path} failed: {result.stderr}"
    return json.load(open(out_path))


def verify(gapnet, path, expect_pass=True):
    result = run([gapnet, "verify", "--json", path])
    if not expect_pass:
        return result.returncode != 0
    assert result.returncode == 0, f"gapnet verify {path}: {result.stdout}{result.stderr}"
    report = json.loads(result.stdout)
    assert report["passed"] and report["cases"] >= 1, report
    return report["largest_difference"]


def classify(gapnet, model_path, image_path, classes):
    result = run([gapnet, "classify", "--model", model_path, "--top", str(classes), "--json", image_path])
    assert result.returncode == 0, f"gapnet classify {model_path} {image_path}: {result.stderr}"
    probabilities = np.zeros(classes)
    for entry in json.loads(result.stdout)["top"]:
        probabilities[entry["index"]] = entry["probability"]
    return probabilities


def random_batch(spec, count, seed):
    rng = np.random.RandomState(seed)
    return rng.uniform(-1.5, 1.5, size=(count, *spec.input_shape)).astype(np.float32)
