#include "jpeg.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>
// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "../error.h"
#include "byte_source.h"

namespace gapnet {

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

    // libjpeg reads from `source` through `input`, a buffer at a time; an error of the source (a read
    // error, ImageLimits::max_bytes) is kept and rethrown once libjpeg has been left.
    ByteSource* source = nullptr;
    jpeg_source_mgr input{};
    unsigned char buffer[size_t{1} << 14] = {};
    std::exception_ptr source_error;

    static State& of(j_decompress_ptr info) { return *reinterpret_cast<State*>(info->client_data); }
    // At the end of the source, libjpeg's own convention (jpeg_mem_src): a warning, then an EOI.
    static boolean fill_input_buffer(j_decompress_ptr info) {
        State& s = of(info);
        size_t count = 0;
        try {
            const std::string_view bytes = s.source->next(sizeof s.buffer);
            std::memcpy(s.buffer, bytes.data(), count = bytes.size());
        } catch (const Error&) {
            s.source_error = std::current_exception();  // jumped from outside the handler
        }
        if (s.source_error) error_exit(reinterpret_cast<j_common_ptr>(info));
        if (count == 0) {
            WARNMS(info, JWRN_JPEG_EOF);
            s.buffer[0] = 0xFF, s.buffer[1] = JPEG_EOI, count = 2;
        }
        s.input.next_input_byte = s.buffer, s.input.bytes_in_buffer = count;
        return TRUE;
    }
    static void skip_input_data(j_decompress_ptr info, long n) {
        State& s = of(info);
        if (n <= 0) return;
        if (static_cast<size_t>(n) <= s.input.bytes_in_buffer) {
            s.input.next_input_byte += n, s.input.bytes_in_buffer -= static_cast<size_t>(n);
            return;
        }
        const size_t beyond = static_cast<size_t>(n) - s.input.bytes_in_buffer;
        s.input.bytes_in_buffer = 0;  // a skip past the end: the next fill finds the end
        try {
            s.source->skip(beyond);
        } catch (const Error&) {
            s.source_error = std::current_exception();
        }
        if (s.source_error) error_exit(reinterpret_cast<j_common_ptr>(info));
    }
    static void no_op(j_decompress_ptr) {}

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
        if (source_error) std::rethrow_exception(source_error);
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

JpegDecoder::JpegDecoder(ByteSource& source, const ImageLimits& limits) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.info.err = jpeg_std_error(&s.errors.manager);
    s.errors.manager.error_exit = State::error_exit;
    s.errors.manager.emit_message = State::emit_message;
    if (setjmp(s.errors.jump)) s.fail();
    jpeg_create_decompress(&s.info);
    s.created = true;
    s.info.client_data = &s;
    s.source = &source;
    s.input.init_source = s.input.term_source = State::no_op;
    s.input.fill_input_buffer = State::fill_input_buffer;
    s.input.skip_input_data = State::skip_input_data;
    s.input.resync_to_restart = jpeg_resync_to_restart;
    s.info.src = &s.input;
    jpeg_read_header(&s.info, TRUE);

    check_image_size(s.info.image_width, s.info.image_height, limits);
    if (s.info.arith_code)
        throw Error(
            "arithmetic-coded JPEG images are not supported (its compression has no lower bound to check the "
            "declared size against)");
    // Every block of every component costs at least a DC and an end-of-block Huffman code of 1 bit or
    // more; a progressive JPEG needs only its first DC scan, 1 bit (docs/robustness.md).
    int64_t blocks = 0;
    for (int c = 0; c < s.info.num_components; ++c)
        blocks += int64_t{s.info.comp_info[c].width_in_blocks} * s.info.comp_info[c].height_in_blocks;
    const bool progressive = s.info.progressive_mode;
    const int64_t least = (blocks * (progressive ? 1 : 2) + 7) / 8;
    if (!source.reaches(least))
        refuse_declared_size("JPEG", s.info.image_width, s.info.image_height, source.size_so_far(), least,
                             std::to_string(blocks) + " blocks of 8x8 in " + std::to_string(s.info.num_components) +
                                 " component(s), " +
                                 (progressive ? "1 bit each in a progressive JPEG's first DC scan"
                                              : "2 bits each for their DC and end-of-block codes"));
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
    // A JPEG of several scans is read whole into libjpeg's coefficients before its first row (as
    // jpeg_start_decompress does), here scan by scan: every component of the frame must be in some
    // scan (for a progressive JPEG, in a first DC scan), or libjpeg would give it made-up pixels.
    s.info.buffered_image = jpeg_has_multiple_scans(&s.info);
    jpeg_start_decompress(&s.info);
    if (s.info.buffered_image) {
        bool scanned[MAX_COMPONENTS] = {};  // no destructor: a longjmp may cross this frame
        for (int event = JPEG_REACHED_SOS; event != JPEG_REACHED_EOI; event = jpeg_consume_input(&s.info))
            if (event == JPEG_REACHED_SOS && (!s.info.progressive_mode || (s.info.Ss == 0 && s.info.Ah == 0)))
                for (int k = 0; k < s.info.comps_in_scan; ++k) scanned[s.info.cur_comp_info[k]->component_index] = true;
        for (int c = 0; c < s.info.num_components; ++c)
            if (!scanned[c])
                throw Error("corrupt JPEG: component " + std::to_string(s.info.comp_info[c].component_id) +
                            " is in no scan, so its pixels would be undefined");
        jpeg_start_output(&s.info, s.info.input_scan_number);
    }
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
    if (s.info.buffered_image) jpeg_finish_output(&s.info);
    jpeg_finish_decompress(&s.info);
}

int jpeg_shrink_for(int64_t width, int64_t height, int64_t need_width, int64_t need_height) {
    const int64_t fits = std::min(width / std::max<int64_t>(need_width, 1), height / std::max<int64_t>(need_height, 1));
    return fits >= 8 ? 8 : fits >= 4 ? 4 : fits >= 2 ? 2 : 1;
}

}  // namespace gapnet
