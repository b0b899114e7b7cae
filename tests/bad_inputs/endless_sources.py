#!/usr/bin/env python3
"""Endless image sources (docs/robustness.md, "Endless sources"): each must be refused quickly, holding little.

  endless_sources.py PATH/TO/gapnet SOURCE_DIR

`gapnet classify --model tests/models/brightness.json SOURCE` on sources that never end: /dev/zero, a
FIFO fed forever with zeros, with random bytes, with a valid JPEG header then zeros, with a valid PNG
header then IDAT chunks of empty deflate blocks (valid data that never produce a pixel), and
standard input (`-`) fed forever with zeros. Each must exit 1 with one stderr line naming the source
and the expected problem, within MAX_SECONDS, at a peak RSS (VmHWM, from wait4) of at most MAX_RSS_MIB.
The images are streamed into the decoders, so the RSS is the program and the model plus a read buffer,
whatever the bytes read (up to ImageLimits::max_bytes, 2 GiB + 1 MiB, for the two valid headers).
"""
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import zlib

MAX_SECONDS = 20  # the two valid headers read 2 GiB first (about 2 s alone on this machine)
MAX_RSS_MIB = 24  # classify on the brightness model holds about 11 MiB

LIMIT_TEXT = "read more than ImageLimits::max_bytes = 2148532224 bytes without reaching the end of the image"


def chunk(kind, data):
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def jpeg_header(src):
    """data/test-images/rgb.jpg up to the end of its first scan header (SOS)."""
    data = open(os.path.join(src, "data/test-images/rgb.jpg"), "rb").read()
    sos = data.index(b"\xff\xda")
    return data[: sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")]


def png_header():
    """A 16x16 gray PNG's signature and IHDR, then an IDAT chunk of a zlib header."""
    ihdr = chunk(b"IHDR", (16).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", b"\x78\x01")


# Each source: (name, the bytes it starts with, the bytes repeated forever, the expected error text,
# the options).
EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"  # not final, stored, length 0
SOURCES = [
    ("zeros", b"", bytes(1 << 16), "not an image gapnet can read (unknown image type)", ()),
    ("random", b"", random.Random(21).randbytes(1 << 16), "not an image gapnet can read (unknown image type)", ()),
    ("jpeg-header", None, bytes(1 << 16), LIMIT_TEXT, ()),
    ("png-header", png_header(), chunk(b"IDAT", EMPTY_STORED_BLOCK * 13000), LIMIT_TEXT, ()),
    # The limit lowered on the command line: refused at exactly 10^6 bytes.
    (
        "jpeg-header-limit-lowered",
        None,
        bytes(1 << 16),
        "read more than ImageLimits::max_bytes = 1000000 bytes without reaching the end of the image",
        ("--max-image-bytes", "1000000"),
    ),
]


def feed(stream, head, body, stop):
    try:
        stream.write(head)
        while not stop.is_set():
            stream.write(body)
    except (BrokenPipeError, OSError):
        pass  # the reader is gone: as it should be
    finally:
        try:
            stream.close()
        except OSError:
            pass


def run(gapnet, src, source, stdin=None, options=()):
    """Runs classify on `source`; returns (status, stderr, seconds, peak RSS in MiB)."""
    model = os.path.join(src, "tests/models/brightness.json")
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [gapnet, "classify", *options, "--model", model, source],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        timer = threading.Timer(MAX_SECONDS * 3, process.kill)  # a hang fails the case, not the run
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    return process.returncode, text, time.monotonic() - start, usage.ru_maxrss / 1024


def check(failures, name, source, status, text, seconds, rss, expected):
    lines = text.splitlines()
    print(f"{name}: exit {status} in {seconds:.2f} s at {rss:.1f} MiB: {text.strip()}")
    prefix = f"gapnet: error: {source}: "
    if status != 1:
        failures.append(f"{name}: exit status {status}, expected 1")
    elif len(lines) != 1 or not lines[0].startswith(prefix) or expected not in lines[0]:
        failures.append(f"{name}: expected one line '{prefix}...{expected}...'")
    if seconds > MAX_SECONDS:
        failures.append(f"{name}: took {seconds:.1f} s, more than {MAX_SECONDS}")
    if rss > MAX_RSS_MIB:
        failures.append(f"{name}: peak RSS {rss:.1f} MiB, more than {MAX_RSS_MIB}")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: endless_sources.py PATH/TO/gapnet SOURCE_DIR")
    gapnet, src = sys.argv[1], sys.argv[2]
    failures = []
    status, text, seconds, rss = run(gapnet, src, "/dev/zero")
    check(failures, "/dev/zero", "/dev/zero", status, text, seconds, rss, SOURCES[0][3])
    with tempfile.TemporaryDirectory() as tmp:
        for name, head, body, expected, options in SOURCES:
            head = jpeg_header(src) if head is None else head
            fifo = os.path.join(tmp, name)
            os.mkfifo(fifo)
            stop = threading.Event()
            # Opening a FIFO for writing waits for its reader: in the feeding thread.
            writer = threading.Thread(target=lambda: feed(open(fifo, "wb"), head, body, stop))
            writer.start()
            status, text, seconds, rss = run(gapnet, src, fifo, options=options)
            stop.set()
            writer.join()
            check(failures, "FIFO " + name, fifo, status, text, seconds, rss, expected)
    # Standard input: `-` reads /dev/stdin.
    stop = threading.Event()
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=feed, args=(os.fdopen(write_end, "wb"), b"", bytes(1 << 16), stop))
    writer.start()
    status, text, seconds, rss = run(gapnet, src, "-", stdin=read_end)
    os.close(read_end)
    stop.set()
    writer.join()
    check(failures, "standard input", "-", status, text, seconds, rss, SOURCES[0][3])
    for failure in failures:
        print("FAIL " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
