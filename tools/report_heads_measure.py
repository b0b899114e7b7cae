"""The measurements of tools/report_heads.py: the models it compares (KEYS), running gapnet, the
Fashion-MNIST data and its shifted copies, the machine's facts, and the CAM localization measured."""

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_DIR = "/usr/share/datasets/fashion-mnist"


OBJECT_THRESHOLD = 26  # a pixel belongs to the object when its value is >= 26 (about 10 % of 255)


FIGURES = ("parameters.png", "train-vs-test.png", "translation.png", "cam-grid.png", "cam-grid-resnet.png")
# The models, in the order of every table and figure: the two heads the report compares, then the
# residual GAP network beside them.
KEYS = ("gap", "flatten", "resnet")
KINDS = {"gap": "GAP", "flatten": "flatten", "resnet": "residual GAP"}
T0 = time.time()


def progress(message):
    print(f"[{time.time() - T0:6.1f} s] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Running gapnet


class Gapnet:
    def __init__(self, path):
        self.path = path

    def run(self, *args, ok=(0,)):
        cmd = [self.path, *args]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode not in ok:
            sys.exit(f"report_heads: `{' '.join(cmd)}` failed (exit {p.returncode}):\n{p.stderr.strip()}")
        return p

    def json(self, *args):
        out = self.run(*args).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError as e:
            sys.exit(f"report_heads: `{self.path} {' '.join(args)}` printed no valid JSON ({e}):\n{out[:500]}")

    def json_lines(self, *args):
        return [json.loads(line) for line in self.run(*args).stdout.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Data


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 8:
        sys.exit(f"report_heads: {path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    """An uncompressed IDX file of unsigned bytes: 0, 0, 8, ndim, big-endian uint32 dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(np.array(array.shape, dtype=">u4").tobytes())
        f.write(array.tobytes())


DIRECTIONS = ["right", "down", "left", "up"]  # image i is shifted towards DIRECTIONS[i % 4]


def shift_images(images, k):
    """Each image i moved k pixels towards DIRECTIONS[i % 4]; uncovered pixels are 0 (background)."""
    if k == 0:
        return images.copy()
    out = np.zeros_like(images)
    idx = np.arange(len(images))
    r, d, l, u = (idx[idx % 4 == j] for j in range(4))
    out[r, :, k:] = images[r, :, :-k]
    out[d, k:, :] = images[d, :-k, :]
    out[l, :, :-k] = images[l, :, k:]
    out[u, :-k, :] = images[u, k:, :]
    return out


def normalized(name):
    """gapnet's label matching: lower case, anything not alphanumeric as '_'."""
    return "".join(c.lower() if c.isalnum() else "_" for c in name)


def decode_tensor(t):
    if t.get("encoding", "json") == "base64":
        values = np.frombuffer(base64.b64decode(t["data"]), dtype="<f4")
    else:
        values = np.array(t["data"], dtype=np.float32)
    return values.reshape(t["shape"])


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"report_heads: {path}: {e}")


def default_figures(out):
    """The figures' folder for the report `out`: its path without ".md" (docs/gap-vs-flatten.md ->
    docs/gap-vs-flatten)."""
    return os.path.splitext(out)[0]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def children_cpu():
    """CPU seconds (user + system) used so far by finished child processes."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine():
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        cores = str(os.cpu_count())
    return model, cores


def eval_batch_size():
    """The batch size gapnet eval uses, read from its source (tools/gapnet/evaluation.cpp)."""
    try:
        with open(os.path.join(ROOT, "tools", "gapnet", "evaluation.cpp")) as f:
            m = re.search(r"constexpr\s+int64_t\s+kBatch\s*=\s*(\d+)\s*;", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Class activation maps, measured


def backbone_output(summary):
    """The name of the layer whose output the head reads (gapnet summary --json): the last feature
    maps. In a graph model that is the head's input, not necessarily the layer listed just before it."""
    layers = summary["layers"]
    first = next(i for i, l in enumerate(layers) if l["head"])
    inputs = layers[first].get("inputs")
    return inputs[0] if inputs else layers[first - 1]["name"]


def cam_localization(gapnet, model_path, model_doc, summary, images, labels, tmp):
    """For each image: the predicted class (gapnet classify), the last feature maps (gapnet features)
    and from them and the dense weights the CAM of that class; where its peak and its mass lie
    relative to the object's pixels."""
    feature_layer = backbone_output(summary)
    # The head's own global pool and the dense layer after it: in a graph model an earlier
    # global_avg_pool2d (a squeeze-and-excitation gate, say) belongs to the backbone.
    head_first = summary["head"]["first_layer"]
    doc_layers = model_doc["layers"]
    gap_index = next(i for i, l in enumerate(doc_layers) if l.get("name") == head_first)
    if doc_layers[gap_index]["type"] != "global_avg_pool2d":
        sys.exit(
            f"report_heads: {summary.get('file', 'a model')}: its head starts with {doc_layers[gap_index]['type']}, "
            "not global_avg_pool2d, so its CAM cannot be computed here"
        )
    dense = next(layer for layer in doc_layers[gap_index:] if layer["type"] == "dense")
    w, b = decode_tensor(dense["weight"]), decode_tensor(dense["bias"])

    from PIL import Image

    folder = os.path.join(tmp, "cam_images")
    os.makedirs(folder)
    files = []
    for i, img in enumerate(images):
        f = os.path.join(folder, f"test{i:05d}.png")
        Image.fromarray(img, mode="L").save(f)
        files.append(f)
    predictions = gapnet.json_lines("classify", "--model", model_path, "--top", "1", "--json", *files)
    for p in predictions:
        if "top" not in p:
            sys.exit(f"report_heads: gapnet classify: {p.get('file')}: {p.get('error')}")
    results = []
    agree = 0
    for i, (f, pred) in enumerate(zip(files, predictions)):
        npy = os.path.join(tmp, "features.npy")
        gapnet.run("features", "--model", model_path, "--layer", feature_layer, "-o", npy, f)
        a = np.load(npy)  # C x h x w
        logits = w @ a.mean(axis=(1, 2)) + b
        c = pred["top"][0]["index"]
        agree += int(np.argmax(logits)) == c
        cam = np.tensordot(w[c], a, axes=1)  # h x w
        h, wd = cam.shape
        sy, sx = images.shape[1] // h, images.shape[2] // wd
        mask = images[i] >= OBJECT_THRESHOLD
        cell_object = mask[: h * sy, : wd * sx].reshape(h, sy, wd, sx).mean(axis=(1, 3)) >= 0.5
        peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
        norm = (cam - cam.min()) / (cam.max() - cam.min()) if cam.max() > cam.min() else np.ones_like(cam)
        big = np.kron(norm, np.ones((sy, sx)))
        big_mask = mask[: h * sy, : wd * sx]
        results.append(
            {
                "pred": c,
                "label": labels[i],
                "peak_on_object": bool(cell_object[peak]),
                "object_cells": float(cell_object.mean()),
                "mass_on_object": float((big * big_mask).sum() / big.sum()),
                "object_area": float(big_mask.mean()),
            }
        )
        if (i + 1) % 250 == 0:
            progress(f"  CAM localization: {i + 1} / {len(images)} images")
    return feature_layer, results, agree
