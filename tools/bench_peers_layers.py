"""The per-layer comparison of tools/bench_peers.py's report: gapnet's steps (`gapnet bench --json`) beside
ONNX Runtime's own profile of the same network (bench_peers_ort_profile.py), row by row where the two
run the same layer, and summed by kind of layer."""

import statistics

from bench_peers_ort_profile import merge_rounds


def gapnet_kind(step_type):
    """A gapnet step's type ("conv2d+relu6", "dense", "global_avg_pool2d") -> the kind that ONNX Runtime's
    ops map to (bench_peers_ort_profile.OP_KINDS): "conv", "dense", or the layer type itself."""
    base = step_type.split("+")[0]
    return "conv" if base.startswith("conv2d") else base


def short_step_name(name):
    """A fused step's name keeps its first layer's full name and only the last part of the others':
    "/0/f.1/conv.0/Conv+/0/f.1/conv.2/Clip" -> "/0/f.1/conv.0/Conv+Clip"."""
    first, *rest = name.split("+")
    return "+".join([first] + [part.rsplit("/", 1)[-1] for part in rest])


def gflops(macs, ms, batch=1):
    return 2e-6 * macs * batch / ms if macs and ms > 0 else None


def gapnet_steps(results, peak):
    """gapnet bench --json results of one configuration (one per round) -> a row per step: name, type,
    kernel, kind, MACs per image, ms (median over rounds of the step's median), GFLOP/s and its share
    of `peak` (GFLOP/s)."""
    rows = []
    batch = results[0]["batch"]
    for i, step in enumerate(results[0]["layers"]):
        ms = statistics.median(r["layers"][i]["median_ms"] for r in results)
        rate = gflops(step["macs"], ms, batch)
        rows.append(
            {
                "name": step["step"],
                "type": step["type"],
                "kernel": step.get("kernel", ""),
                "kind": gapnet_kind(step["type"]),
                "macs": step["macs"],
                "ms": ms,
                "gflops": rate,
                "of_peak": rate / peak if rate and peak else None,
            }
        )
    return rows


def ort_nodes(profiles):
    """Parsed profiles of one configuration (one per round) -> (a row per node, the merged profile)."""
    merged = merge_rounds(profiles)
    return merged["nodes"], merged


def pair_rows(steps, nodes):
    """gapnet's steps and ONNX Runtime's nodes, both in the order they run -> rows (step or None, node or
    None, how they were paired), in that order. The pairing is the best order-keeping alignment (a
    weighted longest common subsequence, by dynamic programming): a step and a node of the same kind
    pair, scoring 3 where their multiply-adds agree too ("kind + MACs") and 2 where they do not (ONNX
    Runtime's shapes count channels padded to its block) or the layer has none ("kind"). A step or node
    left alone has a row to itself, gapnet's first where either could come first."""

    def score(step, node):
        if step["kind"] != node["kind"]:
            return 0
        return 3 if step["macs"] and step["macs"] == node["macs"] else 2

    n, m = len(steps), len(nodes)
    best = [[0] * (m + 1) for _ in range(n + 1)]  # best[i][j]: the best score of steps[i:] with nodes[j:]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            paired = score(steps[i], nodes[j])
            best[i][j] = max(best[i + 1][j], best[i][j + 1], paired + best[i + 1][j + 1] if paired else 0)
    pairs, i, j = [], 0, 0
    while i < n or j < m:
        paired = score(steps[i], nodes[j]) if i < n and j < m else 0
        if paired and best[i][j] == paired + best[i + 1][j + 1]:
            pairs.append((steps[i], nodes[j], "kind + MACs" if paired == 3 else "kind"))
            i, j = i + 1, j + 1
        elif i < n and (j == m or best[i][j] == best[i + 1][j]):
            pairs.append((steps[i], None, ""))
            i += 1
        else:
            pairs.append((None, nodes[j], ""))
            j += 1
    return pairs


def by_class(pairs, peak, batch=1):
    """The pairs summed by class of layer (ONNX Runtime's, from its shapes: "1×1 convolution", "3×3
    depthwise, stride 2", ...; a gapnet step without a counterpart: its kind) -> rows: class, layers,
    MACs per image (the network's: gapnet's count of its steps, ONNX Runtime's shapes for a node alone),
    then per engine its ms and its GFLOP/s and share of `peak` over the MACs of its own rows; in order
    of gapnet's time."""
    classes = {}
    for step, node, _ in pairs:
        key = node["class"] if node else ("convolution" if step["kind"] == "conv" else step["kind"])
        c = classes.setdefault(
            key,
            {"class": key, "layers": 0, "macs": 0, "gapnet_ms": 0.0, "ort_ms": 0.0, "gapnet_macs": 0, "ort_macs": 0},
        )
        macs = step["macs"] * batch if step else (node["macs"] or 0)
        c["layers"] += 1
        c["macs"] += step["macs"] if step else (node["macs"] or 0) // batch
        if step:
            c["gapnet_ms"] += step["ms"]
            c["gapnet_macs"] += macs
        if node:
            c["ort_ms"] += node["ms"]
            c["ort_macs"] += macs
    rows = sorted(classes.values(), key=lambda c: -c["gapnet_ms"])
    for c in rows:
        for side in ("gapnet", "ort"):
            rate = gflops(c[side + "_macs"], c[side + "_ms"])
            c[side + "_gflops"] = rate
            c[side + "_of_peak"] = rate / peak if rate and peak else None
    return rows


