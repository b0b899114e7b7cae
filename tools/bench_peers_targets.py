"""What tools/bench_peers.py's report and the README's Speed table say about efficiency and targets: each
engine's effective GFLOP/s (2 x MACs / time) and its share of the measured FMA peak, per network, thread
count and batch; and issue 22's targets as a checklist, one row per cell, met or not with its figures."""

import statistics

from bench_peers_config import (
    ENGINE_TITLES,
    ENGINES,
    PEAK_CAP,
    PEAK_SHARE_TARGETS,
    PEERS,
    TARGET_THREADS,
    TARGETS,
    THREADS_BATCH1_SIZE,
    THREADS_BATCH1_TARGET,
)

LATENCY_BATCH, THROUGHPUT_BATCH = 1, 32


def fma_peaks(blocks):
    """threads -> the largest FMA peak (GFLOP/s) `gapnet bench` measured in the run's blocks with that
    many threads (float32 multiply-adds of 16-float vectors from registers, on every thread of the block)."""
    peaks = {}
    for b in blocks:
        if b["engine"].startswith("gapnet") and "fma_peak_gflops" in b["result"]:
            peaks[b["threads"]] = max(peaks.get(b["threads"], 0), b["result"]["fma_peak_gflops"])
    return peaks


def median_of(blocks, key, threads, batch, engine, field="median_ms"):
    """The median over rounds of one cell's block figures (median_ms or throughput), or None."""
    values = [
        b[field] for b in blocks if (b["model"], b["threads"], b["batch"], b["engine"]) == (key, threads, batch, engine)
    ]
    return statistics.median(values) if values else None


def fmt_figure(value, unit):
    """9.54 ms, 0.098 ms, 110 img/s, 10,192 img/s: three significant digits, thousands separated."""
    return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.3g} {unit}"


def effective_gflops(macs, batch, ms):
    """2 x MACs per image x batch / time: the GFLOP/s an engine would need to do the direct method's
    multiply-adds in that time (Winograd, doing fewer, can pass the peak)."""
    return 2e-6 * macs * batch / ms


def efficiency_rows(blocks, models, peaks, refused):
    """Per network, thread count and batch measured: {"key", "threads", "batch", "engines": {engine:
    (GFLOP/s, share of the peak of that thread count or None)}} for every engine measured there (not
    refused), from the median latency over rounds and the model's MACs (PyTorch's count of its
    convolutions' and dense layers' multiply-adds, the same network for every engine)."""
    rows = []
    configs = sorted({(b["threads"], b["batch"]) for b in blocks if b["engine"] in ENGINES})
    for key, model in models.items():
        for threads, batch in configs:
            engines = {}
            for engine in ENGINES:
                ms = median_of(blocks, key, threads, batch, engine)
                if ms is None or (engine, key) in refused:
                    continue
                rate = effective_gflops(model["macs"], batch, ms)
                engines[engine] = (rate, rate / peaks[threads] if peaks.get(threads) else None)
            if "gapnet" in engines:
                rows.append({"key": key, "threads": threads, "batch": batch, "engines": engines})
    return rows


def best_peer(blocks, key, threads, batch, refused):
    """(engine, median ms) of the fastest peer measured in a cell, or (None, None)."""
    peers = {e: median_of(blocks, key, threads, batch, e) for e in PEERS if (e, key) not in refused}
    peers = {e: ms for e, ms in peers.items() if ms is not None}
    if not peers:
        return None, None
    engine = min(peers, key=peers.get)
    return engine, peers[engine]


