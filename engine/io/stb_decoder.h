// BMP, TGA, PSD and binary PNM (P5, P6) decoding with stb_image 2.27, behind the row interface.
#pragma once

#include <memory>

#include "image.h"
#include "row_decoder.h"

namespace gapnet {

// A BMP, TGA, PSD or PNM, decoded whole by stb_image in the constructor and then served a row at a
// time. The source is read up to what stb can need for the size its header declares (so an endless
// source stops early) and checked for what stb 2.27 misreads (docs/robustness.md): a size beyond
// `limits` or beyond what the bytes can encode, a file ending before its pixel data (stb reads through
// callbacks that notice it), a PNM header stb's int would overflow on, a sample above a PNM's maxval
// (16-bit PNM samples are swapped from big-endian and scaled by maxval), an RGBA PSD colour darker
// than Photoshop's white matte allows. Common formats stb cannot read are refused by name.
class StbDecoder final : public RowDecoder {
public:
    StbDecoder(ByteSource& source, const ImageLimits& limits);

    int64_t width() const override;
    int64_t height() const override;
    PixelFormat start(const RowRequest& request) override;  // the decoded format, whatever the request
    const void* read_row() override;
    void finish() override {}

private:
    PixelFormat format_;
    std::unique_ptr<void, void (*)(void*)> samples_{nullptr, nullptr};  // stb's buffer, freed by stbi_image_free
    int64_t next_row_ = 0;
};

}  // namespace gapnet
