#!/usr/bin/python3
"""Photos classified end to end: `gapnet classify` over a folder of 12-megapixel JPEGs against the
Python pipelines that do the same work; writes docs/photo-benchmark.md.

    /usr/bin/python3 tools/bench_photos.py [--images 24] [--rounds 3] [--threads 1,2]
        [--model models/fashion_gap.json] [--gapnet build/release/gapnet] [--out docs/photo-benchmark.md]

The work: decode each JPEG, convert it to the model's colour, shrink it to the model's input with an
area filter, normalize, run the model, take the top class. The engines:

- gapnet: one `gapnet classify --threads T --top 1` process over the folder. Its time per image is
  (time for all the images - time for the first one) / (images - 1), so that loading the model and
  starting the process are not counted (as the Python pipelines' import and load are not).
- Pillow + PyTorch: Image.draft() (libjpeg's DCT scaling to the smallest size at least the input's),
  convert, resize with Image.BOX, the model rebuilt in PyTorch from the gapnet file
  (tools/bench_peers.py), run under torch.inference_mode() with torch.set_num_threads(T).
- OpenCV: cv2.imread with IMREAD_REDUCED_{GRAYSCALE,COLOR}_{2,4,8} (the same DCT scaling), cv2.resize
  with INTER_AREA, cv2.dnn on the model exported to ONNX, cv2.setNumThreads(T).
Each Python pipeline runs in its own process and times its loop over the folder after one warm-up
image. Rounds interleave the engines (their order rotating); a cell is the median over rounds.
Peak memory is each process's peak resident set (ru_maxrss), the interpreter and libraries included.

The photos are made once from scikit-image's public-domain photos (python3-skimage): each cropped to
4:3, enlarged to 4032x3024 (bicubic) with a little seeded noise so that it compresses like a camera
photo, saved as a baseline JPEG at quality 92 (the report gives their mean size).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from bench_peers_config import BenchError  # noqa: E402
from bench_peers_engines import machine_facts, thread_env  # noqa: E402  (thread settings, machine facts)
from bench_peers_models import torch_model_from_gapnet  # noqa: E402  (the PyTorch rebuild of a gapnet model)

PHOTOS = ["coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "retina.jpg"]
SIZE = (4032, 3024)


def make_photos(directory, count):
    import numpy as np
    import skimage
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, f"photo{i:03d}.jpg") for i in range(count)]
    rng = np.random.default_rng(0)
    for i, path in enumerate(paths):
        if os.path.exists(path):
            continue
        image = Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", PHOTOS[i % len(PHOTOS)]))
        image = image.convert("RGB")
        w, h = image.size
        cw, ch = (w, w * 3 // 4) if w * 3 // 4 <= h else (h * 4 // 3, h)
        image = image.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)).resize(SIZE, Image.BICUBIC)
        noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 4, (SIZE[1], SIZE[0], 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=92)
    return paths


def shrink_for(width, height, need_width, need_height):
    """The DCT scaling Pillow's draft() and gapnet choose: the largest of 8, 4, 2, 1 keeping the size."""
    fits = min(width // need_width, height // need_height)
    return next(s for s in (8, 4, 2, 1) if fits >= s)


def worker(args):
    """One Python pipeline over args.files: prints {"seconds_per_image", "top1"}."""
    import numpy as np

    doc = json.load(open(args.model_file))
    spec = doc["input"]
    W, H, C = spec["width"], spec["height"], spec["channels"]
    scale = spec.get("scale", 1 / 255)
    mean = np.array(spec.get("mean", [0.0] * C), np.float32).reshape(C, 1, 1)
    std = np.array(spec.get("std", [1.0] * C), np.float32).reshape(C, 1, 1)

    def normalized(pixels):  # H x W (x C) uint8 -> 1 x C x H x W
        chw = pixels.reshape(H, W, C).transpose(2, 0, 1).astype(np.float32)
        return ((chw * scale - mean) / std)[None]

    if args.worker == "pillow":
        import torch
        from PIL import Image

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        model = torch_model_from_gapnet(doc)

        def classify(path):
            image = Image.open(path)
            image.draft("L" if C == 1 else "RGB", (W, H))
            image = image.convert("L" if C == 1 else "RGB").resize((W, H), Image.BOX)
            with torch.inference_mode():
                return int(model(torch.from_numpy(normalized(np.asarray(image)))).argmax())

    else:
        import cv2

        cv2.setNumThreads(args.threads)
        net = cv2.dnn.readNetFromONNX(args.onnx)
        flags = {
            (1, 1): cv2.IMREAD_GRAYSCALE,
            (1, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
            (1, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
            (1, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
            (3, 1): cv2.IMREAD_COLOR,
            (3, 2): cv2.IMREAD_REDUCED_COLOR_2,
            (3, 4): cv2.IMREAD_REDUCED_COLOR_4,
            (3, 8): cv2.IMREAD_REDUCED_COLOR_8,
        }
        flag = flags[(C, shrink_for(SIZE[0], SIZE[1], W, H))]

        def classify(path):
            image = cv2.resize(cv2.imread(path, flag), (W, H), interpolation=cv2.INTER_AREA)
            if C == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            net.setInput(normalized(image))
            return int(net.forward().argmax())

    classify(args.files[0])  # warm-up
    start = time.perf_counter()
    top1 = [classify(path) for path in args.files]
    print(json.dumps({"seconds_per_image": (time.perf_counter() - start) / len(args.files), "top1": top1}))


def run_child(command, what, env=None):
    """(wall seconds, peak RSS bytes, stdout) of `command`; its stderr (the engines write little) in
    the error of a failed run."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise BenchError(f"{what}: {err.read().decode(errors='replace').strip()[-300:]}")
    return time.monotonic() - start, usage.ru_maxrss * 1024, out


def measure_gapnet(args, files, threads):
    """(seconds per image, peak RSS, top-1 labels) of gapnet classify over `files`."""
    command = [args.gapnet, "classify", "--model", args.model, "--threads", str(threads), "--top", "1", "--json"]
    one, _, _ = run_child(command + files[:1], "gapnet classify")
    every, rss, out = run_child(command + files, "gapnet classify")
    labels = [json.loads(line)["top"][0]["index"] for line in out.splitlines() if line.strip()]
    return (every - one) / (len(files) - 1), rss, labels


def measure_python(args, engine, files, threads, onnx_path):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        engine,
        "--model-file",
        args.model,
        "--onnx",
        onnx_path,
        "--threads",
        str(threads),
        *files,
    ]
    _, rss, out = run_child(command, f"{engine} worker", env=thread_env(threads))
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds_per_image"], rss, result["top1"]


def export_onnx(model_path, onnx_path):
    import torch

    doc = json.load(open(model_path))
    spec = doc["input"]
    model = torch_model_from_gapnet(doc)
    x = torch.zeros(1, spec["channels"], spec["height"], spec["width"])
    torch.onnx.export(model, x, onnx_path, opset_version=11, input_names=["x"], output_names=["y"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "fashion_gap.json"))
    ap.add_argument("--gapnet", default=os.path.join(ROOT, "build", "release", "gapnet"))
    ap.add_argument("--photos", default=os.path.join(ROOT, "build", "photos"), help="where the JPEGs are made")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "photo-benchmark.md"))
    ap.add_argument("--worker", choices=["pillow", "opencv", "prepare"], help=argparse.SUPPRESS)
    ap.add_argument("--model-file", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    onnx_path = os.path.join(args.photos, "model.onnx")
    if args.worker == "prepare":
        make_photos(args.photos, args.images)
        return export_onnx(args.model, onnx_path)
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)

    started = time.monotonic()
    # Photos and the ONNX file are made in a child: this process must stay small, as a child forked
    # from it counts the parent's resident pages in its peak RSS until it executes its program.
    subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "prepare",
            "--images",
            str(args.images),
            "--photos",
            args.photos,
            "--model",
            args.model,
        ],
        check=True,
    )
    files = [os.path.join(args.photos, f"photo{i:03d}.jpg") for i in range(args.images)]
    machine = machine_facts(args)
    engines = ["gapnet", "pillow", "opencv"]
    cells = {}  # (engine, threads) -> [(seconds per image, rss)]
    labels = {}
    for r in range(args.rounds):
        for threads in [int(t) for t in args.threads.split(",")]:
            for engine in engines[r % 3 :] + engines[: r % 3]:
                if engine == "gapnet":
                    seconds, rss, top1 = measure_gapnet(args, files, threads)
                else:
                    seconds, rss, top1 = measure_python(args, engine, files, threads, onnx_path)
                cells.setdefault((engine, threads), []).append((seconds, rss))
                labels[engine] = top1
                print(
                    f"round {r + 1}, {threads} thread(s), {engine:7s}: {1 / seconds:6.1f} images/s, "
                    f"peak RSS {rss >> 20} MiB",
                    flush=True,
                )
    write_report(args, machine, files, cells, labels, time.monotonic() - started)


def write_report(args, machine, files, cells, labels, elapsed):
    names = {
        "gapnet": "gapnet classify",
        "pillow": "Pillow draft() + PyTorch",
        "opencv": "OpenCV imread reduced + cv2.dnn",
    }
    size_mb = statistics.mean(os.path.getsize(f) for f in files) / 1e6
    lines = [
        "# Photos end to end: gapnet classify against Python pipelines",
        "",
        f"Written by `tools/bench_photos.py` on {datetime.date.today().isoformat()} in {elapsed / 60:.1f} minutes:",
        "",
        "```",
        "/usr/bin/python3 " + " ".join(["tools/bench_photos.py"] + [a for a in sys.argv[1:]]),
        "```",
        "",
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs ({machine['simd']}), load average at the start "
        f"{machine['load_average_start'][0]:.2f}; shared and noisy, so only ratios measured in the same run mean "
        f"much. gapnet {machine['gapnet_version']} ({machine['git_describe']}).",
        "",
        f"Work: {len(files)} JPEGs of {SIZE[0]}x{SIZE[1]} (12.2 megapixels, {size_mb:.1f} MB on average), each "
        f"decoded, converted, shrunk and classified by `{os.path.relpath(args.model, ROOT)}`; the methodology is "
        "the script's docstring. Images per second (median of "
        f"{args.rounds} rounds, [min-max]) and peak resident memory of the process:",
        "",
        "| threads | engine | images/s | peak RSS | gapnet's speed over it |",
        "|---|---|---|---|---|",
    ]
    for threads in [int(t) for t in args.threads.split(",")]:
        ours = statistics.median(1 / s for s, _ in cells[("gapnet", threads)])
        for engine in ("gapnet", "pillow", "opencv"):
            rates = [1 / s for s, _ in cells[(engine, threads)]]
            rss = max(r for _, r in cells[(engine, threads)])
            ratio = "" if engine == "gapnet" else f"{ours / statistics.median(rates):.2f}x"
            lines.append(
                f"| {threads} | {names[engine]} | {statistics.median(rates):.1f} "
                f"[{min(rates):.1f}-{max(rates):.1f}] | {rss / 2**20:.0f} MiB | {ratio} |"
            )
    agree = {e: sum(a == b for a, b in zip(labels["gapnet"], labels[e])) for e in ("pillow", "opencv")}
    lines += [
        "",
        f"Top-1 agreement with gapnet: Pillow + PyTorch {agree['pillow']}/{len(files)}, OpenCV {agree['opencv']}/"
        f"{len(files)} (their area filters differ slightly: Pillow's BOX counts whole pixels).",
        "",
        f"One decoded 8-bit image of this size is {SIZE[0] * SIZE[1] / 2**20:.1f} MiB in gray, "
        f"{3 * SIZE[0] * SIZE[1] / 2**20:.1f} MiB in RGB: gapnet decodes the JPEG at 1/8 of its size, a row "
        "at a time, and never holds it whole.",
        "",
    ]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
