#!/usr/bin/python3
"""Measure what a global-average-pooling head buys over flatten + dense, and write the report.

    /usr/bin/python3 tools/report_heads.py            # ~8 min on 2 cores

Drives the gapnet binary (--gapnet, default build/release/gapnet) on the three shipped Fashion-MNIST
models: models/fashion_gap.json and models/fashion_flatten.json (same backbone, seed and schedule,
different heads), the report's subject, and models/fashion_resnet.json (--resnet: the GAP head on a
residual version of that backbone), which shows what residual connections do with the same small head.
It writes docs/gap-vs-flatten.md (--out) with its figures in the folder of the same name without
".md" (--figures):

  1. parameters per head and in total, file size       gapnet summary --json, gapnet compare --json
  2. train and test accuracy (the overfitting gap)     gapnet eval --json on all 60,000 / 10,000 images
  3. test accuracy on test images shifted 0..8 pixels  shifted IDX files written here, gapnet eval --json
  4. latency (batch 1) and throughput (eval's batch)   gapnet compare --json, eval timings
  5. class activation maps of the sample images        gapnet cam, gapnet classify --json, gapnet features

plus the analytic head comparison of gapnet heads. Everything except the timings (and the date)
is deterministic: re-running writes the same report and byte-identical figures.

Run with the system interpreter (/usr/bin/python3: numpy, Pillow; matplotlib from
`apt-get install python3-matplotlib`).
"""
import argparse
import base64
import datetime
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_DIR = "/usr/share/datasets/fashion-mnist"
COMMAND = "/usr/bin/python3 tools/report_heads.py"
OBJECT_THRESHOLD = 26  # a pixel belongs to the object when its value is >= 26 (about 10 % of 255)
MARGIN = 0.5  # accuracy differences (in points) at or below this are called "no clear difference"

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
# Formatting


def n(v):
    return f"{v:,}"


def pct(v, digits=2):
    return f"{100 * v:.{digits}f} %"


def pts(v, digits=2):
    return f"{100 * v:+.{digits}f}"


def px(values):
    """[1, 2, 3] -> "1, 2 and 3 px"."""
    v = [str(x) for x in values]
    return (", ".join(v[:-1]) + " and " + v[-1] if len(v) > 1 else "".join(v)) + " px"


def md_table(header, rows, align=None):
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures


