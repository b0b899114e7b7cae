#!/usr/bin/python3
"""Writes data/test-images/gif/: GIFs for tests/test_image.cpp, each NAME.gif with NAME.rgba, the
RGBA pixels (row by row, 4 bytes each) its first frame must decode to. Re-running rewrites them
identically.

    /usr/bin/python3 tools/make_gif_test_images.py

Most are built here, with an LZW encoder of this file, so that each feature can be chosen: colour
tables, transparency, an image smaller than the screen, interlacing, minimum code sizes 2 to 12.
Their pixels follow stb_image 2.27's rules for the first frame (the decoder gapnet had, whose
results must not change; expected_rgba() states them), and each image's own indices are checked
against Pillow's decoding of the file. Two are Pillow's own GIFs, their pixels Pillow's RGBA. The
bad-*.gif files must be refused (tests/test_image.cpp has the messages).
"""
import os
import random

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "test-images", "gif")


def lzw(indices, min_code_size, stop_after=None, extra_codes=(), first_clear=True):
    """The LZW data of `indices`: a clear code, the codes (a clear code whenever the table is full),
    the end code. Code widths follow the decoder's table as stb_image (and the GIF spec) grow it.
    stop_after: only that many indices are coded (data ending early); extra_codes: root codes coded
    after the last pixel, before the end code."""
    clear, end = 1 << min_code_size, (1 << min_code_size) + 1
    limit = 8192 if min_code_size == 12 else 4096  # codes fit in 12 bits (13 at the code size 12)
    out, state = [], {}

    def reset_decoder():
        state.update(size=min_code_size + 1, avail=clear + 2, old=None)

    def emit(code):
        out.append((code, state["size"]))
        if code == clear:
            reset_decoder()
        elif code != end:  # what the decoder does with it: an entry from the second code on
            if state["old"] is not None:
                state["avail"] += 1
            if state["avail"] & ((1 << state["size"]) - 1) == 0 and state["avail"] <= 0xFFF:
                state["size"] += 1
            state["old"] = code

    reset_decoder()
    if first_clear:
        emit(clear)
    table, next_code, prefix = {}, clear + 2, None
    for k in indices[:stop_after]:
        if prefix is None:
            prefix = k
        elif (prefix, k) in table:
            prefix = table[(prefix, k)]
        else:
            emit(prefix)
            if next_code < limit:
                table[(prefix, k)] = next_code
                next_code += 1
            else:
                emit(clear)
                table, next_code = {}, clear + 2
            prefix = k
    if prefix is not None:
        emit(prefix)
    for code in extra_codes:
        emit(code)
    emit(end)
    value = bits = 0
    data = bytearray()
    for code, size in out:
        value |= code << bits
        bits += size
        while bits >= 8:
            data.append(value & 255)
            value >>= 8
            bits -= 8
    if bits:
        data.append(value)
    return bytes(data)


def sub_blocks(data):
    return b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)) + b"\0"


def table_bytes(colours):
    """A colour table padded to a power of two (at least 2), and its size field."""
    size = 0
    while 2 << size < len(colours):
        size += 1
    padded = list(colours) + [(0, 0, 0)] * ((2 << size) - len(colours))
    return b"".join(bytes(c) for c in padded), size


def interlaced_rows(height):
    return [y for start, step in ((0, 8), (4, 8), (2, 4), (1, 2)) for y in range(start, height, step)]


def gif(screen, frames, colours=None, background=0):
    """A GIF89a. frames: dicts of rect (x, y, w, h), indices (row by row), and optionally colours (a
    local table), transparent (a graphic control extension), interlace, min_code_size, lzw (options)."""
    data = b"GIF89a" + screen[0].to_bytes(2, "little") + screen[1].to_bytes(2, "little")
    if colours:
        table, size = table_bytes(colours)
        data += bytes([0x80 | size << 4 | size, background, 0]) + table
    else:
        data += bytes([0, background, 0])
    for f in frames:
        if "transparent" in f:
            data += b"\x21\xf9\x04" + bytes([1]) + b"\x00\x00" + bytes([f["transparent"]]) + b"\0"
        x, y, w, h = f["rect"]
        flags, local = (0x40 if f.get("interlace") else 0), b""
        if "colours" in f:
            local, size = table_bytes(f["colours"])
            flags |= 0x80 | size
        data += b"\x2c" + b"".join(v.to_bytes(2, "little") for v in (x, y, w, h)) + bytes([flags]) + local
        rows = interlaced_rows(h) if f.get("interlace") else range(h)
        ordered = [i for r in rows for i in f["indices"][r * w : (r + 1) * w]]
        code_size = f["min_code_size"]
        data += bytes([code_size]) + sub_blocks(lzw(ordered, code_size, **f.get("lzw", {})))
    return data + b"\x3b"


