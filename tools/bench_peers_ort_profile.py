"""ONNX Runtime's own profile of a network, for tools/bench_peers.py: the Chrome trace that
tools/ort_worker.js --profile makes ONNX Runtime write (session option enableProfiling), read into one
row per node: its op, its layer (from the shapes ONNX Runtime records), its multiply-adds and its
median time over the timed runs.

The trace (ONNX Runtime's onnxruntime/core/common/profiler.cc) is a JSON array of complete events
("ph": "X", "ts" and "dur" in microseconds): one "Session" event "model_run" per run of the session,
and inside it, per node, a "Node" event named "<node>_kernel_time" whose args hold op_name, provider,
input_type_shape and output_type_shape (lists of {"float": [dims]}). Nodes that the NCHWc layout pass
made (onnxruntime/core/optimizer/nchwc_transformer.cc) are named after their output with "_nchwc"
appended; its reorders are the ops ReorderInput and ReorderOutput."""

import json
import math
import statistics

KERNEL_TIME = "_kernel_time"
NCHWC_SUFFIX = "_nchwc"
CONV_OPS = ("Conv", "FusedConv")
DENSE_OPS = ("Gemm", "FusedGemm", "MatMul", "FusedMatMul")
# ONNX Runtime's op -> the gapnet layer type it computes (bench_peers_layers.py pairs rows by it).
OP_KINDS = {
    **{op: "conv" for op in CONV_OPS},
    **{op: "dense" for op in DENSE_OPS},
    "GlobalAveragePool": "global_avg_pool2d",
    "GlobalMaxPool": "global_max_pool2d",
    "AveragePool": "avg_pool2d",
    "MaxPool": "max_pool2d",
    "Softmax": "softmax",
    "Flatten": "flatten",
    "Reshape": "flatten",
    "Add": "add",
    "Sum": "add",
    "Mul": "multiply",
    "Concat": "concat",
    "BatchNormalization": "batch_norm2d",
    "ReorderInput": "reorder",
    "ReorderOutput": "reorder",
}


class ProfileError(Exception):
    pass


def read_trace(path):
    """The trace file's events (a list of dicts)."""
    with open(path) as f:
        events = json.load(f)
    if not isinstance(events, list):
        raise ProfileError(f"{path}: not a Chrome trace (a JSON array of events)")
    return events


def shapes(args, field):
    """args[field], [{"float": [1, 32, 112, 112]}, ...] -> [[1, 32, 112, 112], ...]."""
    return [next(iter(entry.values())) for entry in args.get(field, []) if entry]


