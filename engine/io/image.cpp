#include "image.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <stb_image.h>

#include "../error.h"
#include "byte_order.h"
#include "crc32.h"
#include "file.h"
#include "gif.h"
#include "jpeg.h"
#include "png.h"

namespace gapnet {
namespace {

// The formats gapnet reads (docs/model-format.md), told apart by their signatures so that messages
// can name them. TGA has no signature: stb_image recognizes it by plausible header fields, last.
enum class Format { png, jpeg, bmp, gif, psd, pnm, tga, other };

Format detect_format(const std::string& b) {
    auto starts = [&](const char* magic, size_t n) { return b.size() >= n && b.compare(0, n, magic, n) == 0; };
    if (starts("\x89PNG\r\n\x1a\n", 8)) return Format::png;
    if (!b.empty() && b[0] == '\xff' && b.find_first_not_of('\xff') != std::string::npos &&
        b[b.find_first_not_of('\xff')] == '\xd8')
        return Format::jpeg;  // SOI, after any number of fill bytes as stb allows
    if (starts("BM", 2)) return Format::bmp;
    if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::gif;
    if (starts("8BPS", 4)) return Format::psd;
    if (starts("P5", 2) || starts("P6", 2)) return Format::pnm;
    return Format::other;
}

const char* format_name(Format f) {
    switch (f) {
        case Format::png: return "PNG";
        case Format::jpeg: return "JPEG";
        case Format::bmp: return "BMP";
        case Format::gif: return "GIF";
        case Format::psd: return "PSD";
        case Format::pnm: return "PNM";
        case Format::tga: return "TGA";
        default: return "image";
    }
}

constexpr const char* kSupported = "gapnet reads PNG, JPEG, BMP, GIF, TGA, PSD and binary PGM/PPM";

// `text` with every byte outside printable ASCII written as \xNN: messages quote bytes of the file
// (a PNG chunk type; stb's reason for an unknown chunk is built from its type), and an error must
// stay one printable line.
std::string printable(const std::string& text) {
    std::string out;
    for (const unsigned char c : text) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, c >= 0x20 && c < 0x7F ? "%c" : "\\x%02x", c);
        out += escaped;
    }
    return out;
}

// stb's reason for its last failure, or "" when the call since `before` set none (stb 2.27 fails
// silently on some paths, e.g. in its zlib decoder, leaving an earlier, unrelated reason in place).
std::string reason_since(const char* before) {
    const char* now = stbi_failure_reason();
    return now && now != before ? printable(now) : "";
}

// Formats stb_image would decode but gapnet does not offer (undocumented and untested here, and
// more decoder code exposed to hostile files), refused before stb sees them; or nullptr.
const char* refused_format(const std::string& b) {
    auto at = [&](size_t offset, const char* magic, size_t n) {
        return b.size() >= offset + n && b.compare(offset, n, magic, n) == 0;
    };
    if (at(0, "#?RADIANCE\n", 11) || at(0, "#?RGBE\n", 7)) return "Radiance HDR";
    if (at(0, "\x53\x80\xf6\x34", 4) && at(88, "PICT", 4)) return "Softimage PIC";
    return nullptr;
}

// Common formats stb_image cannot read, recognized by their signatures so that the message says
// what the file is rather than "unknown image type"; or nullptr.
const char* unreadable_format(const std::string& b) {
    auto at = [&](size_t offset, const char* magic, size_t n) {
        return b.size() >= offset + n && b.compare(offset, n, magic, n) == 0;
    };
    if (at(0, "P1", 2) || at(0, "P2", 2) || at(0, "P3", 2) || at(0, "P4", 2))
        return "Plain (ASCII) and 1-bit PNM (P1 to P4)";
    if (at(0, "P7", 2)) return "PAM (P7)";
    if (at(0, "II*\0", 4) || at(0, "MM\0*", 4)) return "TIFF";
    if (at(0, "RIFF", 4) && at(8, "WEBP", 4)) return "WebP";
    if (at(4, "ftyp", 4)) return "HEIF, AVIF and other ISO media";
    if (at(0, "\0\0\1\0", 4)) return "ICO";
    if (at(0, "%PDF", 4)) return "PDF";
    return nullptr;
}

// stb_image 2.27 reads binary PNM (P5 gray, P6 RGB) but copies 16-bit samples without swapping them
// from big-endian (the netpbm byte order), never scales by maxval, ignores a short read (leaving the
// missing pixels uninitialized), and parses header numbers into an int without an overflow check.
// This header reader tokenizes exactly as stb does (so both agree where the samples start), but
// refuses what stb would misread, so that decode_image() can correct the rest.
struct PnmHeader {
    int64_t width = 0, height = 0, maxval = 255;
    size_t data_offset = 0;
};

