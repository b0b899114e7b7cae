#include "image.h"

#include <cstring>
#include <memory>
#include <string_view>

#include "../error.h"
#include "byte_source.h"
#include "gif.h"
#include "jpeg.h"
#include "png.h"
#include "stb_decoder.h"

namespace gapnet {
namespace {

// Formats stb_image would decode but gapnet does not offer (undocumented and untested here, and
// more decoder code exposed to hostile files), refused before any decoder sees them; or nullptr.
const char* refused_format(std::string_view b) {
    auto at = [&](size_t offset, std::string_view magic) {
        return b.substr(std::min(offset, b.size())).substr(0, magic.size()) == magic;
    };
    if (at(0, "#?RADIANCE\n") || at(0, "#?RGBE\n")) return "Radiance HDR";
    if (at(0, "\x53\x80\xf6\x34") && at(88, "PICT")) return "Softimage PIC";
    return nullptr;
}

// The decoder for the image `source` starts with, told by its signature: libjpeg-turbo, libpng,
// gapnet's GIF decoder, stb_image for the rest (stb_decoder.h).
std::unique_ptr<RowDecoder> open_decoder(ByteSource& source, const ImageLimits& limits) {
    const std::string_view head = source.peek(96);  // the longest signature ends at byte 92
    if (head.empty()) throw Error("empty file, not an image");
    if (const char* refused = refused_format(head))
        throw Error(std::string(refused) + " images are not supported (" + kSupportedFormats + ")");
    if (head.substr(0, 8) == "\x89PNG\r\n\x1a\n") return std::make_unique<PngDecoder>(source, limits);
    if (head.substr(0, 6) == "GIF87a" || head.substr(0, 6) == "GIF89a")
        return std::make_unique<GifDecoder>(source, limits);
    if (head.substr(0, 2) == "\xff\xff") {
        // Fill bytes before a JPEG's SOI, any number of them as stb allowed: skipped to the last one
        // (libjpeg wants SOI first). Nothing else starts with two of them.
        for (std::string_view fill = source.peek(4096); fill.size() > 1; fill = source.peek(4096)) {
            const size_t other = fill.find_first_not_of('\xff');
            source.skip((other == std::string_view::npos ? fill.size() : other) - 1);
            if (other != std::string_view::npos) break;
        }
        if (source.peek(2) != "\xff\xd8") throw Error("not an image gapnet can read (unknown image type)");
    }
    if (source.peek(2) == "\xff\xd8") return std::make_unique<JpegDecoder>(source, limits);
    return std::make_unique<StbDecoder>(source, limits);
}

}  // namespace

void check_image_size(int64_t w, int64_t h, const ImageLimits& limits) {
    const std::string size = "image is " + std::to_string(w) + "x" + std::to_string(h);
    if (w < 1 || h < 1) throw Error(size + ": it has no pixels");
    if (w > limits.max_side || h > limits.max_side)
        throw Error(size + ", a side beyond ImageLimits::max_side = " + std::to_string(limits.max_side));
    if (w * h > limits.max_pixels)
        throw Error(size + " = " + std::to_string(w * h) +
                    " pixels, beyond ImageLimits::max_pixels = " + std::to_string(limits.max_pixels));
}

// A header can declare any size: each format's bound counts only what every valid encoding must
// spend, so no valid file is refused (docs/robustness.md derives each one).
void refuse_declared_size(const char* format, int64_t width, int64_t height, int64_t file_bytes, int64_t least,
                          const std::string& why) {
    throw Error(std::string(format) + " declares " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, which cannot be encoded in the " + std::to_string(file_bytes) +
                " bytes of the file (at least " + std::to_string(least) + " bytes: " + why + ")");
}

float Image::value(int64_t i) const {
    const float v = bits == 8 ? static_cast<float>(samples[static_cast<size_t>(i)])
                              : static_cast<float>(reinterpret_cast<const uint16_t*>(samples.data())[i]);
    return sample_value(v, max_value);
}

Image decode_image(ByteSource& source, const ImageLimits& limits) {
    const std::unique_ptr<RowDecoder> decoder = open_decoder(source, limits);
    const PixelFormat format = decoder->start({});
    Image image;
    static_cast<PixelFormat&>(image) = format;
    const auto row_bytes = static_cast<size_t>(format.width * format.channels * format.bits / 8);
    image.samples.resize(row_bytes * static_cast<size_t>(format.height));
    for (int64_t y = 0; y < format.height; ++y)
        std::memcpy(image.samples.data() + static_cast<size_t>(y) * row_bytes, decoder->read_row(), row_bytes);
    decoder->finish();
    return image;
}

Tensor decode_to_input(ByteSource& source, const InputSpec& spec, const ImageLimits& limits) {
    if (spec.color == ColorMode::none)
        throw Error("the model's input is a tensor, not an image (input.color is \"none\")");
    const std::unique_ptr<RowDecoder> decoder = open_decoder(source, limits);
    // A JPEG much larger than needed is decoded shrunk (jpeg.h); the size needed is what it is scaled to.
    const auto [scaled_width, scaled_height] = scaled_size(spec, decoder->width(), decoder->height());
    const PixelFormat format = decoder->start(
        {jpeg_shrink_for(decoder->width(), decoder->height(), scaled_width, scaled_height), spec.channels == 1, false});
    Preprocessor preprocessor(spec, format);
    for (int64_t y = 0; y < format.height; ++y) {
        const void* row = decoder->read_row();
        if (preprocessor.wants_row(y)) preprocessor.add_row(y, row);
    }
    decoder->finish();
    return preprocessor.finish();
}

Image decode_image(std::string_view bytes, const ImageLimits& limits) {
    ByteSource source(bytes, limits.max_bytes);
    return decode_image(source, limits);
}

Tensor preprocess(const Image& image, const InputSpec& spec) {
    return preprocess_pixels(image.samples.data(), image, spec);
}

Tensor decode_to_input(std::string_view bytes, const InputSpec& spec, const ImageLimits& limits) {
    ByteSource source(bytes, limits.max_bytes);
    return decode_to_input(source, spec, limits);
}

Image read_image(const std::string& path, const ImageLimits& limits) {
    ByteSource source(open_for_reading(path), limits.max_bytes, size_t{1} << 16, true);
    return decode_image(source, limits);
}

Tensor load_image(const std::string& path, const InputSpec& spec, const ImageLimits& limits) {
    ByteSource source(open_for_reading(path), limits.max_bytes, size_t{1} << 16, true);
    return decode_to_input(source, spec, limits);
}

}  // namespace gapnet