def setup_matplotlib():
    try:
        import matplotlib
    except ImportError:
        sys.exit("report_heads: matplotlib is missing: apt-get install -y python3-matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "gapnet",
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def save(plt, fig, path):
    # No "Software" (matplotlib version) or date in the PNG: the file depends only on the data.
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


COLOURS = {"gap": "#1f77b4", "flatten": "#d62728", "resnet": "#2ca02c"}


def figure_parameters(plt, path, m):
    fig, ax = plt.subplots(figsize=(7, 4))
    groups = ["backbone", "head", "total"]
    x = np.arange(len(groups))
    width = 0.8 / len(KEYS)
    for j, key in enumerate(KEYS):
        vals = [m[key]["backbone"], m[key]["head"], m[key]["total"]]
        bars = ax.bar(x + (j - (len(KEYS) - 1) / 2) * width, vals, width, label=m[key]["label"], color=COLOURS[key])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, max(v, 100) * 1.15, n(v), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(100, max(m[k]["total"] for k in KEYS) * 8)
    ax.set_xticks(x, groups)
    ax.set_ylabel("parameters (log scale)")
    ax.set_title("Parameters per part of the model")
    # Below the axes: inside, three entries would cover the labels of the tallest bars.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(KEYS), fontsize=8)
    save(plt, fig, path)


def figure_accuracy(plt, path, m):
    fig, ax = plt.subplots(figsize=(8, 4))
    keys = KEYS
    x = np.arange(len(keys))
    for j, split in enumerate(["train", "test"]):
        vals = [100 * m[k][split] for k in keys]
        bars = ax.bar(x + (j - 0.5) * 0.38, vals, 0.38, label=f"{split} set", color=["#9ecae1", "#3182bd"][j])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.1, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    low = min(100 * m[k][s] for k in keys for s in ("train", "test"))
    ax.set_ylim(max(0, low - 4), 101)
    ax.set_xticks(
        x, [f"{m[k]['label']}\ntrain − test: {100 * (m[k]['train'] - m[k]['test']):.2f} points" for k in keys]
    )
    ax.set_ylabel("top-1 accuracy (%)" + (", axis not from 0" if low - 4 > 0 else ""))
    ax.set_title(
        f"Train vs test accuracy (gapnet eval: {n(m['gap']['train_images'])} train, "
        f"{n(m['gap']['test_images'])} test images)",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    save(plt, fig, path)


def figure_translation(plt, path, shifts, m, images):
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in KEYS:
        acc = [100 * a for a in m[k]["shift"]]
        ax.plot(shifts, acc, marker="o", label=m[k]["label"], color=COLOURS[k])
    ax.axhline(10, color="gray", linestyle=":", linewidth=1)
    ax.text(shifts[-1], 11, "chance (10 %)", ha="right", fontsize=8, color="gray")
    ax.set_xticks(shifts)
    ax.set_ylim(0, 100)
    ax.set_xlabel("shift (pixels; image i moved right, down, left, up for i mod 4 = 0, 1, 2, 3; zero fill)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Translation robustness on {n(images)} Fashion-MNIST test images")
    ax.legend()
    save(plt, fig, path)


def figure_cam_grid(plt, path, samples, key, title):
    """One panel per sample: its map from `gapnet cam` for model `key` ("gap" or "resnet"; each sample
    holds <key>_cam_file, <key>_pred and <key>_prob), titled with the true class and the prediction."""
    from PIL import Image

    cols = 5
    rows = (len(samples) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 3.9))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, s in zip(np.atleast_1d(axes).ravel(), samples):
        ax.imshow(np.asarray(Image.open(s[f"{key}_cam_file"]).convert("RGB")))
        ok = s[f"{key}_pred"] == s["true"]
        ax.set_title(
            f"true: {s['true']}\npredicted: {s[f'{key}_pred']} ({100 * s[f'{key}_prob']:.1f} %)\n"
            + ("correct" if ok else "WRONG"),
            fontsize=9,
            color="#1a7f37" if ok else "#cf222e",
        )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(plt, fig, path)


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


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gapnet", default="build/release/gapnet", help="the gapnet binary (default: %(default)s)")
    ap.add_argument("--gap", default="models/fashion_gap.json", help="the GAP model (default: %(default)s)")
    ap.add_argument(
        "--flatten", default="models/fashion_flatten.json", help="the flatten + dense model (default: %(default)s)"
    )
    ap.add_argument(
        "--resnet",
        default="models/fashion_resnet.json",
        help="the residual GAP model, shown beside the two (default: %(default)s)",
    )
    ap.add_argument(
        "--dataset", default=DATASET_DIR, help="folder with Fashion-MNIST's IDX files (default: %(default)s)"
    )
    ap.add_argument(
        "--samples", default="data/samples", help="one PNG per class, named by class (default: %(default)s)"
    )
    ap.add_argument("--max-shift", type=int, default=8, help="largest shift in pixels (default: %(default)s)")
    ap.add_argument(
        "--cam-images",
        type=int,
        default=1000,
        help="first N test images whose CAMs are measured for localization (default: %(default)s)",
    )
    ap.add_argument("--out", default="docs/gap-vs-flatten.md", help="the report (default: %(default)s)")
    ap.add_argument(
        "--figures",
        help="folder for the figures (default: --out without .md, docs/gap-vs-flatten); "
        "its earlier cam-*.png and figures are deleted",
    )
    args = ap.parse_args()
    # The figures go beside the report they belong to, so that a report written elsewhere (a trial
    # run) never replaces the figures of the committed one.
    args.figures = args.figures or default_figures(args.out)
    os.chdir(ROOT)  # every relative path, and every path the report prints, is relative to the repository

    gapnet = Gapnet(args.gapnet if os.path.isabs(args.gapnet) else os.path.join(".", args.gapnet))
    for path in (args.gapnet, args.gap, args.flatten, args.resnet):
        if not os.path.exists(path):
            sys.exit(f"report_heads: {path}: no such file")
    plt = setup_matplotlib()
    os.makedirs(args.figures, exist_ok=True)
    # Figures of an earlier run that this run might not write again (e.g. the map of a sample that was
    # misclassified then) would otherwise linger.
    for name in os.listdir(args.figures):
        if name.endswith(".png") and (name.startswith("cam-") or name in FIGURES):
            os.remove(os.path.join(args.figures, name))
    fig_rel = os.path.relpath(args.figures, os.path.dirname(os.path.abspath(args.out)))

    started = datetime.datetime.now(datetime.timezone.utc)
    args.loadavg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    cpu_model, cores = machine()
    version = gapnet.run("--version").stdout.strip()
    progress(
        f"{version}, {cpu_model}, {cores} cores; GAP model {args.gap}, flatten model {args.flatten}, "
        f"residual GAP model {args.resnet}"
    )

    paths = {"gap": args.gap, "flatten": args.flatten, "resnet": args.resnet}
    docs = {k: load_json(p) for k, p in paths.items()}
    m = {
        k: {
            "path": p,
            "label": f"{KINDS[k]} ({docs[k].get('name', '?')})",
            "sha": sha256(p)[:16],
            "meta": docs[k].get("metadata", {}),
        }
        for k, p in paths.items()
    }

    # 1. Parameters, file size, MACs, memory, latency --------------------------------------------
    progress("gapnet summary --json, gapnet verify, gapnet compare --json, gapnet heads --json")
    summaries = {}
    for k, p in paths.items():
        s = gapnet.json("summary", p, "--json")
        summaries[k] = s
        m[k].update(
            total=s["parameters"],
            backbone=s["backbone_parameters"],
            head=s["head"]["parameters"],
            head_path=s["head"]["path"],
            head_first=s["head"]["first_layer"],
            macs=s["macs"],
        )
        v = gapnet.json("verify", p, "--json")
        m[k]["verify"] = v
    compare = gapnet.json("compare", *(paths[k] for k in KEYS), "--json")["models"]
    for k, c in zip(KEYS, compare):
        m[k].update(file_bytes=c["file_bytes"], peak_memory=c["peak_memory_bytes"], latency_ms=c["median_latency_ms"])
        if c["parameters"] != m[k]["total"] or c["head_parameters"] != m[k]["head"]:
            print(f"warning: compare and summary disagree on {k}'s parameters", file=sys.stderr)
    heads_args = ["heads", "--input", "7x7x64", "--classes", "10", "--hidden", "500"]
    heads_text = gapnet.run(*heads_args).stdout.rstrip()
    heads = gapnet.json(*heads_args, "--json")
    for k, s in summaries.items():
        feature_layer = backbone_output(s)
        m[k]["feature_shape"] = next(
            layer["output_shape"] for layer in s["layers"] if layer["name"] == feature_layer
        )  # C, H, W
        m[k]["input_shape"] = s["input"]  # C, H, W
        m[k]["merges"] = sum(layer["type"] == "add" for layer in s["layers"])  # residual connections
    progress("  parameters: " + ", ".join(f"{KINDS[k]} {n(m[k]['total'])} (head {n(m[k]['head'])})" for k in KEYS))

    # 2. Train and test accuracy --------------------------------------------------------------------
    train_images_path = os.path.join(args.dataset, "train-images-idx3-ubyte.gz")
    test_images_path = os.path.join(args.dataset, "t10k-images-idx3-ubyte.gz")
    for k, p in paths.items():
        for split, ds in (("train", train_images_path), ("test", test_images_path)):
            progress(f"gapnet eval --model {p} --dataset {ds} --json")
            cpu0, wall0 = children_cpu(), time.time()
            r = gapnet.json("eval", "--model", p, "--dataset", ds, "--json")["results"]
            m[k][split + "_cpu"], m[k][split + "_wall"] = children_cpu() - cpu0, time.time() - wall0
            if r["unreadable"]:
                sys.exit(f"report_heads: {r['unreadable']} unreadable images in {ds}")
            m[k][split] = r["top1"]
            m[k][split + "_images"] = r["images"]
            m[k][split + "_correct"] = round(r["top1"] * r["images"])
            m[k][split + "_seconds"] = r["seconds"]
            m[k][split + "_per_class"] = r["per_class"]
            progress(f"  {split} top-1 {pct(r['top1'])} ({n(r['images'])} images in {r['seconds']:.1f} s)")

    # 3. Translation ------------------------------------------------------------------------------
    test_images = read_idx(test_images_path)
    test_labels = read_idx(os.path.join(args.dataset, "t10k-labels-idx1-ubyte.gz"))
    shifts = list(range(args.max_shift + 1))
    for k in paths:
        m[k]["shift"] = [m[k]["test"]]  # shift 0 is the test set itself (evaluated above)
        m[k]["shift_seconds"] = []
    tmp = tempfile.mkdtemp(prefix="report_heads.")
    try:
        for s in shifts[1:]:
            images_file = os.path.join(tmp, f"shift{s}-images-idx3-ubyte")
            write_idx(images_file, shift_images(test_images, s))
            write_idx(images_file.replace("images-idx3", "labels-idx1"), test_labels)
            for k, p in paths.items():
                r = gapnet.json("eval", "--model", p, "--dataset", images_file, "--json")["results"]
                m[k]["shift"].append(r["top1"])
                m[k]["shift_seconds"].append((r["images"], r["seconds"]))
            progress(f"shift {s} px: " + ", ".join(f"{KINDS[k]} {pct(m[k]['shift'][-1])}" for k in KEYS))

        # 5. Class activation maps ----------------------------------------------------------------
        progress("gapnet classify --json and gapnet cam on the sample images")
        labels = docs["gap"]["labels"]
        by_norm = {normalized(l): i for i, l in enumerate(labels)}
        sample_files = sorted(os.path.join(args.samples, f) for f in os.listdir(args.samples) if f.endswith(".png"))
        gap_preds = gapnet.json_lines("classify", "--model", args.gap, "--top", "1", "--json", *sample_files)
        flat_preds = gapnet.json_lines("classify", "--model", args.flatten, "--top", "1", "--json", *sample_files)
        resnet_preds = gapnet.json_lines("classify", "--model", args.resnet, "--top", "1", "--json", *sample_files)
        samples = []
        for f, gp, fp, rp in zip(sample_files, gap_preds, flat_preds, resnet_preds):
            stem = os.path.splitext(os.path.basename(f))[0]
            if normalized(stem) not in by_norm:
                sys.exit(f"report_heads: {f}: the file name names none of the model's labels")
            true = labels[by_norm[normalized(stem)]]
            cam_file = os.path.join(args.figures, f"cam-{stem}.png")
            gapnet.run("cam", "--model", args.gap, "-o", cam_file, f)
            resnet_cam_file = os.path.join(args.figures, f"cam-resnet-{stem}.png")
            gapnet.run("cam", "--model", args.resnet, "-o", resnet_cam_file, f)
            s = {
                "file": f,
                "stem": stem,
                "true": true,
                "true_index": by_norm[normalized(stem)],
                "gap_pred": gp["top"][0]["label"],
                "gap_prob": gp["top"][0]["probability"],
                "flat_pred": fp["top"][0]["label"],
                "flat_prob": fp["top"][0]["probability"],
                "resnet_pred": rp["top"][0]["label"],
                "resnet_prob": rp["top"][0]["probability"],
                "gap_cam_file": cam_file,
                "resnet_cam_file": resnet_cam_file,
            }
            if s["gap_pred"] != true:
                s["cam_top2_file"] = os.path.join(args.figures, f"cam-{stem}-top2.png")
                gapnet.run("cam", "--model", args.gap, "--top", "2", "-o", s["cam_top2_file"], f)
                s["cam_true_file"] = os.path.join(args.figures, f"cam-{stem}-true-class.png")
                gapnet.run("cam", "--model", args.gap, "--class", str(s["true_index"]), "-o", s["cam_true_file"], f)
            samples.append(s)
        refused = gapnet.run(
            "cam", "--model", args.flatten, "-o", os.path.join(tmp, "flatten-cam.png"), sample_files[0], ok=(0, 1, 2)
        )
        flat_cam = {
            "rc": refused.returncode,
            "stderr": refused.stderr.strip(),
            "stdout": refused.stdout.strip(),
            "command": f"{args.gapnet} cam --model {args.flatten} {sample_files[0]}",
            "image": sample_files[0],
        }

        progress(f"CAM localization on the first {args.cam_images} test images (gapnet classify + features)")
        count = min(args.cam_images, len(test_images))
        feature_layer, loc, agree = cam_localization(
            gapnet, args.gap, docs["gap"], summaries["gap"], test_images[:count], test_labels[:count], tmp
        )
        progress(f"the same for the residual GAP model {args.resnet}")
        resnet_cam = dict(
            zip(
                ("feature_layer", "loc", "agree"),
                cam_localization(
                    gapnet,
                    args.resnet,
                    docs["resnet"],
                    summaries["resnet"],
                    test_images[:count],
                    test_labels[:count],
                    os.path.join(tmp, "resnet"),
                ),
            )
        )
        # the same measures for the sample images (first test image of each class)
        from PIL import Image

        sample_imgs = np.stack([np.asarray(Image.open(s["file"]).convert("L")) for s in samples])
        _, sample_loc, _ = cam_localization(
            gapnet,
            args.gap,
            docs["gap"],
            summaries["gap"],
            sample_imgs,
            np.array([s["true_index"] for s in samples]),
            os.path.join(tmp, "s"),
        )
        for s, l in zip(samples, sample_loc):
            s.update(l)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Figures ---------------------------------------------------------------------------------------
    progress(f"figures in {args.figures}/")
    figure_parameters(plt, os.path.join(args.figures, "parameters.png"), m)
    figure_accuracy(plt, os.path.join(args.figures, "train-vs-test.png"), m)
    figure_translation(plt, os.path.join(args.figures, "translation.png"), shifts, m, m["gap"]["test_images"])
    figure_cam_grid(
        plt,
        os.path.join(args.figures, "cam-grid.png"),
        samples,
        "gap",
        "Class activation maps of the GAP model, predicted class (gapnet cam)",
    )
    figure_cam_grid(
        plt,
        os.path.join(args.figures, "cam-grid-resnet.png"),
        samples,
        "resnet",
        "Class activation maps of the residual GAP model, predicted class (gapnet cam)",
    )

    # Report ----------------------------------------------------------------------------------------
    batch = eval_batch_size()
    report = write_report(
        args,
        m,
        shifts,
        heads,
        heads_text,
        samples,
        flat_cam,
        loc,
        agree,
        feature_layer,
        resnet_cam,
        started,
        cpu_model,
        cores,
        version,
        batch,
        fig_rel,
    )
    with open(args.out, "w") as f:
        f.write(report)
    progress(f"wrote {args.out} ({time.time() - T0:.0f} s in all)")


# ---------------------------------------------------------------------------------------------
# The report


def verdict_params(m):
    """Each verdict function returns (verdict, one-line summary, details)."""
    g, f = m["gap"], m["flatten"]
    if g["head"] < f["head"] and g["total"] < f["total"]:
        return (
            "**Holds.**",
            f"head {n(g['head'])} vs {n(f['head'])} parameters ({f['head'] / g['head']:,.0f}× fewer), whole "
            f"model {n(g['total'])} vs {n(f['total'])} ({f['total'] / g['total']:.1f}× fewer); but only "
            f"{100 * (f['macs'] - g['macs']) / g['macs']:.1f} % fewer MACs per image.",
            f"The GAP head has {n(g['head'])} parameters against {n(f['head'])} "
            f"({f['head'] / g['head']:,.0f}× fewer); because the backbone ({n(g['backbone'])}) is shared, "
            f"the whole model is {f['total'] / g['total']:.1f}× smaller ({n(g['total'])} vs {n(f['total'])}; "
            f"file {g['file_bytes'] / 1e6:.2f} MB vs {f['file_bytes'] / 1e6:.2f} MB). Fewer parameters is not "
            f"less compute, though: MACs per image differ by only "
            f"{100 * (f['macs'] - g['macs']) / g['macs']:.1f} % ({n(g['macs'])} vs {n(f['macs'])}), since the "
            f"convolutions dominate.",
        )
    return (
        "**Does not hold.**",
        f"GAP {n(g['total'])} vs flatten {n(f['total'])} parameters.",
        f"GAP model {n(g['total'])} parameters (head {n(g['head'])}), flatten model "
        f"{n(f['total'])} (head {n(f['head'])}).",
    )


def verdict_overfitting(m):
    g, f = m["gap"], m["flatten"]
    gg, fg = g["train"] - g["test"], f["train"] - f["test"]
    d = 100 * (fg - gg)
    base = (
        f"Train − test gap: GAP {100 * gg:.2f} points ({pct(g['train'])} → {pct(g['test'])}), flatten "
        f"{100 * fg:.2f} points ({pct(f['train'])} → {pct(f['test'])})."
    )
    better = "GAP" if g["test"] > f["test"] else "flatten"
    dt = abs(100 * (g["test"] - f["test"]))
    test_note = f" Test accuracy: {better} is higher by {dt:.2f} points."
    short = f"train − test gap {100 * gg:.2f} (GAP) vs {100 * fg:.2f} points (flatten)"
    if d > MARGIN:
        caveat = ""
        if f["test"] > g["test"] + MARGIN / 100:
            caveat = (
                " Less overfitting did not mean better generalization here: the flatten model fits the "
                f"training set {'perfectly' if f['train'] >= 1 else 'more closely'} and still scores higher on "
                "the test set."
            )
            short += f"; yet flatten's test accuracy is {dt:.2f} points higher."
        else:
            short += "."
        return "**Holds.**", short, base + f" The GAP model's gap is {d:.2f} points smaller." + test_note + caveat
    if d < -MARGIN:
        return (
            "**Does not hold.**",
            short + ".",
            base + f" The GAP model's gap is {-d:.2f} points larger." + test_note,
        )
    return (
        "**No clear difference.**",
        short + ".",
        base + f" The gaps differ by {abs(d):.2f} points, within the "
        f"{MARGIN} points this report treats as noise (one seed per model)." + test_note,
    )


def verdict_translation(m, shifts):
    """Robustness is the accuracy a model keeps when its images move: compare each model's change from
    its own unshifted accuracy (a model that is simply better everywhere is not thereby more robust)."""
    g, f = m["gap"]["shift"], m["flatten"]["shift"]
    k = len(shifts) - 1
    drop_g = [100 * (a - g[0]) for a in g[1:]]
    drop_f = [100 * (b - f[0]) for b in f[1:]]
    diffs = [a - b for a, b in zip(drop_g, drop_f)]  # > 0: GAP lost less
    better = [s for s, d in zip(shifts[1:], diffs) if d > MARGIN]
    worse = [s for s, d in zip(shifts[1:], diffs) if d < -MARGIN]
    mean = sum(diffs) / k
    ahead = [s for s, a, b in zip(shifts[1:], g[1:], f[1:]) if a > b]
    desc = (
        f"Accuracy lost to the shift, mean over 1–{shifts[-1]} px: GAP {-sum(drop_g) / k:.2f} points "
        f"(from {pct(g[0])}), flatten {-sum(drop_f) / k:.2f} points (from {pct(f[0])}); at "
        f"{shifts[-1]} px GAP keeps {pct(g[-1])}, flatten {pct(f[-1])}. GAP loses more than {MARGIN} points "
        f"less than flatten at {len(better)} of {k} shifts"
        + (f" ({px(better)})" if better else "")
        + f" and more than {MARGIN} points more at {len(worse)}"
        + (f" ({px(worse)})" if worse else "")
        + f"; in plain accuracy GAP is ahead at {len(ahead)} of {k} shifts"
        + (f" and behind at {px([s for s in shifts if g[s] < f[s]])}" if any(g[s] < f[s] for s in shifts) else "")
        + ". "
        f"Neither is shift-invariant: GAP still loses {-drop_g[-1]:.2f} points at {shifts[-1]} px."
    )
    short = (
        f"at {shifts[-1]} px GAP keeps {pct(g[-1], 1)} (−{-drop_g[-1]:.1f} points), flatten {pct(f[-1], 1)} "
        f"(−{-drop_f[-1]:.1f})"
    )
    tail = shifts[1:][-len(better) :] if better else []
    if len(better) == k:
        return "**Holds.**", short + ".", desc
    if not worse and better and better == tail:
        ties = [s for s in shifts[1:] if s not in better]
        return (
            f"**Holds from {better[0]} px on.**",
            short + f"; at {px(ties)} no clear difference.",
            desc + f" At {px(ties)} the two lose about the same.",
        )
    if len(worse) == k:
        return "**Does not hold (the reverse).**", short + ".", desc
    if len(better) > len(worse) and mean > MARGIN:
        return "**Holds in part.**", short + ".", desc
    if len(worse) > len(better) and mean < -MARGIN:
        return "**Does not hold (mostly the reverse).**", short + ".", desc
    return "**No clear difference.**", short + ".", desc


def cam_stats(loc):
    return {
        "hit": float(np.mean([r["peak_on_object"] for r in loc])),
        "chance": float(np.mean([r["object_cells"] for r in loc])),
        "mass": float(np.mean([r["mass_on_object"] for r in loc])),
        "area": float(np.mean([r["object_area"] for r in loc])),
    }


def verdict_cam(loc, flat_cam, fs):
    c = cam_stats(loc)
    refused = flat_cam["rc"] != 0
    desc = (
        "Only the GAP model has a class activation map: `gapnet cam` "
        + (f"refuses the flatten model (exit {flat_cam['rc']})." if refused else "did NOT refuse the flatten model.")
        + f" Over the first {n(len(loc))} test images the map's peak cell lies on the garment "
        f"{pct(c['hit'], 1)} of the time, against {pct(c['chance'], 1)} for a cell picked at random; "
        f"{pct(c['mass'], 1)} of the (min–max normalized) map's mass falls on garment pixels, which cover "
        f"{pct(c['area'], 1)} of the image."
    )
    short = (
        f"only GAP has a CAM (flatten refused); its peak is on the garment {pct(c['hit'], 1)} of the time "
        f"vs {pct(c['chance'], 1)} by chance"
    )
    peak_better = c["hit"] > c["chance"] + 0.05
    mass_better = c["mass"] > c["area"] + 0.05
    if not refused:
        return "**Unclear.**", short + ".", desc
    if peak_better and mass_better:
        return (
            "**Holds, coarsely.**",
            short + ".",
            desc + " The maps point at the garment and concentrate on it more than "
            f"chance would, at the {fs[1]}×{fs[2]} resolution of the last feature maps.",
        )
    if peak_better:
        return (
            "**Holds in part.**",
            short + "; the map's mass is hardly more on the garment than chance.",
            desc + " The peak points at the garment more often than chance, but the "
            "map as a whole is hardly more concentrated on the garment than a uniform map: it says roughly "
            f"where the strongest evidence is, at {fs[1]}×{fs[2]} resolution, not where the object is.",
        )
    return (
        "**Holds only in the narrow sense.**",
        short + ".",
        desc + " A map exists, but it does not localize the garment "
        "better than chance on these centred, frame-filling images.",
    )


def command_line(args):
    """The command that regenerates the report: COMMAND plus every option not at its default."""
    cmd = COMMAND
    for option, value, default in (
        ("--gapnet", args.gapnet, "build/release/gapnet"),
        ("--gap", args.gap, "models/fashion_gap.json"),
        ("--flatten", args.flatten, "models/fashion_flatten.json"),
        ("--resnet", args.resnet, "models/fashion_resnet.json"),
        ("--dataset", args.dataset, DATASET_DIR),
        ("--samples", args.samples, "data/samples"),
        ("--max-shift", args.max_shift, 8),
        ("--cam-images", args.cam_images, 1000),
        ("--out", args.out, "docs/gap-vs-flatten.md"),
        ("--figures", args.figures, default_figures(args.out)),
    ):
        if value != default:
            cmd += f" {option} {value}"
    return cmd


def mean_shift_loss(acc):
    """Points of accuracy lost to the shift, mean over the shifts after 0 (acc[0] is unshifted)."""
    return 100 * sum(acc[0] - a for a in acc[1:]) / max(len(acc) - 1, 1)


def residual_vs_gap(m):
    """The residual model's size against the plain GAP model's, as a phrase: "exactly the GAP model's
    parameters (...) and MACs per image (...)" when both agree, else the counts with their differences."""
    g, r = m["gap"], m["resnet"]
    if r["total"] == g["total"] and r["head"] == g["head"] and r["macs"] == g["macs"]:
        return (
            f"exactly the GAP model's parameters ({n(r['total'])}, {n(r['head'])} of them in the head) and MACs "
            f"per image ({n(r['macs'])})"
        )
    return (
        f"{n(r['total'])} parameters ({r['total'] - g['total']:+,} against the GAP model; {n(r['head'])} in the "
        f"head) and {n(r['macs'])} MACs per image ({r['macs'] - g['macs']:+,})"
    )


def epochs(k):
    return f"{k} epoch{'' if k == 1 else 's'}"


def above_below(d):
    return f"{abs(d):.2f} points {'above' if d >= 0 else 'below'}"


def verdict_resnet(m, loc, resnet_loc):
    """The third model against the report's two: with the GAP model's small head on a residual
    backbone, is it at least as accurate as the flatten model? Test accuracy decides (differences
    within MARGIN are noise, one seed per model); parameters, overfitting, shifts and maps are context."""
    g, f, r = m["gap"], m["flatten"], m["resnet"]
    d = 100 * (r["test"] - f["test"])
    dg = 100 * (r["test"] - g["test"])
    if d >= 0:
        word = "**At least as accurate as flatten.**"
    elif d >= -MARGIN:
        word = f"**As accurate as flatten, within {MARGIN} points.**"
    else:
        word = "**Less accurate than flatten.**"
    head_ratio = f["head"] / max(r["head"], 1)
    short = (
        f"test accuracy {pct(r['test'])}, {above_below(d)} flatten and {above_below(dg)} the plain GAP model, "
        f"with a {n(r['head'])}-parameter head ({head_ratio:,.0f}× fewer than flatten's) and {n(r['total'])} "
        f"parameters in all."
    )
    rc, gc = cam_stats(resnet_loc), cam_stats(loc)
    detail = (
        f"The residual GAP model has the GAP head (`{r['head_path']}`, {n(r['head'])} parameters) on a backbone "
        f"with {r['merges']} residual additions; it has {residual_vs_gap(m)}. Test accuracy "
        f"{pct(r['test'])}: {above_below(d)} flatten's {pct(f['test'])} and {above_below(dg)} the plain GAP "
        f"model's {pct(g['test'])}. Train − test gap {100 * (r['train'] - r['test']):.2f} points (GAP "
        f"{100 * (g['train'] - g['test']):.2f}, flatten {100 * (f['train'] - f['test']):.2f}). Shifted by "
        f"1–{len(r['shift']) - 1} px it loses {mean_shift_loss(r['shift']):.2f} points on average (GAP "
        f"{mean_shift_loss(g['shift']):.2f}, flatten {mean_shift_loss(f['shift']):.2f}); its class activation "
        f"map's peak lies on the garment {pct(rc['hit'], 1)} of the time (GAP {pct(gc['hit'], 1)}, chance "
        f"{pct(rc['chance'], 1)})."
    )
    if d >= -MARGIN and r["head"] <= g["head"]:
        detail += (
            f" The accuracy the flatten head buys with {n(f['head'])} parameters, the residual backbone "
            f"matches{'' if d >= 0 else ' within noise'} with a {n(r['head'])}-parameter head"
            + (": the skip connections add no parameters." if r["total"] == g["total"] else ".")
        )
    elif d < -MARGIN:
        detail += " Here the residual backbone does not close the gap to the flatten head" + (
            ", though it narrows it."
            if r["test"] > g["test"]
            else ", and it is less accurate than the " "plain GAP model too."
        )
    # A model trained for fewer epochs than the others says little about its architecture: say so.
    trained = {k: m[k]["meta"].get("epochs") for k in KEYS}
    if len(set(trained.values())) > 1:
        detail += (
            f" **Not like for like**: trained for {epochs(trained['resnet'])} against {trained['gap']} (GAP) "
            f"and {trained['flatten']} (flatten), by the files' metadata."
        )
        short += f" (**trained for {epochs(trained['resnet'])} against {trained['gap']}**)"
    return word, short, detail


def write_report(
    args,
    m,
    shifts,
    heads,
    heads_text,
    samples,
    flat_cam,
    loc,
    agree,
    feature_layer,
    resnet_cam,
    started,
    cpu_model,
    cores,
    version,
    batch,
    fig_rel,
):
    g, f, r = m["gap"], m["flatten"], m["resnet"]
    L = []
    add = L.append
    add("# GAP head vs flatten + dense head, measured on Fashion-MNIST\n")
    add(
        f"Generated by `{command_line(args)}` on {started.strftime('%Y-%m-%d %H:%M')} UTC, "
        f"on an {cpu_model} with {cores} cores (`nproc`), "
        f"with `{version}` ({args.gapnet}). Every number below was measured by that run; re-running the "
        f"command rewrites this file and the figures in [{fig_rel}/]({fig_rel}/), identically except for the "
        f"date and the timings of section 4 (the figures contain no timings).\n"
    )
    fs = g["feature_shape"]
    same = g["backbone"] == f["backbone"] and g["feature_shape"] == f["feature_shape"]
    add(
        f"The two models compared were trained by `tools/train_fashion_mnist.py` with the same backbone, seed and "
        f"schedule (`--head gap` / `--head flatten`); only the classifier head differs. The backbone (four 3×3 "
        f"convolutions with batch norm, two max pools) ends in a {fs[0]}×{fs[1]}×{fs[2]} feature map (C×H×W)"
        + ("" if same else " — **but here the two files' backbones differ in size or output shape**")
        + ".\n"
    )
    same_r = r["backbone"] == g["backbone"] and r["feature_shape"] == g["feature_shape"]
    add(
        f"Beside them stands a third model, the residual GAP network (`--arch resnet`): the same four convolutions, "
        f"the second and fourth as residual blocks (y = relu(x + bn(conv(x))), {r['merges']} `add` layers), and the "
        f"same GAP head"
        + (
            ", so the same parameters"
            if same_r
            else " — **but here its backbone differs in size or output shape " "from the GAP model's**"
        )
        + ". The four claims below are about the two heads; the residual model's column shows what residual "
        "connections in the backbone do with the same small head.\n"
    )
    rows = []
    for k in KEYS:
        x = m[k]
        meta = x["meta"]
        rows.append(
            [
                f"`{x['path']}`",
                x["label"],
                f"`{x['head_path']}`",
                meta.get("epochs", "?"),
                meta.get("seed", "?"),
                f"`{x['sha']}`",
                "passed" if x["verify"].get("passed") else "**FAILED**",
            ]
        )
    add(
        md_table(
            ["file", "model", "head (from `gapnet summary`)", "epochs", "seed", "sha256 (first 16)", "`gapnet verify`"],
            rows,
            ["l", "l", "l", "r", "r", "l", "l"],
        )
    )
    add("")

    verdicts = [
        ("a", "far fewer parameters", verdict_params(m)),
        ("b", "less overfitting", verdict_overfitting(m)),
        ("c", "more robust to translation", verdict_translation(m, shifts)),
        ("d", "interpretable (class activation maps)", verdict_cam(loc, flat_cam, g["feature_shape"])),
    ]
    resnet_verdict = ("e", "a residual backbone with the GAP head", verdict_resnet(m, loc, resnet_cam["loc"]))
    add("## The four claims, in short\n")
    add("The course material credits a GAP head with four advantages over flatten + dense. On this data:\n")
    for letter, claim, (word, short, _) in verdicts:
        add(f"- **({letter}) {claim}**: {word} {short}")
    add("\nAnd the third model, against the flatten head's accuracy:\n")
    letter, claim, (word, short, _) = resnet_verdict
    add(f"- **({letter}) {claim}**: {word} {short}")
    add("\nThe details, with the numbers behind each verdict, are in [the verdicts](#verdicts) at the end.\n")

    # 1
    add("## 1. Parameters and size\n")
    add(
        "From `gapnet summary --json` and `gapnet compare --json` (parameters count every stored value, "
        "batch norm's running statistics included).\n"
    )
    cols = lambda key, fmt=n: [fmt(m[k][key]) for k in KEYS]
    add(
        md_table(
            ["", *(m[k]["label"] for k in KEYS), "flatten / GAP"],
            [
                ["parameters, backbone", *cols("backbone"), f"{f['backbone'] / g['backbone']:.2f}×"],
                ["parameters, head", *cols("head"), f"{f['head'] / g['head']:,.1f}×"],
                ["parameters, total", *cols("total"), f"{f['total'] / g['total']:.1f}×"],
                ["head's share of the model", *(pct(m[k]["head"] / m[k]["total"]) for k in KEYS), ""],
                ["residual connections (`add` layers)", *cols("merges"), ""],
                ["file size (bytes)", *cols("file_bytes"), f"{f['file_bytes'] / g['file_bytes']:.1f}×"],
                ["MACs per image", *cols("macs"), f"{f['macs'] / g['macs']:.3f}×"],
                ["peak memory, batch 1 (bytes)", *cols("peak_memory"), f"{f['peak_memory'] / g['peak_memory']:.1f}×"],
            ],
        )
    )
    add(
        f"\nThe residual GAP model has {residual_vs_gap(m)}"
        + (
            ": an addition has no weights, and gapnet counts no multiply-accumulates for it"
            if r["total"] == g["total"] and r["macs"] == g["macs"]
            else ""
        )
        + ".\n"
    )
    add(f"![parameters per part, log scale]({fig_rel}/parameters.png)\n")
    add("The same comparison from the sizes alone, `gapnet heads --input 7x7x64 --classes 10 --hidden 500`:\n")
    add("```\n" + heads_text + "\n```\n")
    if (
        heads["flatten"]["parameters"] != f["head"]
        or heads["gap"]["parameters"] != g["head"]
        or heads["gap"]["parameters"] != r["head"]
    ):
        add(
            f"Note: the analytic head sizes ({n(heads['gap']['parameters'])} and "
            f"{n(heads['flatten']['parameters'])}) differ from the models' heads ({n(g['head'])}, "
            f"{n(f['head'])} and {n(r['head'])}).\n"
        )
    else:
        add("The analytic head sizes match the models' heads exactly (the residual model's is the GAP head).\n")

    # 2
    add("## 2. Overfitting: train vs test accuracy\n")
    add(
        f"`gapnet eval --json` on all {n(g['train_images'])} training images "
        f"(`{os.path.join(args.dataset, 'train-images-idx3-ubyte.gz')}`) and all {n(g['test_images'])} test "
        f"images (`{os.path.join(args.dataset, 't10k-images-idx3-ubyte.gz')}`), top-1.\n"
    )
    rows = []
    for k in KEYS:
        x = m[k]
        rows.append(
            [
                x["label"],
                f"{pct(x['train'])} ({n(x['train_correct'])})",
                f"{pct(x['test'])} ({n(x['test_correct'])})",
                f"{100 * (x['train'] - x['test']):.2f}",
                f"{100 * x['meta']['train_accuracy']:.2f} % / {100 * x['meta']['test_accuracy']:.2f} %"
                if "train_accuracy" in x["meta"]
                else "—",
            ]
        )
    add(
        md_table(
            [
                "model",
                "train accuracy",
                "test accuracy",
                "gap (points)",
                "PyTorch at training (file metadata, train / test)",
            ],
            rows,
        )
    )
    add(f"\n![train vs test accuracy]({fig_rel}/train-vs-test.png)\n")
    se = 100 * np.sqrt(g["test"] * (1 - g["test"]) / g["test_images"])
    add(
        f"Each model was trained once (one seed); the binomial standard error of a test accuracy near "
        f"{pct(g['test'], 1)} on {n(g['test_images'])} images is alone about {se:.2f} points, so differences "
        f"of a few tenths of a point say little.\n"
    )
    add(
        f"The residual GAP model's test accuracy is {above_below(100 * (r['test'] - f['test']))} the flatten "
        f"model's and {above_below(100 * (r['test'] - g['test']))} the GAP model's, with a train − test gap of "
        f"{100 * (r['train'] - r['test']):.2f} points.\n"
    )
    add("Per class test accuracy (gapnet eval):\n")
    add(
        md_table(
            ["class"] + [m[k]["label"] for k in KEYS],
            [
                [c["label"], *(pct(m[k]["test_per_class"][i]["accuracy"], 1) for k in KEYS)]
                for i, c in enumerate(g["test_per_class"])
            ],
        )
    )
    add("")

    # 3
    add("## 3. Translation robustness\n")
    add(
        f"Every test image is shifted by *s* pixels with zero fill (Fashion-MNIST's background is 0), in one of "
        f"four directions by its index *i*: right for *i* mod 4 = 0, down for 1, left for 2, up for 3 — so each "
        f"direction gets {n(g['test_images'] // 4)} images and no image is moved diagonally. "
        f"The shifted sets are written as IDX files "
        f"(`shift<s>-images-idx3-ubyte` with `shift<s>-labels-idx1-ubyte` beside them) in a temporary folder and "
        f"evaluated with `gapnet eval --json`; shift 0 is the unmodified test set of section 2. Nothing here is "
        f"random.\n"
    )
    rows = []
    for i, s in enumerate(shifts):
        a, b = g["shift"][i], f["shift"][i]
        rows.append(
            [
                s,
                *(pct(m[k]["shift"][i]) for k in KEYS),
                pts(a - b),
                *(f"{100 * (m[k]['shift'][i] - m[k]['shift'][0]):+.2f}" for k in KEYS),
            ]
        )
    add(
        md_table(
            [
                "shift (px)",
                "GAP accuracy",
                "flatten accuracy",
                "residual GAP accuracy",
                "GAP − flatten (points)",
                "GAP change from 0 px",
                "flatten change from 0 px",
                "residual GAP change from 0 px",
            ],
            rows,
        )
    )
    add(f"\n![accuracy vs shift]({fig_rel}/translation.png)\n")
    add(
        "None of the models was trained with shifted images. Global average pooling makes the head itself "
        f"indifferent to *where* in the {fs[1]}×{fs[2]} map a feature fires, but the backbone is not shift-invariant "
        "(max pools, zero padding at the borders), and a shifted garment is also partly cut off by the frame. "
        f"Mean loss over 1–{shifts[-1]} px: GAP {mean_shift_loss(g['shift']):.2f} points, flatten "
        f"{mean_shift_loss(f['shift']):.2f}, residual GAP {mean_shift_loss(r['shift']):.2f}.\n"
    )

    # 4
    add("## 4. Speed\n")
    lat = 100 * (f["latency_ms"] / g["latency_ms"] - 1)
    mac = 100 * (f["macs"] / g["macs"] - 1)
    lat_r = 100 * (r["latency_ms"] / g["latency_ms"] - 1)
    mac_r = 100 * (r["macs"] / g["macs"] - 1)
    rows = []
    for k in KEYS:
        x = m[k]
        shift_imgs = sum(i for i, _ in x["shift_seconds"])
        shift_secs = sum(s for _, s in x["shift_seconds"])
        rate = lambda images, seconds: f"{images / seconds:,.0f} ({1000 * seconds / images:.3f} ms)"
        rows.append(
            [
                x["label"],
                f"{x['latency_ms']:.3f} ms",
                rate(x["test_images"], x["test_seconds"]),
                rate(x["train_images"], x["train_seconds"]),
                rate(shift_imgs, shift_secs) if shift_secs else "—",
            ]
        )
    add(
        md_table(
            [
                "model",
                "median latency, batch 1 (`gapnet compare`)",
                f"eval: images/s (time per image), test set ({n(g['test_images'])})",
                f"train set ({n(g['train_images'])})",
                f"shifted test sets ({n(len(shifts) - 1)} × " f"{n(g['test_images'])})",
            ],
            rows,
        )
    )
    cpu = [m[k]["test_cpu"] / m[k]["test_wall"] for k in KEYS]
    cpu_note = (
        f"{'at most one core' if max(cpu) <= 1.05 else 'more than one core'} (CPU time over wall time of the "
        f"three test-set evals: {', '.join(f'{c:.2f}' for c in cpu)}; 1.00 is one core kept busy, less means "
        f"the process waited for the CPU)"
    )
    add(
        f"\nLatency is `gapnet compare --json`'s `median_latency_ms`: the median of repeated batch-1 forward "
        f"passes on one input after a warm-up. Throughput is images divided by `gapnet eval --json`'s "
        f"`seconds`, which includes reading and normalizing each image from the IDX file; eval runs the model on "
        f"batches of {batch if batch else 'an unknown number of'} images (`kBatch` in "
        f"`tools/gapnet/evaluation.cpp`), using {cpu_note}. **These timings vary from run to run on this shared "
        f"machine** (load average when the report started: {args.loadavg}); they are the one part of the "
        f"report that re-running does not reproduce. In this run the flatten model's batch-1 latency is "
        f"{abs(lat):.0f} % {'higher' if lat >= 0 else 'lower'} than the GAP model's, while its MACs per image are "
        f"{abs(mac):.1f} % {'more' if mac >= 0 else 'fewer'} ({n(g['macs'])} vs {n(f['macs'])}): the "
        f"convolutions are most of the arithmetic of both. The residual GAP model's latency is {abs(lat_r):.0f} % "
        f"{'higher' if lat_r >= 0 else 'lower'} than the GAP model's, for "
        + (
            "the same MACs"
            if r["macs"] == g["macs"]
            else f"{abs(mac_r):.2f} % {'more' if mac_r >= 0 else 'fewer'} MACs"
        )
        + ".\n"
    )

    # 5
    add("## 5. Class activation maps\n")
    add(
        f"One image per class: `{args.samples}/*.png`, the first test image of each class. Each panel is "
        f"`gapnet cam --model {args.gap} -o {args.figures}/cam-<class>.png IMAGE` (the map of the predicted "
        f"class; viridis, yellow = high, blended over the image; gapnet's own caption below), titled with the "
        f"true class and the prediction of `gapnet classify --json`.\n"
    )
    add(f"![class activation maps]({fig_rel}/cam-grid.png)\n")
    rows = []
    verdict_word = lambda pred, s: "correct" if pred == s["true"] else "**wrong**"
    for s in samples:
        rows.append(
            [
                f"`{s['stem']}.png`",
                s["true"],
                f"{s['gap_pred']} ({100 * s['gap_prob']:.1f} %)",
                verdict_word(s["gap_pred"], s),
                f"{s['flat_pred']} ({100 * s['flat_prob']:.1f} %)",
                verdict_word(s["flat_pred"], s),
                f"{s['resnet_pred']} ({100 * s['resnet_prob']:.1f} %)",
                verdict_word(s["resnet_pred"], s),
                "yes" if s["peak_on_object"] else "no",
                f"{100 * s['mass_on_object']:.0f} % / {100 * s['object_area']:.0f} %",
            ]
        )
    add(
        md_table(
            [
                "image",
                "true class",
                "GAP prediction",
                "",
                "flatten prediction",
                "",
                "residual GAP prediction",
                "",
                "GAP CAM peak on object",
                "GAP CAM mass on object / object area",
            ],
            rows,
            ["l", "l", "l", "l", "l", "l", "l", "l", "c", "r"],
        )
    )
    ok = sum(s["gap_pred"] == s["true"] for s in samples)
    okf = sum(s["flat_pred"] == s["true"] for s in samples)
    okr = sum(s["resnet_pred"] == s["true"] for s in samples)
    add(
        f"\nThe GAP model classifies {ok} of {len(samples)} sample images correctly, the flatten model {okf}, "
        f"the residual GAP model {okr}.\n"
    )
    for s in samples:
        if "cam_top2_file" in s:
            add(
                f"`{s['stem']}.png` is misclassified as {s['gap_pred']}. Its two most probable classes "
                f"(`gapnet cam --top 2`), and the map of its true class {s['true']} (`--class "
                f"{s['true_index']}`):\n"
            )
            add(
                f"![{s['stem']}: top 2 classes]({fig_rel}/{os.path.basename(s['cam_top2_file'])}) "
                f"![{s['stem']}: true class]({fig_rel}/{os.path.basename(s['cam_true_file'])})\n"
            )
    add(
        f"The residual GAP model's maps of the same images (`gapnet cam --model {args.resnet} -o "
        f"{args.figures}/cam-resnet-<class>.png IMAGE`):\n"
    )
    add(f"![class activation maps of the residual GAP model]({fig_rel}/cam-grid-resnet.png)\n")
    add(
        f"**The flatten model has no class activation map.** `{flat_cam['command']}` (run with `-o` into a "
        f"temporary folder) exits with status {flat_cam['rc']} and says:\n"
    )
    add("```\n" + (flat_cam["stderr"] or flat_cam["stdout"] or "(nothing)") + "\n```\n")
    c, rc = cam_stats(loc), cam_stats(resnet_cam["loc"])
    add(
        f"**Do the maps localize the garment?** Measured on the first {n(len(loc))} test images: for each, the "
        f"predicted class from `gapnet classify --json`, the last feature maps (layer `{feature_layer}` of the GAP "
        f"model, `{resnet_cam['feature_layer']}` of the residual one: the input of the global pool) from `gapnet "
        f"features -o`, and the map of the predicted class computed from them and the dense layer's weights "
        f"(Σₖ w[c,k]·Aₖ, as `gapnet cam` does; its argmax over classes agreed with classify on {n(agree)} of "
        f"{n(len(loc))} images for the GAP model, {n(resnet_cam['agree'])} for the residual one). A {fs[1]}×{fs[2]} "
        f"cell covers a {g['input_shape'][1] // fs[1]}×{g['input_shape'][2] // fs[2]} pixel block; a pixel is "
        f"*object* when its value is ≥ {OBJECT_THRESHOLD}, a cell when at least half of its block is.\n"
    )

    def split(results):
        """Peak-on-object rate of the correctly and of the wrongly classified images."""
        right = [x["peak_on_object"] for x in results if x["pred"] == x["label"]]
        wrong = [x["peak_on_object"] for x in results if x["pred"] != x["label"]]
        return (
            pct(np.mean(right), 1) if right else "—",
            f"{pct(np.mean(wrong), 1)} ({len(wrong)} images)" if wrong else "—",
        )

    chance = lambda key: (
        pct(c[key], 1) if abs(c[key] - rc[key]) < 5e-4 else f"{pct(c[key], 1)} (residual GAP: {pct(rc[key], 1)})"
    )
    ok_g, bad_g = split(loc)
    ok_r, bad_r = split(resnet_cam["loc"])
    add(
        md_table(
            ["measure", "GAP CAM", "residual GAP CAM", "chance"],
            [
                [
                    "peak cell on the object",
                    pct(c["hit"], 1),
                    pct(rc["hit"], 1),
                    f"{chance('chance')} (share of object cells)",
                ],
                ["  correctly classified images", ok_g, ok_r, ""],
                ["  misclassified images", bad_g, bad_r, ""],
                [
                    "map mass on object pixels (map min–max normalized)",
                    pct(c["mass"], 1),
                    pct(rc["mass"], 1),
                    f"{chance('area')} (object area)",
                ],
            ],
        )
    )
    add("")

    # Verdicts
    add("## Verdicts\n")
    for letter, claim, (word, _, detail) in verdicts + [resnet_verdict]:
        add(f"**({letter}) {claim[0].upper() + claim[1:]}.** {word} {detail}\n")

    add("## Reproducing\n")
    add(f"```sh\n{command_line(args)}\n```\n")
    add(
        "It needs the gapnet binary (`build/release/gapnet`, or `--gapnet PATH`), the three model files "
        "(`--gap`, `--flatten`, `--resnet`), Debian's `dataset-fashion-mnist` and `python3-matplotlib`, and takes "
        "several minutes on 2 cores. Everything "
        "above is deterministic except section 4's timings and the date: no randomness is involved (the shifts "
        "are fixed by image index), and the PNG figures embed neither date nor software version. "
        "`--help` lists the options.\n"
    )
    return "\n".join(L)


if __name__ == "__main__":
    main()
