#include "jpeg.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>
// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "../error.h"

namespace gapnet {
namespace {

// Every component of the frame must be in some scan (for a progressive JPEG, in a first DC scan):
// libjpeg reads a component no scan covers from a coefficient buffer nothing wrote. Markers are
// walked by their lengths, entropy-coded data skipped (0xFF 0x00 is a stuffed byte, 0xFF 0xD0-D7 a
// restart marker), until EOI; what the walk cannot follow is left to libjpeg to refuse.
void check_every_component_scanned(std::string_view b) {
    auto byte = [&](size_t i) -> size_t { return i < b.size() ? static_cast<unsigned char>(b[i]) : 0; };
    struct Component {
        size_t id;
        bool scanned = false;
    };
    std::vector<Component> components;
    bool frame = false, progressive = false;
    for (size_t i = b.find('\xd8') + 1; i < b.size();) {
        if (byte(i) != 0xFF) {  // entropy-coded data: on to the next 0xFF
            const void* next = std::memchr(b.data() + i, 0xFF, b.size() - i);
            if (!next) return;
            i = static_cast<size_t>(static_cast<const char*>(next) - b.data());
        }
        while (i < b.size() && byte(i) == 0xFF) ++i;  // fill bytes
        if (i >= b.size()) return;
        const size_t marker = byte(i++);
        if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no segment
        if (marker == 0xD9) break;                                                             // EOI
        if (i + 2 > b.size()) return;
        const size_t length = byte(i) << 8 | byte(i + 1), at = i + 2;
        if (length < 2) return;
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC && !frame) {
            frame = true, progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE;
            for (size_t k = 0, n = byte(at + 5); k < n && at + 8 + 3 * k < i + length; ++k)
                components.push_back({byte(at + 6 + 3 * k)});
        } else if (marker == 0xDA) {  // SOS: its components, then Ss, Se, Ah << 4 | Al
            const size_t n = byte(at), ss = byte(at + 1 + 2 * n), ah = byte(at + 3 + 2 * n) >> 4;
            for (size_t k = 0; k < n; ++k)
                for (Component& c : components)
                    if (c.id == byte(at + 1 + 2 * k) && (!progressive || (ss == 0 && ah == 0))) c.scanned = true;
        }
        i += length;
    }
    for (const Component& c : components)
        if (!c.scanned)
            throw Error("corrupt JPEG: component " + std::to_string(c.id) +
                        " is in no scan, so its pixels would be undefined");
}

}  // namespace

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to the
// setjmp() of the JpegDecoder method that called into libjpeg, which throws. No C++ object with a
// destructor lives in the libjpeg frames the jump crosses.
struct JpegDecoder::State {
    jpeg_decompress_struct info{};
    struct Errors {
        jpeg_error_mgr manager;
        std::jmp_buf jump;
        int code = 0;
        char message[JMSG_LENGTH_MAX] = {};
    } errors{};
    bool created = false;
    bool cmyk = false;  // rows converted from CMYK to RGB
    std::vector<uint8_t> row, rgb_row;

    static void error_exit(j_common_ptr info) {
        auto* errors = reinterpret_cast<Errors*>(info->err);
        errors->code = errors->manager.msg_code;
        (*errors->manager.format_message)(info, errors->message);
        std::longjmp(errors->jump, 1);
    }
    // Warnings that mean libjpeg made up pixels end decoding as errors; the rest (extraneous bytes
    // between markers, an unknown JFIF revision or Adobe transform, a bad ICC profile) are harmless.
    static void emit_message(j_common_ptr info, int level) {
        const int code = info->err->msg_code;
        if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
                          code == JWRN_MUST_RESYNC || code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION))
            error_exit(info);
    }

    [[noreturn]] void fail() const {
        const std::string libjpeg = std::string(" (libjpeg: ") + errors.message + ")";
        if (errors.code == JWRN_JPEG_EOF)
            throw Error("truncated JPEG: the file ends before its end-of-image marker (EOI)");
        if (errors.code == JWRN_HIT_MARKER)
            throw Error("truncated JPEG: the data of a scan end before its last block, libjpeg would fill in the rest" +
                        libjpeg);
        throw Error("corrupt JPEG" + libjpeg);
    }
    ~State() {
        if (created) jpeg_destroy_decompress(&info);
    }
};

