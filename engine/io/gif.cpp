#include "gif.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../error.h"
#include "byte_source.h"

namespace gapnet {
namespace {

// stb_image 2.27's LZW table (stbi__process_gif_raster): codes of up to 12 bits, 13 at the minimum
// code size 12, and the code that would add entry 8193 refused. The size bound
// (gif_max_pixels_per_byte) assumes exactly this growth.
constexpr int kTableSize = 8192;

// The most pixels the decoder below can produce per byte of LZW data (3119): the best ratio over every
// prefix of a run from a clear code, where the k-th code outputs at most k pixels, for every minimum
// code size accepted (docs/robustness.md derives it).
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

[[noreturn]] void file_ends_early() { throw Error("truncated GIF: the file ends before the image data does"); }

// Refuses the byte `tag` at `at`, where a block should start.
[[noreturn]] void not_a_block(int64_t at, int tag) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%02X", static_cast<unsigned>(tag));
    throw Error("corrupt GIF: byte " + std::to_string(at) + " is 0x" + hex +
                ", where a block or the trailer (0x3B) should be");
}

}  // namespace

struct GifDecoder::State {
    ByteSource* source = nullptr;
    int64_t screen_width = 0, screen_height = 0;
    int64_t left = 0, top = 0, width = 0, height = 0;  // the first image's rectangle on the screen
    bool interlaced = false;
    uint8_t colour[256][4] = {};  // each index's RGBA as written: 0,0,0,0 for a transparent one
    uint8_t background[4] = {};   // the screen outside the image

    // The LZW decoder, as stbi__process_gif_raster keeps it.
    struct Entry {
        int16_t prefix;   // the string without its last index; -1 for a root code
        uint8_t first;    // the string's first index
        uint8_t suffix;   // its last
        uint16_t length;  // its indices
    };
    std::vector<Entry> table = std::vector<Entry>(kTableSize);
    int min_code_size = 0, clear = 0;  // the clear code is 1 << min_code_size, the end code one more
    int code_size = 0, avail = 0;      // the current code width; the next table entry
    int old_code = -1;                 // the previous code, -1 after a clear code
    uint32_t code_mask = 0, bits = 0;  // bits: read, not yet used (valid_bits of them)
    int valid_bits = 0;
    size_t block_left = 0;     // bytes left in the current data sub-block
    bool before_clear = true;  // stb's `first`: the data must start with a clear code
    bool data_ended = false;   // the end code or the block terminator was read
    std::vector<uint8_t> string = std::vector<uint8_t>(kTableSize);  // the last code's indices
    size_t string_at = 0, string_end = 0;                            // [string_at, string_end): not taken yet
    int64_t pixels_taken = 0;

    std::vector<uint8_t> row;    // RGBA, the screen's width
    std::vector<uint8_t> frame;  // interlaced only: the image's indices, row by row
    int64_t next_row = 0;

    // Reads as stb does: a byte past the end refuses the file (through gapnet's callbacks, a read past
    // the end made stb's result "truncated"); a skip past the end does not, the next read does.
    uint8_t get8() {
        uint8_t byte = 0;
        if (source->read(&byte, 1) == 0) file_ends_early();
        return byte;
    }
    int64_t get16() {
        const int64_t low = get8();
        return low | int64_t{get8()} << 8;
    }
    void skip(size_t n) { source->skip(n); }
    // The sub-blocks of an extension or of image data: a length byte, that many bytes, until a length 0.
    void skip_sub_blocks() {
        for (size_t n = get8(); n != 0; n = get8()) skip(n);
    }

    // stbi__gif_parse_colortable: n entries of R, G, B; alpha 255, 0 for the index `transparent`.
    void read_table(uint8_t (*table_rgba)[4], int n, int transparent) {
        for (int i = 0; i < n; ++i) {
            for (int c = 0; c < 3; ++c) table_rgba[i][c] = get8();
            table_rgba[i][3] = i == transparent ? 0 : 255;
        }
    }

    void reset_table() {
        code_size = min_code_size + 1;
        code_mask = (1u << code_size) - 1;
        avail = clear + 2;
        old_code = -1;
    }

    // The next code, or -1 at the block terminator (a sub-block of length 0).
    int read_code() {
        while (valid_bits < code_size) {
            if (block_left == 0) {
                block_left = get8();
                if (block_left == 0) return -1;
            }
            --block_left;
            bits |= uint32_t{get8()} << valid_bits;
            valid_bits += 8;
        }
        const int code = static_cast<int>(bits & code_mask);
        bits >>= code_size;
        valid_bits -= code_size;
        return code;
    }

    [[noreturn]] void invalid_code(int code) const {
        throw Error("corrupt GIF: invalid LZW code " + std::to_string(code) + " in the first image (the table has " +
                    std::to_string(avail) + " entries)");
    }

