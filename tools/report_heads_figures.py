"""The figures of docs/gap-vs-flatten.md (tools/report_heads.py): parameters, train vs test accuracy,
translation, and the CAM grids, drawn with matplotlib without date or version in the PNGs."""

import sys

import numpy as np

from report_heads_measure import KEYS
from report_heads_report import n


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
