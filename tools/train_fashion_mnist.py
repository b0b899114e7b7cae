#!/usr/bin/python3
"""Train gapnet's Fashion-MNIST models (CPU, seeded) and export them.

    /usr/bin/python3 tools/train_fashion_mnist.py                  # GAP head, ~13 min on 2 cores
    /usr/bin/python3 tools/train_fashion_mnist.py --head flatten   # flatten + dense head
    /usr/bin/python3 tools/train_fashion_mnist.py --arch resnet    # residual backbone, GAP head

Reads the IDX files of Debian's `dataset-fashion-mnist` package and trains, with the same
convolutional backbone (ending in 64x7x7), seed and schedule, one of two heads:

  gap:      global average pooling -> dense(64 -> 10) -> softmax                  (the default model)
  flatten:  flatten(3136) -> dense(3136 -> 500) -> ReLU -> dense(500 -> 10) -> softmax  (the classic head)

With `--arch resnet` the backbone's second and fourth convolutions become residual blocks (the same
four convolutions and MACs, y = relu(x + bn(conv(x))), He et al. 2016), with the GAP head: a graph
model, exported with tools/export_pytorch.py's Residual, written as models/fashion_resnet.json.

then measures train and test accuracy and writes:

  models/fashion_<head>.json                 the model (gapnet format, base64 weights)
  data/samples/<class>.png                   the first test image of each class
  tests/golden/fashion_<head>_samples.json   PyTorch's probabilities on those PNGs (the parity oracle)

Run with the system interpreter: Debian's PyTorch is installed for /usr/bin/python3. Install
OpenBLAS first (`apt-get install libopenblas0-pthread`): Debian's PyTorch runs dense layers through the
system BLAS, and the reference BLAS makes the flatten head's 3136x500 layer ~10x slower to train. The
BLAS in use is recorded in the model's metadata, since another BLAS sums in another order and so
trains to slightly different weights.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_pytorch  # noqa: E402  (our exporter, beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An IDX file (gzip or not) as a numpy array: images [N,H,W] uint8 or labels [N] uint8."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(dataset_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(dataset_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(dataset_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


def backbone():
    """Four 3x3 convolutions with batch norm; 1x28x28 -> 64x7x7."""

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return block(1, 32) + block(32, 32) + [nn.MaxPool2d(2)] + block(32, 64) + block(64, 64) + [nn.MaxPool2d(2)]


def residual_backbone():
    """backbone() with its second and fourth convolutions as residual blocks; 1x28x28 -> 64x7x7."""

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    def residual(channels):
        return export_pytorch.Residual(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)), activation=nn.ReLU()
        )

    return block(1, 32) + [residual(32), nn.MaxPool2d(2)] + block(32, 64) + [residual(64), nn.MaxPool2d(2)]


def resnet_model():
    return nn.Sequential(
        *residual_backbone(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)
    )


def gap_model():
    return nn.Sequential(*backbone(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1))


def flatten_model(hidden=500):
    return nn.Sequential(
        *backbone(), nn.Flatten(), nn.Linear(64 * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, 10), nn.Softmax(dim=1)
    )


HEADS = {"gap": gap_model, "flatten": flatten_model}


def to_tensor(images, mean, std):
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - mean) / std


@torch.no_grad()
def accuracy(logits_model, x, y, batch=1000):
    logits_model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (logits_model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


def train(model, x, y, epochs, batch, lr, seed):
    """Adam with a cosine learning-rate schedule; the final Softmax is left out while training
    (cross_entropy applies log-softmax itself)."""
    logits_model = model[:-1]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(logits_model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        logits_model.train()
        perm = torch.randperm(len(x), generator=gen)
        t0, total = time.time(), 0.0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(logits_model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    return model


def blas_library():
    """The BLAS library the dynamic linker resolves for libblas.so.3 (Debian's alternatives)."""
    path = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    return os.path.realpath(path) if os.path.exists(path) else "unknown"


def write_samples(test_images, test_labels, samples_dir):
    """The first test image of each class, as an 8-bit grayscale PNG named by its class."""
    from PIL import Image

    os.makedirs(samples_dir, exist_ok=True)
    paths = []
    for c, label in enumerate(LABELS):
        i = int(np.argmax(test_labels == c))
        name = label.lower().replace("/", "_").replace(" ", "_") + ".png"
        path = os.path.join(samples_dir, name)
        Image.fromarray(test_images[i], mode="L").save(path)
        paths.append((path, c, i))
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head", choices=sorted(HEADS), default="gap")
    ap.add_argument(
        "--arch",
        choices=["plain", "resnet"],
        default="plain",
        help="resnet: residual blocks in the backbone (GAP head only); the file is fashion_resnet.json",
    )
    ap.add_argument("--dataset", default=DATASET_DIR, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", help="default: models/fashion_<head>.json (fashion_resnet.json with --arch resnet)")
    ap.add_argument("--samples-dir", default=os.path.join(ROOT, "data", "samples"))
    ap.add_argument("--golden", help="default: tests/golden/fashion_<head>_samples.json")
    ap.add_argument("--checkpoint", help="state dict saved after training; default: build/train/fashion_<head>.pt")
    ap.add_argument("--export-only", action="store_true", help="skip training: load --checkpoint and export it")
    args = ap.parse_args()
    if args.arch == "resnet" and args.head != "gap":
        ap.error("--arch resnet has the GAP head only")
    name = "fashion_resnet" if args.arch == "resnet" else f"fashion_{args.head}"
    args.out = args.out or os.path.join(ROOT, "models", name + ".json")
    args.golden = args.golden or os.path.join(ROOT, "tests", "golden", name + "_samples.json")
    args.checkpoint = args.checkpoint or os.path.join(ROOT, "build", "train", name + ".pt")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    train_images, train_labels = load_split(args.dataset, "train")
    test_images, test_labels = load_split(args.dataset, "test")
    # Normalization constants of the training set, stored in the model file.
    mean = float(train_images.mean() / 255.0)
    std = float(train_images.std() / 255.0)
    x_train, y_train = to_tensor(train_images, mean, std), torch.from_numpy(train_labels.astype(np.int64))
    x_test, y_test = to_tensor(test_images, mean, std), torch.from_numpy(test_labels.astype(np.int64))

    model = resnet_model() if args.arch == "resnet" else HEADS[args.head]()
    t0 = time.time()
    if args.export_only:
        model.load_state_dict(torch.load(args.checkpoint))
        model.eval()
    else:
        train(model, x_train, y_train, args.epochs, args.batch, args.lr, args.seed)
        os.makedirs(os.path.dirname(args.checkpoint), exist_ok=True)
        torch.save(model.state_dict(), args.checkpoint)
    train_seconds = time.time() - t0

    train_acc = accuracy(model[:-1], x_train, y_train)
    test_acc = accuracy(model[:-1], x_test, y_test)
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}")

    input_spec = {
        "channels": 1,
        "height": 28,
        "width": 28,
        "color": "grayscale",
        "scale": 1.0 / 255.0,
        "mean": [mean],
        "std": [std],
    }
    metadata = {
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
        "train_accuracy": round(train_acc, 4),
        "test_accuracy": round(test_acc, 4),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "command": "/usr/bin/python3 tools/train_fashion_mnist.py"
        + ("" if args.head == "gap" else " --head " + args.head)
        + ("" if args.arch == "plain" else " --arch " + args.arch),
        "torch": torch.__version__,
        "blas": blas_library(),
    }
    if not args.export_only:
        metadata["train_seconds"] = round(train_seconds)
    elif os.path.exists(args.out):  # re-exporting: keep the training time the file recorded
        with open(args.out) as f:
            previous = json.load(f).get("metadata", {})
        if "train_seconds" in previous:
            metadata["train_seconds"] = previous["train_seconds"]

    # The sample PNGs, read back from disk so the pixels are exactly those the engine will read.
    from PIL import Image

    samples = write_samples(test_images, test_labels, args.samples_dir)
    sample_inputs = torch.cat(
        [to_tensor(np.asarray(Image.open(path), dtype=np.uint8)[None], mean, std) for path, _, _ in samples]
    )
    # The file records PyTorch's outputs on 3 random inputs and on the 10 samples (gapnet verify).
    export_pytorch.export(model, args.out, input_spec, LABELS, name=name, metadata=metadata, test_inputs=sample_inputs)
    print(f"wrote {args.out}")

    # The parity oracle for the image path (decoding and preprocessing included): PyTorch's
    # probabilities on the sample PNGs.
    golden = {"model": os.path.relpath(args.out, ROOT), "tolerance": 1e-5, "samples": []}
    with torch.no_grad():
        probabilities = model(sample_inputs)
    for (path, c, index), probs in zip(samples, probabilities):
        golden["samples"].append(
            {
                "file": os.path.relpath(path, ROOT),
                "label": LABELS[c],
                "test_index": index,
                "probabilities": [float(p) for p in probs],
            }
        )
    os.makedirs(os.path.dirname(args.golden), exist_ok=True)
    with open(args.golden, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {args.golden} and {len(LABELS)} samples in {args.samples_dir}")


if __name__ == "__main__":
    main()
