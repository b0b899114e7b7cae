#!/usr/bin/python3
"""The parts of tools/bench_peers.py's report that compute, on hand-made inputs with hand-computed
results: ONNX Runtime's profile read from a small hand-written Chrome trace (bench_peers_ort_profile.py),
gapnet's steps paired with its nodes (bench_peers_layers.py), issue 22's targets checklist
(bench_peers_targets.py) and the README's marked block (bench_peers_readme.py).

Usage: bench_peers_parts_test.py (no arguments; standard library only)"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

from bench_peers_config import BenchError  # noqa: E402
from bench_peers_layers import by_class, pair_rows, short_step_name  # noqa: E402
from bench_peers_ort_profile import (  # noqa: E402
    ProfileError,
    layer_class,
    merge_rounds,
    node_kind,
    node_macs,
    parse_profile,
)
from bench_peers_readme import README_BEGIN, README_END, replace_block  # noqa: E402
from bench_peers_targets import efficiency_rows, target_rows  # noqa: E402


def session(name, ts, dur):
    return {"cat": "Session", "pid": 1, "tid": 1, "dur": dur, "ts": ts, "ph": "X", "name": name, "args": {}}


def node(name, ts, dur, op, inputs, outputs, suffix="_kernel_time"):
    return {
        "cat": "Node",
        "pid": 1,
        "tid": 1,
        "dur": dur,
        "ts": ts,
        "ph": "X",
        "name": name + suffix,
        "args": {
            "op_name": op,
            "provider": "CPUExecutionProvider",
            "input_type_shape": [{"float": s} for s in inputs],
            "output_type_shape": [{"float": s} for s in outputs],
        },
    }


# One network of five nodes as ONNX Runtime's NCHWc pass leaves it: a reorder into blocks, a 3×3 stride-2
# convolution 16 -> 32 on 8×8, a 3×3 depthwise convolution of 32 channels on 4×4, a dense 32 -> 10, a softmax.
NODES = [
    ("ReorderInput", "ReorderInput", [[1, 16, 8, 8]], [[1, 16, 8, 8]]),
    ("/c1/Relu_output_0_nchwc", "Conv", [[1, 16, 8, 8], [32, 16, 3, 3], [32]], [[1, 32, 4, 4]]),
    ("/dw/Clip_output_0_nchwc", "Conv", [[1, 32, 4, 4], [32, 1, 3, 3], [32]], [[1, 32, 4, 4]]),
    ("/fc/Gemm", "Gemm", [[1, 32], [10, 32], [10]], [[1, 10]]),
    ("/sm/Softmax", "Softmax", [[1, 10]], [[1, 10]]),
]
# Per run (2 untimed, then 3 timed): each node's time in µs, and the run's.
RUNS = [
    ([9000, 9000, 9000, 9000, 9000], 50000),  # the check run
    ([9000, 9000, 9000, 9000, 9000], 50000),  # warm-up
    ([10, 100, 30, 7, 20], 1000),
    ([12, 400, 30, 9, 40], 1200),
    ([11, 250, 60, 8, 60], 1100),
]


def hand_trace(runs=RUNS, drop_nodes_of_run=None):
    events = [session("model_loading_uri", 0, 500), session("session_initialization", 600, 900)]
    ts = 2000
    for r, (durations, run_dur) in enumerate(runs):
        events.append(session("model_run", ts, run_dur))
        events.append(session("SequentialExecutor::Execute", ts + 1, run_dur - 2))
        at = ts + 5
        for (name, op, inputs, outputs), dur in zip(NODES, durations):
            if r == drop_nodes_of_run:
                continue
            # An older version's fences, to be left out.
            events.append(node(name, at, 1, op, inputs, outputs, "_fence_before"))
            events.append(node(name, at + 1, dur, op, inputs, outputs))
            at += dur + 2
        if r == 2:  # the softmax a second time in the first timed run: its two times add up
            events.append(node("/sm/Softmax", at, 30, "Softmax", [[1, 10]], [[1, 10]]))
        ts += run_dur + 100
    return events[::-1]  # the parser orders events by time itself


class OrtProfileTest(unittest.TestCase):
    def test_timed_runs_medians_and_shapes(self):
        profile = parse_profile(hand_trace(), skip_runs=2, runs=3)
        self.assertEqual(profile["runs"], 3)
        self.assertAlmostEqual(profile["run_ms"], 1.1)  # median of 1000, 1200, 1100 µs
        names = [n["name"] for n in profile["nodes"]]
        self.assertEqual(names, [n[0] for n in NODES])
        by_name = {n["name"]: n for n in profile["nodes"]}
        reorder, conv, dw, fc, sm = (by_name[n[0]] for n in NODES)
        # medians over the timed runs only (the 9000 µs untimed runs left out)
        self.assertAlmostEqual(reorder["ms"], 0.011)
        self.assertAlmostEqual(conv["ms"], 0.250)  # median of 100, 400, 250
        self.assertAlmostEqual(dw["ms"], 0.030)  # median of 30, 30, 60
        self.assertAlmostEqual(fc["ms"], 0.008)
        self.assertAlmostEqual(sm["ms"], 0.050)  # median of 20 + 30, 40, 60
        self.assertEqual(conv["runs_ms"], [0.1, 0.4, 0.25])
        self.assertAlmostEqual(profile["nodes_ms"], 0.011 + 0.25 + 0.03 + 0.008 + 0.05)
        # multiply-adds from the shapes: outputs x (input channels / groups) x kh x kw; dense: outputs x K
        self.assertEqual(conv["macs"], 32 * 4 * 4 * 16 * 3 * 3)
        self.assertEqual(dw["macs"], 32 * 4 * 4 * 3 * 3)
        self.assertEqual(fc["macs"], 10 * 32)
        self.assertIsNone(sm["macs"])
        self.assertIsNone(reorder["macs"])
        self.assertEqual(conv["layer"], "3×3, 16→32, stride 2")
        self.assertEqual(dw["layer"], "3×3 depthwise, 32")
        self.assertEqual(fc["layer"], "32 → 10")
        self.assertEqual(conv["class"], "3×3 convolution")
        self.assertEqual(dw["class"], "3×3 depthwise, stride 1")
        self.assertEqual([n["kind"] for n in profile["nodes"]], ["reorder", "conv", "conv", "dense", "softmax"])
        self.assertEqual([n["nchwc"] for n in profile["nodes"]], [True, True, True, False, False])
        self.assertEqual(conv["provider"], "CPUExecutionProvider")

    def test_a_1x1_convolution_on_a_1x1_map_is_a_dense_layer(self):
        # squeeze-and-excitation's gate as ONNX Runtime runs it: 32 -> 8 channels on a 1×1 map
        inputs, outputs = [[1, 32, 1, 1], [8, 32, 1, 1], [8]], [[1, 8, 1, 1]]
        self.assertEqual(node_kind("Conv", inputs, outputs), "dense")
        self.assertEqual(layer_class("Conv", inputs, outputs), "dense")
        self.assertEqual(node_macs("Conv", inputs, outputs), 8 * 32)
        # the same weights on a 2×2 map stay a convolution
        inputs, outputs = [[1, 32, 2, 2], [8, 32, 1, 1], [8]], [[1, 8, 2, 2]]
        self.assertEqual(node_kind("Conv", inputs, outputs), "conv")
        self.assertEqual(layer_class("Conv", inputs, outputs), "1×1 convolution")
        self.assertEqual(node_macs("Conv", inputs, outputs), 8 * 4 * 32)

    def test_refuses_a_trace_of_another_count_of_runs(self):
        with self.assertRaisesRegex(ProfileError, "holds 5 runs, not 2 untimed \\+ 4 timed"):
            parse_profile(hand_trace(), skip_runs=2, runs=4)

    def test_refuses_a_timed_run_without_nodes(self):
        with self.assertRaisesRegex(ProfileError, "timed run 2 of 3 has no node events"):
            parse_profile(hand_trace(drop_nodes_of_run=3), skip_runs=2, runs=3)

    def test_merge_rounds_takes_each_nodes_median(self):
        one = parse_profile(hand_trace(), skip_runs=2, runs=3)
        slower = [([2 * d for d in durations], 2 * run) for durations, run in RUNS]
        two = parse_profile(hand_trace(slower), skip_runs=2, runs=3)
        three = parse_profile(hand_trace(slower), skip_runs=2, runs=3)
        merged = merge_rounds([one, two, three])
        self.assertEqual((merged["rounds"], merged["runs"]), (3, 9))
        self.assertAlmostEqual(merged["nodes"][1]["ms"], 0.5)  # median of 0.25, 0.5, 0.5
        self.assertAlmostEqual(merged["run_ms"], 2.2)
        self.assertNotIn("runs_ms", merged["nodes"][1])


def step(name, kind, macs, ms, step_type=None):
    return {"name": name, "kind": kind, "type": step_type or kind, "kernel": "", "macs": macs, "ms": ms}


class PairingTest(unittest.TestCase):
    def nodes(self):
        profile = parse_profile(hand_trace(), skip_runs=2, runs=3)
        return profile["nodes"]

    def test_pairs_by_kind_and_macs_then_by_kind(self):
        steps = [
            step("c1", "conv", 73728, 0.5, "conv2d+relu"),
            step("dw", "conv", 4608, 0.1, "conv2d+relu6"),
            step("fc", "dense", 999, 0.02),  # MACs that disagree: paired by kind alone
            step("sm", "softmax", 0, 0.01),
            step("extra", "add", 0, 0.03),  # a layer ONNX Runtime has no node for
        ]
        pairs = pair_rows(steps, self.nodes())
        got = [(s and s["name"], n and n["name"], how) for s, n, how in pairs]
        self.assertEqual(
            got,
            [
                (None, "ReorderInput", ""),
                ("c1", "/c1/Relu_output_0_nchwc", "kind + MACs"),
                ("dw", "/dw/Clip_output_0_nchwc", "kind + MACs"),
                ("fc", "/fc/Gemm", "kind"),
                ("sm", "/sm/Softmax", "kind"),
                ("extra", None, ""),
            ],
        )
        classes = {c["class"]: c for c in by_class(pairs, peak=100.0)}
        conv = classes["3×3 convolution"]
        self.assertEqual((conv["layers"], conv["macs"]), (1, 73728))
        self.assertAlmostEqual(conv["gapnet_ms"], 0.5)
        self.assertAlmostEqual(conv["ort_ms"], 0.25)
        self.assertAlmostEqual(conv["gapnet_gflops"], 2e-6 * 73728 / 0.5)
        self.assertAlmostEqual(conv["ort_of_peak"], 2e-6 * 73728 / 0.25 / 100.0)
        # the dense pair's rates both count the network's multiply-adds (gapnet's 999), not ONNX Runtime's 320
        self.assertAlmostEqual(classes["dense"]["ort_gflops"], 2e-6 * 999 / 0.008)
        self.assertAlmostEqual(classes["dense"]["gapnet_gflops"], 2e-6 * 999 / 0.02)
        self.assertEqual(classes["add"]["ort_ms"], 0.0)
        self.assertEqual(classes["reorder"]["gapnet_ms"], 0.0)
        # in order of gapnet's time
        self.assertEqual([c["class"] for c in by_class(pairs, 100.0)][0], "3×3 convolution")

    def test_padded_layers_keep_their_place(self):
        # Squeeze-and-excitation 32 -> 8 -> 32: ONNX Runtime pads the 8 channels to 16 (its first gate counts
        # 512 MACs, not 256) and runs activations and reorders of its own between them.
        def onnx(name, kind, macs):
            return {"name": name, "kind": kind, "macs": macs, "ms": 0.01, "class": kind}

        steps = [step("gap", "global_avg_pool2d", 0, 0.01), step("fc1", "dense", 256, 0.01)]
        steps += [step("fc2", "dense", 256, 0.01), step("mul", "multiply", 0, 0.01)]
        nodes = [
            onnx("GAP", "global_avg_pool2d", None),
            onnx("fc1 padded", "dense", 512),
            onnx("QuickGelu", "QuickGelu", None),
            onnx("ReorderOutput", "reorder", None),
            onnx("fc2", "dense", 256),
            onnx("ReorderOutput 2", "reorder", None),
            onnx("Mul", "multiply", None),
        ]
        got = [(s and s["name"], n and n["name"], how) for s, n, how in pair_rows(steps, nodes)]
        self.assertEqual(
            got,
            [
                ("gap", "GAP", "kind"),
                ("fc1", "fc1 padded", "kind"),
                (None, "QuickGelu", ""),
                (None, "ReorderOutput", ""),
                ("fc2", "fc2", "kind + MACs"),
                (None, "ReorderOutput 2", ""),
                ("mul", "Mul", "kind"),
            ],
        )

    def test_short_step_name(self):
        self.assertEqual(
            short_step_name("/0/f.1/conv.0/conv.0.0/Conv+/0/f.1/conv.0/conv.0.2/Clip"),
            "/0/f.1/conv.0/conv.0.0/Conv+Clip",
        )
        self.assertEqual(short_step_name("/0/Flatten"), "/0/Flatten")


def block(key, threads, batch, engine, ms, peak=None):
    b = {"model": key, "threads": threads, "batch": batch, "engine": engine, "median_ms": ms}
    b["throughput"] = batch * 1e3 / ms
    b["result"] = {"fma_peak_gflops": peak} if peak else {}
    return b


class TargetsTest(unittest.TestCase):
    # One network of 1e9 MACs at 224x224, peaks 200 GFLOP/s (1 thread) and 380 (2 threads).
    models = {"resnet18": {"title": "ResNet-18", "input": [3, 224, 224], "macs": 1_000_000_000}}

    def rows(self, blocks, refused=None):
        peaks = {1: 200.0, 2: 380.0}
        rows = target_rows(blocks, self.models, peaks, refused or {})
        return {(r["target"], r["threads"], r["batch"]): r for r in rows}

    def test_cells(self):
        blocks = [
            block("resnet18", 1, 1, "gapnet", 18.0, peak=200.0),
            block("resnet18", 1, 1, "onnxruntime", 20.0),  # 18 / 20 = 0.9: met (at most 0.9)
            block("resnet18", 1, 1, "opencv", 40.0),
            block("resnet18", 2, 1, "gapnet", 12.5, peak=380.0),  # 18 / 12.5 = 1.44 < 1.5: not met
            block("resnet18", 2, 1, "onnxruntime", 10.0),  # 12.5 / 10 = 1.25: not met
            # batch 32, 1 thread: ORT at 2e-6 * 1e9 * 32 / 400 = 160 GFLOP/s; 1.2x would need 192 > 90 % of 200,
            # so the target is 180 GFLOP/s: gapnet at 350 ms does 182.9 (met, though only 1.14x ORT).
            block("resnet18", 1, 32, "gapnet", 350.0),
            block("resnet18", 1, 32, "onnxruntime", 400.0),
            # batch 32, 2 threads: ORT at 800 ms is 80 GFLOP/s, 1.2x = 96 < 342: the ratio target; 700 ms: 1.14x
            block("resnet18", 2, 32, "gapnet", 700.0),
            block("resnet18", 2, 32, "onnxruntime", 800.0),
            block("resnet18", 2, 32, "pytorch", 600.0),  # refused below: not a peer here
        ]
        rows = self.rows(blocks, refused={("pytorch", "resnet18"): "differs"})
        self.assertIs(rows[("latency", 1, 1)]["met"], True)
        self.assertIn("ONNX Runtime 20 ms: 0.90×", rows[("latency", 1, 1)]["figures"])
        self.assertIs(rows[("latency", 2, 1)]["met"], False)
        capped = rows[("throughput", 1, 32)]
        self.assertIs(capped["met"], True)
        self.assertEqual(capped["goal"], "90 % of the peak (1.2× the best peer would need 96 %)")
        self.assertIn("gapnet at 91 % of the peak", capped["figures"])
        self.assertIn("1.14×", capped["figures"])
        plain = rows[("throughput", 2, 32)]
        self.assertEqual(plain["goal"], "gapnet / best peer ≥ 1.2")
        self.assertIs(plain["met"], False)
        speedup = rows[("2 threads, batch 1", 2, 1)]
        self.assertIs(speedup["met"], False)
        self.assertIn("1.44×", speedup["figures"])

    def test_best_peer_and_peak_share(self):
        models = {"mobilenet_v2": {"title": "MobileNetV2", "input": [3, 224, 224], "macs": 300_000_000}}
        blocks = [
            block("mobilenet_v2", 1, 1, "gapnet", 4.0, peak=200.0),  # 150 GFLOP/s: 75 % of 200
            block("mobilenet_v2", 1, 1, "onnxruntime", 5.0),
            block("mobilenet_v2", 1, 1, "pytorch", 4.2),  # the best peer: 4 / 4.2 = 0.95, not met
            block("mobilenet_v2", 2, 1, "gapnet", 2.5, peak=380.0),  # 4 / 2.5 = 1.6: met
        ]
        rows = {(r["target"], r["threads"]): r for r in target_rows(blocks, models, {1: 200.0, 2: 380.0}, {})}
        latency = rows[("latency", 1)]
        self.assertIs(latency["met"], False)
        self.assertIn("PyTorch (oneDNN) 4.2 ms: 0.95×", latency["figures"])
        self.assertIn("against ONNX Runtime 0.80×", latency["figures"])
        self.assertIs(rows[("2 threads, batch 1", 2)]["met"], True)
        share = rows[("share of the FMA peak", 1)]
        self.assertIs(share["met"], True)
        self.assertEqual(share["figures"], "150.0 GFLOP/s of 200: 75 %")
        efficiency = efficiency_rows(blocks, models, {1: 200.0, 2: 380.0}, {})
        one = next(r for r in efficiency if (r["threads"], r["batch"]) == (1, 1))
        self.assertAlmostEqual(one["engines"]["onnxruntime"][0], 120.0)
        self.assertAlmostEqual(one["engines"]["onnxruntime"][1], 0.6)


class ReadmeTest(unittest.TestCase):
    def test_replaces_only_the_marked_block(self):
        readme = f"# x\n\nbefore\n{README_BEGIN}\nold table\nold words\n{README_END}\n\nafter\n"
        self.assertEqual(
            replace_block(readme, ["| new |", "", "words"]),
            f"# x\n\nbefore\n{README_BEGIN}\n| new |\n\nwords\n{README_END}\n\nafter\n",
        )

    def test_refuses_missing_or_repeated_markers(self):
        for text in (
            "no markers\n",
            f"{README_END}\n{README_BEGIN}\n",
            f"{README_BEGIN}\n{README_BEGIN}\n{README_END}\n",
        ):
            with self.assertRaises(BenchError):
                replace_block(text, ["x"])


if __name__ == "__main__":
    unittest.main()
