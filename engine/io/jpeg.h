// JPEG decoding with libjpeg-turbo, a row at a time, optionally shrunk by its DCT scaling.
#pragma once

#include <cstdint>
#include <memory>

#include "image.h"
#include "row_decoder.h"

namespace gapnet {

// A JPEG being decoded from `source`, which starts at its SOI marker. The constructor reads the header
// (up to the first scan) and refuses what gapnet does not decode (docs/robustness.md): a size beyond
// `limits` or beyond what the source's bytes can encode, arithmetic coding; start() refuses a component
// no scan covers. Damaged data is refused (gapnet::Error), never filled in: libjpeg's warnings that it
// made up pixels (a scan or the file ending early, a bad Huffman code, a lost restart marker) are errors.
class JpegDecoder final : public RowDecoder {
public:
    JpegDecoder(ByteSource& source, const ImageLimits& limits);  // `source` must outlive the decoder
    ~JpegDecoder() override;

    int64_t width() const override;
    int64_t height() const override;

    // request.shrink: libjpeg computes each 8x8 block's pixels at 8/shrink per side from its DCT
    // coefficients (as Pillow's draft() does); request.gray: a colour JPEG as its stored luma (the
    // colour channels not decoded). A gray JPEG gives one channel, any other RGB (CMYK ones in
    // Adobe's inverted convention converted); 8 bits per sample.
    PixelFormat start(const RowRequest& request) override;
    const void* read_row() override;
    void finish() override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The largest shrink (8, 4, 2 or 1) that keeps a `width` x `height` image at least `need_width` x
// `need_height`: Pillow's draft() rule, so that shrinking stays an area average of the photo.
int jpeg_shrink_for(int64_t width, int64_t height, int64_t need_width, int64_t need_height);

}  // namespace gapnet
