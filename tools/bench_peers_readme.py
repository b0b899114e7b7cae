"""The README's Speed table, written by tools/bench_peers.py from the run that writes docs/performance.md:
the lines between README_BEGIN and README_END are replaced, the rest of the README is left as it is."""

import datetime
import textwrap

from bench_peers_config import BenchError, ENGINE_TITLES, PEERS, TARGETS
from bench_peers_targets import LATENCY_BATCH, THROUGHPUT_BATCH, best_peer, effective_gflops, fmt_figure, median_of

README_BEGIN = "<!-- speed table: begin (written by tools/bench_peers.py; edit that, not this) -->"
README_END = "<!-- speed table: end -->"


def speed_lines(command, git, rounds, models, blocks, refused, peaks, targets, threads):
    """The block between the markers: the table (a row per network, a column per measure and thread
    count: gapnet's median, its ratio to the best peer, bold where issue 22's target for the cell is met,
    and its share of the FMA peak) and what it shows, in sentences made from the same figures."""
    met = {(r["key"], r["threads"], r["batch"]): r["met"] for r in targets if r["target"] in ("latency", "throughput")}
    columns = [(b, t) for b in (LATENCY_BATCH, THROUGHPUT_BATCH) for t in threads]
    header = [
        f"{'latency' if b == LATENCY_BATCH else 'throughput'}, {t} thread{'s' if t > 1 else ''}" for b, t in columns
    ]
    out = ["| model | " + " | ".join(header) + " |", "|---|" + "---|" * len(columns)]
    fastest, cells, against_others = {}, 0, []
    for key, model in models.items():
        if key not in TARGETS:
            continue
        row = [f"{model['title']}, {'×'.join(map(str, model['input']))}"]
        for batch, t in columns:
            ms = median_of(blocks, key, t, batch, "gapnet")
            peer, peer_ms = best_peer(blocks, key, t, batch, refused)
            if ms is None:
                row.append("—")
                continue
            if batch == LATENCY_BATCH:
                text = fmt_figure(ms, "ms")
            else:
                text = fmt_figure(median_of(blocks, key, t, batch, "gapnet", "throughput"), "img/s")
            if peer:
                ratio = ms / peer_ms if batch == LATENCY_BATCH else peer_ms / ms
                text += f", **{ratio:.2f}×**" if met.get((key, t, batch)) else f", {ratio:.2f}×"
                fastest[peer] = fastest.get(peer, 0) + 1
                cells += 1
            if peaks.get(t):
                text += f", {100 * effective_gflops(model['macs'], batch, ms) / peaks[t]:.0f} %"
            row.append(text)
            for other in PEERS:
                other_ms = median_of(blocks, key, t, batch, other)
                if other != "onnxruntime" and other_ms is not None and (other, key) not in refused:
                    against_others.append(other_ms / ms)
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    peers_text = ", ".join(f"{ENGINE_TITLES[e]} in {n}" for e, n in sorted(fastest.items(), key=lambda x: -x[1]))
    text = [
        f"gapnet's median over {rounds} round{'s' if rounds > 1 else ''}; then its ratio to the fastest peer "
        f"of the cell ({peers_text} of {cells} cells): latency is batch 1, gapnet's time over the peer's "
        "(below 1× gapnet is faster); throughput is batch 32, gapnet's images/s over the peer's (above 1× "
        "gapnet is faster); **bold** where issue 22's target for the cell is met; then gapnet's effective "
        "GFLOP/s (2 × the direct method's MACs / time) as a share of the measured FMA peak ("
        + ", ".join(f"{peaks[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks))
        + ")."
    ]
    if against_others:
        low, high = min(against_others), max(against_others)
        text.append(f"Against PyTorch and OpenCV DNN, gapnet is {fmt_times(low)} to {fmt_times(high)} times as fast.")
    text.append(
        f"Issue 22's targets: {sum(r['met'] is True for r in targets)} of {len(targets)} met "
        "([the checklist](docs/performance.md#targets-of-issue-22))."
    )
    text.append(f"Measured at git `{git}` on {now} by `{command}`.")
    out += textwrap.wrap(" ".join(text), width=100, break_long_words=False, break_on_hyphens=False)
    return out


def fmt_times(ratio):
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}"


def replace_block(readme, lines):
    """The README's text with the lines between its markers replaced by `lines`; BenchError unless it has
    each marker once, in order, on a line of its own."""
    found = readme.split("\n")
    begins = [i for i, line in enumerate(found) if line.strip() == README_BEGIN]
    ends = [i for i, line in enumerate(found) if line.strip() == README_END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise BenchError(
            f"the README needs the Speed table's markers once each, in order, on lines of their own: "
            f"{README_BEGIN} ... {README_END} (found {len(begins)} and {len(ends)})"
        )
    return "\n".join(found[: begins[0] + 1] + lines + found[ends[0] :])


def write_readme(path, lines):
    with open(path) as f:
        text = replace_block(f.read(), lines)
    with open(path, "w") as f:
        f.write(text)
