#include "png.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <png.h>

#include "../error.h"

namespace gapnet {

// libpng reports errors through error_fn, which must not return: png_longjmp() goes back to the
// setjmp() of the PngDecoder method that called into libpng, which throws. No C++ object with a
// destructor lives in the libpng frames the jump crosses.
struct PngDecoder::State {
    std::string_view bytes;
    size_t at = 0;
    bool past_end = false;  // libpng asked for bytes the file does not have
    png_structp png = nullptr;
    png_infop info = nullptr;
    char message[256] = {};
    PixelFormat format;
    bool interlaced = false;
    std::vector<uint8_t> row, image;  // image: the whole decoded image, interlaced files only
    int64_t next_row = 0;

    static void read(png_structp png, png_bytep out, size_t count) {
        auto* s = static_cast<State*>(png_get_io_ptr(png));
        if (count > s->bytes.size() - s->at) {
            s->past_end = true;
            png_error(png, "the file ends early");
        }
        std::memcpy(out, s->bytes.data() + s->at, count);
        s->at += count;
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
        if (past_end) throw Error("truncated PNG: the file ends before the image data does");
        throw Error(std::string("corrupt PNG (libpng: ") + message + ")");
    }
    ~State() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

PngDecoder::PngDecoder(std::string_view bytes, const ImageLimits& limits) : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.bytes = bytes;
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, State::error, State::warning);
    if (!s.png) throw Error("cannot start the PNG decoder (out of memory)");
    if (setjmp(png_jmpbuf(s.png))) s.fail();
    s.info = png_create_info_struct(s.png);
    if (!s.info) png_error(s.png, "out of memory");
    png_set_benign_errors(s.png, 1);  // warnings, judged by State::warning
    png_set_read_fn(s.png, &s, State::read);
    png_read_info(s.png, s.info);
    check_image_size(png_get_image_width(s.png, s.info), png_get_image_height(s.png, s.info), limits);
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
    png_read_end(s.png, nullptr);
}

}  // namespace gapnet