JpegDecoder::JpegDecoder(std::string_view bytes, const ImageLimits& limits) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.info.err = jpeg_std_error(&s.errors.manager);
    s.errors.manager.error_exit = State::error_exit;
    s.errors.manager.emit_message = State::emit_message;
    if (setjmp(s.errors.jump)) s.fail();
    jpeg_create_decompress(&s.info);
    s.created = true;
    jpeg_mem_src(&s.info, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&s.info, TRUE);

    check_image_size(s.info.image_width, s.info.image_height, limits);
    if (s.info.arith_code)
        throw Error(
            "arithmetic-coded JPEG images are not supported (its compression has no lower bound to check the "
            "declared size against)");
    // Every block of every component costs at least one Huffman code for its DC difference (codes
    // are at least 1 bit) and, in a sequential JPEG, one for its AC coefficients (at least an
    // end-of-block code): 2 bits per block and component. A progressive JPEG needs only its first DC
    // scan (later scans may be absent, and an end-of-band run covers up to 32767 blocks with one
    // code): 1 bit per block and component. Without this, a 683-byte file declaring 16000x16000
    // took 24 s and 4 GB to decode into made-up pixels.
    int64_t blocks = 0;
    for (int c = 0; c < s.info.num_components; ++c)
        blocks += int64_t{s.info.comp_info[c].width_in_blocks} * s.info.comp_info[c].height_in_blocks;
    const bool progressive = s.info.progressive_mode;
    const int64_t least = (blocks * (progressive ? 1 : 2) + 7) / 8;
    if (static_cast<int64_t>(bytes.size()) < least)
        refuse_declared_size("JPEG", s.info.image_width, s.info.image_height, static_cast<int64_t>(bytes.size()), least,
                             std::to_string(blocks) + " blocks of 8x8 in " + std::to_string(s.info.num_components) +
                                 " component(s), " +
                                 (progressive ? "1 bit each in a progressive JPEG's first DC scan"
                                              : "2 bits each for their DC and end-of-block codes"));
    check_every_component_scanned(bytes);
}

JpegDecoder::~JpegDecoder() = default;

int64_t JpegDecoder::width() const { return state_->info.image_width; }
int64_t JpegDecoder::height() const { return state_->info.image_height; }

PixelFormat JpegDecoder::start(const RowRequest& request) {
    State& s = *state_;
    if (setjmp(s.errors.jump)) s.fail();
    s.info.scale_num = 1, s.info.scale_denom = static_cast<unsigned>(request.shrink);
    s.cmyk = s.info.jpeg_color_space == JCS_CMYK || s.info.jpeg_color_space == JCS_YCCK;
    const bool gray = request.gray || s.info.jpeg_color_space == JCS_GRAYSCALE;
    s.info.out_color_space = s.cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&s.info);
    s.row.resize(static_cast<size_t>(s.info.output_width) * static_cast<size_t>(s.info.output_components));
    if (s.cmyk) s.rgb_row.resize(static_cast<size_t>(s.info.output_width) * 3);
    return {s.info.output_width, s.info.output_height, s.cmyk ? 3 : s.info.output_components, 8, 255};
}

const void* JpegDecoder::read_row() {
    State& s = *state_;
    if (setjmp(s.errors.jump)) s.fail();
    JSAMPROW rows[1] = {s.row.data()};
    jpeg_read_scanlines(&s.info, rows, 1);
    if (!s.cmyk) return s.row.data();
    // Photoshop writes CMYK inverted (255 = no ink) and marks it with an Adobe segment; others do
    // not invert. Red = (1 - C)(1 - K) in ink fractions, likewise green (M) and blue (Y).
    for (size_t x = 0; x < s.rgb_row.size() / 3; ++x) {
        const uint8_t* p = s.row.data() + 4 * x;
        const int k = s.info.saw_Adobe_marker ? p[3] : 255 - p[3];
        for (int c = 0; c < 3; ++c) {
            const int ink_free = s.info.saw_Adobe_marker ? p[c] : 255 - p[c];
            s.rgb_row[3 * x + static_cast<size_t>(c)] = static_cast<uint8_t>((ink_free * k + 127) / 255);
        }
    }
    return s.rgb_row.data();
}

void JpegDecoder::finish() {
    State& s = *state_;
    if (setjmp(s.errors.jump)) s.fail();
    jpeg_finish_decompress(&s.info);
}

int jpeg_shrink_for(int64_t width, int64_t height, int64_t need_width, int64_t need_height) {
    const int64_t fits = std::min(width / std::max<int64_t>(need_width, 1), height / std::max<int64_t>(need_height, 1));
    return fits >= 8 ? 8 : fits >= 4 ? 4 : fits >= 2 ? 2 : 1;
}

}  // namespace gapnet
