#!/usr/bin/env python3
"""Images for gapnet's size bounds and truncation checks (engine/io/image.cpp, docs/robustness.md).

  make_size_bound_images.py bad DIR      the small refused files of tests/bad_inputs/images/
  make_size_bound_images.py extreme DIR  large valid files near each format's bound (not committed:
                                         tests/image_bounds_test.py writes them to a temporary directory)
  make_size_bound_images.py largest FILE the largest image the default limits accept: a 16384x16384
                                         gray PNG deflated by zlib at level 9 (~260 KB)

Needs Pillow (Debian: python3-pil) for JPEG, GIF, BMP and TGA; PNG and PSD are written here.
"""
import io
import os
import struct
import sys
import zlib


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, idat, end=True, color=0):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + (png_chunk(b"IEND", b"") if end else b"")
    )


def flat_png(width, height, value=128):
    """A gray PNG of one value, compressed row by row (filter 0) at zlib's level 9."""
    z = zlib.compressobj(9)
    row = b"\x00" + bytes([value]) * width
    parts = [z.compress(row) for _ in range(height)]
    parts.append(z.flush())
    return png(width, height, b"".join(parts))


def psd_rle(width, height, channels=3, value=200):
    """A flat RGB PSD in PackBits: per row and channel, runs of 128 as 2 bytes (the densest coding)."""
    row = b""
    left = width
    while left:
        n = min(128, left)
        row += bytes([257 - n if n > 1 else 0, value]) if n > 1 else bytes([0, value])
        left -= n
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, channels, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)
    counts = struct.pack(">H", len(row)) * (height * channels)
    return header + sections + struct.pack(">H", 1) + counts + row * (height * channels)


def pil():
    from PIL import Image  # noqa: deferred, so that `largest` runs without Pillow

    return Image