def expected_rgba(screen, frames, colours=None, background=0):
    """The first frame as stb_image 2.27 gave it: the local table, else the global one (entries beyond
    the file's table count as 0,0,0,0); an entry of the transparent index is not written, so stays
    0,0,0,0; outside the image, the global table's background entry with R and B swapped (stb copies
    its B, G, R, A entry as it is), opaque, when the background index is above 0, else 0,0,0,0."""
    width, height = screen
    padded = lambda table: [c + (255,) for c in table] + [(0, 0, 0, 0)] * (256 - len(table))
    global_table = padded(colours or [])
    f = frames[0]
    table = padded(f["colours"]) if "colours" in f else list(global_table)
    if "transparent" in f:
        table[f["transparent"]] = (0, 0, 0, 0)
    r, g, b, _ = global_table[background]
    out = [(b, g, r, 255) if background > 0 else (0, 0, 0, 0)] * (width * height)
    x0, y0, w, h = f["rect"]
    for y in range(h):
        for x in range(w):
            out[(y0 + y) * width + x0 + x] = table[f["indices"][y * w + x]]
    return bytes(v for p in out for v in p)


def check_with_pillow(name, data, frames):
    """Pillow decodes the first image's indices as they were coded (an independent LZW decoder)."""
    f = frames[0]
    if f["min_code_size"] > 8 or "lzw" in f:
        return  # Pillow reads at most 8-bit codes, and pads data ending early
    with Image.open(os.path.join(OUT, name)) as im:
        im.seek(0)
        x, y, w, h = f["rect"]
        indices = list(im.crop((x, y, x + w, y + h)).getdata()) if im.mode == "P" else None
    assert indices == f["indices"], name


