#!/usr/bin/python3
"""gapnet against its peers, PyTorch, OpenCV DNN and ONNX Runtime, measured side by side; writes
docs/performance.md and the README's Speed table.

    /usr/bin/python3 tools/bench_peers.py [--rounds 5] [--iterations 100] [--models m1,m2,m3,...]
        [--out docs/performance.md] [--readme README.md] [--gapnet build/release/gapnet] [--ort-dir DIR]
        [--smoke]

Methodology
-----------
Models. M1-M3 are the reference models of the performance issue, built in PyTorch with seeded random
weights (He-normal weights, small uniform biases, so activations keep their scale through the layers
and the softmax is not flat); their parameter and MAC counts are checked against the issue's figures.
The real networks with a GAP head, ResNet-18, MobileNetV2, EfficientNet-B0 and SqueezeNet 1.1 at
224x224, come from torchvision as a user brings them to gapnet (tools/export_torchvision.py: the
architecture with seeded random weights, perturbed and calibrated, exported through ONNX and
converted; a softmax appended). The shipped trained models (models/emotion_mini_xception.json, the
mini-Xception imported from Keras; models/fashion_gap.json, models/fashion_flatten.json) are used as
they are. Every gapnet file but the reference models' is rebuilt in PyTorch from its own JSON
weights (torch_model_from_gapnet: one module per layer, any graph), so every engine runs exactly
the same network.

Files. Each reference model is written once to gapnet's format with tools/export_pytorch.py's
export() (base64 tensors; the file records PyTorch's outputs for seeded inputs); every model is
written to ONNX with torch.onnx.export (opset 10, dynamic batch), which OpenCV DNN and ONNX Runtime
read (opset 10: OpenCV 4.6 cannot read opset 11's Clip, MobileNetV2's ReLU6). For the largest model
(the smallest in --smoke) a second gapnet file with JSON number arrays is written, to measure how
fast that encoding loads.

Correctness first. Before any timing, `gapnet verify` re-runs the recorded cases of every gapnet file
(tolerance 1e-5); a failure stops the run. Every peer worker reads the recorded inputs from the
gapnet file, runs them through the engine it is about to time, in the same process, and reports the
largest difference from PyTorch's recorded outputs; a peer that differs by more than 1e-4 is refused
for that model: it is not timed again, its figures are not reported, and --smoke fails.

Engines. gapnet: `gapnet bench --json` (its own process). PyTorch: the model traced with
torch.jit.trace, frozen with torch.jit.freeze, run under torch.inference_mode(), once with oneDNN
(torch.backends.mkldnn) enabled and once disabled (convolutions and matrix products then go to BLAS,
OpenBLAS here); the faster of the two in each configuration is "best PyTorch". OpenCV DNN: the ONNX
file with cv2.dnn.readNetFromONNX, the OpenCV backend on the CPU. ONNX Runtime: the npm package
onnxruntime-node, version ORT_VERSION (1.30.0; its own prebuilt libonnxruntime, CPU execution
provider), run from Node.js by tools/ort_worker.js: InferenceSession.create on the ONNX file with
graphOptimizationLevel 'all', executionMode 'sequential', intraOpNumThreads n, interOpNumThreads 1
(ORT's other settings at their defaults, so its pool's threads spin while waiting, as a user gets),
one `await session.run(...)` per timed run (the output copied into a JavaScript typed array, as the
Python peers copy theirs into numpy). This script installs it on first use with
`npm install --ignore-scripts onnxruntime-node@1.30.0` (the package ships its CPU binaries; its
install script would only download GPU ones) into --ort-dir, outside the repository (default
$GAPNET_ORT_DIR or ~/.cache/gapnet/onnxruntime-node-1.30.0); if Node.js, npm or the install fails,
the run fails: no peer is skipped. Threads: gapnet --threads n; torch.set_num_threads(n) with
set_num_interop_threads(1); cv2.setNumThreads(n); ORT's intraOpNumThreads n (the calling thread is
one of them); and in every worker's environment OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
MKL_NUM_THREADS = n.

Timing. One block = one engine, model, thread count and batch size in a fresh process: load, check,
`warmup` untimed runs, then `iterations` timed runs of one forward pass over the batch (random inputs
uniform in [-1, 1], as gapnet bench uses). A block's figure is its median latency; throughput is
batch / median latency. Blocks are interleaved: for each round, for each model, thread count
(1, 2) and batch (1, 32), every engine runs one block, the engines' order rotating from round to
round, so a slow spell of a shared machine hits all engines alike. Each reported cell is the median
[min-max] over rounds of the block medians. Latency is batch 1, throughput batch 32. Iterations per
block are --iterations for small models and fewer for big ones (about --block-seconds of work, at
least --min-iterations), the same count for every engine.

After the first round, a peer more than --prune-factor (2) times slower than the best peer in a
configuration cannot be the best peer there and is not run again in it (its cell keeps the first
round's figure, marked †); without this, PyTorch without oneDNN on M3 at batch 32 takes most of a
full run. Most of a full run's time is M3 at batch 32: on a 2-core machine, `--rounds 3` took 25 to
50 minutes, up to 25 of them round 1's four PyTorch blocks there; later rounds, pruned, take 5 to 10
minutes each (the README's command uses 3 rounds, not the default 5, to keep a run under an hour).

Ratios compare gapnet's median with the best peer's (best PyTorch, OpenCV DNN or ONNX Runtime,
whichever is fastest in that configuration), both measured in this run.

Efficiency and targets. Each engine's effective GFLOP/s is 2 x the network's multiply-adds (PyTorch's
count of its convolutions' and dense layers', the direct method's) x batch / its median latency, and
its share of the FMA peak `gapnet bench` measures with as many threads (the largest over the run's
blocks). Issue 22's targets are checked cell by cell from the same medians (bench_peers_targets.py):
latency <= 0.9x and throughput >= 1.2x the best peer on 1 and 2 threads (a throughput cell whose 1.2x
would need more than 90 % of the peak: 90 % of the peak instead), 2 threads >= 1.5x 1 thread at batch 1
on the 224x224 networks, MobileNetV2 at batch 1 on 1 thread >= 55 % of the peak.

ONNX Runtime's own profile. In each round, after the timed blocks, one more ONNX Runtime block of
MobileNetV2 (1 thread, batch 1; without it in --models, the first real network, or the last model)
runs with its profiler on (session option enableProfiling, tools/ort_worker.js --profile): every
node's time in every run, written as a Chrome trace, which bench_peers_ort_profile.py reads (each
node's median over the timed runs). Profiling slows the runs, so that block is never a timed one. The
report sets it beside gapnet's steps from `gapnet bench --json` of the same configuration
(bench_peers_layers.py: row by row where both run the same layer, and summed by class of layer).

The README. The lines between its Speed table's markers (bench_peers_readme.py) are rewritten by a
run that writes docs/performance.md (or by --readme PATH); --smoke writes a copy of the README beside
its report, never the README or docs/performance.md themselves.

Parts, in tools/: bench_peers_config.py (the engines, the models, the targets), bench_peers_models.py
(the models in PyTorch, torch_model_from_gapnet, and their files), bench_peers_engines.py (the Python
peers' blocks, ONNX Runtime's installation, the machine facts), bench_peers_ort_profile.py (ONNX
Runtime's trace read), bench_peers_targets.py (effective GFLOP/s, the targets checklist),
bench_peers_layers.py (the per-layer comparison), bench_peers_report.py (writes docs/performance.md),
bench_peers_readme.py (the README's Speed table); this file holds the command line and the orchestrator
(the interleaved blocks, pruning, the kernels' runs, the profiled block).
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time

from bench_peers_config import (
    ALL_MODELS,
    BenchError,
    CHOICE_KERNELS,
    CHOICE_MODELS,
    ENGINES,
    KERNEL_MODEL,
    ORT_VERSION,
    ORT_WORKER,
    PEERS,
    PEER_TOLERANCE,
    PROFILE_CONFIG,
    PROFILE_MODEL,
    PYTHON_WORKERS,
    REFERENCE,
    ROOT,
    SMOKE_MODELS,
    TORCHVISION,
)
from bench_peers_engines import (
    default_ort_dir,
    install_onnxruntime,
    machine_facts,
    run_json,
    thread_env,
    worker_block,
    worker_info,
)
from bench_peers_models import worker_prepare
from bench_peers_ort_profile import ProfileError, parse_profile, read_trace
from bench_peers_readme import README_BEGIN, speed_lines, write_readme
from bench_peers_report import write_report
from bench_peers_targets import fma_peaks, target_rows


# ----------------------------------------------------------------------------------------------
# The orchestrator: prepare files, check, run the interleaved blocks, write the report.


def block_command(args, engine, model, threads, batch, iterations, warmup):
    """The command that runs one block of `engine`; each prints one JSON object."""
    if engine == "gapnet":
        return gapnet_command(args.gapnet, model["gapnet_file"], threads, batch, iterations, warmup)
    common = [
        "--model-file",
        model["gapnet_file"],
        "--onnx",
        model["onnx_file"],
        "--threads",
        str(threads),
        "--batch",
        str(batch),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
    ]
    if engine == "onnxruntime":
        return ["node", ORT_WORKER, "--ort-dir", args.ort_dir, "--tolerance", repr(PEER_TOLERANCE)] + common
    return [sys.executable, os.path.abspath(__file__), "--worker", engine] + common


def gapnet_command(gapnet, model_file, threads, batch, iterations, warmup, conv_algorithm="auto"):
    return [
        gapnet,
        "bench",
        "--model",
        model_file,
        "--batch",
        str(batch),
        "--threads",
        str(threads),
        "--iterations",
        str(iterations),
        "--warmup",
        str(warmup),
        "--conv-algorithm",
        conv_algorithm,
        "--json",
    ]


def check_gapnet(gapnet, models):
    for model in models.values():
        report = run_json([gapnet, "verify", model["gapnet_file"], "--json"])
        if not report.get("passed"):
            raise BenchError(f"gapnet verify failed on {model['gapnet_file']}: {report}")
        model["gapnet_verify"] = report
        print(f"gapnet verify {model['key']}: largest difference {report['largest_difference']:.3g}", flush=True)


def iterations_for(args, model, batch):
    """The same count for every engine: --iterations, or fewer where one run is long."""
    seconds_per_run = model["macs"] * batch / args.assumed_macs_per_second
    return max(args.min_iterations, min(args.iterations, int(args.block_seconds / max(seconds_per_run, 1e-9))))


def plan_configurations(args):
    """(model, threads, batch) triples to measure."""
    if args.smoke:
        # Every model at (1 thread, batch 1), and M1 also at (2 threads, batch 32), without the cost of
        # the whole matrix; PyTorch without oneDNN (the same code but for one flag) on M1 only.
        return [(key, 1, 1) for key in args.models] + [("m1", 2, 32)] * ("m1" in args.models)
    return [(key, t, b) for key in args.models for t in args.threads for b in args.batches]


def run_benchmark(args, models, number_arrays_file):
    configs = plan_configurations(args)
    blocks, refused = [], {}  # refused: (engine, model) -> reason
    pruned = {}  # (engine, model, threads, batch) -> the factor by which it trailed the best peer in round 1
    total = args.rounds * len(configs) * len(ENGINES)
    print(f"{len(configs)} configurations x {len(ENGINES)} engines x {args.rounds} rounds", flush=True)
    done = 0
    for round_index in range(args.rounds):
        shift = round_index % len(ENGINES)
        engines = ENGINES[shift:] + ENGINES[:shift]
        for key, threads, batch in configs:
            model = models[key]
            iterations = iterations_for(args, model, batch)
            # At least 2: TorchScript's profiling executor optimises the graph during the first runs.
            warmup = max(2, args.warmup if iterations >= 10 else 2)
            for engine in engines:
                done += 1
                if (
                    (engine, key) in refused
                    or (engine, key, threads, batch) in pruned
                    or (args.smoke and engine == "pytorch-no-mkldnn" and key != "m1")
                ):
                    continue
                started = time.time()
                try:
                    result = run_json(
                        block_command(args, engine, model, threads, batch, iterations, warmup), env=thread_env(threads)
                    )
                except BenchError as e:
                    if engine == "gapnet":
                        raise
                    # A peer that cannot run a model (an operator it lacks, a crash) is reported as
                    # refused there, with its error; --smoke still fails on it.
                    result = {"refused": "fails: " + str(e).splitlines()[-1][:300]}
                if engine == "gapnet":
                    median = result["latency_ms"]["median"]
                    counted = (result.get("parameters"), result.get("macs_per_image"))
                    if key in REFERENCE and counted != (model["parameters"], model["macs"]):
                        raise BenchError(
                            f"gapnet bench counts {counted[0]} parameters and {counted[1]} MACs "
                            f"in {key}, not {model['parameters']} and {model['macs']}: a different model?"
                        )
                else:
                    if "refused" in result:
                        refused[(engine, key)] = result["refused"]
                        print(f"  REFUSED {engine} on {key}: {result['refused']}", flush=True)
                        continue
                    median = statistics.median(result["latencies_ms"])
                block = {
                    "round": round_index,
                    "model": key,
                    "threads": threads,
                    "batch": batch,
                    "engine": engine,
                    "iterations": iterations,
                    "warmup": warmup,
                    "median_ms": median,
                    "throughput": batch * 1e3 / median,
                    "peak_rss_bytes": result.get("peak_rss_bytes"),
                    "result": result,
                }
                blocks.append(block)
                print(
                    f"[{done}/{total}] round {round_index + 1} {key} t{threads} b{batch} {engine}: "
                    f"{median:.3f} ms ({time.time() - started:.1f} s)",
                    flush=True,
                )
        # The convolution kernels on their own: every layer through each kernel (gapnet bench
        # --conv-algorithm), for the efficiency table (M3, batch 1) and the kernel-choice table.
        for key, batch in kernel_configurations(args, models):
            for threads in args.threads if not args.smoke else (1,):
                for algorithm in CHOICE_KERNELS:
                    iterations = iterations_for(args, models[key], batch)
                    result = run_json(
                        gapnet_command(
                            args.gapnet,
                            models[key]["gapnet_file"],
                            threads,
                            batch,
                            iterations,
                            max(2, min(args.warmup, iterations)),
                            algorithm,
                        ),
                        env=thread_env(threads),
                    )
                    blocks.append(
                        {
                            "round": round_index,
                            "model": key,
                            "engine": "gapnet-" + algorithm,
                            "threads": threads,
                            "batch": batch,
                            "result": result,
                        }
                    )
                    print(
                        f"  round {round_index + 1} {key} t{threads} b{batch} conv kernel {algorithm}: "
                        f"{result['latency_ms']['median']:.3f} ms",
                        flush=True,
                    )
        # ONNX Runtime's own profile of one network, in a block of its own (profiling slows every run,
        # so the timed blocks above run without it).
        key, (threads, batch) = args.profile_model, PROFILE_CONFIG
        if (key, threads, batch) in configs and ("onnxruntime", key) not in refused:
            blocks.append(profiled_ort_block(args, models[key], threads, batch, round_index))
            print(
                f"  round {round_index + 1} {key} t{threads} b{batch} onnxruntime profiled: "
                f"{len(blocks[-1]['result']['profile']['nodes'])} nodes, "
                f"{blocks[-1]['result']['profile']['nodes_ms']:.3f} ms",
                flush=True,
            )
        if number_arrays_file:
            result = run_json(gapnet_command(args.gapnet, number_arrays_file, 1, 1, 1, 0), env=thread_env(1))
            blocks.append(
                {
                    "round": round_index,
                    "model": "number_arrays",
                    "engine": "gapnet",
                    "threads": 1,
                    "batch": 1,
                    "result": result,
                }
            )
        if round_index == 0 and args.prune_factor > 0:
            pruned = prune_slow_peers(blocks, configs, args.prune_factor)
    return blocks, refused, pruned


def profiled_ort_block(args, model, threads, batch, round_index):
    """One ONNX Runtime block with its profiler on (tools/ort_worker.js --profile): its trace, written to
    the work folder, parsed (bench_peers_ort_profile.py) into the block's result["profile"] and removed."""
    iterations = iterations_for(args, model, batch)
    warmup = max(2, args.warmup if iterations >= 10 else 2)
    folder = os.path.join(args.scratch, f"ort-profile-{model['key']}-{round_index + 1}")
    os.makedirs(folder, exist_ok=True)
    command = block_command(args, "onnxruntime", model, threads, batch, iterations, warmup)
    result = run_json(command + ["--profile", os.path.join(folder, "ort")], env=thread_env(threads))
    if "refused" in result:
        raise BenchError(f"ONNX Runtime refused {model['key']} when profiled: {result['refused']}")
    try:
        result["profile"] = parse_profile(read_trace(result["profile_file"]), result["profile_skip_runs"], iterations)
    except (ProfileError, OSError, ValueError, KeyError) as e:
        raise BenchError(f"ONNX Runtime's profile {result['profile_file']}: {e}")
    os.remove(result["profile_file"])
    return {
        "round": round_index,
        "model": model["key"],
        "engine": "onnxruntime-profile",
        "threads": threads,
        "batch": batch,
        "result": result,
    }


