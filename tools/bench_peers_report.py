"""The report of tools/bench_peers.py: docs/performance.md written from the measured blocks (the machine,
the models, issue 22's targets met or not and each engine's share of the FMA peak (bench_peers_targets.py),
the Speed tables of gapnet against each peer, scaling, loading, memory, gapnet's steps, MobileNetV2 layer
by layer beside ONNX Runtime's profile (bench_peers_layers.py), the kernels' efficiency and choice)."""

import datetime
import os
import resource
import shlex
import statistics

from bench_peers_config import (
    CHOICE_KERNELS,
    CHOICE_MODELS,
    CONV_KERNELS,
    ENGINES,
    ENGINE_TITLES,
    KERNEL_MODEL,
    KERNEL_PEAK_TARGET,
    LARGE_LAYER_SHARE,
    M3_LOAD_TARGET_SECONDS,
    MiB,
    ONNX_OPSET,
    PEERS,
    PEER_TOLERANCE,
    PROFILE_CONFIG,
    SCALING_BATCH_TARGET,
    SCALING_THREADS_TARGET,
    TORCHVISION,
)
from bench_peers_layers import comparison_section
from bench_peers_targets import efficiency_rows, efficiency_section, fma_peaks, met_text, target_rows, targets_section


# ----------------------------------------------------------------------------------------------
# The report.


def spread(values):
    return statistics.median(values), min(values), max(values)


def fmt_number(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_spread(values):
    """median [min-max]; a single value alone."""
    median, low, high = spread(values)
    return fmt_number(median) if len(values) == 1 else f"{fmt_number(median)} [{fmt_number(low)}-{fmt_number(high)}]"


def fmt_bytes(n):
    return f"{n / MiB:,.1f} MiB"


def cell_values(blocks, key, threads, batch, engine, field):
    return [
        b[field] for b in blocks if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, engine)
    ]


def comparison_table(blocks, refused, pruned, models, threads, batch, field, verdicts):
    """Markdown rows of one table (latency: field median_ms at batch 1; throughput: at batch 32), with
    the verdict of issue 22's target for each cell (verdicts: (model, threads, batch) -> met, from
    bench_peers_targets.target_rows)."""
    latency = field == "median_ms"
    unit = "ms" if latency else "img/s"
    header = (
        ["model"] + [f"{ENGINE_TITLES[e]} ({unit})" for e in ENGINES] + ["best peer", "gapnet / best peer", "target"]
    )
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 3) + " --- | ---: | :---: |"]
    for key, model in models.items():
        row, medians = [model["title"]], {}
        for engine in ENGINES:
            values = cell_values(blocks, key, threads, batch, engine, field)
            if (engine, key) in refused:
                row.append("refused")
            elif values:
                mark = " †" if (engine, key, threads, batch) in pruned else ""
                row.append(fmt_spread(values) + mark)
                medians[engine] = statistics.median(values)
            else:
                row.append("—")
        peer_medians = {e: v for e, v in medians.items() if e != "gapnet"}
        if "gapnet" not in medians or not peer_medians:
            if any(cell_values(blocks, key, threads, batch, e, field) for e in ENGINES):
                lines.append("| " + " | ".join(row + ["—", "—", "—"]) + " |")
            continue
        best = (min if latency else max)(peer_medians, key=peer_medians.get)
        ratio = medians["gapnet"] / peer_medians[best]
        verdict = met_text(verdicts[(key, threads, batch)]) if (key, threads, batch) in verdicts else "—"
        lines.append("| " + " | ".join(row + [ENGINE_TITLES[best], f"{ratio:.2f}×", verdict]) + " |")
    return lines


