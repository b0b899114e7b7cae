// PNG decoding with libpng, a row at a time.
#pragma once

#include <memory>

#include "image.h"
#include "row_decoder.h"

namespace gapnet {

// A PNG being decoded from `source`. The constructor reads the header (up to the image data) and
// refuses a size beyond `limits` or beyond what the source's bytes can encode (docs/robustness.md);
// damaged data is refused, never filled in: libpng's checks (chunk CRCs, types and order), its warnings
// about the image data (too much or too little of it) and a file ending early, before IEND included, are
// errors here. Palette, low bit depths and tRNS transparency are expanded; 16-bit samples are kept
// (native byte order). An interlaced PNG is decoded whole first (Adam7 spreads each row over seven
// passes); any other streams, holding only the row being decoded.
class PngDecoder final : public RowDecoder {
public:
    PngDecoder(ByteSource& source, const ImageLimits& limits);  // `source` must outlive the decoder
    ~PngDecoder() override;

    int64_t width() const override;
    int64_t height() const override;
    PixelFormat start(const RowRequest& request) override;  // honours keep_alpha
    const void* read_row() override;
    void finish() override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace gapnet