PnmHeader read_pnm_header(const std::string& bytes) {
    size_t i = 2;  // after "P5" or "P6"
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
    const char* names[3] = {"width", "height", "maxval"};
    int64_t fields[3] = {0, 0, 0};
    for (int f = 0; f < 3; ++f) {
        // Whitespace and comments ('#' to the end of the line, as stb: '\n' or '\r') before each number.
        const size_t before = i;
        while (i < bytes.size() && (space(bytes[i]) || bytes[i] == '#')) {
            if (bytes[i] == '#')
                while (i < bytes.size() && bytes[i] != '\n' && bytes[i] != '\r') ++i;
            else
                ++i;
        }
        if (i == before || i >= bytes.size() || bytes[i] < '0' || bytes[i] > '9')
            throw Error(std::string("not a valid PNM header: expected whitespace, then the ") + names[f]);
        int digits = 0;
        for (; i < bytes.size() && bytes[i] >= '0' && bytes[i] <= '9'; ++i) {
            if (++digits > 9)  // past 999,999,999 stb's int would overflow
                throw Error(std::string("not a valid PNM header: the ") + names[f] + " has more than 9 digits");
            fields[f] = fields[f] * 10 + (bytes[i] - '0');
        }
    }
    if (fields[2] < 1 || fields[2] > 65535)
        throw Error("PNM maxval " + std::to_string(fields[2]) + " is not 1 to 65535");
    // Exactly one whitespace character separates the header from the samples.
    if (i >= bytes.size() || !space(bytes[i])) throw Error("not a valid PNM header: no whitespace after the maxval");
    return PnmHeader{fields[0], fields[1], fields[2], i + 1};
}