def scaling_rows(blocks, models, args):
    """gapnet's scaling per model: per-image time at the largest batch against the smallest (each
    thread count), and the most threads against the fewest at the largest batch (median ms over rounds)."""

    def median(key, threads, batch):
        values = cell_values(blocks, key, threads, batch, "gapnet", "median_ms")
        return statistics.median(values) if values else None

    rows = []
    small, large = min(args.batches), max(args.batches)
    few, many = min(args.threads), max(args.threads)
    for key in models:
        for threads in args.threads:
            single, batch = median(key, threads, small), median(key, threads, large)
            if single and batch and large > small:
                rows.append(
                    {
                        "model": key,
                        "threads": threads,
                        "single_ms": single / small,
                        "batch_ms": batch / large,
                        "per_image_ratio": (batch / large) / (single / small),
                    }
                )
        one, two = median(key, few, large), median(key, many, large)
        if one and two and many > few:
            rows.append({"model": key, "batch": large, "one_ms": one, "two_ms": two, "speedup": one / two})
    return rows


def kernel_efficiency(blocks, models, args):
    """Per convolution step and thread count: GFLOP/s of the GEMM and direct kernels over rounds, the
    share of the FMA peak of each (median over rounds of the median runs; and the best run), and
    whether the step is a large layer."""
    rows = []
    for key in [KERNEL_MODEL if KERNEL_MODEL in models else args.models[-1]]:
        for threads in args.threads:
            runs = {
                k: [
                    b["result"]
                    for b in blocks
                    if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, 1, "gapnet-" + k)
                ]
                for k in CONV_KERNELS
            }
            if not all(runs.values()):
                continue
            first = runs["gemm"][0]
            total = sum(layer["macs"] for layer in first["layers"])
            for i, step in enumerate(first["layers"]):
                if not step["type"].startswith("conv2d"):
                    continue
                row = {
                    "model": key,
                    "step": step["step"],
                    "threads": threads,
                    "mac_share": step["macs"] / total,
                    "large": step["macs"] >= LARGE_LAYER_SHARE * total,
                }
                for k in CONV_KERNELS:
                    row[k] = [r["layers"][i]["gflops"] for r in runs[k]]
                    row[k + "_share"] = statistics.median(
                        r["layers"][i]["gflops"] / r["fma_peak_gflops"] for r in runs[k]
                    )
                    row[k + "_best"] = max(
                        2e-6 * step["macs"] / r["layers"][i]["min_ms"] / r["fma_peak_gflops"] for r in runs[k]
                    )
                row["best"] = max(row[k + "_share"] for k in CONV_KERNELS)
                row["best_run"] = max(row[k + "_best"] for k in CONV_KERNELS)
                rows.append(row)
    return rows


def kernel_choice(blocks, models, args):
    """Per model of CHOICE_MODELS, batch, thread count and convolution step: the median ms over rounds
    with each kernel forced (None where it does not apply: the step ran another), and the kernel and
    median ms of gapnet's own choice (the main blocks)."""
    rows = []
    for key in CHOICE_MODELS:
        if key not in models:
            continue
        for batch in args.batches:
            for threads in args.threads:

                def results(engine):
                    return [
                        b["result"]
                        for b in blocks
                        if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, engine)
                    ]

                auto = results("gapnet")
                forced = {k: results("gapnet-" + k) for k in CHOICE_KERNELS}
                if not auto or not all(forced.values()):
                    continue
                for i, step in enumerate(auto[0]["layers"]):
                    if not step["type"].startswith("conv2d"):
                        continue
                    row = {
                        "model": key,
                        "batch": batch,
                        "threads": threads,
                        "step": step["step"],
                        "macs": step["macs"],
                        "choice": step.get("kernel", ""),
                        "choice_ms": statistics.median(r["layers"][i]["median_ms"] for r in auto),
                    }
                    for k in CHOICE_KERNELS:
                        ran = [r["layers"][i] for r in forced[k] if r["layers"][i].get("kernel") == k]
                        row[k] = statistics.median(layer["median_ms"] for layer in ran) if ran else None
                    rows.append(row)
    return rows


