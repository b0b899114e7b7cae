#!/usr/bin/env python3
"""Image size bounds and decoding memory, end to end (docs/robustness.md, "Images: size bounds").

  image_bounds_test.py PATH/TO/gapnet SOURCE_DIR

1. Valid files at or near each format's least size (tools/make_size_bound_images.py extreme: flat
   4096x4096 JPEG baseline gray/4:2:0/4:4:4 and progressive with fitted Huffman tables, PNG at zlib
   level 9, GIF, 1-bit BMP, RLE TGA, PackBits PSD) must be classified: the bounds refuse no real file.
2. The 16000x16000 JPEG bomb (tests/bad_inputs/images/jpeg-16000x16000-bomb.jpg) must be refused in
   under 1 s and 64 MiB.
3. The largest image the default limits accept, a 16384x16384 gray PNG (2^28 pixels, ~260 KB), must be
   classified within the stated memory bound: peak RSS <= BYTES_PER_PIXEL * pixels + 64 MiB, and 60 s.
Prints the time and peak RSS of 2 and 3. Needs Pillow (python3-pil) for part 1; fails, never skips.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

# What classify holds at its peak for a gray image into a gray model (engine/io/image.cpp,
# decode_image and preprocess): the decoded float image (4 bytes a pixel) and its colour-converted float
# copy (4), after stb's 8-bit image (1) is freed; see docs/robustness.md.
BYTES_PER_PIXEL = 8
CONSTANT = 64 << 20


def run(gapnet, model, image):
    """(exit status, stderr, seconds, peak RSS in bytes) of `gapnet classify`."""
    start = time.monotonic()
    child = subprocess.Popen([gapnet, "classify", "--model", model, image],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - start
    stderr = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    return os.waitstatus_to_exitcode(status), stderr, seconds, usage.ru_maxrss * 1024


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    gapnet, src = sys.argv[1], sys.argv[2]
    model = os.path.join(src, "tests/models/brightness.json")
    tool = os.path.join(src, "tools/make_size_bound_images.py")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        extreme = os.path.join(tmp, "extreme")
        subprocess.run([sys.executable, tool, "extreme", extreme], check=True)
        for name in sorted(os.listdir(extreme)):
            path = os.path.join(extreme, name)
            status, stderr, seconds, rss = run(gapnet, model, path)
            print(f"{name:28} {os.path.getsize(path):>9} bytes  exit {status}  {seconds:5.2f} s  {rss >> 20:5} MiB")
            if status != 0:
                failures.append(f"{name}: a valid file was refused: {stderr.strip()}")

        bomb = os.path.join(src, "tests/bad_inputs/images/jpeg-16000x16000-bomb.jpg")
        status, stderr, seconds, rss = run(gapnet, model, bomb)
        print(f"bomb: {os.path.basename(bomb)} ({os.path.getsize(bomb)} bytes, 16000x16000): exit {status}, "
              f"{seconds:.3f} s, peak RSS {rss >> 20} MiB: {stderr.strip()}")
        if status != 1 or "cannot be encoded" not in stderr or seconds > 1 or rss > 64 << 20:
            failures.append("the JPEG bomb was not refused in under 1 s and 64 MiB")

        largest = os.path.join(tmp, "largest-16384x16384.png")
        subprocess.run([sys.executable, tool, "largest", largest], check=True)
        pixels = 16384 * 16384
        bound = BYTES_PER_PIXEL * pixels + CONSTANT
        status, stderr, seconds, rss = run(gapnet, model, largest)
        print(f"largest: 16384x16384 gray PNG ({os.path.getsize(largest)} bytes): exit {status}, {seconds:.1f} s, "
              f"peak RSS {rss >> 20} MiB (bound {BYTES_PER_PIXEL} x {pixels} + 64 MiB = {bound >> 20} MiB)")
        if status != 0:
            failures.append(f"the largest accepted image was refused: {stderr.strip()}")
        if rss > bound:
            failures.append(f"the largest image took {rss >> 20} MiB, above the bound of {bound >> 20} MiB")
        if seconds > 60:
            failures.append(f"the largest image took {seconds:.0f} s, more than 60")
    for failure in failures:
        print("FAIL " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
