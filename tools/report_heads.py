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

Parts, in tools/: report_heads_measure.py (running gapnet, the data and its shifted copies, the CAM
localization), report_heads_figures.py (the figures), report_heads_report.py (the report's text: the
verdicts and write_report); this file holds the command line and the measuring run.
"""
import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from report_heads_figures import (
    figure_accuracy,
    figure_cam_grid,
    figure_parameters,
    figure_translation,
    setup_matplotlib,
)
from report_heads_measure import (
    DATASET_DIR,
    FIGURES,
    Gapnet,
    KEYS,
    KINDS,
    ROOT,
    T0,
    backbone_output,
    cam_localization,
    children_cpu,
    default_figures,
    eval_batch_size,
    load_json,
    machine,
    normalized,
    progress,
    read_idx,
    sha256,
    shift_images,
    write_idx,
)
from report_heads_report import n, pct, write_report


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


if __name__ == "__main__":
    main()
