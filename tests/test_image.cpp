// Image input: every format and pixel layout decodes to the known pixels of data/test-images/
// (written by tools/make_test_images.py), colour conversion, resizing, normalization, and errors.
#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/io/byte_source.h"
#include "engine/io/file.h"
#include "engine/io/image.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::require_values;
using gapnet::test::source_path;

namespace {

InputSpec identity_spec(int64_t channels, int64_t height = 2, int64_t width = 2) {
    InputSpec spec;
    spec.channels = channels, spec.height = height, spec.width = width;
    spec.color = channels == 1 ? ColorMode::grayscale : ColorMode::rgb;
    spec.scale = 1.0;
    spec.mean.assign(static_cast<size_t>(channels), 0.0f);
    spec.std.assign(static_cast<size_t>(channels), 1.0f);
    return spec;
}

Tensor load(const std::string& name, const InputSpec& spec) {
    return load_image(source_path("data/test-images/" + name), spec);
}

std::string error_of(const std::string& path) {
    try {
        load_image(path, identity_spec(1));
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

// The 2x2 test image: red, green, blue, (10,20,30); as planes R, G, B.
const std::vector<float> kRgbPlanes = {255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30};
// Its BT.601 luma: 0.299 R + 0.587 G + 0.114 B.
const std::vector<float> kLuma = {76.245f, 149.685f, 29.07f, 18.15f};

}  // namespace

TEST_CASE("every format decodes to the same RGB pixels") {
    for (const char* name :
         {"rgb.png", "rgb.bmp", "rgb.tga", "rgb.ppm", "rgb.psd", "rgba.png", "palette.png", "animated.gif"}) {
        INFO(name);
        const Tensor t = load(name, identity_spec(3));
        REQUIRE(t.shape == Shape{3, 2, 2});
        require_values(t.data, kRgbPlanes, 0);  // alpha dropped, palette expanded, GIF's first frame
    }
}

TEST_CASE("RGB becomes gray by BT.601 luma; gray becomes RGB by copying") {
    require_values(load("rgb.png", identity_spec(1)).data, kLuma, 1e-4);
    require_values(load("rgba.png", identity_spec(1)).data, kLuma, 1e-4);
    require_values(load("gray.png", identity_spec(1)).data, {0, 64, 128, 255}, 0);
    require_values(load("gray_alpha.png", identity_spec(1)).data, {0, 64, 128, 255}, 0);
    require_values(load("gray.png", identity_spec(3)).data, {0, 64, 128, 255, 0, 64, 128, 255, 0, 64, 128, 255}, 0);
}

TEST_CASE("16-bit images are scaled to 0..255 (divided by 257)") {
    for (const char* name : {"gray16.png", "gray16.pgm"}) {
        INFO(name);
        require_values(load(name, identity_spec(1)).data, {0, 64, 255, 1000.0f / 257}, 1e-5);
    }
}

TEST_CASE("PNM samples are scaled by their maxval") {
    require_values(load("gray-maxval15.pgm", identity_spec(1)).data, {0, 68, 136, 255}, 1e-4);
}

TEST_CASE("JPEG decodes within its compression error") {
    const Tensor t = load("rgb.jpg", identity_spec(3, 8, 8));
    for (int64_t i = 0; i < 64; ++i) {
        REQUIRE(t.data[i] == Approx(200).margin(3));
        REQUIRE(t.data[64 + i] == Approx(100).margin(3));
        REQUIRE(t.data[128 + i] == Approx(50).margin(3));
    }
}

TEST_CASE("resizing: area when shrinking, bilinear when enlarging") {
    // [[0, 64], [128, 255]] shrunk to 1x1 is its mean.
    require_values(load("gray.png", identity_spec(1, 1, 1)).data, {111.75f}, 1e-4);
    // Enlarged to 4x4: output pixel centres sit at -0.25, 0.25, 0.75, 1.25 in input pixels (clamped
    // at the edges), so the first row is 0, 16, 48, 64 and pixel (1,1) mixes all four:
    // 0.75*0.75*0 + 0.75*0.25*64 + 0.25*0.75*128 + 0.25*0.25*255 = 51.9375.
    const Tensor big = load("gray.png", identity_spec(1, 4, 4));
    REQUIRE(big.shape == Shape{1, 4, 4});
    require_values({big.data[0], big.data[1], big.data[2], big.data[3]}, {0, 16, 48, 64}, 1e-3);
    REQUIRE(big.data[5] == Approx(51.9375).margin(1e-3));
    REQUIRE(big.data[15] == Approx(255).margin(1e-3));
    // Only one axis shrinks: 2x2 -> 2x1 averages each row.
    require_values(load("gray.png", identity_spec(1, 2, 1)).data, {32, 191.5f}, 1e-3);
}

TEST_CASE("normalization: (p * scale - mean[c]) / std[c]") {
    InputSpec spec = identity_spec(3);
    spec.scale = 1.0 / 255;
    spec.mean = {0.5f, 0.0f, 1.0f};
    spec.std = {0.25f, 1.0f, 2.0f};
    const Tensor t = load("rgb.png", spec);
    REQUIRE(t.data[0] == Approx(2.0).margin(1e-6));                      // R 255: (1 - 0.5) / 0.25
    REQUIRE(t.data[1] == Approx(-2.0).margin(1e-6));                     // R 0:  (0 - 0.5) / 0.25
    REQUIRE(t.data[5] == Approx(1.0).margin(1e-6));                      // G 255: (1 - 0) / 1
    REQUIRE(t.data[11] == Approx((30.0 / 255 - 1.0) / 2).margin(1e-6));  // B 30
}

TEST_CASE("unreadable images are refused with the reason") {
    REQUIRE(error_of(source_path("data/test-images/empty.png")) == "empty file, not an image");
    REQUIRE(error_of(source_path("data/test-images/not-an-image.png")) ==
            "not an image gapnet can read (unknown image type)");
    REQUIRE(error_of(source_path("data/test-images/truncated.png")) ==
            "truncated PNG: the file ends before the image data does");
    REQUIRE(error_of(source_path("data/test-images/truncated.pgm")) == "truncated PNM: 4x4 needs 16 bytes of samples");
    REQUIRE(error_of(source_path("data/test-images/huge-header.bmp")) ==
            "image is 100000x100000, a side beyond ImageLimits::max_side = 32768");
    REQUIRE(error_of(source_path("data/test-images/missing.png")) == "cannot open: No such file or directory");
    REQUIRE(error_of(source_path("data/test-images")) == "is a directory, not a file");
}

TEST_CASE("an RGBA PSD has Photoshop's white matte removed, raw, RLE and 16-bit alike") {
    // tests/fuzz/corpus/image/rgba-*.psd: 3x2, pixel 0 (200, 10, 60) opaque, pixel 1 black at alpha
    // 128, stored matted over white as 127 = round(128/255 * 0 + (1 - 128/255) * 255).
    for (const char* name : {"rgba-rle.psd", "rgba16-raw.psd"}) {
        INFO(name);
        const Image image =
            decode_image(read_file(source_path(std::string("tests/fuzz/corpus/image/") + name), 1 << 20, ""));
        REQUIRE(image.width == 3);
        REQUIRE(image.height == 2);
        REQUIRE(image.channels == 4);
        std::vector<float> values;
        for (int64_t i = 0; i < 8; ++i) values.push_back(image.value(i));
        require_values(values, {200, 10, 60, 255, 0, 0, 0, 128}, 0.01);
    }
}

TEST_CASE("damaged images are refused, not decoded into made-up pixels") {
    // Each would decode "successfully" with stb_image 2.27 alone (tests/bad_inputs/ has one of each
    // defect; docs/robustness.md explains them).
    const std::string bad = "tests/bad_inputs/images/";
    REQUIRE(error_of(source_path(bad + "truncated.bmp")) ==
            "truncated BMP: the file ends before the image data does (16x12 at 24 bits per pixel needs at least 576 "
            "bytes, the file has 530)");
    REQUIRE(error_of(source_path(bad + "truncated.tga")) ==
            "truncated TGA: the file ends before the image data does (16x12 at 3 byte(s) per pixel needs at least 594 "
            "bytes, the file has 258)");
    REQUIRE(error_of(source_path(bad + "bad-crc.png")) == "corrupt PNG (libpng: IDAT: incorrect data check)");
    REQUIRE(error_of(source_path(bad + "sample-above-maxval.pgm")) ==
            "corrupt PNM: sample 2 is 200, larger than the maxval 15");
    REQUIRE(error_of(source_path(bad + "component-in-no-scan.jpg")) ==
            "corrupt JPEG: component 3 is in no scan, so its pixels would be undefined");
    REQUIRE(error_of(source_path(bad + "decompression-bomb.png")) == "corrupt PNG (libpng: IDAT: Too much image data)");
}

TEST_CASE("PNM samples at maxval become exactly 255") {
    // 206 * (255 / 206) is 255.000015 in float; 206 * 255 / 206 is 255.
    const std::string ppm = std::string("P5 1 1 206\n") + static_cast<char>(206);
    REQUIRE(decode_image(ppm).value(0) == 255.0f);
}

TEST_CASE("an image whose declared size cannot fit in the file is refused before it is decoded") {
    // tests/bad_inputs/images/ (tools/make_size_bound_images.py bad): a few bytes declaring
    // 16000x16000 or 16384x16384; each answered from the header, in milliseconds.
    const std::string bad = "tests/bad_inputs/images/";
    auto starts = [](const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; };
    REQUIRE(error_of(source_path(bad + "jpeg-16000x16000-bomb.jpg")) ==
            "JPEG declares 16000x16000 pixels, which cannot be encoded in the 332 bytes of the file (at least 1000000 "
            "bytes: 4000000 blocks of 8x8 in 1 component(s), 2 bits each for their DC and end-of-block codes)");
    REQUIRE(starts(
        error_of(source_path(bad + "png-16384x16384-bomb.png")),
        "PNG declares 16384x16384 pixels, which cannot be encoded in the 99 bytes of the file (at least 260128"));
    REQUIRE(
        starts(error_of(source_path(bad + "gif-16000x16000-bomb.gif")),
               "GIF declares 16000x16000 pixels, which cannot be encoded in the 48 bytes of the file (at least 82054"));
    REQUIRE(starts(error_of(source_path(bad + "tga-rle-16000x16000-bomb.tga")),
                   "TGA declares 16000x16000 pixels, which cannot be encoded in the 52 bytes"));
    REQUIRE(starts(error_of(source_path(bad + "psd-rle-16000x16000-bomb.psd")),
                   "PSD declares 16000x16000 pixels, which cannot be encoded in the 88 bytes"));
    REQUIRE(starts(error_of(source_path(bad + "bmp-16000x16000-bomb.bmp")),
                   "truncated BMP: the file ends before the image data does (16000x16000 at 24 bits per pixel"));
}

TEST_CASE("a JPEG whose scan data end early, a GIF without its trailer, a PNG without IEND are truncated") {
    const std::string bad = "tests/bad_inputs/images/";
    const std::string scan_ends_early =
        "truncated JPEG: the data of a scan end before its last block, libjpeg would fill in the rest (libjpeg: "
        "Corrupt JPEG data: premature end of data segment)";
    REQUIRE(error_of(source_path(bad + "truncated-scan-with-eoi.jpg")) == scan_ends_early);
    REQUIRE(error_of(source_path(bad + "truncated-progressive-with-eoi.jpg")) == scan_ends_early);
    REQUIRE(error_of(source_path(bad + "no-eoi.jpg")) ==
            "truncated JPEG: the file ends before its end-of-image marker (EOI)");
    REQUIRE(error_of(source_path(bad + "no-trailer.gif")) ==
            "truncated GIF: the file ends at byte 1085 without the trailer (0x3B) that ends a GIF");
    REQUIRE(error_of(source_path(bad + "no-iend.png")) ==
            "truncated PNG: the file ends at byte 59 without an IEND chunk");
    // Every prefix of a whole JPEG (baseline and progressive) is refused, none decoded with made-up pixels.
    for (const char* name : {"rgb.jpg", "tests/fuzz/corpus/image/progressive.jpg"}) {
        const std::string path = std::string(name).find('/') == std::string::npos
                                     ? source_path(std::string("data/test-images/") + name)
                                     : source_path(name);
        const std::string whole = read_file(path, 1 << 20, "");
        REQUIRE_NOTHROW(decode_image(whole));
        for (size_t n = 1; n < whole.size(); ++n) {
            INFO(name << " cut to " << n << " bytes");
            REQUIRE_THROWS_AS(decode_image(whole.substr(0, n)), Error);
            // ... and, baseline, with an EOI appended, as a repair tool leaves it (a progressive JPEG cut
            // exactly between two scans, with an EOI appended, is a valid file of fewer scans).
            if (name == std::string("rgb.jpg") && n > 2 && n < whole.size() - 2)
                REQUIRE_THROWS_AS(decode_image(whole.substr(0, n) + "\xff\xd9"), Error);
        }
    }
}

TEST_CASE("the smallest valid encodings of large flat images are accepted (the bounds refuse no real file)") {
    // A JPEG of one flat 8x8 block repeated, Huffman tables with a single 1-bit DC code and a single
    // 1-bit end-of-block code: exactly 2 bits per block, the bound. 2048x2048 = 65536 blocks = 16 KiB.
    // Built here by patching a 16x16 baseline JPEG: tools/make_size_bound_images.py extreme (run by
    // tests/image_bounds_test.py) covers the other formats with Pillow's encoders.
    std::string jpeg;
    auto put16 = [&](int v) { jpeg += static_cast<char>(v >> 8), jpeg += static_cast<char>(v & 255); };
    jpeg += "\xff\xd8";
    jpeg += "\xff\xdb", put16(67), jpeg += '\0', jpeg += std::string(64, '\1');  // DQT 0, all 1
    jpeg += "\xff\xc0", put16(11), jpeg += '\x08', put16(2048), put16(2048), jpeg += "\x01\x01\x11";
    jpeg += '\0';                                                              // 1 component
    const std::string one_code = std::string("\x01") + std::string(15, '\0');  // one 1-bit code
    jpeg += "\xff\xc4", put16(2 + 17 + 1 + 17 + 1);
    jpeg += '\x00' + one_code + '\x00';  // DC table 0: category 0 (difference 0)
    jpeg += '\x10' + one_code + '\x00';  // AC table 0: end of block
    jpeg += "\xff\xda", put16(8), jpeg += std::string("\x01\x01\x00\x00\x3f\x00", 6);
    jpeg += std::string(65536 * 2 / 8, '\0');  // code "0" (DC 0), code "0" (EOB), per block
    jpeg += "\xff\xd9";
    const Image image = decode_image(jpeg);
    REQUIRE(image.width == 2048);
    REQUIRE(image.height == 2048);
    // One byte less of scan data: the bound refuses nothing valid, and the walk finds it short.
    std::string short_one = jpeg;
    short_one.erase(short_one.size() - 3, 1);
    REQUIRE_THROWS_AS(decode_image(short_one), Error);
}

namespace {

std::string gif_fixture(const std::string& name) {
    return read_file(source_path("data/test-images/gif/" + name), 1 << 20, "");
}

std::string decode_error(const std::string& bytes) {
    try {
        decode_image(bytes);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

// A GIF split around its first image's LZW data: the bytes before them (up to the code size), the
// data of the sub-blocks joined, and the rest (from the block terminator on).
struct GifParts {
    std::string head, lzw, tail;

    explicit GifParts(const std::string& gif) {
        auto u8 = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(gif[i])); };
        size_t at = 13 + (u8(10) & 0x80 ? size_t{3} << ((u8(10) & 7) + 1) : 0);
        while (gif[at] == '\x21') {  // extensions: label, sub-blocks
            at += 2;
            while (gif[at] != 0) at += 1 + u8(at);
            ++at;
        }
        REQUIRE(gif[at] == '\x2c');
        at += 10 + (u8(at + 9) & 0x80 ? size_t{3} << ((u8(at + 9) & 7) + 1) : 0) + 1;  // to the sub-blocks
        head = gif.substr(0, at);
        for (; gif[at] != 0; at += 1 + u8(at)) lzw += gif.substr(at + 1, u8(at));
        tail = gif.substr(at);
    }
    // The file with only the first `keep` bytes of LZW data, in sub-blocks of at most 255 bytes.
    std::string with_lzw(size_t keep) const {
        std::string out = head;
        for (size_t i = 0; i < keep; i += 255) {
            const std::string block = lzw.substr(i, std::min<size_t>(255, keep - i));
            out += static_cast<char>(block.size()) + block;
        }
        return out + tail;
    }
};

}  // namespace

TEST_CASE("a GIF's first frame decodes to the pixels stb_image 2.27 gave") {
    // data/test-images/gif/ (tools/make_gif_test_images.py): each NAME.gif with NAME.rgba, its RGBA
    // pixels by stb's rules (background red and blue swapped as stb swapped them), checked there
    // against Pillow's decoding, and equal to stb 2.27's output.
    struct Case {
        const char* name;
        int64_t width, height;
    };
    for (const Case& c : {Case{"plain", 40, 30},
                          {"interlaced", 13, 21},
                          {"local-table", 9, 7},
                          {"transparent", 8, 8},
                          {"offset-background", 12, 10},
                          {"offset-no-background", 12, 10},
                          {"offset-interlaced", 7, 9},
                          {"min-code-size-2", 64, 64},
                          {"min-code-size-8", 70, 70},
                          {"min-code-size-12", 90, 90},
                          {"one-pixel", 1, 1},
                          {"short-table", 6, 2},
                          {"extra-codes", 5, 5},
                          {"animated", 10, 6},
                          {"pillow-plain", 33, 17},
                          {"pillow-interlaced", 33, 17}}) {
        INFO(c.name);
        const std::string expected = gif_fixture(std::string(c.name) + ".rgba");
        const Image image = decode_image(gif_fixture(std::string(c.name) + ".gif"));
        REQUIRE(image.width == c.width);
        REQUIRE(image.height == c.height);
        REQUIRE(image.channels == 4);
        REQUIRE(image.bits == 8);
        REQUIRE(std::string(image.samples.begin(), image.samples.end()) == expected);
        // Streamed into the model input (decode_to_input): the same pixels, as R, G, B planes.
        const Tensor t = load("gif/" + std::string(c.name) + ".gif", identity_spec(3, c.height, c.width));
        std::vector<float> planes;
        for (int channel = 0; channel < 3; ++channel)
            for (size_t p = 0; p < expected.size() / 4; ++p)
                planes.push_back(static_cast<unsigned char>(expected[4 * p + static_cast<size_t>(channel)]));
        require_values(t.data, planes, 0);
    }
}

TEST_CASE("damaged GIFs are refused, and LZW data ending early is never filled in") {
    REQUIRE(decode_error(gif_fixture("bad-end-code-early.gif")) ==
            "truncated GIF: the LZW data of the first image end after 30 of 48 pixels");
    REQUIRE(error_of(source_path("tests/bad_inputs/images/gif-lzw-ends-early.gif")) ==
            "truncated GIF: the LZW data of the first image end after 102 of 256 pixels");
    REQUIRE(decode_error(gif_fixture("bad-no-clear-code.gif")) ==
            "corrupt GIF: the LZW data of the first image do not start with a clear code");
    REQUIRE(decode_error(gif_fixture("bad-invalid-code.gif")) ==
            "corrupt GIF: invalid LZW code 7 in the first image (the table has 6 entries)");
    REQUIRE(decode_error(gif_fixture("bad-code-size-13.gif")) ==
            "corrupt GIF: the first image's LZW minimum code size is 13, beyond 12");
    REQUIRE(decode_error(gif_fixture("bad-image-outside-screen.gif")) ==
            "corrupt GIF: the first image, 4x4 at (1, 0), does not fit on the 4x4 screen");
    REQUIRE(decode_error(gif_fixture("bad-no-colour-table.gif")) ==
            "corrupt GIF: the first image has no colour table (neither its own nor a global one)");
    REQUIRE(decode_error(std::string("GIF89a\x01\x00\x01\x00", 10)) == "corrupt or truncated GIF header");
    REQUIRE(decode_error(std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00\x3b", 14)) ==
            "GIF without an image: the trailer (0x3B) at byte 13 comes before any image");

    // The LZW data cut at every byte, the file otherwise whole (block terminator, trailer): refused,
    // unless every pixel's code is still there (only the end code lost).
    for (const char* name : {"plain.gif", "interlaced.gif", "min-code-size-12.gif", "pillow-interlaced.gif"}) {
        const std::string whole = gif_fixture(name);
        const Image image = decode_image(whole);
        const GifParts parts(whole);
        REQUIRE(parts.with_lzw(parts.lzw.size()) == whole);
        const size_t data_bytes = parts.lzw.size();
        size_t refused = 0;
        for (size_t keep = 0; keep < data_bytes; ++keep) {
            INFO(name << " with " << keep << " of " << data_bytes << " bytes of LZW data");
            const std::string cut = parts.with_lzw(keep);
            const std::string error = decode_error(cut);
            if (error == "(no error)") {
                REQUIRE(decode_image(cut).samples == image.samples);
            } else {
                REQUIRE(error.rfind("truncated GIF: the LZW data of the first image end after ", 0) == 0);
                ++refused;
            }
        }
        REQUIRE(refused + 2 >= data_bytes);  // at most the last two bytes hold no pixel's code
        // Every prefix of the file is refused too.
        for (size_t n = 1; n < whole.size(); ++n) {
            INFO(name << " cut to " << n << " bytes");
            REQUIRE_THROWS_AS(decode_image(whole.substr(0, n)), Error);
        }
    }
}

TEST_CASE("a byte source hands out its bytes in order, peeked, read, skipped, and refuses more than max_bytes") {
    const std::string text = "0123456789";
    for (const size_t chunk : {size_t{1}, size_t{3}, SIZE_MAX}) {
        INFO("chunk " << chunk);
        ByteSource source(text, 10, chunk);
        REQUIRE(source.peek(4) == "0123");
        REQUIRE(source.position() == 0);
        char two[2] = {};
        REQUIRE(source.read(two, 2) == 2);
        REQUIRE(std::string(two, 2) == "01");
        REQUIRE(source.skip(3) == 3);
        REQUIRE(source.position() == 5);
        REQUIRE(source.reaches(10));
        REQUIRE(!source.reaches(11));
        REQUIRE(source.peek(100) == "56789");
        REQUIRE(source.next(2) == "56");
        REQUIRE(source.next() == "789");  // what is held, even beyond a chunk
        REQUIRE(source.skip(100) == 0);
        REQUIRE(source.next().empty());
        REQUIRE(source.size_so_far() == 10);
    }
    // max_bytes exactly: 10 bytes are read with a limit of 10 (and the end found), refused with 9 at the tenth.
    ByteSource nine(text, 9);
    char buffer[16] = {};
    REQUIRE(nine.read(buffer, 9) == 9);
    try {
        nine.read(buffer, 1);
        FAIL("no error");
    } catch (const Error& e) {
        REQUIRE(e.message() == "read more than ImageLimits::max_bytes = 9 bytes without reaching the end of the image");
    }
    ByteSource ten(text, 10);
    REQUIRE(ten.read(buffer, 16) == 10);
    REQUIRE(ten.next().empty());
}

TEST_CASE("a file source reads through every refill path, up to max_bytes exactly") {
    const std::string path = source_path("data/test-images/rgb.png");
    const std::string bytes = read_file(path, 1 << 20, "");
    const auto n = static_cast<int64_t>(bytes.size());
    for (const size_t chunk : {size_t{1}, size_t{7}, size_t{1} << 16}) {
        INFO("chunk " << chunk);
        const int fd = ::open(path.c_str(), O_RDONLY);
        REQUIRE(fd >= 0);
        {
            ByteSource source(fd, n, chunk);
            REQUIRE(source.peek(8) == bytes.substr(0, 8));
            REQUIRE(source.reaches(n));  // reads ahead to the end, holding it
            REQUIRE(!source.reaches(n + 1));
            std::string all(bytes.size() + 1, '\0');
            REQUIRE(source.read(all.data(), all.size()) == bytes.size());
            all.resize(bytes.size());
            REQUIRE(all == bytes);
        }
        ::lseek(fd, 0, SEEK_SET);
        {
            ByteSource one_short(fd, n - 1, chunk);
            std::string all(bytes.size(), '\0');
            REQUIRE_THROWS_AS(one_short.read(all.data(), all.size()), Error);
        }
        ::close(fd);
    }
    REQUIRE(error_of(source_path("data/test-images/missing.png")) == "cannot open: No such file or directory");
}

TEST_CASE("every decoder gives the same pixels from a file, from memory and from a source read a byte at a time") {
    std::vector<std::string> paths;
    for (const char* name : {"animated.gif",
                             "gray-maxval15.pgm",
                             "gray.jpg",
                             "gray.png",
                             "gray.tga",
                             "gray16.pgm",
                             "gray16.png",
                             "gray_alpha.png",
                             "interlaced.gif",
                             "interlaced.png",
                             "mono1.bmp",
                             "offset-background.gif",
                             "offset-interlaced.gif",
                             "palette.png",
                             "palette2bit.png",
                             "palette8.bmp",
                             "plain.gif",
                             "progressive.jpg",
                             "rgb.bmp",
                             "rgb.jpg",
                             "rgb.png",
                             "rgb.ppm",
                             "rgb.psd",
                             "rgb.tga",
                             "rgb16.ppm",
                             "rgba-rle.psd",
                             "rgba.png",
                             "rgba16-raw.psd",
                             "rgba32.bmp",
                             "rle.tga",
                             "subsampled.jpg"})
        paths.push_back(source_path(std::string("tests/fuzz/corpus/image/") + name));
    const InputSpec spec = identity_spec(3, 5, 7);
    for (const std::string& path : paths) {
        INFO(path);
        const Image from_file = read_image(path);
        const std::string bytes = read_file(path, 1 << 20, "");
        const Image from_memory = decode_image(bytes);
        REQUIRE(from_file.width > 0);
        REQUIRE(from_memory.width == from_file.width);
        REQUIRE(from_memory.height == from_file.height);
        REQUIRE(from_memory.channels == from_file.channels);
        REQUIRE(from_memory.samples == from_file.samples);
        const Tensor input = decode_to_input(bytes, spec);
        REQUIRE(load_image(path, spec).data == input.data);
        for (const size_t chunk : {size_t{1}, size_t{5}}) {
            ByteSource memory(bytes, int64_t{1} << 20, chunk);
            REQUIRE(decode_image(memory, {}).samples == from_file.samples);
            const int fd = ::open(path.c_str(), O_RDONLY);
            REQUIRE(fd >= 0);
            ByteSource file(fd, int64_t{1} << 20, chunk);
            const Tensor streamed = decode_to_input(file, spec, {});
            ::close(fd);
            REQUIRE(streamed.data == input.data);
        }
        // max_bytes at the file's size exactly reads it (the boundary is tested on the source above).
        ImageLimits exact;
        exact.max_bytes = static_cast<int64_t>(bytes.size());
        REQUIRE(decode_image(bytes, exact).samples == from_file.samples);
    }
}