def fmt_ms(ms):
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def fmt_rate(rate, of_peak):
    """GFLOP/s and share of peak as two cells ("" where the row has no multiply-adds)."""
    return (f"{rate:.1f}", f"{100 * of_peak:.0f} %") if rate else ("", "")


def layer_table(title, steps, nodes, merged, peak, threads, batch, gapnet_run_ms):
    """Markdown lines of the section: the per-layer table and the summary by class of layer."""
    pairs = pair_rows(steps, nodes)
    gapnet_total = sum(s["ms"] for s in steps)
    out = [
        f"## {title} per layer: gapnet beside ONNX Runtime's profile ({threads} thread, batch {batch})\n",
        "gapnet: each step of `gapnet bench --json` (median over rounds of the step's median time; a step is "
        "a layer with what gapnet fused into it), its kernel, GFLOP/s (2 × MACs / time) and that as a share "
        f"of the measured FMA peak ({peak:.0f} GFLOP/s). ONNX Runtime: its own profiler (session option "
        "`enableProfiling`, in a block of its own after the timed ones, whose figures it would slow) over "
        f"{merged['runs']} runs in {merged['rounds']} round(s): each node's median time; op and layer from "
        "the shapes it records (NCHWc: a node of its channel-blocked layout pass, whose tensors carry "
        "channels padded to the block: a layer of 24 channels shows 32). GFLOP/s of both engines count the "
        "network's multiply-adds (gapnet's count of the step; a node without a step: its shapes'). Rows "
        "are paired in order where both run a layer of the same kind and multiply-adds (*kind + MACs*) or "
        "of the same kind (*kind*); a layer that only one engine runs on its own (ONNX Runtime's "
        "reorders, a step gapnet did not fuse) has a row to itself. Share: of the engine's summed step (node) times.\n",
        f"Sums: gapnet's steps {fmt_ms(gapnet_total)} ms (its whole run, median: {fmt_ms(gapnet_run_ms)} ms); "
        f"ONNX Runtime's nodes {fmt_ms(merged['nodes_ms'])} ms (its whole profiled run, median: "
        f"{fmt_ms(merged['run_ms'])} ms).\n",
        "| # | gapnet step | kernel | ms | share | GFLOP/s | of peak | ONNX Runtime node | op | layer | ms | share "
        "| GFLOP/s | of peak | gapnet / ORT | paired by |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for number, (step, node, how) in enumerate(pairs, 1):
        left = ["", "", "", "", "", ""]
        if step:
            left = [
                f"`{short_step_name(step['name'])}`",
                step["kernel"] or step["type"],
                fmt_ms(step["ms"]),
                f"{100 * step['ms'] / gapnet_total:.1f} %",
                *fmt_rate(step["gflops"], step["of_peak"]),
            ]
        right = ["", "", "", "", "", "", ""]
        if node:
            # The network's multiply-adds (gapnet's count of the paired step), not those of ONNX Runtime's
            # shapes, which count the channels padded to its block; its own count only for a node alone.
            rate = gflops(step["macs"], node["ms"], batch) if step else gflops(node["macs"], node["ms"])
            right = [
                f"`{node['name']}`",
                node["op"] + (" (NCHWc)" if node["nchwc"] else ""),
                node["layer"],
                fmt_ms(node["ms"]),
                f"{100 * node['ms'] / merged['nodes_ms']:.1f} %" if merged["nodes_ms"] else "",
                *fmt_rate(rate, rate / peak if rate else None),
            ]
        ratio = f"{step['ms'] / node['ms']:.2f}×" if step and node and node["ms"] > 0 else ""
        out.append("| " + " | ".join([str(number)] + left + right + [ratio, how]) + " |")
    out += [
        "",
        "By class of layer (ONNX Runtime's, from its shapes), in order of gapnet's time:\n",
        "| class | layers | MACs | gapnet ms | GFLOP/s | of peak | ONNX Runtime ms | GFLOP/s | of peak "
        "| gapnet / ORT |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in by_class(pairs, peak, batch):
        ratio = f"{c['gapnet_ms'] / c['ort_ms']:.2f}×" if c["ort_ms"] > 0 and c["gapnet_ms"] > 0 else ""
        out.append(
            f"| {c['class']} | {c['layers']} | {c['macs']:,} | {fmt_ms(c['gapnet_ms'])} | "
            + " | ".join(fmt_rate(c["gapnet_gflops"], c["gapnet_of_peak"]))
            + f" | {fmt_ms(c['ort_ms'])} | "
            + " | ".join(fmt_rate(c["ort_gflops"], c["ort_of_peak"]))
            + f" | {ratio} |"
        )
    out.append("")
    return out


def comparison_section(blocks, models, key, threads, batch, peak):
    """The section for model `key` from the run's blocks (gapnet's main blocks and the profiled ONNX
    Runtime blocks of that configuration), or [] if either is missing."""
    results = [
        b["result"]
        for b in blocks
        if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, "gapnet")
    ]
    profiles = [
        b["result"]["profile"]
        for b in blocks
        if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, "onnxruntime-profile")
    ]
    if not results or not profiles:
        return []
    steps = gapnet_steps(results, peak)
    nodes, merged = ort_nodes(profiles)
    run_ms = statistics.median(r["latency_ms"]["median"] for r in results)
    return layer_table(models[key]["title"], steps, nodes, merged, peak, threads, batch, run_ms)