    // Decodes codes up to the next one that stands for indices, into `string` when `keep`; false when
    // the data end there (end code or block terminator). Follows stb's rules, its checks included.
    bool decode_code(bool keep) {
        for (;;) {
            const int code = read_code();
            if (code < 0) {
                data_ended = true;
                return false;
            }
            if (code == clear) {
                reset_table();
                before_clear = false;
                continue;
            }
            if (code == clear + 1) {  // end code: stb skips the rest of the data sub-blocks
                skip(block_left);
                skip_sub_blocks();
                data_ended = true;
                return false;
            }
            if (code > avail) invalid_code(code);
            if (before_clear)
                throw Error("corrupt GIF: the LZW data of the first image do not start with a clear code");
            if (old_code >= 0) {
                if (avail == kTableSize)
                    throw Error("corrupt GIF: the LZW table of the first image grows past " +
                                std::to_string(kTableSize) + " entries without a clear code");
                Entry& added = table[static_cast<size_t>(avail++)];
                const Entry& previous = table[static_cast<size_t>(old_code)];
                added.prefix = static_cast<int16_t>(old_code);
                added.first = previous.first;
                added.length = static_cast<uint16_t>(previous.length + 1);
                added.suffix = table[static_cast<size_t>(code)].first;  // its own first when code is the new entry
            } else if (code == avail) {
                invalid_code(code);
            }
            if (keep) {
                // The string is written back to front, following the prefixes (each older than its entry).
                const Entry* e = &table[static_cast<size_t>(code)];
                string_end = e->length;
                for (size_t i = string_end; i-- > 0; e = &table[static_cast<size_t>(std::max<int16_t>(e->prefix, 0))])
                    string[i] = e->suffix;
                string_at = 0;
            }
            if ((avail & code_mask) == 0 && avail <= 0x0FFF) {
                ++code_size;
                code_mask = (1u << code_size) - 1;
            }
            old_code = code;
            return true;
        }
    }

    // The next n indices of the image, each given to put(index).
    template <typename Put>
    void take(int64_t n, Put&& put) {
        while (n > 0) {
            if (string_at == string_end && !decode_code(true))
                throw Error("truncated GIF: the LZW data of the first image end after " + std::to_string(pixels_taken) +
                            " of " + std::to_string(width * height) + " pixels");
            const size_t count = std::min(static_cast<size_t>(n), string_end - string_at);
            for (size_t i = 0; i < count; ++i) put(string[string_at + i]);
            string_at += count, n -= static_cast<int64_t>(count), pixels_taken += static_cast<int64_t>(count);
        }
    }
};

GifDecoder::GifDecoder(ByteSource& source, const ImageLimits& limits) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.source = &source;
    const std::string_view header = source.peek(13);
    if (header.size() < 13 || (header.substr(0, 6) != "GIF87a" && header.substr(0, 6) != "GIF89a"))
        throw Error("corrupt or truncated GIF header");
    source.skip(6);
    s.screen_width = s.get16(), s.screen_height = s.get16();
    const int screen_flags = s.get8(), background_index = s.get8();
    s.get8();  // pixel aspect ratio
    check_image_size(s.screen_width, s.screen_height, limits);

    // stb's global table, which graphic control extensions change (their transparent index); the
    // entries beyond the file's table stay 0,0,0,0, as stb zeroes it.
    uint8_t global[256][4] = {};
    if (screen_flags & 0x80) s.read_table(global, 2 << (screen_flags & 7), -1);
    int extension_flags = 0, transparent = -1;
    for (;;) {  // the blocks before the first image, as stbi__gif_load_next reads them
        const int64_t block_at = source.position();
        const int tag = s.get8();
        if (tag == 0x2C) break;
        if (tag == 0x3B)
            throw Error("GIF without an image: the trailer (0x3B) at byte " + std::to_string(block_at) +
                        " comes before any image");
        if (tag != 0x21) not_a_block(block_at, tag);
        if (s.get8() == 0xF9) {  // graphic control extension
            const size_t length = s.get8();
            if (length != 4) {  // stb skips that many bytes and reads the next block there
                s.skip(length);
                continue;
            }
            extension_flags = s.get8();
            s.get16();  // delay
            if (transparent >= 0) global[transparent][3] = 255;
            if (extension_flags & 1) {
                transparent = s.get8();
                global[transparent][3] = 0;
            } else {
                s.skip(1);
                transparent = -1;
            }
        }
        s.skip_sub_blocks();  // the (rest of the) sub-blocks
    }

    s.left = s.get16(), s.top = s.get16(), s.width = s.get16(), s.height = s.get16();
    const double least = std::ceil(static_cast<double>(s.width * s.height) / gif_max_pixels_per_byte());
    if (!source.reaches(static_cast<int64_t>(least)))
        refuse_declared_size("GIF", s.screen_width, s.screen_height, source.size_so_far(), static_cast<int64_t>(least),
                             "its first image of " + std::to_string(s.width) + "x" + std::to_string(s.height) +
                                 " pixels, at the LZW decoder's most of " +
                                 std::to_string(static_cast<int64_t>(gif_max_pixels_per_byte())) + " pixels per byte");
    if (s.left + s.width > s.screen_width || s.top + s.height > s.screen_height)
        throw Error("corrupt GIF: the first image, " + std::to_string(s.width) + "x" + std::to_string(s.height) +
                    " at (" + std::to_string(s.left) + ", " + std::to_string(s.top) + "), does not fit on the " +
                    std::to_string(s.screen_width) + "x" + std::to_string(s.screen_height) + " screen");
    const int image_flags = s.get8();
    s.interlaced = (image_flags & 0x40) != 0;
    uint8_t local[256][4] = {};
    const uint8_t(*table)[4] = global;
    if (image_flags & 0x80) {
        s.read_table(local, 2 << (image_flags & 7), extension_flags & 1 ? transparent : -1);
        table = local;
    } else if (!(screen_flags & 0x80)) {
        throw Error("corrupt GIF: the first image has no colour table (neither its own nor a global one)");
    }
    for (int i = 0; i < 256; ++i)
        if (table[i][3] > 128) std::memcpy(s.colour[i], table[i], 4);  // stb writes no pixel of alpha 0
    if (background_index > 0) {
        // stb copies the entry from its table, stored B, G, R, A, as it is: red and blue swapped. Opaque
        // even when the transparent index is the background's.
        const uint8_t* b = global[background_index];
        s.background[0] = b[2], s.background[1] = b[1], s.background[2] = b[0], s.background[3] = 255;
    }

    s.min_code_size = s.get8();
    if (s.min_code_size > 12)
        throw Error("corrupt GIF: the first image's LZW minimum code size is " + std::to_string(s.min_code_size) +
                    ", beyond 12");
    s.clear = 1 << s.min_code_size;
    for (int code = 0; code < s.clear; ++code)
        s.table[static_cast<size_t>(code)] = {-1, static_cast<uint8_t>(code), static_cast<uint8_t>(code), 1};
    s.reset_table();
}