def save(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(width, height, mode="L", seed=1):
    import random

    rnd = random.Random(seed)
    return pil().frombytes(mode, (width, height), bytes(rnd.randrange(256) for _ in range(width * height * len(mode))))


def jpeg_segment(data, marker):
    """The offset of the first segment `marker` (e.g. 0xC0) in a JPEG."""
    i = 2
    while data[i + 1] != marker:
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return i


def gif_lzw_cut(gif, fraction):
    """`gif` (one image, a global colour table) with its LZW data cut to `fraction`, re-blocked."""
    at = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    while gif[at] == 0x21:  # extensions: label, sub-blocks
        at += 2
        while gif[at]:
            at += 1 + gif[at]
        at += 1
    at += 10 + (3 << ((gif[at + 9] & 7) + 1) if gif[at + 9] & 0x80 else 0) + 1  # descriptor, table, code size
    head, data = gif[:at], b""
    while gif[at]:
        data += gif[at + 1 : at + 1 + gif[at]]
        at += 1 + gif[at]
    data = data[: int(len(data) * fraction)]
    blocks = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
    return head + blocks + b"\x00\x3b"


def bad(directory):
    Image = pil()
    files = {}
    # 16000x16000 declared by a 8x8 JPEG's frame header: the bomb (24 s and 4 GB before).
    small = save(Image.new("L", (8, 8), 90), "JPEG", quality=75)
    sof = jpeg_segment(small, 0xC0)
    files["jpeg-16000x16000-bomb.jpg"] = small[: sof + 5] + struct.pack(">HH", 16000, 16000) + small[sof + 9 :]
    # A JPEG cut inside its scan, with an EOI appended (as a repair tool or a partial copy leaves it).
    whole = save(noise(64, 64), "JPEG", quality=90)
    sos = jpeg_segment(whole, 0xDA)
    cut = sos + (len(whole) - sos) // 2
    files["truncated-scan-with-eoi.jpg"] = whole[:cut] + b"\xff\xd9"
    # The same, progressive: cut inside a later scan.
    prog = save(noise(64, 64), "JPEG", quality=90, progressive=True)
    files["truncated-progressive-with-eoi.jpg"] = prog[: len(prog) * 3 // 4] + b"\xff\xd9"
    # A complete JPEG without its EOI marker.
    files["no-eoi.jpg"] = save(Image.new("L", (16, 16), 90), "JPEG")[:-2]
    # 16384x16384 PNG from 50 bytes of deflate data.
    files["png-16384x16384-bomb.png"] = png(16384, 16384, zlib.compress(b"\x00" * 20000, 9))
    # A valid 8x8 PNG without IEND.
    files["no-iend.png"] = flat_png(8, 8)[:-12]
    # A GIF whose first image declares 16000x16000 pixels, from a 4x4 image's LZW data.
    gif = save(Image.new("L", (4, 4), 0).convert("P"), "GIF")
    gif = bytearray(gif)
    gif[6:10] = struct.pack("<HH", 16000, 16000)
    image = gif.index(b"\x2c", 13)
    gif[image + 5 : image + 9] = struct.pack("<HH", 16000, 16000)
    files["gif-16000x16000-bomb.gif"] = bytes(gif)
    # A whole 16x16 GIF without its trailer (0x3B).
    files["no-trailer.gif"] = save(noise(16, 16).convert("P"), "GIF")[:-1]
    # The same GIF with its LZW data cut to their first 40%, then the block terminator and the trailer:
    # data that end before the image's last pixel in an otherwise whole file.
    files["gif-lzw-ends-early.gif"] = gif_lzw_cut(save(noise(16, 16).convert("P"), "GIF"), 0.4)
    # Headers of 16000x16000 with a few bytes of pixels.
    bmp = bytearray(save(Image.new("RGB", (4, 4), (1, 2, 3)), "BMP"))
    bmp[18:26] = struct.pack("<ii", 16000, 16000)
    files["bmp-16000x16000-bomb.bmp"] = bytes(bmp)
    tga = bytearray(save(Image.new("L", (4, 4), 7), "TGA", compression="tga_rle"))
    tga[12:16] = struct.pack("<HH", 16000, 16000)
    files["tga-rle-16000x16000-bomb.tga"] = bytes(tga)
    psd = bytearray(psd_rle(4, 4))
    psd[14:22] = struct.pack(">II", 16000, 16000)
    files["psd-rle-16000x16000-bomb.psd"] = bytes(psd)
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def extreme(directory, side=4096):
    """Valid files at (or near) the least size of each format's bound, flat images."""
    Image = pil()
    flat_l, flat_rgb = Image.new("L", (side, side), 128), Image.new("RGB", (side, side), (200, 100, 50))
    files = {
        # optimize: Huffman tables fitted to the image, a 1-bit DC code and a 1-bit end of block.
        "flat-gray.jpg": save(flat_l, "JPEG", quality=75, optimize=True),
        "flat-rgb-420.jpg": save(flat_rgb, "JPEG", quality=75, optimize=True, subsampling=2),
        "flat-rgb-444.jpg": save(flat_rgb, "JPEG", quality=75, optimize=True, subsampling=0),
        "flat-gray-progressive.jpg": save(flat_l, "JPEG", quality=75, optimize=True, progressive=True),
        "flat-gray.png": flat_png(side, side),
        "flat.gif": save(flat_l.convert("P"), "GIF", interlace=0),  # streamed
        "flat-interlaced.gif": save(flat_l.convert("P"), "GIF", interlace=1),  # decoded whole first
        "flat-1bit.bmp": save(flat_l.convert("1"), "BMP"),
        "flat-rle.tga": save(flat_l, "TGA", compression="tga_rle"),
        "flat-rle.psd": psd_rle(side, side),
    }
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("bad", "extreme", "largest"):
        sys.exit(__doc__)
    if sys.argv[1] == "largest":
        with open(sys.argv[2], "wb") as f:
            f.write(flat_png(16384, 16384))
    else:
        globals()[sys.argv[1]](sys.argv[2])
