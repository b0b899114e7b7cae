#!/usr/bin/python3
"""Randomized parity cases: small seeded PyTorch networks that gapnet must reproduce to 1e-5.

What: this draws small networks from every module and option gapnet reads, and writes each as a gapnet
model file whose "tests" hold PyTorch's outputs for fixed inputs. `gapnet verify` and
tests/test_parity.cpp re-run those inputs: every probability must be within 1e-5 (absolute) of
PyTorch's. Two kinds of network:

- sequential: an nn.Sequential of the modules tools/export_pytorch.py maps to gapnet (convolutions of
  kernel 1/3/5/7, stride 1 and 2, symmetric and per-side padding, dilation, groups and depthwise,
  with and without bias; batch norm with random running statistics, affine or not; ReLU; max and
  average pooling with padding, ceil_mode and count_include_pad; both global pools; the classifier
  heads; 1- and 3-channel, square and non-square inputs), ending in Softmax, written by
  export_pytorch.export() itself, so the exporter is tested too;
- graph: the same, plus blocks whose layers read several earlier layers (gapnet's "inputs", see
  docs/model-format.md): residual blocks (ResNet's basic block, MobileNetV2's inverted residual,
  identity / 1x1-projection / avg-pool shortcuts, sometimes three terms), concat blocks
  (SqueezeNet's Fire, GoogLeNet's inception, DenseNet's [x, f(x)]), squeeze-and-excitation gates
  (a feature map times a per-channel vector), gated convolutions (equal-shape maps multiplied),
  depthwise-separable convolutions, every activation (relu, relu6, clip, leaky_relu, sigmoid,
  hard_sigmoid, hard_swish, silu, tanh) at the positions the engine fuses (conv > act,
  conv > bn > act, conv > bn > add > act, dense > act) and as layers of their own, and two more heads
  (conv 1x1 to the classes > activation > global pool; concat of both global pools > dense). The
  PyTorch side is an ordinary nn.Module whose forward() computes the block the way PyTorch code
  does (`out = body(x) + shortcut(x)`, `torch.cat(...)`, `x * s`); this generator then writes the
  gapnet layers from the module's parameters (graph_layers), so a wiring mistake on either side
  shows as a verify failure, never as two copies of the same mistake.

Why: tests/test_layers.cpp checks each layer against values worked out by hand, which covers the cases
someone thought of. Random combinations (a ceil_mode window that starts in the padding, a dilated
grouped convolution on a non-square map, a residual add fused into the convolution that happens to be
computed last, a hard_sigmoid gate broadcast over a map, ...) find the ones nobody wrote down, with
PyTorch as the reference.

    /usr/bin/python3 tools/gen_parity_cases.py --out DIR [--seed 0] [--count 40] [--gapnet PATH]

How: network i of seed S depends only on (S, i), so a seed always gives the same files. Each network
is built around foci taken in turn from three lists, by position S + i: FOCI (a layer option it must
contain), GRAPH_FOCI (a graph block it must contain, or "sequential": none at all) and, for graph
networks, ACTIVATIONS (an activation it must hold both right after a convolution, where the engine
fuses it, and as a layer of its own); so any COVERAGE_COUNT consecutive networks contain every
option; everything else is random. What a network contains is read back from its modules and from
the gapnet layers written (not from the plan), printed one line per network, and summed up in a
coverage table; when --count is at least COVERAGE_COUNT, a feature no network contains is an error.
Weights are drawn so that activations keep their scale, and the last layer with weights is scaled so
the logits spread by 1 to 3: a softmax that is neither saturated nor uniform, so a wrong value shows.

With --gapnet, every file written is then checked with `gapnet verify --tolerance 1e-5`; the program
exits with status 1, naming each failing file and gapnet's message, if any fails. PyTorch must be
importable (Debian's python3-torch, for /usr/bin/python3): without it this fails, it never skips.

Parts, in tools/: gen_parity_plan.py (FOCI, GRAPH_FOCI, ACTIVATIONS, the budgets), gen_parity_modules.py
(the PyTorch modules of graph blocks), gen_parity_draw.py (drawing layers and blocks),
gen_parity_network.py (building network i: foci, head, weights, test inputs), gen_parity_writer.py (a
graph network as gapnet layers), gen_parity_coverage.py (reading a network back: its description and
FEATURES); this file writes the files, the coverage table, and runs gapnet verify.
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import warnings

try:
    import torch
except ImportError as error:
    sys.exit(
        f"gen_parity_cases: error: PyTorch is required ({error}); install python3-torch and run "
        "this with /usr/bin/python3"
    )

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402

from gen_parity_coverage import FEATURES, describe, features, trace  # noqa: E402
from gen_parity_network import build_network, test_inputs  # noqa: E402
from gen_parity_plan import COVERAGE_COUNT, RANDOM_TESTS, TOLERANCE, stored_values  # noqa: E402


# --- Writing and verifying -----------------------------------------------------------------------------


def write_graph(path, network, name, metadata):
    """Writes a graph network's file as export_pytorch.export writes a sequential one: the input spec,
    the layers, and PyTorch's outputs for the test inputs."""
    spec = export_pytorch._complete_spec(network.spec)
    inputs = test_inputs(spec, network.extra)
    with torch.no_grad():
        outputs = network.model(inputs)
    tensor = export_pytorch._tensor
    doc = {
        "format": "gapnet",
        "version": 1,
        "name": name,
        "input": spec,
        "labels": [f"class{i}" for i in range(network.classes)],
        "layers": network.layers,
        "tests": [{"input": tensor(x, "base64"), "output": tensor(y, "base64")} for x, y in zip(inputs, outputs)],
        "metadata": metadata,
    }
    with open(path, "w") as f:
        json.dump(doc, f)
        f.write("\n")