def target_rows(blocks, models, peaks, refused):
    """Issue 22's targets, one row per cell measured in the run: {"target", "key", "threads", "batch",
    "figures" (text), "goal" (text), "met" (True, False, or None where a figure is missing)}.
      - latency, batch 1: gapnet's median ms / the best peer's at most TARGETS[key][0];
      - throughput, batch 32: gapnet's images/s / the best peer's at least TARGETS[key][1], unless that
        needs more than PEAK_CAP of the measured FMA peak (effective GFLOP/s): then PEAK_CAP of the peak;
      - 2 threads at batch 1 at least THREADS_BATCH1_TARGET times as fast as 1, on the networks of
        THREADS_BATCH1_SIZE;
      - PEAK_SHARE_TARGETS: gapnet's effective GFLOP/s at least that share of the peak."""
    rows = []
    for key, model in models.items():
        if key not in TARGETS:
            continue
        latency_target, throughput_target = TARGETS[key]
        for batch in (LATENCY_BATCH, THROUGHPUT_BATCH):
            for threads in TARGET_THREADS:
                gapnet_ms = median_of(blocks, key, threads, batch, "gapnet")
                if gapnet_ms is None:
                    continue
                peer, peer_ms = best_peer(blocks, key, threads, batch, refused)
                ort_ms = median_of(blocks, key, threads, batch, "onnxruntime")
                row = {"key": key, "threads": threads, "batch": batch, "met": None}
                if batch == LATENCY_BATCH:
                    row["target"] = "latency"
                    row["goal"] = f"gapnet / best peer ≤ {latency_target}"
                    figures = [f"gapnet {fmt_figure(gapnet_ms, 'ms')}"]
                    if peer:
                        ratio = gapnet_ms / peer_ms
                        figures.append(f"{ENGINE_TITLES[peer]} {fmt_figure(peer_ms, 'ms')}: {ratio:.2f}×")
                        row["met"] = ratio <= latency_target
                else:
                    row["target"] = "throughput"
                    gapnet_ips = median_of(blocks, key, threads, batch, "gapnet", "throughput")
                    figures = [f"gapnet {fmt_figure(gapnet_ips, 'img/s')}"]
                    row["goal"] = f"gapnet / best peer ≥ {throughput_target}"
                    if peer:
                        peer_ips = median_of(blocks, key, threads, batch, peer, "throughput")
                        ratio = gapnet_ips / peer_ips
                        figures.append(f"{ENGINE_TITLES[peer]} {fmt_figure(peer_ips, 'img/s')}: {ratio:.2f}×")
                        row["met"] = ratio >= throughput_target
                        peak = peaks.get(threads)
                        needed = throughput_target * effective_gflops(model["macs"], batch, peer_ms)
                        if peak and needed > PEAK_CAP * peak:
                            rate = effective_gflops(model["macs"], batch, gapnet_ms)
                            row["goal"] = (
                                f"{100 * PEAK_CAP:.0f} % of the peak ({throughput_target}× the best peer "
                                f"would need {100 * needed / peak:.0f} %)"
                            )
                            figures.append(f"gapnet at {100 * rate / peak:.0f} % of the peak")
                            row["met"] = rate >= PEAK_CAP * peak
                if ort_ms is not None and peer != "onnxruntime" and ("onnxruntime", key) not in refused:
                    ort_ratio = (
                        gapnet_ms / ort_ms
                        if batch == LATENCY_BATCH
                        else gapnet_ips / median_of(blocks, key, threads, batch, "onnxruntime", "throughput")
                    )
                    figures.append(f"against ONNX Runtime {ort_ratio:.2f}×")
                row["figures"] = "; ".join(figures)
                rows.append(row)
        if tuple(model["input"][1:]) == THREADS_BATCH1_SIZE:
            one = median_of(blocks, key, 1, LATENCY_BATCH, "gapnet")
            two = median_of(blocks, key, 2, LATENCY_BATCH, "gapnet")
            if one is not None and two is not None:
                rows.append(
                    {
                        "target": "2 threads, batch 1",
                        "key": key,
                        "threads": 2,
                        "batch": LATENCY_BATCH,
                        "goal": f"speed-up over 1 thread ≥ {THREADS_BATCH1_TARGET}×",
                        "figures": f"{fmt_figure(one, 'ms')} → {fmt_figure(two, 'ms')}: {one / two:.2f}×",
                        "met": one / two >= THREADS_BATCH1_TARGET,
                    }
                )
    for key, (threads, batch, share) in PEAK_SHARE_TARGETS.items():
        ms = median_of(blocks, key, threads, batch, "gapnet")
        if key not in models or ms is None or not peaks.get(threads):
            continue
        rate = effective_gflops(models[key]["macs"], batch, ms)
        rows.append(
            {
                "target": "share of the FMA peak",
                "key": key,
                "threads": threads,
                "batch": batch,
                "goal": f"≥ {100 * share:.0f} % of the peak",
                "figures": f"{rate:.1f} GFLOP/s of {peaks[threads]:.0f}: {100 * rate / peaks[threads]:.0f} %",
                "met": rate >= share * peaks[threads],
            }
        )
    return rows


def met_text(met):
    return "—" if met is None else ("met" if met else "**not met**")


def targets_section(rows, models):
    """Markdown lines of the checklist."""
    met = sum(r["met"] is True for r in rows)
    out = [
        "## Targets of issue 22\n",
        "Every cell of issue 22's targets measured in this run, from the medians over rounds: latency "
        "(batch 1) and throughput (batch 32) against the best peer (the fastest of ONNX Runtime, PyTorch and "
        f"OpenCV DNN in that cell; ONNX Runtime's own ratio is added where another peer was faster); where "
        f"the throughput target would need more than {100 * PEAK_CAP:.0f} % of the measured FMA peak with the "
        "direct method's multiply-adds, that cell's target is that share of the peak; 2 threads against 1 at "
        "batch 1 on the 224×224 networks; the share of the FMA peak in effective GFLOP/s "
        "(2 × MACs / time).\n",
        f"**{met} of {len(rows)} met.**\n",
        "| target | model | threads | batch | figures | goal | met |",
        "| --- | --- | ---: | ---: | --- | --- | :---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['target']} | {models[r['key']]['title']} | {r['threads']} | {r['batch']} | {r['figures']} "
            f"| {r['goal']} | {met_text(r['met'])} |"
        )
    out.append("")
    return out


def efficiency_section(rows, models, peaks):
    """Markdown lines of the share-of-peak table: one row per network, thread count and batch."""
    engines = [e for e in ENGINES if any(e in r["engines"] for r in rows)]
    out = [
        "## Share of the FMA peak\n",
        "Each engine's effective GFLOP/s: 2 × the network's multiply-adds (PyTorch's count of its "
        "convolutions' and dense layers', the direct method's) × batch / the median latency over rounds, "
        "and that as a share of the FMA peak `gapnet bench` measured with as many threads ("
        + ", ".join(f"{peaks[t]:.0f} GFLOP/s with {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks))
        + "). An engine that does fewer multiplications (Winograd) can pass 100 %.\n",
        "| model | threads | batch | " + " | ".join(ENGINE_TITLES[e] for e in engines) + " |",
        "| --- | ---: | ---: |" + " ---: |" * len(engines),
    ]
    for r in rows:
        cells = []
        for e in engines:
            if e not in r["engines"]:
                cells.append("—")
                continue
            rate, share = r["engines"][e]
            cells.append(f"{rate:.1f} ({100 * share:.0f} %)" if share is not None else f"{rate:.1f}")
        out.append(f"| {models[r['key']]['title']} | {r['threads']} | {r['batch']} | " + " | ".join(cells) + " |")
    out.append("")
    return out