// A PNG's chunks walked before libpng decodes it: every chunk must lie inside the file and carry a
// valid type, every critical chunk (IHDR, PLTE, IDAT, IEND) a matching CRC-32 (libpng checks these
// too, but its messages do not say where), the declared size must fit in the file's bytes, and the
// file must end with IEND. Ancillary chunks' CRCs are not checked, as libpng only warns about them:
// their content cannot change the pixels. Leaves what it cannot judge (bad IHDR fields) to libpng.
void check_png(const std::string& b, const ImageLimits& limits) {
    size_t at = 8;
    int64_t width = 0, height = 0, depth = 0, color = 0, interlace = 0;
    bool have_header = false, have_data = false, have_end = false;
    while (at < b.size()) {
        if (b.size() - at < 12)
            throw Error("truncated PNG: the file ends inside a chunk header at byte " + std::to_string(at));
        const uint32_t length = big_endian32(b, at);
        const std::string type = b.substr(at + 4, 4), name = printable(type);  // a damaged type may hold any bytes
        if (length > 0x7FFFFFFFu || b.size() - at - 12 < length)
            throw Error("truncated PNG: the " + name + " chunk at byte " + std::to_string(at) + " declares " +
                        std::to_string(length) + " bytes, but the file ends " + std::to_string(b.size() - at - 12) +
                        " bytes later");
        // Chunk types are four ASCII letters; an uppercase first letter marks a chunk a decoder must
        // understand (stb's own message for an unknown one quotes the raw bytes, possibly cut short).
        if (!std::all_of(type.begin(), type.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
            throw Error("corrupt PNG: invalid chunk type '" + name + "' at byte " + std::to_string(at));
        const bool critical = type[0] >= 'A' && type[0] <= 'Z';
        if (critical && type != "IHDR" && type != "PLTE" && type != "IDAT" && type != "IEND" && type != "CgBI")
            throw Error("PNG with the unknown critical chunk '" + type + "' at byte " + std::to_string(at) +
                        " (gapnet reads standard PNG)");
        if (critical && crc32(b.data() + at + 4, 4 + size_t{length}) != big_endian32(b, at + 8 + length))
            throw Error("corrupt PNG: CRC mismatch in the " + name + " chunk at byte " + std::to_string(at));
        if (type == "CgBI")  // Apple's variant for iOS app bundles: raw deflate, BGRA premultiplied
            throw Error(
                "Apple's CgBI PNG variant is not supported (pngcrush -revert-iphone-optimizations converts it)");
        if (type == "IHDR" && length == 13 && !have_header) {
            have_header = true;
            width = big_endian32(b, at + 8), height = big_endian32(b, at + 12);
            depth = static_cast<unsigned char>(b[at + 16]), color = static_cast<unsigned char>(b[at + 17]);
            interlace = static_cast<unsigned char>(b[at + 20]);
        }
        have_data = have_data || type == "IDAT";
        at += 12 + size_t{length};
        if (type == "IEND") {
            have_end = true;
            break;
        }
    }
    if (have_header) check_image_size(width, height, limits);
    // Leave files libpng will refuse anyway, for its own reason, to libpng.
    if (!have_header || !have_data || width < 1 || height < 1 || width > (1 << 24) || height > (1 << 24)) return;
    const int64_t samples = color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1;  // gray, palette: 1
    // The filtered scanlines: per row one filter byte and the packed samples (stb's img_len), for
    // each of Adam7's seven passes when interlaced.
    auto rows_bytes = [&](int64_t w, int64_t h) { return w && h ? ((samples * w * depth + 7) / 8 + 1) * h : 0; };
    int64_t needed = 0;
    if (interlace == 1) {
        const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
        const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
        for (int p = 0; p < 7; ++p)
            needed += rows_bytes((width - x0[p] + dx[p] - 1) / dx[p], (height - y0[p] + dy[p] - 1) / dy[p]);
    } else {
        needed = rows_bytes(width, height);
    }
    // Deflate codes a match of at most 258 bytes in at least 2 bits (a length code and a distance code
    // of at least 1 bit each; a literal yields 1 byte): at most 1032 bytes out per byte in.
    const int64_t least = (needed + 1031) / 1032;
    if (static_cast<int64_t>(b.size()) < least)
        refuse_declared_size("PNG", width, height, static_cast<int64_t>(b.size()), least,
                             std::to_string(needed) + " bytes of scanlines, deflated at most 1032:1");
    if (!have_end)
        throw Error("truncated PNG: the file ends at byte " + std::to_string(b.size()) + " without an IEND chunk");
}

// stb_image 2.27 removes Photoshop's white matte from a PSD with an alpha channel by computing, for
// each colour value c with alpha a (0 < a < 1), c / a + max * (1 - 1 / a), and converting that to an
// integer sample without a range check: for a colour darker than the matte allows the value is
// negative, undefined behaviour, garbage in practice. Such pixels are found here first, decoding the
// planes as stb does (raw, or PackBits per channel with stb's bounds), and the file is refused. The
// sections before the pixel data must lie inside the file (stb skips them by their declared
// lengths, wherever that leads).
void check_psd(const std::string& b) {
    auto u16 = [&](size_t i) {
        return size_t{static_cast<unsigned char>(b[i])} << 8 | static_cast<unsigned char>(b[i + 1]);
    };
    if (b.size() < 26) return;  // stb refuses it
    const size_t channels = u16(12), height = big_endian32(b, 14), width = big_endian32(b, 18), depth = u16(22);
    if (channels < 4 || channels > 16 || u16(24) != 3 || (depth != 8 && depth != 16)) return;  // no matte, or refused
    size_t at = 26;
    for (const char* section : {"colour mode data", "image resources", "layer and mask information"}) {
        if (b.size() - at < 4) throw Error("truncated PSD: the file ends before the pixel data");
        const size_t length = big_endian32(b, at);
        if (length > b.size() - at - 4)
            throw Error(std::string("truncated PSD: the ") + section + " section at byte " + std::to_string(at) +
                        " declares " + std::to_string(length) + " bytes, but the file ends " +
                        std::to_string(b.size() - at - 4) + " bytes later");
        at += 4 + length;
    }
    if (b.size() - at < 2 || u16(at) > 1) return;  // stb reports it
    const bool rle = u16(at) == 1;
    at += 2;
    const size_t pixels = width * height;  // within the image limits, checked before
    // RLE data are 8-bit whatever the depth (as stb reads them); raw 16-bit samples stay 16-bit.
    const size_t bytes_per_sample = rle ? 1 : depth / 8;
    const double max = bytes_per_sample == 2 ? 65535.0 : 255.0;
    // The start of each of the first four planes, and the alpha plane's values.
    std::vector<size_t> plane_start(4);
    std::vector<uint16_t> alpha(pixels);
    bool past_end = false;
    auto sample = [&](size_t i) -> size_t {
        if (i + bytes_per_sample > b.size()) return past_end = true, 0;  // as stb reads past the end
        return bytes_per_sample == 2 ? u16(i) : static_cast<unsigned char>(b[i]);
    };
    // Decodes `pixels` PackBits values from `i` as stbi__psd_decode_rle does, calling put(index, value);
    // returns where the plane ends, or npos for data stb would refuse.
    auto unpack = [&](size_t i, const auto& put) -> size_t {
        for (size_t count = 0; count < pixels;) {
            const size_t len = sample(i++);
            if (len == 128) continue;
            const size_t run = len < 128 ? len + 1 : 257 - len;
            if (run > pixels - count) return std::string::npos;
            for (size_t k = 0; k < run; ++k) put(count + k, sample(len < 128 ? i + k : i));
            i += len < 128 ? run : 1;
            count += run;
        }
        return i;
    };
    if (rle) {
        size_t i = at + height * channels * 2;  // after the per-row byte counts, which stb skips
        for (size_t c = 0; c < 4; ++c) {
            plane_start[c] = i;
            i = unpack(i, [&](size_t p, size_t v) {
                if (c == 3) alpha[p] = static_cast<uint16_t>(v);
            });
            if (i == std::string::npos) return;  // stb refuses it
        }
    } else {
        for (size_t c = 0; c < 4; ++c) plane_start[c] = at + c * pixels * bytes_per_sample;
        for (size_t p = 0; p < pixels; ++p)
            alpha[p] = static_cast<uint16_t>(sample(plane_start[3] + p * bytes_per_sample));
    }
    if (past_end) throw Error("truncated PSD: the file ends before the image data does");
    auto check = [&](size_t p, size_t value) {
        if (alpha[p] == 0 || alpha[p] == max) return;
        // stb's own float arithmetic; refused a little before -1, where the conversion becomes undefined.
        const float a = static_cast<float>(alpha[p] / max), ra = 1.0f / a;
        const float inv_a = static_cast<float>(max) * (1 - ra);
        if (static_cast<float>(value) * ra + inv_a < -0.5f)
            throw Error("corrupt PSD: pixel " + std::to_string(p) + " has colour value " + std::to_string(value) +
                        " with alpha " + std::to_string(alpha[p]) + ", darker than Photoshop's white matte allows");
    };
    for (size_t c = 0; c < 3; ++c) {
        if (rle)
            unpack(plane_start[c], check);
        else
            for (size_t p = 0; p < pixels; ++p) check(p, sample(plane_start[c] + p * bytes_per_sample));
    }
}

// The most pixels gapnet's GIF decoder (gif.cpp) can produce per byte of LZW data. After a clear code
// the k-th code outputs at most k pixels (each new string extends an older one by one pixel), its
// width grows with the table as the decoder grows it (stb_image 2.27's rules, which gif.cpp follows),
// and a table past 8192 entries is refused; the best ratio over every prefix of such a run, for every
// minimum code size accepted (0 to 12), bounds every stream, which is a sequence of such runs (3119
// pixels per byte, at the minimum code size 0, which stb accepted though GIF requires 2 or more).
double gif_max_pixels_per_byte() {
    double best = 0;
    for (int64_t m = 0; m <= 12; ++m) {
        int64_t avail = (int64_t{1} << m) + 2, codesize = m + 1, codemask = (int64_t{1} << codesize) - 1;
        double bits = 0, pixels = 0;
        for (int64_t k = 1;; ++k) {
            bits += static_cast<double>(codesize), pixels += static_cast<double>(k);
            best = std::max(best, pixels * 8 / bits);
            if (k > 1 && ++avail > 8192) break;  // the code that adds entry 8193 is refused
            if ((avail & codemask) == 0 && avail <= 0x0FFF) codesize++, codemask = (int64_t{1} << codesize) - 1;
        }
    }
    return best;
}

// A GIF's blocks up to its trailer (0x3B): the first image (the one gapnet decodes) must fit in the
// file's bytes at the LZW decoder's best ratio, and the file must end with the trailer (the decoder
// stops after the first image, so a file cut anywhere later would decode "successfully").
void check_gif(const std::string& b) {
    auto u8 = [&](size_t i) { return static_cast<int64_t>(static_cast<unsigned char>(b[i])); };
    auto le16 = [&](size_t i) { return u8(i) | u8(i + 1) << 8; };
    if (b.size() < 13) return;  // the decoder refuses it
    size_t at = 13 + (u8(10) & 0x80 ? size_t{3} << ((u8(10) & 7) + 1) : 0);
    bool first = true;
    while (true) {
        if (at >= b.size())
            throw Error(first ? std::string("truncated GIF: the file ends before the image data does")
                              : "truncated GIF: the file ends at byte " + std::to_string(b.size()) +
                                    " without the trailer (0x3B) that ends a GIF");
        const int64_t block = u8(at);
        if (block == 0x3B) return;
        if (block != 0x21 && block != 0x2C) {
            if (first) return;  // the decoder refuses it
            char hex[8];
            std::snprintf(hex, sizeof hex, "%02X", static_cast<unsigned>(block));
            throw Error("corrupt GIF: byte " + std::to_string(at) + " is 0x" + hex +
                        ", where a block or the trailer (0x3B) should be");
        }
        size_t data = at + 2;  // an extension's sub-blocks, after its label
        if (block == 0x2C) {
            if (b.size() - at < 11) throw Error("truncated GIF: the file ends before the image data does");
            const int64_t w = le16(at + 5), h = le16(at + 7), flags = u8(at + 9);
            if (first) {
                const double least = std::ceil(static_cast<double>(w * h) / gif_max_pixels_per_byte());
                if (static_cast<double>(b.size()) < least)
                    refuse_declared_size(
                        "GIF", le16(6), le16(8), static_cast<int64_t>(b.size()), static_cast<int64_t>(least),
                        "its first image of " + std::to_string(w) + "x" + std::to_string(h) +
                            " pixels, at the LZW decoder's most of " +
                            std::to_string(static_cast<int64_t>(gif_max_pixels_per_byte())) + " pixels per byte");
            }
            data = at + 10 + (flags & 0x80 ? size_t{3} << ((flags & 7) + 1) : 0) + 1;  // + the LZW code size
        }
        // Sub-blocks: a length byte, that many bytes, until a length 0.
        while (data < b.size() && b[data] != 0) data += 1 + static_cast<size_t>(u8(data));
        if (data >= b.size()) {
            at = b.size();
            continue;
        }
        if (block == 0x2C) first = false;
        at = data + 1;
    }
}

// The least bytes a BMP, TGA or PSD of the size stbi_info read can be stored in (see refuse_size):
//  - BMP (stb reads no RLE): every row's packed samples, ceil(width * bits / 8), padding aside;
//  - TGA: 18 header bytes, then raw pixels of ceil(bits / 8) bytes each; with RLE a packet holds at
//    most 128 pixels in one count byte and one pixel value;
//  - PSD: stb reads the first min(channels, 4) planes: raw, width * height samples each; with RLE
//    (PackBits) two bytes per row and channel of byte counts, then at most 128 samples per 2 bytes.
void check_stored_size(const std::string& b, Format format, int64_t w, int64_t h) {
    auto u8 = [&](size_t i) { return i < b.size() ? static_cast<int64_t>(static_cast<unsigned char>(b[i])) : 0; };
    auto le16 = [&](size_t i) { return u8(i) | u8(i + 1) << 8; };
    auto be16 = [&](size_t i) { return u8(i) << 8 | u8(i + 1); };
    const int64_t pixels = w * h, size = static_cast<int64_t>(b.size());
    // Uncompressed data cut short: the message stb's read callbacks would give, with the sizes.
    auto truncated = [&](const char* format, const std::string& layout, int64_t least) {
        throw Error(std::string("truncated ") + format + ": the file ends before the image data does (" +
                    std::to_string(w) + "x" + std::to_string(h) + " at " + layout + " needs at least " +
                    std::to_string(least) + " bytes, the file has " + std::to_string(size) + ")");
    };
    if (format == Format::bmp) {
        const int64_t header = le16(14) | le16(16) << 16, bits = header == 12 ? le16(24) : le16(28);
        const int64_t least = (w * bits + 7) / 8 * h;
        if (size < least) truncated("BMP", std::to_string(bits) + " bits per pixel", least);
    } else if (format == Format::tga) {
        const bool rle = u8(2) >= 8;
        const int64_t bytes = (u8(16) + 7) / 8;  // 15 bits: 2 bytes
        const int64_t least = 18 + (rle ? (pixels + 127) / 128 * (1 + bytes) : pixels * bytes);
        if (size < least && !rle) truncated("TGA", std::to_string(bytes) + " byte(s) per pixel", least);
        if (size < least)
            refuse_declared_size("TGA", w, h, size, least,
                                 std::to_string(bytes) + " byte(s) per pixel, at most 128 pixels per RLE packet");
    } else if (format == Format::psd) {
        const int64_t channels = be16(12), planes = std::min<int64_t>(channels, 4), depth = be16(22);
        size_t at = 26;
        for (int k = 0; k < 3 && at + 4 <= b.size(); ++k) at += 4 + static_cast<size_t>(big_endian32(b, at));
        if (at + 2 > b.size()) return;  // stb refuses it
        const bool rle = be16(at) == 1;
        const int64_t least =
            rle ? 2 * h * channels + planes * (pixels + 127) / 128 * 2 : planes * pixels * (depth / 8);
        if (size < least && !rle)
            truncated("PSD", std::to_string(planes) + " planes of " + std::to_string(depth) + "-bit samples", least);
        if (size < least)
            refuse_declared_size("PSD", w, h, size, least,
                                 std::to_string(planes) + " PackBits planes, at most 128 samples per 2 bytes");
    }
}

// The file as stb_image's read callbacks, noticing when the decoder wants bytes past the end. From
// memory, stb 2.27 turns a short read into zeros (BMP, TGA, PSD: get8 returns 0) or leaves the
// pixels unread (getn fails, ignored by the TGA loader): a truncated file decodes "successfully" with
// made-up or uninitialized pixels. Through callbacks the short read is seen here. stb reads in two
// ways: refilling its own 128-byte buffer (the first read's destination; a short refill is normal,
// an empty one means the decoder needs more) and getn() straight into the image (any short read).
// Skipping past the end is not counted: it produces no pixels, and some BMP writers omit the last
// row's padding.
struct StbReader {
    const std::string& bytes;
    size_t position = 0;
    const char* refill_buffer = nullptr;
    bool past_end = false;

    static int read(void* user, char* data, int size) {
        auto& r = *static_cast<StbReader*>(user);
        if (!r.refill_buffer) r.refill_buffer = data;
        const size_t wanted = size > 0 ? static_cast<size_t>(size) : 0;
        const size_t n = std::min(wanted, r.bytes.size() - r.position);
        std::memcpy(data, r.bytes.data() + r.position, n);
        r.position += n;
        if (data == r.refill_buffer ? n == 0 && wanted > 0 : n < wanted) r.past_end = true;
        return static_cast<int>(n);
    }
    static void skip(void* user, int n) {
        auto& r = *static_cast<StbReader*>(user);
        r.position = n < 0 ? r.position - std::min(r.position, static_cast<size_t>(-int64_t{n}))
                           : std::min(r.bytes.size(), r.position + static_cast<size_t>(n));
    }
    static int eof(void* user) {
        const auto& r = *static_cast<StbReader*>(user);
        return r.position >= r.bytes.size();
    }
    static constexpr stbi_io_callbacks callbacks = {read, skip, eof};
};

// The width and height a header declares, for a message when stb_image refuses the header
// (stb then only says "unknown image type"); nullopt when the header is too short to tell.
std::optional<std::pair<int64_t, int64_t>> declared_size(const std::string& b, Format format) {
    auto u8 = [&](size_t i) { return static_cast<int64_t>(static_cast<unsigned char>(b[i])); };
    auto le16 = [&](size_t i) { return u8(i) | u8(i + 1) << 8; };
    auto be16 = [&](size_t i) { return u8(i) << 8 | u8(i + 1); };
    auto le32 = [&](size_t i) { return static_cast<int64_t>(static_cast<int32_t>(le16(i) | le16(i + 2) << 16)); };
    switch (format) {
        case Format::png:
            if (b.size() >= 24) return std::pair{int64_t{big_endian32(b, 16)}, int64_t{big_endian32(b, 20)}};
            break;
        case Format::bmp:  // BITMAPINFOHEADER and later: int32 width and height (negative: top-down)
            if (b.size() >= 26 && le32(14) >= 40) return std::pair{std::abs(le32(18)), std::abs(le32(22))};
            break;
        case Format::psd:
            if (b.size() >= 22) return std::pair{be16(18) << 16 | be16(20), be16(14) << 16 | be16(16)};
            break;
        default: break;
    }
    return std::nullopt;
}

}  // namespace

void check_image_size(int64_t w, int64_t h, const ImageLimits& limits) {
    const std::string size = "image is " + std::to_string(w) + "x" + std::to_string(h);
    if (w < 1 || h < 1) throw Error(size + ": it has no pixels");
    if (w > limits.max_side || h > limits.max_side)
        throw Error(size + ", a side beyond ImageLimits::max_side = " + std::to_string(limits.max_side));
    if (w * h > limits.max_pixels)
        throw Error(size + " = " + std::to_string(w * h) +
                    " pixels, beyond ImageLimits::max_pixels = " + std::to_string(limits.max_pixels));
}

// A header can declare any size, and stb_image allocates the whole image before it reads the data
// (filling what is missing with zeros), so a 683-byte JPEG declaring 16000x16000 took 24 s and
// 4 GB. Each format's bound counts only what every valid encoding must spend, so no valid file is
// refused (docs/robustness.md derives each one; tests/test_image.cpp decodes the smallest encodings).
void refuse_declared_size(const char* format, int64_t width, int64_t height, int64_t file_bytes, int64_t least,
                          const std::string& why) {
    throw Error(std::string(format) + " declares " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, which cannot be encoded in the " + std::to_string(file_bytes) +
                " bytes of the file (at least " + std::to_string(least) + " bytes: " + why + ")");
}

namespace {

// Samples as stb_image returned them, in its buffer.
struct StbPixels {
    PixelFormat format;
    std::unique_ptr<void, void (*)(void*)> samples{nullptr, stbi_image_free};
};

// The checks that need the whole file, then the first of its formats' requirements the bytes fail.
void refuse_unsupported(const std::string& bytes) {
    if (bytes.empty()) throw Error("empty file, not an image");
    if (bytes.size() > static_cast<size_t>(INT_MAX)) throw Error("file too large for the image decoder");
    if (const char* refused = refused_format(bytes))
        throw Error(std::string(refused) + " images are not supported (" + kSupported + ")");
}

// Any format but JPEG, decoded by stb_image after the checks above.
StbPixels decode_with_stb(const std::string& bytes, const ImageLimits& limits) {
    Format format = detect_format(bytes);
    std::optional<PnmHeader> pnm;
    // Before stbi_info: stb parses the PNM header there.
    if (format == Format::pnm) pnm = read_pnm_header(bytes);
    const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    const int size = static_cast<int>(bytes.size());
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(data, size, &w, &h, &c)) {
        // stbi_info's reason is always "unknown image type": say more from the signature and header.
        if (const char* unreadable = unreadable_format(bytes))
            throw Error(std::string(unreadable) + " images are not supported (" + kSupported + ")");
        if (format == Format::other) throw Error("not an image gapnet can read (unknown image type)");
        if (const auto declared = pnm ? std::pair{pnm->width, pnm->height} : declared_size(bytes, format))
            check_image_size(declared->first, declared->second, limits);  // stb refuses 0 pixels, and PNGs over 1 GiB
        throw Error(std::string("corrupt or truncated ") + format_name(format) + " header");
    }
    if (format == Format::other) format = Format::tga;  // stb recognized it, and TGA is the only format left
    check_image_size(w, h, limits);
    check_stored_size(bytes, format, w, h);
    if (format == Format::psd) check_psd(bytes);

    const bool sixteen_bit = stbi_is_16_bit_from_memory(data, size);
    const int64_t sample_bytes = sixteen_bit ? 2 : 1;
    if (pnm &&
        static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(pnm->data_offset) < int64_t{w} * h * c * sample_bytes)
        throw Error("truncated PNM: " + std::to_string(w) + "x" + std::to_string(h) + " needs " +
                    std::to_string(int64_t{w} * h * c * sample_bytes) + " bytes of samples");

    const int expected_w = w, expected_h = h;
    StbReader reader{bytes};
    const char* reason_before = stbi_failure_reason();
    const stbi_io_callbacks* io = &StbReader::callbacks;
    StbPixels pixels;
    pixels.samples.reset(sixteen_bit ? static_cast<void*>(stbi_load_16_from_callbacks(io, &reader, &w, &h, &c, 0))
                                     : static_cast<void*>(stbi_load_from_callbacks(io, &reader, &w, &h, &c, 0)));
    if (reader.past_end)
        throw Error(std::string("truncated ") + format_name(format) + ": the file ends before the image data does");
    if (!pixels.samples) {
        const std::string reason = reason_since(reason_before);
        throw Error(std::string("corrupt or truncated ") + format_name(format) +
                    (reason.empty() ? "" : " (decoder: " + reason + ")"));
    }
    // The limits were checked on the header stbi_info read; the decoder must have read the same one.
    if (w != expected_w || h != expected_h || c < 1 || c > 4)
        throw Error("inconsistent image header: " + std::to_string(expected_w) + "x" + std::to_string(expected_h) +
                    ", decoded as " + std::to_string(w) + "x" + std::to_string(h) + "x" + std::to_string(c));
    pixels.format = {w, h, c, sixteen_bit ? 16 : 8, sixteen_bit ? 65535 : 255};
    if (pnm) {  // samples run 0..maxval, 16-bit ones big-endian in the file (stb left the bytes as they were)
        pixels.format.max_value = static_cast<int>(pnm->maxval);
        const int64_t count = int64_t{w} * h * c;
        for (int64_t i = 0; i < count; ++i) {
            int64_t v = 0;
            if (sixteen_bit) {
                auto* b = static_cast<unsigned char*>(pixels.samples.get()) + 2 * i;
                const auto value = static_cast<uint16_t>(b[0] << 8 | b[1]);
                std::memcpy(b, &value, 2);
                v = value;
            } else {
                v = static_cast<const unsigned char*>(pixels.samples.get())[i];
            }
            if (v > pnm->maxval)  // netpbm forbids it; scaled, it would leave 0..255
                throw Error("corrupt PNM: sample " + std::to_string(i) + " is " + std::to_string(v) +
                            ", larger than the maxval " + std::to_string(pnm->maxval));
        }
    }
    return pixels;
}

// The JPEG bytes start at the last fill byte 0xFF before SOI (stb allowed any number; libjpeg wants
// SOI first).
std::string_view jpeg_from_soi(const std::string& bytes) {
    return std::string_view(bytes).substr(bytes.find_first_not_of('\xff') - 1);
}

// A row-by-row decoder for a JPEG, PNG or GIF, after the checks of its format; nullptr for the formats
// stb_image decodes whole.
std::unique_ptr<RowDecoder> row_decoder(const std::string& bytes, const ImageLimits& limits) {
    const Format format = detect_format(bytes);
    if (format == Format::jpeg) return std::make_unique<JpegDecoder>(jpeg_from_soi(bytes), limits);
    if (format == Format::gif) {
        auto gif = std::make_unique<GifDecoder>(bytes, limits);  // the header and the size limits first
        check_gif(bytes);
        return gif;
    }
    if (format != Format::png) return nullptr;
    check_png(bytes, limits);
    return std::make_unique<PngDecoder>(bytes, limits);
}

}  // namespace