def write_cases(out, seed, count):
    """Writes the networks; returns [(path, features, layer types)]. Prints one line per network."""
    os.makedirs(out, exist_ok=True)
    for stale in glob.glob(os.path.join(out, f"parity-{seed}-*.json")):
        os.remove(stale)  # a smaller --count must not leave the previous run's files behind
    written = []
    for index in range(count):
        network = build_network(seed, index)
        name = f"parity-{seed}-{index:03d}"
        path = os.path.join(out, name + ".json")
        seen = trace(network.model, test_inputs(network.spec, network.extra))
        description = describe(network.model, seen)
        metadata = {
            "generator": "tools/gen_parity_cases.py",
            "seed": seed,
            "index": index,
            "focus": network.focus,
            "network": description,
        }
        if network.sequential:
            labels = [f"class{i}" for i in range(network.classes)]
            export_pytorch.export(
                network.model,
                path,
                network.spec,
                labels,
                name=name,
                tests=RANDOM_TESTS,
                test_inputs=network.extra,
                metadata=metadata,
            )
        else:
            write_graph(path, network, name, metadata)
        spec = network.spec
        print(
            f"{name}.json  {spec['channels']}x{spec['height']}x{spec['width']}  "
            f"{stored_values([network.model]):,} values  {description}",
            flush=True,
        )
        types = collections.Counter(layer["type"] for layer in network.layers)
        written.append((path, features(network, seen), types))
    return written


def coverage_table(written):
    """The markdown table of FEATURES: how many networks contain each, and the first one; then how many
    layers of each type the files hold."""
    lines = ["| feature | networks | first |", "|---|---:|---|"]
    for key, meaning in FEATURES:
        having = [os.path.basename(path) for path, found, _ in written if key in found]
        lines.append(f"| {meaning} | {len(having)} | {having[0] if having else '**none**'} |")
    layers = sum((types for _, _, types in written), collections.Counter())
    lines += ["", "| layer type | layers | networks |", "|---|---:|---:|"]
    for kind, total in sorted(layers.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"| {kind} | {total} | {sum(1 for _, _, types in written if kind in types)} |")
    return "\n".join(lines)


def verify(gapnet, paths):
    """Runs `gapnet verify` on each file; returns (failures, largest difference, its file)."""
    failures, largest, worst = [], 0.0, None
    for path in paths:
        run = subprocess.run(
            [gapnet, "verify", "--tolerance", str(TOLERANCE), "--json", path], capture_output=True, text=True
        )
        message = run.stderr.strip()
        try:
            report = json.loads(run.stdout)
        except ValueError:
            report = None
        if run.returncode != 0 or report is None or not report["passed"]:
            failures.append(f"{path}: {message or run.stdout.strip() or f'exit status {run.returncode}'}")
        if report is not None and report["largest_difference"] >= largest:
            largest, worst = report["largest_difference"], path
    return failures, largest, worst


def main():
    ap = argparse.ArgumentParser(
        description="Write seeded random PyTorch networks, with PyTorch's outputs, " "as gapnet parity cases."
    )
    ap.add_argument("--out", required=True, help="the folder to write parity-SEED-NNN.json into")
    ap.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    ap.add_argument(
        "--count",
        type=int,
        default=40,
        help=f"how many networks (default 40; {COVERAGE_COUNT} or more contain every feature)",
    )
    ap.add_argument("--gapnet", help="then run PATH verify on every file written; exit 1 if any fails")
    args = ap.parse_args()
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.gapnet and not os.access(args.gapnet, os.X_OK):
        ap.error(f"--gapnet {args.gapnet}: not an executable file")

    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")  # speed, not results
    torch.set_num_threads(1)  # the recorded outputs then do not depend on the machine's core count
    written = write_cases(args.out, args.seed, args.count)
    print(f"\nwrote {len(written)} networks to {args.out} (seed {args.seed})\n")
    print(coverage_table(written))
    missing = [meaning for key, meaning in FEATURES if not any(key in found for _, found, _ in written)]
    status = 0
    if missing and args.count >= COVERAGE_COUNT:
        print(f"\ngen_parity_cases: error: no network contains: {'; '.join(missing)}", file=sys.stderr)
        status = 1
    if args.gapnet:
        failures, largest, worst = verify(args.gapnet, [path for path, _, _ in written])
        print(
            f"\ngapnet verify: {len(written) - len(failures)} of {len(written)} files match PyTorch within "
            f"{TOLERANCE:g}; largest difference {largest:.3g} ({worst})"
        )
        for failure in failures:
            print(f"gen_parity_cases: error: gapnet verify failed: {failure}", file=sys.stderr)
        if failures:
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