def main():
    os.makedirs(OUT, exist_ok=True)
    rnd = random.Random(7)
    palette = lambda n: [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(n)]
    # Runs and noise mixed: long strings and table growth, and the table filled (clear codes) when large.
    pattern = lambda w, h, n: [
        ((x // 3 + y // 2) % n) if (x * y) % 7 else rnd.randrange(n) for y in range(h) for x in range(w)
    ]
    four = palette(4)
    cases = {
        "plain": dict(
            screen=(40, 30),
            colours=palette(16),
            frames=[dict(rect=(0, 0, 40, 30), indices=pattern(40, 30, 16), min_code_size=4)],
        ),
        "interlaced": dict(
            screen=(13, 21),
            colours=palette(8),
            frames=[dict(rect=(0, 0, 13, 21), indices=pattern(13, 21, 8), min_code_size=3, interlace=True)],
        ),
        "local-table": dict(
            screen=(9, 7), frames=[dict(rect=(0, 0, 9, 7), indices=pattern(9, 7, 4), colours=four, min_code_size=2)]
        ),
        "transparent": dict(
            screen=(8, 8),
            colours=four,
            frames=[dict(rect=(0, 0, 8, 8), indices=pattern(8, 8, 4), transparent=1, min_code_size=2)],
        ),
        # The image at (4, 3) of a larger screen; background index 2, also the transparent index.
        "offset-background": dict(
            screen=(12, 10),
            colours=[(1, 2, 3), (40, 50, 60), (200, 100, 30), (7, 8, 9)],
            background=2,
            frames=[dict(rect=(4, 3, 5, 4), indices=pattern(5, 4, 4), transparent=2, min_code_size=2)],
        ),
        "offset-no-background": dict(
            screen=(12, 10),
            colours=four,
            background=0,
            frames=[dict(rect=(4, 3, 5, 4), indices=pattern(5, 4, 4), min_code_size=2)],
        ),
        # An interlaced image of 3 rows at the screen's bottom right, a local table, background 1.
        "offset-interlaced": dict(
            screen=(7, 9),
            colours=four,
            background=1,
            frames=[
                dict(rect=(2, 6, 5, 3), indices=pattern(5, 3, 4), colours=palette(4), interlace=True, min_code_size=2)
            ],
        ),
        "min-code-size-2": dict(
            screen=(64, 64),
            colours=four,
            frames=[dict(rect=(0, 0, 64, 64), indices=pattern(64, 64, 4), min_code_size=2)],
        ),
        "min-code-size-8": dict(
            screen=(70, 70),
            colours=palette(256),
            frames=[dict(rect=(0, 0, 70, 70), indices=pattern(70, 70, 256), min_code_size=8)],
        ),
        # Stb accepts 12 (13-bit codes, a table of 8192 entries) though GIF allows at most 8.
        "min-code-size-12": dict(
            screen=(90, 90),
            colours=palette(256),
            frames=[dict(rect=(0, 0, 90, 90), indices=pattern(90, 90, 256), min_code_size=12)],
        ),
        "one-pixel": dict(screen=(1, 1), colours=four, frames=[dict(rect=(0, 0, 1, 1), indices=[3], min_code_size=2)]),
        # A table of 2 entries, indices 2 and 3 beyond it: 0,0,0,0, as stb's zeroed table gives.
        "short-table": dict(
            screen=(6, 2),
            colours=palette(2),
            frames=[dict(rect=(0, 0, 6, 2), indices=[0, 1, 2, 3, 1, 0] * 2, min_code_size=2)],
        ),
        # Codes after the last pixel (stb decodes and ignores them).
        "extra-codes": dict(
            screen=(5, 5),
            colours=four,
            frames=[
                dict(rect=(0, 0, 5, 5), indices=pattern(5, 5, 4), min_code_size=2, lzw=dict(extra_codes=(1, 2, 3, 0)))
            ],
        ),
        # Two frames: the first one counts.
        "animated": dict(
            screen=(10, 6),
            colours=four,
            frames=[
                dict(rect=(0, 0, 10, 6), indices=pattern(10, 6, 4), min_code_size=2),
                dict(rect=(2, 1, 4, 3), indices=[3] * 12, min_code_size=2),
            ],
        ),
    }
    bad = {
        # The end code after 30 of 48 pixels, then the rest of the file (trailer included).
        "bad-end-code-early": dict(
            screen=(8, 6),
            colours=four,
            frames=[dict(rect=(0, 0, 8, 6), indices=pattern(8, 6, 4), min_code_size=2, lzw=dict(stop_after=30))],
        ),
        "bad-no-clear-code": dict(
            screen=(4, 4),
            colours=four,
            frames=[dict(rect=(0, 0, 4, 4), indices=pattern(4, 4, 4), min_code_size=2, lzw=dict(first_clear=False))],
        ),
        "bad-no-colour-table": dict(screen=(4, 4), frames=[dict(rect=(0, 0, 4, 4), indices=[0] * 16, min_code_size=2)]),
        "bad-image-outside-screen": dict(
            screen=(4, 4), colours=four, frames=[dict(rect=(1, 0, 4, 4), indices=[0] * 16, min_code_size=2)]
        ),
    }
    for name, case in {**cases, **bad}.items():
        data = gif(case["screen"], case["frames"], case.get("colours"), case.get("background", 0))
        with open(os.path.join(OUT, name + ".gif"), "wb") as f:
            f.write(data)
        if name in cases:
            with open(os.path.join(OUT, name + ".rgba"), "wb") as f:
                f.write(expected_rgba(case["screen"], case["frames"], case.get("colours"), case.get("background", 0)))
            check_with_pillow(name + ".gif", data, case["frames"])
    # An invalid code as the second code; an LZW minimum code size of 13.
    with open(os.path.join(OUT, "one-pixel.gif"), "rb") as f:
        one = bytearray(f.read())
    data_at = 13 + 3 * 4 + 10 + 1  # after the header, the table of 4, the descriptor and the code size
    code = 4 | 7 << 3 | 5 << 6  # 3-bit codes: clear (4), 7 (beyond the next entry, 6), end (5)
    bad_code = one[:data_at] + bytes([2, code & 255, code >> 8, 0, 0x3B])
    with open(os.path.join(OUT, "bad-invalid-code.gif"), "wb") as f:
        f.write(bad_code)
    one[data_at - 1] = 13
    with open(os.path.join(OUT, "bad-code-size-13.gif"), "wb") as f:
        f.write(one)
    # Pillow's own encoder: 256 colours of noise, plain and interlaced (Pillow's default from 16 rows).
    noise = Image.frombytes("L", (33, 17), bytes(rnd.randrange(256) for _ in range(33 * 17))).convert("P")
    for name, interlace in (("pillow-plain", 0), ("pillow-interlaced", 1)):
        path = os.path.join(OUT, name + ".gif")
        noise.save(path, interlace=interlace)
        with Image.open(path) as im:
            pixels = im.convert("RGBA").tobytes()
        with open(os.path.join(OUT, name + ".rgba"), "wb") as f:
            f.write(pixels)
    print(f"wrote {len(os.listdir(OUT))} files in {OUT}")


if __name__ == "__main__":
    main()
