#include "stb_decoder.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>
#include <stb_image.h>

#include "../error.h"
#include "byte_order.h"
#include "byte_source.h"

namespace gapnet {

void clear_stb_failure_reason();  // stb_implementation.cpp

namespace {

// The formats stb_image reads for gapnet, told apart by their signatures so that messages can name
// them. TGA has no signature: stb_image recognizes it by plausible header fields, last.
enum class Format { bmp, psd, pnm, tga, other };

Format detect_format(std::string_view b) {
    auto starts = [&](std::string_view magic) { return b.substr(0, magic.size()) == magic; };
    if (starts("BM")) return Format::bmp;
    if (starts("8BPS")) return Format::psd;
    if (starts("P5") || starts("P6")) return Format::pnm;
    return Format::other;
}

const char* format_name(Format f) {
    static constexpr const char* names[] = {"BMP", "PSD", "PNM", "TGA", "image"};  // in Format's order
    return names[static_cast<int>(f)];
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

// stb_image 2.27 removes Photoshop's white matte from an RGBA PSD as c / a + max * (1 - 1 / a) for each
// colour value c with alpha a (0 < a < 1), converted to an integer without a range check: undefined
// for a colour darker than the matte allows. Such pixels are found here first, decoding the planes as
// stb does (raw, or PackBits per channel with stb's bounds), and the file is refused. The sections
// before the pixel data must lie inside the file (stb skips them by their declared lengths).
void check_psd(const std::string& b) {
    auto u16 = [&](size_t i) { return size_t{big_endian16(b, i)}; };
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

// stb_image 2.27 looks a paletted BMP's pixel indices up in a 256-entry palette on its stack of
// which only the file's entries are filled (psize: what fits between the header and the data
// offset), so an index past them gives uninitialized colours, different from run to run. Such a file
// is refused. Rows of 1, 4 or 8 bits per pixel start at the data offset, each padded to 4 bytes;
// bytes past the end of the file are left to the truncation checks. An offset before the end of the
// headers gives stb a negative psize, which it does not refuse: it reads no palette at all.
void check_bmp_palette(const std::string& b, int64_t w, int64_t h) {
    const int64_t info_size = little_endian32(b, 14);
    const int64_t bits = info_size == 12 ? little_endian16(b, 24) : little_endian16(b, 28);
    if (bits != 1 && bits != 4 && bits != 8) return;
    const int64_t offset = little_endian32(b, 10);
    // stb's psize, rounded as it rounds: it divides by 3 (toward zero) but shifts by 2 (toward -inf).
    const int64_t gap = offset - 14 - (info_size == 12 ? 24 : info_size);
    const int64_t colours = info_size == 12 ? gap / 3 : (gap >= 0 ? gap / 4 : -((-gap + 3) / 4));
    if (colours < 0)
        throw Error("corrupt BMP: the pixel data offset " + std::to_string(offset) +
                    " leaves no room for a palette after the headers");
    if (colours == 0 || colours >= (int64_t{1} << bits)) return;  // stb refuses it, or every index is in it
    const int64_t row_bytes = (w * bits + 31) / 32 * 4;
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
            const auto at = static_cast<size_t>(offset + y * row_bytes + x * bits / 8);
            if (at >= b.size()) return;
            const int64_t shift = 8 - bits - x * bits % 8;
            const int64_t index = static_cast<unsigned char>(b[at]) >> shift & ((1 << bits) - 1);
            if (index >= colours)
                throw Error("corrupt BMP: pixel " + std::to_string(x) + " of row " + std::to_string(y) +
                            " has colour index " + std::to_string(index) + ", but the palette has " +
                            std::to_string(colours) + (colours == 1 ? " colour" : " colours"));
        }
}

// The file as stb_image's read callbacks, noticing when the decoder wants bytes past the end (from
// memory stb 2.27 reads zeros there, or leaves pixels unread: docs/robustness.md). stb reads in two
// ways: refilling its own 128-byte buffer (the first read's destination; a short refill is normal, an
// empty one means the decoder needs more) and getn() straight into the image (any short read). A skip
// past the end is not counted: it produces no pixels, and some BMP writers omit the last row's padding.
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
    auto le32 = [&](size_t i) { return int64_t{static_cast<int32_t>(little_endian32(b, i))}; };
    // BMP: BITMAPINFOHEADER and later, int32 width and height (negative: top-down).
    if (format == Format::bmp && b.size() >= 26 && le32(14) >= 40)
        return std::pair{std::abs(le32(18)), std::abs(le32(22))};
    if (format == Format::psd && b.size() >= 22)
        return std::pair{int64_t{big_endian32(b, 18)}, int64_t{big_endian32(b, 14)}};
    return std::nullopt;
}

// The bytes the image of header `head` (format, size and PNM header read from it) at the start of
// `source` takes. `most`: what stb_image can read for it (it decodes from the header on, skipping what
// it does not use, and stops after the pixel data), the header's sections and the pixels at their least
// compact encoding. `least`: what the pixels need at their most compact (docs/robustness.md), stored as
// `layout` says; a shorter file is truncated, or when `compressed` of a size it cannot encode. A PNM
// checks its samples itself, and a PSD that ends in its sections is refused by check_psd.
struct StoredSize {
    int64_t least = 0, most = 0;
    std::string layout;
    bool compressed = false;
};

StoredSize stored_size(ByteSource& source, const std::string& head, Format format, const std::optional<PnmHeader>& pnm,
                       int64_t w, int64_t h, int64_t c) {
    const int64_t pixels = w * h;
    auto u8 = [&](size_t i) { return int64_t{byte_at(head, i)}; };
    auto le16 = [&](size_t i) { return int64_t{little_endian16(head, i)}; };
    switch (format) {
        case Format::bmp: {  // no RLE; after the data offset (or the largest header), rows padded to 4 bytes
            const int64_t info_size = le16(14) | le16(16) << 16, bits = info_size == 12 ? le16(24) : le16(28);
            const int64_t offset = le16(10) | le16(12) << 16;
            return {(w * bits + 7) / 8 * h,
                    std::max<int64_t>(offset, 14 + 124 + 12 + 4 * 256) + (w * bits + 31) / 32 * 4 * h,
                    std::to_string(bits) + " bits per pixel", false};
        }
        case Format::pnm:
            return {0, static_cast<int64_t>(pnm->data_offset) + pixels * c * (pnm->maxval > 255 ? 2 : 1), {}, false};
        case Format::psd: {  // three sections of a declared length, then the first min(channels, 4) planes
            size_t at = 26;
            for (int k = 0; k < 3; ++k) {
                const std::string_view b = source.peek(at + 4);
                if (b.size() < at + 4) return {0, static_cast<int64_t>(b.size()), {}, false};
                at += 4 + static_cast<size_t>(big_endian32(b, at));
            }
            const std::string_view b = source.peek(at + 2);
            if (b.size() < at + 2) return {0, static_cast<int64_t>(b.size()), {}, false};
            const int64_t channels = big_endian16(head, 12), planes = std::min<int64_t>(channels, 4);
            const int64_t depth = big_endian16(head, 22);
            // PackBits at its least compact: a literal run of 1 sample in 2 bytes, after the row counts.
            const int64_t most = static_cast<int64_t>(at) + 2 + channels * pixels * (depth / 8) * 2 + 2 * h * channels;
            if (big_endian16(b, at) == 1)  // PackBits: row counts, then at most 128 samples per 2 bytes
                return {2 * h * channels + planes * (pixels + 127) / 128 * 2, most,
                        std::to_string(planes) + " PackBits planes, at most 128 samples per 2 bytes", true};
            return {planes * pixels * (depth / 8), most,
                    std::to_string(planes) + " planes of " + std::to_string(depth) + "-bit samples", false};
        }
        default: {  // TGA: an ID, a colour map, pixels raw or each in a packet of its own (at most 128 in one)
            const int64_t pixel_bytes = (u8(16) + 7) / 8, rle = u8(2) >= 8;  // 15 bits: 2 bytes
            const int64_t most = 18 + u8(0) + le16(5) * ((u8(7) + 7) / 8) + pixels * (pixel_bytes + rle);
            const std::string layout = std::to_string(pixel_bytes) + " byte(s) per pixel";
            if (rle)
                return {18 + (pixels + 127) / 128 * (1 + pixel_bytes), most,
                        layout + ", at most 128 pixels per RLE packet", true};
            return {18 + pixels * pixel_bytes, most, layout, false};
        }
    }
}

// Samples as stb_image returned them, in its buffer.
struct StbPixels {
    PixelFormat format;
    std::unique_ptr<void, void (*)(void*)> samples{nullptr, stbi_image_free};
};

// The image at the start of `source`, read up to what stb_image can need for the size its header
// declares (stbi_info reads no more than the first 64 KiB, a PNM's comments included) and decoded by
// stb_image after the checks above.
StbPixels decode_with_stb(ByteSource& source, const ImageLimits& limits) {
    const std::string head(source.peek(size_t{1} << 16));
    Format format = detect_format(head);
    std::optional<PnmHeader> pnm;
    // Before stbi_info: stb parses the PNM header there.
    if (format == Format::pnm) pnm = read_pnm_header(head);
    int w = 0, h = 0, c = 0;
    const auto* header = reinterpret_cast<const stbi_uc*>(head.data());
    if (!stbi_info_from_memory(header, static_cast<int>(head.size()), &w, &h, &c)) {
        // stbi_info's reason is always "unknown image type": say more from the signature and header.
        if (const char* unreadable = unreadable_format(head))
            throw Error(std::string(unreadable) + " images are not supported (" + kSupportedFormats + ")");
        if (format == Format::other) throw Error("not an image gapnet can read (unknown image type)");
        if (const auto declared = pnm ? std::pair{pnm->width, pnm->height} : declared_size(head, format))
            check_image_size(declared->first, declared->second, limits);  // stb refuses 0 pixels
        throw Error(std::string("corrupt or truncated ") + format_name(format) + " header");
    }
    if (format == Format::other) format = Format::tga;  // stb recognized it, and TGA is the only format left
    check_image_size(w, h, limits);
    const StoredSize stored = stored_size(source, head, format, pnm, w, h, c);
    std::string bytes;
    while (static_cast<int64_t>(bytes.size()) < stored.most) {
        const std::string_view part = source.next(static_cast<size_t>(stored.most) - bytes.size());
        if (part.empty()) break;
        bytes.append(part);
    }
    if (bytes.size() > static_cast<size_t>(INT_MAX)) throw Error("file too large for the image decoder");
    const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    const int size = static_cast<int>(bytes.size());
    if (const auto file = static_cast<int64_t>(bytes.size()); file < stored.least) {
        if (stored.compressed) refuse_declared_size(format_name(format), w, h, file, stored.least, stored.layout);
        // Uncompressed data cut short: the message stb's read callbacks would give, with the sizes.
        throw Error(std::string("truncated ") + format_name(format) + ": the file ends before the image data does (" +
                    std::to_string(w) + "x" + std::to_string(h) + " at " + stored.layout + " needs at least " +
                    std::to_string(stored.least) + " bytes, the file has " + std::to_string(file) + ")");
    }
    if (format == Format::psd) check_psd(bytes);
    if (format == Format::bmp) check_bmp_palette(bytes, w, h);

    const bool sixteen_bit = stbi_is_16_bit_from_memory(data, size);
    const int64_t sample_bytes = sixteen_bit ? 2 : 1;
    if (pnm &&
        static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(pnm->data_offset) < int64_t{w} * h * c * sample_bytes)
        throw Error("truncated PNM: " + std::to_string(w) + "x" + std::to_string(h) + " needs " +
                    std::to_string(int64_t{w} * h * c * sample_bytes) + " bytes of samples");

    const int expected_w = w, expected_h = h;
    StbReader reader{bytes};
    clear_stb_failure_reason();
    const stbi_io_callbacks* io = &StbReader::callbacks;
    StbPixels pixels;
    pixels.samples.reset(sixteen_bit ? static_cast<void*>(stbi_load_16_from_callbacks(io, &reader, &w, &h, &c, 0))
                                     : static_cast<void*>(stbi_load_from_callbacks(io, &reader, &w, &h, &c, 0)));
    if (reader.past_end)
        throw Error(std::string("truncated ") + format_name(format) + ": the file ends before the image data does");
    if (!pixels.samples) {
        // stb's reasons for the formats it reads here are fixed ASCII text (only its PNG reader, compiled
        // out, quoted bytes of the file).
        const std::string reason = stbi_failure_reason() ? stbi_failure_reason() : "";
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

}  // namespace

StbDecoder::StbDecoder(ByteSource& source, const ImageLimits& limits) {
    StbPixels pixels = decode_with_stb(source, limits);
    format_ = pixels.format;
    samples_ = std::move(pixels.samples);
}

int64_t StbDecoder::width() const { return format_.width; }
int64_t StbDecoder::height() const { return format_.height; }
PixelFormat StbDecoder::start(const RowRequest&) { return format_; }

const void* StbDecoder::read_row() {
    const auto row_bytes = static_cast<size_t>(format_.width * format_.channels * format_.bits / 8);
    return static_cast<const uint8_t*>(samples_.get()) + static_cast<size_t>(next_row_++) * row_bytes;
}

}  // namespace gapnet