def node_macs(op, inputs, outputs):
    """Multiply-adds of one node from its recorded shapes, or None for an op without any.
    Conv: every output value takes (input channels / groups) x kh x kw, the trailing dims of its weights
    [O, I/g, kh, kw]. Gemm and MatMul: every output value takes K, the last dim of A [..., K] (Gemm's A is
    [M, K], or [K, M] transposed: M = the output's first dim either way)."""
    if not outputs or len(inputs) < 2:
        return None
    if op in CONV_OPS:
        return math.prod(outputs[0]) * math.prod(inputs[1][1:])
    if op in ("Gemm", "FusedGemm"):
        return math.prod(outputs[0]) * (math.prod(inputs[0]) // outputs[0][0])
    if op in ("MatMul", "FusedMatMul"):
        return math.prod(outputs[0]) * inputs[0][-1]
    return None


def conv_geometry(inputs, outputs):
    """A convolution node's (input channels, output channels, kh, kw, depthwise, stride) from its shapes
    (input [N, C, H, W], weights [O, I/g, kh, kw], output [N, O, Ho, Wo]), or None if they are not those.
    The stride is the input's height over the output's."""
    if len(inputs) < 2 or not outputs or len(inputs[0]) != 4 or len(inputs[1]) != 4 or len(outputs[0]) != 4:
        return None
    (_, cin, height, _), (cout, per_group, kh, kw) = inputs[0], inputs[1]
    stride = max(1, round(height / max(1, outputs[0][2])))
    return cin, cout, kh, kw, per_group == 1 and cout == cin, stride


def node_layer(op, inputs, outputs):
    """What a node computes, from its shapes: a convolution "1×1, 16→96", "3×3 depthwise, 96, stride 2";
    another node its input's shape -> its output's (batch left out)."""
    geometry = conv_geometry(inputs, outputs) if op in CONV_OPS else None
    if geometry:
        cin, cout, kh, kw, depthwise, stride = geometry
        what = f"{kh}×{kw} depthwise, {cout}" if depthwise else f"{kh}×{kw}, {cin}→{cout}"
        return what + (f", stride {stride}" if stride > 1 else "")
    return " → ".join("×".join(map(str, s[1:])) for s in (inputs[:1] + outputs[:1]))


def node_kind(op, inputs, outputs):
    """The gapnet layer type a node computes (OP_KINDS); a 1×1 convolution on a 1×1 map is a dense layer,
    as gapnet's importer makes it (squeeze-and-excitation's gates)."""
    geometry = conv_geometry(inputs, outputs) if op in CONV_OPS else None
    if geometry and geometry[2:4] == (1, 1) and outputs[0][2:] == [1, 1]:
        return "dense"
    return OP_KINDS.get(op, op)


def layer_class(op, inputs, outputs):
    """The class of layer a node is, for the by-kind summary: "1×1 convolution", "3×3 depthwise, stride 2",
    "3×3 convolution"; another node: its gapnet layer type (node_kind)."""
    geometry = conv_geometry(inputs, outputs) if op in CONV_OPS else None
    if geometry and node_kind(op, inputs, outputs) == "conv":
        _, _, kh, kw, depthwise, stride = geometry
        if depthwise:
            return f"{kh}×{kw} depthwise, stride {stride}"
        return f"{kh}×{kw} convolution"
    return node_kind(op, inputs, outputs)


def parse_profile(events, skip_runs, runs):
    """The per-node profile of the timed runs of a trace with skip_runs + runs "model_run" events (the
    first skip_runs, the check and warm-up runs, are left out): {"runs", "run_ms" (median model_run),
    "nodes": [{"name", "op", "nchwc", "provider", "kind", "class", "layer", "macs", "ms" (median over the
    timed runs of the node's time in the run), "runs_ms"}], "nodes_ms" (the sum of the nodes' ms)}, the
    nodes in the order of the first timed run. Raises ProfileError if the trace holds another count of
    runs, or a timed run without nodes."""
    windows = sorted(
        (e["ts"], e["ts"] + e["dur"], e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    if len(windows) != skip_runs + runs or runs < 1:
        raise ProfileError(f"the trace holds {len(windows)} runs, not {skip_runs} untimed + {runs} timed")
    timed = windows[skip_runs:]
    nodes, per_run = {}, [{} for _ in timed]  # name -> node; per timed run: name -> µs
    for e in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"]):
        if not e.get("name", "").endswith(KERNEL_TIME):
            continue  # older versions also write _fence_before and _fence_after events
        run = next((i for i, (start, end, _) in enumerate(timed) if start <= e["ts"] <= end), None)
        if run is None:
            continue
        name = e["name"][: -len(KERNEL_TIME)]
        args = e.get("args", {})
        if name not in nodes:
            op, inputs, outputs = (
                args.get("op_name", "?"),
                shapes(args, "input_type_shape"),
                shapes(args, "output_type_shape"),
            )
            nodes[name] = {
                "name": name,
                "op": op,
                "nchwc": name.endswith(NCHWC_SUFFIX) or op in ("ReorderInput", "ReorderOutput"),
                "provider": args.get("provider", ""),
                "kind": node_kind(op, inputs, outputs),
                "class": layer_class(op, inputs, outputs),
                "layer": node_layer(op, inputs, outputs),
                "macs": node_macs(op, inputs, outputs),
            }
        per_run[run][name] = per_run[run].get(name, 0) + e["dur"]
    empty = [i for i, times in enumerate(per_run) if not times]
    if empty:
        raise ProfileError(f"timed run {empty[0] + 1} of {runs} has no node events")
    for node in nodes.values():
        node["runs_ms"] = [times.get(node["name"], 0) / 1e3 for times in per_run]
        node["ms"] = statistics.median(node["runs_ms"])
    return {
        "runs": runs,
        "run_ms": statistics.median(dur / 1e3 for _, _, dur in timed),
        "nodes": list(nodes.values()),
        "nodes_ms": sum(node["ms"] for node in nodes.values()),
    }


def merge_rounds(profiles):
    """Several rounds' profiles of the same network -> one: each node's ms the median over the rounds of
    its per-round median (nodes in the first round's order); run_ms likewise."""
    first = profiles[0]
    nodes = []
    for node in first["nodes"]:
        rounds = [n["ms"] for p in profiles for n in p["nodes"] if n["name"] == node["name"]]
        nodes.append({**{k: v for k, v in node.items() if k != "runs_ms"}, "ms": statistics.median(rounds)})
    return {
        "rounds": len(profiles),
        "runs": sum(p["runs"] for p in profiles),
        "run_ms": statistics.median(p["run_ms"] for p in profiles),
        "nodes": nodes,
        "nodes_ms": sum(n["ms"] for n in nodes),
    }