def write_report(path, args, machine, info, models, blocks, refused, pruned, number_arrays_file, elapsed):
    out = []
    add = out.append
    command = "/usr/bin/python3 tools/bench_peers.py " + shlex.join(args.argv)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    add("# Performance: gapnet against PyTorch, OpenCV DNN and ONNX Runtime\n")
    add(
        f"Generated by `{command.strip()}` on {now}, in {elapsed / 60:.1f} minutes. Everything in this file "
        "comes from that run; nothing is edited by hand. Re-running the command rewrites it.\n"
    )
    if args.smoke:
        add(
            "**Smoke run** (tiny iteration counts, a subset of the configurations): the figures only show "
            "that the benchmark works, not how fast anything is.\n"
        )
    add(
        f"Rounds: {args.rounds}. In each round every engine runs one block per model, thread count and "
        "batch, in its own process, the engines' order rotating between rounds. A cell is the median "
        "[min-max] over rounds of the blocks' median latency (ms, batch 1) or throughput (images/s, batch 32 "
        "= 32 / median latency). The ratio compares gapnet's median with the best peer's (the fastest of "
        "PyTorch with or without oneDNN, OpenCV DNN and ONNX Runtime) in the same configuration.\n"
    )
    add(
        "Method, in short: PyTorch runs its model traced (`torch.jit.trace`), frozen (`torch.jit.freeze`) "
        "and under `torch.inference_mode()`; OpenCV DNN and ONNX Runtime read the same network exported to "
        f"ONNX (opset {ONNX_OPSET}, dynamic batch); ONNX Runtime is the npm package `onnxruntime-node` (its CPU "
        "execution provider) run from Node.js, with `graphOptimizationLevel: 'all'` and "
        "`executionMode: 'sequential'`. Thread counts: `gapnet bench --threads n`, `torch.set_num_threads(n)` "
        "+ `set_num_interop_threads(1)`, `cv2.setNumThreads(n)`, ONNX Runtime's `intraOpNumThreads: n` + "
        "`interOpNumThreads: 1`, and OMP/OpenBLAS/MKL thread variables = n in every process. The inputs are "
        "random (uniform in [-1, 1]). The full methodology is the docstring of `tools/bench_peers.py`.\n"
    )

    add("## Machine and versions\n")
    add("| | |\n| --- | --- |")
    add(
        f"| CPU | {machine['cpu']}, {machine['cpus']} logical CPUs ({machine['threads_per_core']} thread per core), "
        f"hypervisor {machine['hypervisor']} |"
    )
    add(f"| SIMD | {machine['simd']} |")
    peaks = fma_peaks(blocks)
    add(
        "| measured FMA peak (float32, `gapnet bench`'s FMA loop, the largest over its blocks) | "
        + ", ".join(f"{peaks[t]:.0f} GFLOP/s with {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks))
        + " |"
    )
    add(f"| load average at start (1, 5, 15 min) | {', '.join(f'{v:.2f}' for v in machine['load_average_start'])} |")
    add(f"| load average at end | {', '.join(f'{v:.2f}' for v in os.getloadavg())} |")
    add(f"| OS | Debian {machine['debian']}, Linux {machine['kernel']} |")
    add(
        f"| gapnet | `{machine['gapnet_version']}`, git `{machine['git_describe']}`, built with {machine['compiler']} |"
    )
    add(f"| Python | {info['python']} (`/usr/bin/python3`), numpy {info['numpy']} |")
    add(
        f"| PyTorch | {info['torch']}; oneDNN: {info['onednn_version'] or 'not built in'} "
        f"(available: {'yes' if info['mkldnn_available'] else 'no'}); BLAS_INFO={info['torch_blas_info']} |"
    )
    blas = ", ".join(f"`{p}`" for p in info["blas_libraries"]) or "none found"
    add(f"| BLAS loaded by PyTorch | {blas}; OpenBLAS: {'yes' if info['torch_uses_openblas'] else '**no**'} |")
    add(
        f"| OpenBLAS | {info['openblas_config'] or '?'} "
        f"(package libopenblas0-pthread {machine['openblas_package'] or 'not installed'}) |"
    )
    add(f"| OpenCV | {info['cv2']}, parallel framework: {info['cv2_parallel']} |")
    add(
        f"| ONNX Runtime | {info['onnxruntime']} (npm `onnxruntime-node`, its own prebuilt CPU binaries; CPU "
        f"execution provider), on Node.js {info['node']} |\n"
    )

    add("## Models\n")
    add("| model | input | parameters | MACs per image | gapnet file | `gapnet verify` (largest difference) |")
    add("| --- | --- | ---: | ---: | --- | --- |")
    for key, m in models.items():
        where = (
            f"`{m['source']}`, random weights, seed {args.seed}"
            if key in TORCHVISION
            else f"`{m['source']}`"
            if m["source"]
            else f"random weights, seed {args.seed}"
        )
        add(
            f"| {m['title']} | {'×'.join(map(str, m['input']))} | {m['parameters']:,} | {m['macs']:,} | "
            f"{where}, {m['file_bytes'] / 1e6:.1f} MB | passed ({m['gapnet_verify']['largest_difference']:.2g}) |"
        )
    add(
        "\nParameters are PyTorch's count (weights and biases); gapnet's own count also includes batch norm's "
        "running statistics. Peers are checked on every block against PyTorch's recorded outputs "
        f"(tolerance {PEER_TOLERANCE:g}); largest differences seen:\n"
    )
    add("| model | " + " | ".join(ENGINE_TITLES[e] for e in PEERS) + " |")
    add("| --- |" + " ---: |" * len(PEERS))
    for key, m in models.items():
        cells = []
        for engine in PEERS:
            diffs = [b["result"]["max_difference"] for b in blocks if b["model"] == key and b["engine"] == engine]
            cells.append(
                f"refused: {refused[(engine, key)]}"
                if (engine, key) in refused
                else (f"{max(diffs):.2g}" if diffs else "—")
            )
        add(f"| {m['title']} | " + " | ".join(cells) + " |")
    add("")

    targets = target_rows(blocks, models, peaks, refused)
    verdicts = {
        (r["key"], r["threads"], r["batch"]): r["met"] for r in targets if r["target"] in ("latency", "throughput")
    }
    tables = []
    for batch, field, title in (
        (1, "median_ms", "Latency (batch 1, ms; lower is better)"),
        (32, "throughput", "Throughput (batch 32, images/s; higher is better)"),
    ):
        for threads in args.threads:
            lines = comparison_table(blocks, refused, pruned, models, threads, batch, field, verdicts)
            if len(lines) > 2:
                tables.append((f"### {title}, {threads} thread{'s' if threads > 1 else ''}", lines))

    out.extend(targets_section(targets, models))
    out.extend(efficiency_section(efficiency_rows(blocks, models, peaks, refused), models, peaks))
    large = [r for r in kernel_efficiency(blocks, models, args) if r["large"]]
    if large:
        add("## Earlier targets: the convolution kernels\n")
    for threads in sorted({r["threads"] for r in large}):
        rows = [r for r in large if r["threads"] == threads]
        median_worst = min(rows, key=lambda r: r["best"])
        best_worst = min(rows, key=lambda r: r["best_run"])

        def verdict(v):
            return "met" if v >= KERNEL_PEAK_TARGET else "**not met**"

        add(
            f"GEMM/direct kernels on {models[rows[0]['model']]['title']}'s large layers, {threads} thread(s), "
            f"target ≥ {100 * KERNEL_PEAK_TARGET:.0f} % of the measured FMA peak: "
            f"the better kernel's median run reaches {100 * median_worst['best']:.0f} % on its worst layer "
            f"({median_worst['step']}; {verdict(median_worst['best'])}), "
            f"its best run {100 * best_worst['best_run']:.0f} % "
            f"({best_worst['step']}; {verdict(best_worst['best_run'])}); "
            "see the kernels' table below.\n"
        )
    add("")

    scaling = scaling_rows(blocks, models, args)
    if scaling:
        add("## Scaling\n")
        add(
            "gapnet's own medians (over rounds) from the blocks above. Per image, batch "
            f"{max(args.batches)} against batch {min(args.batches)} (target: at most "
            f"{SCALING_BATCH_TARGET:g}×, a batch costs no more per image than one image); "
            f"{max(args.threads)} threads against {min(args.threads)} at batch {max(args.batches)} (target: at "
            f"least {SCALING_THREADS_TARGET:g}× faster).\n"
        )
        small, large, few, many = min(args.batches), max(args.batches), min(args.threads), max(args.threads)
        add(
            f"| model | threads | ms per image, batch {small} | ms per image, batch {large} | "
            f"batch {large} / batch {small} | met |"
        )
        add("| --- | ---: | ---: | ---: | ---: | :---: |")
        for r in scaling:
            if "per_image_ratio" in r:
                met = "yes" if r["per_image_ratio"] <= SCALING_BATCH_TARGET else "**no**"
                add(
                    f"| {models[r['model']]['title']} | {r['threads']} | {fmt_number(r['single_ms'])} | "
                    f"{fmt_number(r['batch_ms'])} | {r['per_image_ratio']:.2f}× | {met} |"
                )
        add("")
        add(f"| model | batch | ms, {few} thread{'s' if few > 1 else ''} | ms, {many} threads | speed-up | met |")
        add("| --- | ---: | ---: | ---: | ---: | :---: |")
        for r in scaling:
            if "speedup" in r:
                met = "yes" if r["speedup"] >= SCALING_THREADS_TARGET else "**no**"
                add(
                    f"| {models[r['model']]['title']} | {r['batch']} | {fmt_number(r['one_ms'])} | "
                    f"{fmt_number(r['two_ms'])} | {r['speedup']:.2f}× | {met} |"
                )
        add("")

    add("## Speed\n")
    if pruned:
        add(
            f"† first round only: more than {args.prune_factor:g}× slower than the best peer there, so not run "
            "again (`--prune-factor`).\n"
        )
    runs = sorted(
        {(b["model"], b["batch"], b["iterations"], b["warmup"]) for b in blocks if "iterations" in b},
        key=lambda r: (list(models).index(r[0]), r[1]),
    )
    add(
        "Timed runs (after untimed warm-up runs) per block, the same for every engine: "
        + "; ".join(f"{models[m]['title']} batch {b}: {n} ({w})" for m, b, n, w in runs)
        + ".\n"
    )
    for title, lines in tables:
        add(title + "\n")
        out.extend(lines)
        add("")

    add("## Loading\n")
    add("`load_seconds` of `gapnet bench`: reading and checking the file and building the graph.\n")
    add("| file | size | load time, s | MB/s | target |")
    add("| --- | ---: | ---: | ---: | --- |")
    for key, m in models.items():
        loads = [b["result"]["load_seconds"] for b in blocks if b["model"] == key and b["engine"] == "gapnet"]
        if not loads:
            continue
        target = (
            f"< {M3_LOAD_TARGET_SECONDS} s: {'yes' if statistics.median(loads) < M3_LOAD_TARGET_SECONDS else '**no**'}"
            if key == "m3"
            else "—"
        )
        add(
            f"| {m['title']}, base64 | {m['file_bytes'] / 1e6:.1f} MB | {fmt_spread(loads)} | "
            f"{m['file_bytes'] / 1e6 / statistics.median(loads):.0f} | {target} |"
        )
    numbers = [b["result"]["load_seconds"] for b in blocks if b["model"] == "number_arrays"]
    if numbers:
        size = os.path.getsize(number_arrays_file)
        add(
            f"| {models[args.number_arrays_model]['title']}, JSON number arrays | "
            f"{size / 1e6:.1f} MB | {fmt_spread(numbers)} | {size / 1e6 / statistics.median(numbers):.0f} | — |"
        )
    add("")

    add("## Memory\n")
    launcher_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    add(
        "Peak resident set size of the whole process (load included), batch 1, the largest over rounds. "
        "Budget (issue): weights + 3 × the largest activation + 64 MiB, with float32 weights "
        "(PyTorch's parameter count × 4 bytes) and the largest activation of one image (input included). "
        "The peers' figures include the Python interpreter and their libraries. A process started by "
        "another reports at least its launcher's peak RSS (Linux keeps the high-water mark across exec); "
        f"this script's own peak, the floor of every figure here, was {fmt_bytes(launcher_rss)}.\n"
    )
    add(
        "| model | threads | weights | largest activation | budget | gapnet peak RSS | within budget | "
        + " | ".join(f"{ENGINE_TITLES[e]} peak RSS" for e in PEERS)
        + " |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | :---: |" + " ---: |" * len(PEERS))
    for key, m in models.items():
        weights, activation = 4 * m["parameters"], 4 * m["largest_activation"]
        budget = weights + 3 * activation + 64 * MiB
        for threads in args.threads:
            rss = cell_values(blocks, key, threads, 1, "gapnet", "peak_rss_bytes")
            if not rss:
                continue
            peers = [cell_values(blocks, key, threads, 1, e, "peak_rss_bytes") for e in PEERS]
            ok = "yes" if max(rss) <= budget else "**no**"
            add(
                f"| {m['title']} | {threads} | {fmt_bytes(weights)} | {fmt_bytes(activation)} | {fmt_bytes(budget)} | "
                f"{fmt_bytes(max(rss))} | {ok} | " + " | ".join(fmt_bytes(max(p)) if p else "—" for p in peers) + " |"
            )
    add("")

    for key in ("m3",) if "m3" in models else ():
        add(f"## gapnet per step, {models[key]['title']}, batch 1\n")
        add(
            "From `gapnet bench --json`: each step's median time (median over rounds), its share of the "
            "steps' total, GFLOP/s (2 × MACs / time) and that as a share of the FMA peak `gapnet bench` "
            "measured in the same process (float32 multiply-adds from registers on every thread of the run); "
            "the kernel of each convolution. Winograd does fewer multiplications than the GFLOP/s count, "
            "so its share can pass 100 %.\n"
        )
        per_threads = {
            t: [
                b["result"]
                for b in blocks
                if (b["model"], b["batch"], b["threads"], b["engine"]) == (key, 1, t, "gapnet")
            ]
            for t in args.threads
        }
        per_threads = {t: v for t, v in per_threads.items() if v}
        if not per_threads:
            continue
        header = "| step | type |" + "".join(
            f" kernel | ms ({t} thr) | share | GFLOP/s | of peak |" for t in per_threads
        )
        add(header)
        add("| --- | --- |" + " --- | ---: | ---: | ---: | ---: |" * len(per_threads))
        first = next(iter(per_threads.values()))[0]["layers"]
        for i, step in enumerate(first):
            row = f"| {step['step']} | {step['type']} |"
            for runs in per_threads.values():
                ms = statistics.median(r["layers"][i]["median_ms"] for r in runs)
                share = statistics.median(r["layers"][i]["share"] for r in runs)
                gflops = statistics.median(r["layers"][i]["gflops"] for r in runs)
                of_peak = statistics.median(r["layers"][i]["gflops"] / r["fma_peak_gflops"] for r in runs)
                row += (
                    f" {step.get('kernel', '')} | {fmt_number(ms)} | {100 * share:.1f} % | "
                    f"{fmt_number(gflops) if gflops else ''} | {f'{100 * of_peak:.0f} %' if gflops else ''} |"
                )
            add(row)
        add("")

    threads, batch = PROFILE_CONFIG
    if args.profile_model in models and peaks.get(threads):
        out.extend(comparison_section(blocks, models, args.profile_model, threads, batch, peaks[threads]))

    kernel_rows = kernel_efficiency(blocks, models, args)
    if kernel_rows:
        key = kernel_rows[0]["model"]
        add(f"## The GEMM and direct convolution kernels, {models[key]['title']}, batch 1\n")
        add(
            "Every convolution of the model run through one kernel (`gapnet bench --conv-algorithm gemm`, then "
            "`direct`, in each round), whichever kernel gapnet would choose for it: GFLOP/s (2 × MACs / time, "
            "median [min-max] over rounds of the per-run medians) and their share of the FMA peak measured by "
            "the same process just before. Target (issue): at least "
            f"{100 * KERNEL_PEAK_TARGET:.0f} % on the large layers, here those with at least "
            f"{100 * LARGE_LAYER_SHARE:.0f} % of the model's multiply-adds (the better of the two kernels).\n"
        )
        add(
            "The machine's cores share their caches and memory with other tenants' work, which slows "
            "kernels that read memory (these) and not the FMA loop (registers only): the median runs measure "
            "that as well as the kernels. The best run of each (the fastest of its timed runs, against the "
            "peak of the same process) shows what the kernel reaches when left alone.\n"
        )
        add(
            "| step | share of MACs | threads | GEMM GFLOP/s | of peak (median; best run) | direct GFLOP/s | "
            "of peak (median; best run) | better kernel, of peak (median; best run) | target met (median; best run) |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
        for r in kernel_rows:
            met = (
                "—"
                if not r["large"]
                else " ; ".join("yes" if v >= KERNEL_PEAK_TARGET else "**no**" for v in (r["best"], r["best_run"]))
            )
            add(
                f"| {r['step']} | {100 * r['mac_share']:.1f} % | {r['threads']} | {fmt_spread(r['gemm'])} | "
                f"{100 * r['gemm_share']:.0f} %; {100 * r['gemm_best']:.0f} % | {fmt_spread(r['direct'])} | "
                f"{100 * r['direct_share']:.0f} %; {100 * r['direct_best']:.0f} % | "
                f"{100 * r['best']:.0f} %; {100 * r['best_run']:.0f} % | {met} |"
            )
        add("")

    choice_rows = kernel_choice(blocks, models, args)
    if choice_rows:
        add("## Which convolution kernel each layer runs\n")
        add(
            "Every convolution run through each kernel in turn (`gapnet bench --conv-algorithm gemm`, `direct`, "
            "`winograd`, in each round; — where the kernel does not apply to the layer), against the kernel "
            "gapnet chooses by itself (the main blocks above): median ms over rounds of the per-step medians. "
            "These are the measurements behind the rule in `engine/layers/conv2d.cpp` (Winograd for 3×3 "
            "stride-1 layers of 16+ channels when its waves are wide, direct convolution for small inputs "
            "and maps, im2col + GEMM otherwise); **bold** marks the fastest kernel of the row.\n"
        )
        add(
            "| model | batch | threads | step | MACs per image | GEMM ms | direct ms | Winograd ms "
            "| gapnet's choice | its ms |"
        )
        add("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |")
        for r in choice_rows:
            measured = {k: r[k] for k in CHOICE_KERNELS if r[k] is not None}
            fastest = min(measured, key=measured.get) if measured else None
            cells = " | ".join(
                "—" if r[k] is None else (f"**{fmt_number(r[k])}**" if k == fastest else fmt_number(r[k]))
                for k in CHOICE_KERNELS
            )
            add(
                f"| {models[r['model']]['title']} | {r['batch']} | {r['threads']} | {r['step']} | "
                f"{r['macs']:,} | {cells} | {r['choice']} | {fmt_number(r['choice_ms'])} |"
            )
        add("")

    add("## Reproduce\n")
    add("```\n" + command.strip() + "\n```\n")
    add(
        "`--smoke` (run by ctest as `bench_peers_smoke`) runs a tiny subset to keep the tool working; it "
        "asserts nothing about speed but fails on any error, including a peer that cannot be imported or "
        "disagrees with PyTorch."
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
