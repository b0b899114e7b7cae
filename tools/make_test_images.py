#!/usr/bin/python3
"""Writes data/test-images/: tiny images of every format and pixel layout gapnet reads, with known
pixel values (see tests/test_image.cpp), plus a few broken files, and coffee.jpg, a 600x400 JPEG photo
(scikit-image's public-domain coffee.png, python3-skimage) large enough to be decoded shrunk (the
one-image-path tests); and data/test-datasets/: the ten
sample images (data/samples/) as an IDX pair, raw and gzipped, and as a class-folder tree, with
broken variants (see tests/cli_test.sh). Re-running rewrites them identically.

    /usr/bin/python3 tools/make_test_images.py
"""
import gzip
import os
import shutil
import struct

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "test-images")
DATASETS = os.path.join(ROOT, "data", "test-datasets")
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
RGB = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]  # a 2x2 image, row by row
GRAY = [0, 64, 128, 255]
GRAY16 = [0, 16448, 65535, 1000]


def rgb_image():
    im = Image.new("RGB", (2, 2))
    im.putdata(RGB)
    return im


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda name: os.path.join(OUT, name)
    rgb = rgb_image()
    for ext in ("png", "bmp", "tga", "ppm"):
        rgb.save(p("rgb." + ext))
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(p("coffee.jpg"), quality=85)
    rgba = Image.new("RGBA", (2, 2))
    rgba.putdata([c + (a,) for c, a in zip(RGB, (255, 128, 0, 7))])
    rgba.save(p("rgba.png"))
    gray = Image.new("L", (2, 2))
    gray.putdata(GRAY)
    gray.save(p("gray.png"))
    gray_alpha = Image.new("LA", (2, 2))
    gray_alpha.putdata([(g, 100) for g in GRAY])
    gray_alpha.save(p("gray_alpha.png"))
    palette = rgb.quantize(colors=4, method=Image.Quantize.MAXCOVERAGE)
    palette.save(p("palette.png"))
    # An animated GIF: the first frame is the RGB image, the second is all white.
    white = Image.new("RGB", (2, 2), (255, 255, 255)).quantize(colors=4)
    palette.save(p("animated.gif"), save_all=True, append_images=[white], duration=100, loop=0)
    gray16 = Image.new("I;16", (2, 2))
    gray16.putdata(GRAY16)
    gray16.save(p("gray16.png"))
    with open(p("gray16.pgm"), "wb") as f:  # binary PGM, 16-bit big-endian samples
        f.write(b"P5\n2 2\n65535\n" + b"".join(struct.pack(">H", v) for v in GRAY16))
    with open(p("gray-maxval15.pgm"), "wb") as f:  # 4-bit samples: 0..15 means black..white
        f.write(b"P5\n# a comment\n2 2\n15\n" + bytes([0, 4, 8, 15]))
    with open(p("rgb.psd"), "wb") as f:  # Photoshop: header, three empty sections, raw planar data
        f.write(b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 2, 2, 8, 3))
        f.write(struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0))
        f.write(bytes(c[k] for k in range(3) for c in RGB))
    Image.new("RGB", (8, 8), (200, 100, 50)).save(p("rgb.jpg"), quality=95)

    # Broken files.
    open(p("empty.png"), "wb").close()
    with open(p("not-an-image.png"), "w") as f:
        f.write("this is text, not pixels\n")
    with open(p("rgb.png"), "rb") as f:
        head = f.read(40)
    with open(p("truncated.png"), "wb") as f:
        f.write(head)
    with open(p("truncated.pgm"), "wb") as f:  # 4x4 samples declared, 3 present
        f.write(b"P5\n4 4\n255\n" + bytes([1, 2, 3]))
    # A BMP header claiming 100000 x 100000 pixels, with no pixels behind it.
    with open(p("huge-header.bmp"), "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54))
        f.write(struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 2835, 2835, 0, 0))
    print(f"wrote {len(os.listdir(OUT))} files in {OUT}")
    make_datasets()


def idx(dims, values):
    """An IDX file of unsigned bytes: magic 0x0000 0x08 rank, big-endian sizes, values."""
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)


def make_datasets():
    """The ten samples, in class order, as IDX files and as class folders."""
    files = [
        os.path.join(ROOT, "data", "samples", label.lower().replace("/", "_").replace(" ", "_") + ".png")
        for label in LABELS
    ]
    pixels = [list(Image.open(f).getdata()) for f in files]
    if os.path.exists(DATASETS):
        shutil.rmtree(DATASETS)
    os.makedirs(os.path.join(DATASETS, "idx"))
    os.makedirs(os.path.join(DATASETS, "idx-gz"))
    os.makedirs(os.path.join(DATASETS, "idx-mismatch"))
    images = idx([10, 28, 28], [v for p in pixels for v in p])
    labels = idx([10], range(10))
    for name, content in (("samples-images-idx3-ubyte", images), ("samples-labels-idx1-ubyte", labels)):
        with open(os.path.join(DATASETS, "idx", name), "wb") as f:
            f.write(content)
        # A fixed mtime keeps the file identical from run to run; the name goes in the header (FNAME).
        with gzip.GzipFile(os.path.join(DATASETS, "idx-gz", name + ".gz"), "wb", mtime=0) as f:
            f.write(content)
    with open(os.path.join(DATASETS, "idx-mismatch", "samples-images-idx3-ubyte"), "wb") as f:
        f.write(images)
    with open(os.path.join(DATASETS, "idx-mismatch", "samples-labels-idx1-ubyte"), "wb") as f:
        f.write(idx([9], range(9)))  # one label short
    # Class folders named like the labels ("T-shirt/top" -> "t-shirt_top"), plus an unreadable file.
    for f in files:
        name = os.path.splitext(os.path.basename(f))[0]
        os.makedirs(os.path.join(DATASETS, "folders", name))
        shutil.copy(f, os.path.join(DATASETS, "folders", name, "0.png"))
    with open(os.path.join(DATASETS, "folders", "bag", "broken.png"), "w") as f:
        f.write("not an image\n")
    os.makedirs(os.path.join(DATASETS, "folders-unknown-class", "hat"))
    shutil.copy(files[0], os.path.join(DATASETS, "folders-unknown-class", "hat", "0.png"))
    print(f"wrote the test datasets in {DATASETS}")


if __name__ == "__main__":
    main()
