#!/usr/bin/env python3
"""Image size bounds and decoding memory, end to end (docs/robustness.md, "Images: size bounds").

  image_bounds_test.py PATH/TO/gapnet SOURCE_DIR

1. Valid files at or near each format's least size (tools/make_size_bound_images.py extreme: flat
   4096x4096 JPEG baseline gray/4:2:0/4:4:4 and progressive with fitted Huffman tables, PNG at zlib
   level 9, GIF plain and interlaced, 1-bit BMP, RLE TGA, PackBits PSD) must be classified: the bounds
   refuse no real file.
2. The 16000x16000 JPEG bomb (tests/bad_inputs/images/jpeg-16000x16000-bomb.jpg) must be refused in
   under 1 s and 64 MiB.
3. The largest images the default limits accept, a 16384x16384 gray PNG (2^28 pixels, ~260 KB) and
   JPEG (~1 MB), must be classified within the stated memory bound, and 60 s.
The memory bound (docs/robustness.md): peak RSS <= file size + BYTES_PER_PIXEL[format] * pixels +
64 MiB, checked on every file of parts 1 and 3. Prints each time and peak RSS. Needs Pillow
(python3-pil); fails, never skips.
"""
import os
import subprocess
import sys
import tempfile
import time

# What `gapnet classify` holds at its peak beyond the file's bytes, per pixel (engine/io/image.cpp):
# JPEG, PNG and GIF are decoded a row at a time into the preprocessor, nothing per pixel, except a
# progressive JPEG (libjpeg keeps every DCT coefficient, 2 bytes per sample of each component), an
# interlaced PNG (decoded whole: its samples) and an interlaced GIF (decoded whole: its palette
# indices, 1 byte a pixel); the other formats are stb_image's decoded 8-bit image (BMP as 3 or 4
# channels, TGA its channels, PSD always 4).
BYTES_PER_PIXEL = {
    "baseline JPEG": 0,
    "progressive JPEG": 2,
    "PNG": 0,
    "BMP": 4,
    "TGA": 4,
    "PSD": 4,
    "GIF": 0,
    "interlaced GIF": 1,
}


def image_format(name):
    if name.endswith(".jpg"):
        return "progressive JPEG" if "progressive" in name else "baseline JPEG"
    if name.endswith(".gif"):
        return "interlaced GIF" if "interlaced" in name else "GIF"
    return {"png": "PNG", "bmp": "BMP", "tga": "TGA", "psd": "PSD"}[name.rsplit(".", 1)[1]]


def check_bound(failures, path, pixels, rss):
    """The memory bound for `path`, checked against `rss`; returns the bound."""
    bound = os.path.getsize(path) + BYTES_PER_PIXEL[image_format(path)] * pixels + CONSTANT
    if rss > bound:
        failures.append(f"{os.path.basename(path)} took {rss >> 20} MiB, above its bound of {bound >> 20} MiB")
    return bound


CONSTANT = 64 << 20


def run(gapnet, model, image):
    """(exit status, stderr, seconds, peak RSS in bytes) of `gapnet classify`."""
    start = time.monotonic()
    child = subprocess.Popen(
        [gapnet, "classify", "--model", model, image], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
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

    def classify_valid(path, pixels):
        """Classifies the valid image `path` of `pixels` pixels, checking it is accepted within its
        memory bound; returns the seconds it took."""
        status, stderr, seconds, rss = run(gapnet, model, path)
        bound = check_bound(failures, path, pixels, rss)
        print(
            f"{os.path.basename(path):28} {os.path.getsize(path):>9} bytes  exit {status}  {seconds:5.2f} s  "
            f"{rss >> 20:5} MiB (bound {bound >> 20} MiB)"
        )
        if status != 0:
            failures.append(f"{os.path.basename(path)}: a valid file was refused: {stderr.strip()}")
        return seconds

    with tempfile.TemporaryDirectory() as tmp:
        extreme = os.path.join(tmp, "extreme")
        subprocess.run([sys.executable, tool, "extreme", extreme], check=True)
        for name in sorted(os.listdir(extreme)):
            classify_valid(os.path.join(extreme, name), 4096 * 4096)

        bomb = os.path.join(src, "tests/bad_inputs/images/jpeg-16000x16000-bomb.jpg")
        status, stderr, seconds, rss = run(gapnet, model, bomb)
        print(
            f"bomb: {os.path.basename(bomb)} ({os.path.getsize(bomb)} bytes, 16000x16000): exit {status}, "
            f"{seconds:.3f} s, peak RSS {rss >> 20} MiB: {stderr.strip()}"
        )
        if status != 1 or "cannot be encoded" not in stderr or seconds > 1 or rss > 64 << 20:
            failures.append("the JPEG bomb was not refused in under 1 s and 64 MiB")

        largest_png = os.path.join(tmp, "largest-16384x16384.png")
        subprocess.run([sys.executable, tool, "largest", largest_png], check=True)
        largest_jpeg = os.path.join(tmp, "largest-16384x16384.jpg")
        # In a child: a forked gapnet would count this process's 256 MB image in its peak RSS until exec.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from PIL import Image; "
                "Image.new('L', (16384, 16384), 128).save(sys.argv[1], quality=90)",
                largest_jpeg,
            ],
            check=True,
        )
        for largest in (largest_png, largest_jpeg):
            if classify_valid(largest, 16384 * 16384) > 60:
                failures.append(f"{os.path.basename(largest)} took more than 60 s")
    for failure in failures:
        print("FAIL " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
