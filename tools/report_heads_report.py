"""The text of docs/gap-vs-flatten.md (tools/report_heads.py): number formatting, the verdicts on
parameters, overfitting, translation, CAMs and the residual network, and write_report."""

import os

import numpy as np

from report_heads_measure import DATASET_DIR, KEYS, OBJECT_THRESHOLD, default_figures


COMMAND = "/usr/bin/python3 tools/report_heads.py"


MARGIN = 0.5  # accuracy differences (in points) at or below this are called "no clear difference"


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
