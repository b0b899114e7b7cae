#include "png.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>
#include <png.h>

#include "../error.h"
#include "byte_order.h"
#include "byte_source.h"

namespace gapnet {

// libpng reports errors through error_fn, which must not return: png_longjmp() goes back to the
// setjmp() of the PngDecoder method that called into libpng, which throws. No C++ object with a
// destructor lives in the libpng frames the jump crosses.
struct PngDecoder::State {
    ByteSource* source = nullptr;
    std::exception_ptr source_error;  // of the source (a read error, ImageLimits::max_bytes), rethrown
    bool past_end = false;            // libpng asked for bytes the file does not have
    bool finishing = false;           // the rows were read: what is left is the chunks up to IEND
    png_structp png = nullptr;
    png_infop info = nullptr;
    char message[256] = {};
    PixelFormat format;
    bool interlaced = false;
    std::vector<uint8_t> row, image;  // image: the whole decoded image, interlaced files only
    int64_t next_row = 0;

    static void read(png_structp png, png_bytep out, size_t count) {
        auto* s = static_cast<State*>(png_get_io_ptr(png));
        try {
            s->past_end = s->source->read(out, count) < count;
        } catch (const Error&) {
            s->source_error = std::current_exception();  // png_error jumps from outside the handler
        }
        if (s->source_error || s->past_end) png_error(png, "the file ends early");
    }
    static void error(png_structp png, png_const_charp text) {
        auto* s = static_cast<State*>(png_get_error_ptr(png));
        std::snprintf(s->message, sizeof s->message, "%s", text);
        png_longjmp(png, 1);
    }
    // libpng's warnings and "benign" errors (made warnings below) about the image data (too much or
    // too little of it, "IDAT: ...") are errors here; the others concern ancillary chunks (a colour
    // profile that does not fit, a bad text chunk) that cannot change the pixels.
    static void warning(png_structp png, png_const_charp text) {
        if (std::strncmp(text, "IDAT", 4) == 0) error(png, text);
    }

    [[noreturn]] void fail() const {
        if (source_error) std::rethrow_exception(source_error);
        if (past_end && finishing)
            throw Error("truncated PNG: the file ends at byte " + std::to_string(source->size_so_far()) +
                        " without an IEND chunk");
        if (past_end) throw Error("truncated PNG: the file ends before the image data does");
        throw Error(std::string("corrupt PNG (libpng: ") + message + ")");
    }
    ~State() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

PngDecoder::PngDecoder(ByteSource& source, const ImageLimits& limits) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.source = &source;
    // The size first, so that the message names gapnet's limit rather than libpng's (which refuses a
    // size of 0 as "Invalid IHDR data").
    const std::string_view ihdr = source.peek(24);
    if (ihdr.size() == 24 && ihdr.substr(12, 4) == "IHDR")
        check_image_size(big_endian32(ihdr, 16), big_endian32(ihdr, 20), limits);
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, State::error, State::warning);
    if (!s.png) throw Error("cannot start the PNG decoder (out of memory)");
    if (setjmp(png_jmpbuf(s.png))) s.fail();
    s.info = png_create_info_struct(s.png);
    if (!s.info) png_error(s.png, "out of memory");
    png_set_benign_errors(s.png, 1);  // warnings, judged by State::warning
    png_set_read_fn(s.png, &s, State::read);
    png_read_info(s.png, s.info);
    const int64_t width = png_get_image_width(s.png, s.info), height = png_get_image_height(s.png, s.info);
    check_image_size(width, height, limits);

    // The filtered scanlines (a filter byte and the packed samples per row, per Adam7 pass when
    // interlaced), which deflate codes at most 1032:1 (docs/robustness.md).
    const int64_t bits = int64_t{png_get_channels(s.png, s.info)} * png_get_bit_depth(s.png, s.info);
    auto rows_bytes = [&](int64_t w, int64_t h) { return w && h ? ((w * bits + 7) / 8 + 1) * h : 0; };
    int64_t needed = 0;
    if (png_get_interlace_type(s.png, s.info) == PNG_INTERLACE_ADAM7) {
        const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
        const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
        for (int p = 0; p < 7; ++p)
            needed += rows_bytes((width - x0[p] + dx[p] - 1) / dx[p], (height - y0[p] + dy[p] - 1) / dy[p]);
    } else {
        needed = rows_bytes(width, height);
    }
    const int64_t least = (needed + 1031) / 1032;
    if (!source.reaches(least))
        refuse_declared_size("PNG", width, height, source.size_so_far(), least,
                             std::to_string(needed) + " bytes of scanlines, deflated at most 1032:1");
}

PngDecoder::~PngDecoder() = default;

int64_t PngDecoder::width() const { return png_get_image_width(state_->png, state_->info); }
int64_t PngDecoder::height() const { return png_get_image_height(state_->png, state_->info); }

PixelFormat PngDecoder::start(const RowRequest& request) {
    State& s = *state_;
    if (setjmp(png_jmpbuf(s.png))) s.fail();
    png_set_expand(s.png);  // palette -> RGB, gray of 1, 2 or 4 bits -> 8 (scaled to 0..255), tRNS -> alpha
    if (!request.keep_alpha) png_set_strip_alpha(s.png);
    const int depth = png_get_bit_depth(s.png, s.info);
    if (depth == 16) png_set_swap(s.png);  // PNG is big-endian; samples in native order (x86: little)
    s.interlaced = png_get_interlace_type(s.png, s.info) != PNG_INTERLACE_NONE;
    const int passes = png_set_interlace_handling(s.png);
    png_read_update_info(s.png, s.info);
    const int channels = png_get_channels(s.png, s.info);
    s.format = {width(), height(), channels, depth == 16 ? 16 : 8, depth == 16 ? 65535 : 255};
    const size_t row_bytes = png_get_rowbytes(s.png, s.info);
    if (!s.interlaced) {
        s.row.resize(row_bytes);
        return s.format;
    }
    s.image.resize(row_bytes * static_cast<size_t>(s.format.height));
    for (int pass = 0; pass < passes; ++pass)
        for (int64_t y = 0; y < s.format.height; ++y)
            png_read_row(s.png, s.image.data() + static_cast<size_t>(y) * row_bytes, nullptr);
    return s.format;
}

const void* PngDecoder::read_row() {
    State& s = *state_;
    if (s.interlaced) return s.image.data() + static_cast<size_t>(s.next_row++) * png_get_rowbytes(s.png, s.info);
    if (setjmp(png_jmpbuf(s.png))) s.fail();
    png_read_row(s.png, s.row.data(), nullptr);
    return s.row.data();
}

void PngDecoder::finish() {
    State& s = *state_;
    if (setjmp(png_jmpbuf(s.png))) s.fail();
    s.finishing = true;
    png_read_end(s.png, nullptr);
}

}  // namespace gapnet