float Image::value(int64_t i) const {
    const float v = bits == 8 ? static_cast<float>(samples[static_cast<size_t>(i)])
                              : static_cast<float>(reinterpret_cast<const uint16_t*>(samples.data())[i]);
    return sample_value(v, max_value);
}

Image decode_image(const std::string& bytes, const ImageLimits& limits) {
    refuse_unsupported(bytes);
    Image image;
    if (const std::unique_ptr<RowDecoder> decoder = row_decoder(bytes, limits)) {
        const PixelFormat format = decoder->start({});
        image.width = format.width, image.height = format.height, image.channels = format.channels;
        image.bits = format.bits, image.max_value = format.max_value;
        const auto row_bytes = static_cast<size_t>(format.width * format.channels * format.bits / 8);
        image.samples.resize(row_bytes * static_cast<size_t>(format.height));
        for (int64_t y = 0; y < format.height; ++y)
            std::memcpy(image.samples.data() + static_cast<size_t>(y) * row_bytes, decoder->read_row(), row_bytes);
        decoder->finish();
        return image;
    }
    const StbPixels pixels = decode_with_stb(bytes, limits);
    const PixelFormat& f = pixels.format;
    image.width = f.width, image.height = f.height, image.channels = f.channels;
    image.bits = f.bits, image.max_value = f.max_value;
    const auto* p = static_cast<const uint8_t*>(pixels.samples.get());
    image.samples.assign(p, p + f.width * f.height * f.channels * (f.bits / 8));
    return image;
}

