// GIF decoding, a row at a time: the first image of a GIF, with the pixels stb_image 2.27 gave.
#pragma once

#include <memory>

#include "image.h"
#include "row_decoder.h"

namespace gapnet {

// A GIF being decoded: its first image on its logical screen, as 8-bit RGBA rows of the screen's size,
// the pixels stb_image 2.27's stbi_load gave (gapnet decoded GIF with it before; results must not
// change): the local colour table, else the global one, else refused; the transparent index of a
// graphic control extension before the image, and indices beyond the table, 0,0,0,0; outside the
// image the background colour, opaque, when its index is above 0 (red and blue swapped, as stb copies
// it from its BGRA table), else 0,0,0,0. Unlike stb, LZW data that end (end code or block terminator)
// before the image's last pixel are refused as truncated, never filled in; codes after it are decoded
// (and refused when invalid) as stb decoded them, and finish() requires the blocks after the image to
// end with the trailer. The constructor reads up to the first image's LZW data, refusing a screen
// beyond `limits` and a first image larger than the source's bytes can encode (docs/robustness.md).
// An interlaced image is decoded first into one byte a pixel (its rows arrive in four passes); any
// other streams, holding the LZW table and one row.
class GifDecoder final : public RowDecoder {
public:
    GifDecoder(ByteSource& source, const ImageLimits& limits);  // `source` must outlive the decoder
    ~GifDecoder() override;

    int64_t width() const override;  // the logical screen's
    int64_t height() const override;
    PixelFormat start(const RowRequest& request) override;  // always RGBA, as stb gave it
    const void* read_row() override;
    void finish() override;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace gapnet
