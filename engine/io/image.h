// Images in: a dispatcher over the decoders (libjpeg-turbo for JPEG, libpng for PNG, gif.h for GIF,
// stb_image for the other formats), all behind row_decoder.h, then the model's preprocessing
// (engine/io/preprocess.h; docs/model-format.md#input).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../model.h"
#include "../tensor.h"
#include "gapnet/gapnet.h"  // gapnet::ImageLimits
#include "preprocess.h"

namespace gapnet {

// A decoded image: its samples as PixelFormat lays them out (preprocess.h), 16-bit ones in native byte
// order, on the scale 0..max_value (255 for 8 bits, 65535 for 16, a PNM's maxval).
struct Image : PixelFormat {
    std::vector<uint8_t> samples;

    // Sample i on the 0..255 scale.
    float value(int64_t i) const;
};

class ByteSource;

// What every refusal of an unsupported format says.
inline constexpr const char* kSupportedFormats = "gapnet reads PNG, JPEG, BMP, GIF, TGA, PSD and binary PGM/PPM";

// Decodes PNG, JPEG, BMP, GIF (first frame), TGA, PSD, PNM, 8 or 16 bits per channel, at full size,
// from `source` (byte_source.h: a file or memory, read within limits.max_bytes) through the format's
// RowDecoder. The header is checked against `limits` before any pixel is decoded. Throws
// gapnet::Error naming the problem.
Image decode_image(ByteSource& source, const ImageLimits& limits);
Image decode_image(std::string_view bytes, const ImageLimits& limits = {});

// The model input [channels, height, width] for `image` (preprocess.h says how).
Tensor preprocess(const Image& image, const InputSpec& spec);

// The image in `source` (or `bytes`) decoded straight into the model input, a row at a time, never
// held whole at full size where its format allows (docs/robustness.md): a JPEG shrunk by the decoder
// when the input is at least twice as small (jpeg.h).
Tensor decode_to_input(ByteSource& source, const InputSpec& spec, const ImageLimits& limits);
Tensor decode_to_input(std::string_view bytes, const InputSpec& spec, const ImageLimits& limits = {});

// decode_image and decode_to_input on the file at `path` (any readable path: a FIFO, /dev/stdin),
// streamed from it.
Image read_image(const std::string& path, const ImageLimits& limits = {});
Tensor load_image(const std::string& path, const InputSpec& spec, const ImageLimits& limits = {});

// For the decoders: refuses a size of no pixels or beyond `limits`, naming the limit as the API spells
// it (ImageLimits::max_pixels; gapnet.h); and a size the file's bytes cannot encode (at least `least` bytes, for the reason `why`).
void check_image_size(int64_t width, int64_t height, const ImageLimits& limits);
[[noreturn]] void refuse_declared_size(const char* format, int64_t width, int64_t height, int64_t file_bytes,
                                       int64_t least, const std::string& why);

}  // namespace gapnet
