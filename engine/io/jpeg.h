// JPEG decoding with libjpeg-turbo, a row at a time, optionally shrunk by its DCT scaling.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "image.h"
#include "preprocess.h"

namespace gapnet {

// A JPEG being decoded. The constructor reads the header (up to the first scan) and refuses what
// gapnet does not decode (docs/robustness.md): a size beyond `limits` or beyond what the file's bytes
// can encode, a component no scan covers, arithmetic coding. Errors are gapnet::Error; damaged
// data is refused, never filled in: libjpeg's warnings that it made up pixels (the data of a scan or
// the file ending early, a bad Huffman code, a lost restart marker) are errors here.
class JpegDecoder {
public:
    JpegDecoder(std::string_view bytes, const ImageLimits& limits);  // `bytes` must outlive the decoder
    ~JpegDecoder();
    JpegDecoder(const JpegDecoder&) = delete;
    JpegDecoder& operator=(const JpegDecoder&) = delete;

    int64_t width() const;   // as the header declares
    int64_t height() const;
    int components() const;  // 1 gray, 3 YCbCr or RGB, 4 CMYK or YCCK

    // Starts decoding at 1/`shrink` of the size (1, 2, 4 or 8: libjpeg computes each 8x8 block's
    // pixels at 8/shrink per side from its DCT coefficients, as Pillow's draft() does), as gray (one
    // channel: the luma the file stores, skipping its colour) when `gray`, else RGB. CMYK files
    // (Adobe's inverted convention) give RGB. Returns the rows' format (8 bits per sample).
    PixelFormat start(int shrink, bool gray);
    // The next row, format.width * format.channels samples, valid until the next call.
    const uint8_t* read_row();
    // After the last row: reads the rest of the file up to the end-of-image marker.
    void finish();

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The largest shrink (8, 4, 2 or 1) that keeps a `width` x `height` image at least `need_width` x
// `need_height`: Pillow's draft() rule, so that shrinking stays an area average of the photo.
int jpeg_shrink_for(int64_t width, int64_t height, int64_t need_width, int64_t need_height);

}  // namespace gapnet