GifDecoder::~GifDecoder() = default;

int64_t GifDecoder::width() const { return state_->screen_width; }
int64_t GifDecoder::height() const { return state_->screen_height; }

PixelFormat GifDecoder::start(const RowRequest&) {
    State& s = *state_;
    s.row.resize(static_cast<size_t>(s.screen_width) * 4);
    if (s.interlaced) {  // passes of every 8th row from 0, every 8th from 4, every 4th from 2, every 2nd from 1
        s.frame.resize(static_cast<size_t>(s.width * s.height));
        const int64_t first[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        for (int pass = 0; pass < 4; ++pass)
            for (int64_t y = first[pass]; y < s.height; y += step[pass]) {
                uint8_t* out = s.frame.data() + y * s.width;
                s.take(s.width, [&](uint8_t index) { *out++ = index; });
            }
    }
    return {s.screen_width, s.screen_height, 4, 8, 255};
}

const void* GifDecoder::read_row() {
    State& s = *state_;
    const int64_t y = s.next_row++;
    uint8_t* out = s.row.data();
    const bool in_image = y >= s.top && y < s.top + s.height;
    for (int64_t x = 0; x < s.screen_width; ++x)
        if (!in_image || x < s.left || x >= s.left + s.width) std::memcpy(out + 4 * x, s.background, 4);
    if (!in_image) return out;
    out += 4 * s.left;
    if (s.interlaced) {
        const uint8_t* index = s.frame.data() + (y - s.top) * s.width;
        for (int64_t x = 0; x < s.width; ++x) std::memcpy(out + 4 * x, s.colour[index[x]], 4);
    } else {
        s.take(s.width, [&](uint8_t index) {
            std::memcpy(out, s.colour[index], 4);
            out += 4;
        });
    }
    return s.row.data();
}

void GifDecoder::finish() {
    State& s = *state_;
    // The codes after the last pixel: stb decoded them too (refusing an invalid one) up to the end of the data.
    while (!s.data_ended && s.decode_code(false)) {
    }
    // The blocks after the first image, up to the trailer (0x3B): the decoder stops after the first
    // image, so a file cut anywhere later would otherwise decode "successfully".
    for (;;) {
        const int64_t block_at = s.source->position();
        uint8_t block = 0;
        if (s.source->read(&block, 1) == 0)
            throw Error("truncated GIF: the file ends at byte " + std::to_string(block_at) +
                        " without the trailer (0x3B) that ends a GIF");
        if (block == 0x3B) return;
        if (block == 0x2C) {  // an image: its descriptor, local colour table and LZW code size
            uint8_t descriptor[9] = {};
            s.source->read(descriptor, sizeof descriptor);
            s.skip(descriptor[8] & 0x80 ? size_t{3} << ((descriptor[8] & 7) + 1) : 0);
        } else if (block != 0x21) {
            not_a_block(block_at, block);
        }
        s.skip(1);  // an extension's label, or an image's LZW code size
        s.skip_sub_blocks();
    }
}

}  // namespace gapnet