def profile_model(models):
    """The network ONNX Runtime profiles: PROFILE_MODEL, or the first real network measured, or the last model."""
    if PROFILE_MODEL in models:
        return PROFILE_MODEL
    return next((key for key in models if key in TORCHVISION), list(models)[-1])


def kernel_configurations(args, models):
    """(model, batch) pairs whose convolutions run through each kernel in turn: the efficiency table's
    model at batch 1, and CHOICE_MODELS at every batch (the smoke run: batch 1 only)."""
    pairs = [(KERNEL_MODEL if KERNEL_MODEL in models else args.models[-1], 1)]
    pairs += [(key, b) for key in CHOICE_MODELS if key in models for b in ((1,) if args.smoke else args.batches)]
    return list(dict.fromkeys(pairs))


def prune_slow_peers(blocks, configs, factor):
    """After the first round: the peers more than `factor` times slower than the best peer in a
    configuration, which cannot be the best peer there, are not run again in it (they keep their
    first-round figure). Saves most of the time of a full run (PyTorch without oneDNN on M3)."""
    pruned = {}
    for key, threads, batch in configs:
        medians = {
            b["engine"]: b["median_ms"]
            for b in blocks
            if (b["model"], b["threads"], b["batch"]) == (key, threads, batch) and b["engine"] in PEERS
        }
        if not medians:
            continue
        best = min(medians.values())
        for engine, median in medians.items():
            if median > factor * best:
                pruned[(engine, key, threads, batch)] = median / best
                print(
                    f"  not run again: {engine} on {key} t{threads} b{batch} ({median / best:.1f}x the best peer)",
                    flush=True,
                )
    return pruned


