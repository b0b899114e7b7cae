// The decoders that produce an image a row at a time (jpeg.h, png.h, gif.h), so that a photo reaches the
// preprocessor without ever being held whole.
#pragma once

#include <cstdint>

#include "preprocess.h"

namespace gapnet {

// What the caller wants; a decoder honours what its format allows.
struct RowRequest {
    int shrink = 1;          // JPEG: decode at 1/shrink (1, 2, 4 or 8) of the size
    bool gray = false;       // JPEG: a colour image as its stored luma, one channel
    bool keep_alpha = true;  // PNG: false drops an alpha channel (the preprocessor ignores it anyway)
};

class RowDecoder {
public:
    virtual ~RowDecoder() = default;
    virtual int64_t width() const = 0;  // as the header declares
    virtual int64_t height() const = 0;
    // Starts decoding; returns the rows' format.
    virtual PixelFormat start(const RowRequest& request) = 0;
    // The next row, format.width * format.channels samples, valid until the next call.
    virtual const void* read_row() = 0;
    // After the last row: reads the rest of the file, refusing one that ends early.
    virtual void finish() = 0;
};

}  // namespace gapnet