Tensor preprocess(const Image& image, const InputSpec& spec) {
    return preprocess_pixels(image.samples.data(), image.format(), spec);
}

Tensor decode_to_input(const std::string& bytes, const InputSpec& spec, const ImageLimits& limits) {
    refuse_unsupported(bytes);
    if (spec.color == ColorMode::none)
        throw Error("the model's input is a tensor, not an image (input.color is \"none\")");
    const std::unique_ptr<RowDecoder> decoder = row_decoder(bytes, limits);
    if (!decoder) {
        const StbPixels pixels = decode_with_stb(bytes, limits);
        return preprocess_pixels(pixels.samples.get(), pixels.format, spec);
    }
    // A JPEG much larger than needed is decoded shrunk (jpeg.h); the size needed is what it is scaled to.
    const auto [scaled_width, scaled_height] = scaled_size(spec, decoder->width(), decoder->height());
    const PixelFormat format = decoder->start(
        {jpeg_shrink_for(decoder->width(), decoder->height(), scaled_width, scaled_height), spec.channels == 1, false});
    Preprocessor preprocessor(spec, format);
    for (int64_t y = 0; y < format.height; ++y) {
        const void* row = decoder->read_row();
        if (preprocessor.wants_row(y)) preprocessor.add_row(y, row);
    }
    decoder->finish();
    return preprocessor.finish();
}

void read_image_file(const std::string& path, const ImageLimits& limits, std::string& bytes) {
    // A compressed image is rarely larger than its raw pixels; bound the file by that plus headroom.
    const int64_t max_bytes = limits.max_pixels * 8 + (int64_t{1} << 20);
    read_file(path, max_bytes,
              "(the bound for an image of at most " + std::to_string(limits.max_pixels) +
                  " pixels; raise it with --max-image-pixels N)",
              bytes);
}

Image read_image(const std::string& path, const ImageLimits& limits) {
    std::string bytes;
    read_image_file(path, limits, bytes);
    return decode_image(bytes, limits);
}

Tensor load_image(const std::string& path, const InputSpec& spec, const ImageLimits& limits) {
    // One buffer per thread, kept between images: reading a file into fresh memory costs a page fault
    // per 4 KiB, as much time as decoding a 12-megapixel JPEG at 1/8 of its size.
    thread_local std::string bytes;
    read_image_file(path, limits, bytes);
    return decode_to_input(bytes, spec, limits);
}

}  // namespace gapnet