# ----------------------------------------------------------------------------------------------


def check_smoke_output(args):
    """The smoke run fails if a part of the report is missing: the targets checklist, the share of the
    peak, ONNX Runtime's profile beside gapnet's steps, and the README copy's Speed table."""
    with open(args.out) as f:
        report = f.read()
    with open(args.readme) as f:
        readme = f.read()
    parts = {
        "the targets checklist": "## Targets of issue 22" in report,
        "the share of the FMA peak": "## Share of the FMA peak" in report,
        "the per-layer comparison with ONNX Runtime's profile": "per layer: gapnet beside ONNX Runtime's profile"
        in report,
        "the README's Speed table": README_BEGIN + "\n| model | latency, 1 thread" in readme,
    }
    missing = [name for name, present in parts.items() if not present]
    if missing:
        raise BenchError(f"the smoke run wrote no {', '.join(missing)}")


def parse_list(text, kind=str):
    return [kind(v) for v in text.split(",") if v.strip()]


def main():
    ap = argparse.ArgumentParser(
        description="Benchmark gapnet against PyTorch, OpenCV DNN and ONNX Runtime; " "write docs/performance.md."
    )
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5; smoke 1)")
    ap.add_argument("--iterations", type=int, help="timed runs per block for small models (default 100; smoke 2)")
    ap.add_argument("--min-iterations", type=int, help="timed runs per block at least (default 3; smoke 1)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per block (1 where a block has < 10 runs)")
    ap.add_argument(
        "--block-seconds",
        type=float,
        default=2.0,
        help="aim for about this much work per block when choosing the iterations of big models",
    )
    ap.add_argument(
        "--prune-factor",
        type=float,
        default=2.0,
        help="after round 1, stop running a peer more than this many times slower than the best "
        "peer in a configuration (0: never; default 2)",
    )
    ap.add_argument("--assumed-macs-per-second", type=float, default=25e9, help=argparse.SUPPRESS)
    ap.add_argument(
        "--models",
        help=f"comma-separated, from {','.join(ALL_MODELS)} (default: all; smoke: " f"{','.join(SMOKE_MODELS)})",
    )
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--batches", default="1,32", help="batch sizes (default 1,32: latency, throughput)")
    ap.add_argument("--out", help="the report (default docs/performance.md; smoke: a temporary file)")
    ap.add_argument(
        "--readme",
        help="the README whose Speed table (between its markers) is rewritten (default README.md when the report "
        "goes to docs/performance.md, else none; smoke: a copy of README.md beside --out)",
    )
    ap.add_argument("--raw", help="also write every block's raw result as JSON here")
    ap.add_argument("--gapnet", default=os.path.join(ROOT, "build", "release", "gapnet"), help="the gapnet program")
    ap.add_argument(
        "--ort-dir",
        default=default_ort_dir(),
        help=f"where onnxruntime-node {ORT_VERSION} is, or is installed with npm if missing "
        "(default $GAPNET_ORT_DIR, or ~/.cache/gapnet/onnxruntime-node-VERSION)",
    )
    ap.add_argument("--workdir", help="where the exported files go (default: a temporary directory, removed)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the reference models' weights")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny counts and a subset of configurations; fail on any error"
    )
    # Worker mode (internal): one block of one peer engine, printed as JSON.
    ap.add_argument("--worker", choices=["info", "prepare"] + PYTHON_WORKERS, help=argparse.SUPPRESS)
    ap.add_argument("--model-file", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "info":
            print(json.dumps(worker_info()))
        elif args.worker == "prepare":
            args.models = parse_list(args.models)
            print(json.dumps(worker_prepare(args)))
        else:
            args.threads = int(args.threads)
            print(json.dumps(worker_block(args)))
        return

    args.argv = sys.argv[1:]
    args.rounds = args.rounds or (1 if args.smoke else 5)
    args.iterations = args.iterations or (2 if args.smoke else 100)
    args.min_iterations = args.min_iterations or (1 if args.smoke else 3)
    if args.smoke:
        args.warmup = min(args.warmup, 1)
    args.models = parse_list(args.models or ",".join(SMOKE_MODELS if args.smoke else ALL_MODELS))
    args.threads = parse_list(args.threads, int)
    args.batches = parse_list(args.batches, int)
    unknown = [m for m in args.models if m not in ALL_MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODELS)}")
    if not os.path.isfile(args.gapnet) or not os.access(args.gapnet, os.X_OK):
        ap.error(f"no gapnet program at {args.gapnet}: build it, or pass --gapnet PATH")
    args.gapnet = os.path.abspath(args.gapnet)
    args.ort_dir = os.path.abspath(args.ort_dir)
    if args.out is None:
        args.out = (
            os.path.join(tempfile.gettempdir(), "gapnet-performance-smoke.md")
            if args.smoke
            else os.path.join(ROOT, "docs", "performance.md")
        )

    real_report, real_readme = os.path.join(ROOT, "docs", "performance.md"), os.path.join(ROOT, "README.md")
    if args.readme is None:
        if args.smoke:
            args.readme = os.path.join(os.path.dirname(os.path.abspath(args.out)), "README-smoke.md")
            os.makedirs(os.path.dirname(args.readme), exist_ok=True)
            shutil.copyfile(real_readme, args.readme)
        elif os.path.realpath(args.out) == os.path.realpath(real_report):
            args.readme = real_readme
    if args.smoke:
        written = {os.path.realpath(p) for p in (args.out, args.readme)}
        if written & {os.path.realpath(real_report), os.path.realpath(real_readme)}:
            ap.error("--smoke never rewrites docs/performance.md or README.md: pass other --out and --readme paths")

    started = time.time()
    workdir = args.workdir or tempfile.mkdtemp(prefix="gapnet-bench-peers-")
    os.makedirs(workdir, exist_ok=True)
    args.scratch = workdir
    try:
        install_onnxruntime(args.ort_dir)
        info = run_json([sys.executable, os.path.abspath(__file__), "--worker", "info"], env=thread_env(1))
        info.update(run_json(["node", ORT_WORKER, "--ort-dir", args.ort_dir, "--info"]))
        if not info["torch_uses_openblas"]:
            print("warning: PyTorch does not load OpenBLAS (install libopenblas0-pthread)", file=sys.stderr)
        print(
            f"peers: torch {info['torch']}, OpenCV {info['cv2']}, OpenBLAS: {info['torch_uses_openblas']}, "
            f"ONNX Runtime {info['onnxruntime']} on Node.js {info['node']} ({time.time() - started:.0f} s)",
            flush=True,
        )
        machine = machine_facts(args)
        print(f"machine: {machine['cpu']} ({time.time() - started:.0f} s)", flush=True)
        prepare = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "prepare",
            "--workdir",
            workdir,
            "--models",
            ",".join(args.models),
            "--seed",
            str(args.seed),
        ] + (["--smoke"] if args.smoke else [])
        prepared = run_json(prepare, env=thread_env(2), timeout=3600, echo=True)
        models = prepared["models"]
        args.number_arrays_model = prepared["number_arrays"]["model"]
        number_arrays_file = prepared["number_arrays"]["file"]
        print(f"models prepared ({time.time() - started:.0f} s)", flush=True)
        check_gapnet(args.gapnet, models)
        args.profile_model = profile_model(models)
        blocks, refused, pruned = run_benchmark(args, models, number_arrays_file)
        write_report(
            args.out, args, machine, info, models, blocks, refused, pruned, number_arrays_file, time.time() - started
        )
        if args.readme:
            peaks = fma_peaks(blocks)
            lines = speed_lines(
                "/usr/bin/python3 tools/bench_peers.py " + shlex.join(args.argv),
                machine["git_describe"],
                args.rounds,
                models,
                blocks,
                refused,
                peaks,
                target_rows(blocks, models, peaks, refused),
                args.threads,
            )
            write_readme(args.readme, lines)
            print(f"wrote the Speed table of {args.readme}")
        if args.raw:
            with open(args.raw, "w") as f:
                json.dump(
                    {
                        "machine": machine,
                        "info": info,
                        "models": models,
                        "blocks": blocks,
                        "refused": {f"{e}/{m}": r for (e, m), r in refused.items()},
                        "pruned": {"/".join(map(str, k)): v for k, v in pruned.items()},
                    },
                    f,
                    indent=1,
                )
        print(f"wrote {args.out}")
        if args.smoke:
            check_smoke_output(args)
        # The smoke run fails on a peer that disagrees with PyTorch anywhere, or cannot run M1 (it is
        # missing or broken); one that cannot run a particular network (OpenCV 4.6 fails on
        # EfficientNet-B0's batches) is reported as refused there, as in a full run.
        failing = {k: r for k, r in refused.items() if not r.startswith("fails: ") or k[1] == "m1"}
        if failing and args.smoke:
            sys.exit(
                "bench_peers: error: refused peers: " + "; ".join(f"{e} on {m}: {r}" for (e, m), r in failing.items())
            )
    except BenchError as e:
        sys.exit(f"bench_peers: error: {e}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
