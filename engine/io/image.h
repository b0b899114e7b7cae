// Images in: decoding with stb_image, then the model's preprocessing (docs/model-format.md#input).
#pragma once

#include <cstdint>
#include <string>

#include "../model.h"
#include "../tensor.h"

namespace gapnet {

// A decoded image: height x width x channels, interleaved, values on the 0..255 scale as float
// (16-bit images are divided by 257, so 65535 -> 255). channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
struct Image {
    int64_t width = 0, height = 0, channels = 0;
    std::vector<float> pixels;
};

struct ImageLimits {
    int64_t max_side = 32768;               // width or height
    int64_t max_pixels = int64_t{1} << 28;  // width * height
};

// Decodes PNG, JPEG, BMP, GIF (first frame), TGA, PSD, PNM, 8 or 16 bits per channel. The header is
// checked against `limits` before any pixel is decoded. Throws gapnet::Error naming the problem.
Image decode_image(const std::string& bytes, const ImageLimits& limits = {});

// The model input [channels, height, width] for `image`:
//  1. colour: alpha dropped; RGB -> gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B);
//     gray -> RGB by copying the gray value to all three channels;
//  2. size: stretched to the model's height x width with stb_image_resize, per axis an area (box)
//     filter when shrinking and bilinear (triangle) when enlarging, edges clamped; same size: untouched;
//  3. values: p -> (p * scale - mean[c]) / std[c].
Tensor preprocess(const Image& image, const InputSpec& spec);

// The decoded image file at `path` (any readable path: a FIFO, /dev/stdin), its size bounded by
// what an image within `limits` can need.
Image read_image(const std::string& path, const ImageLimits& limits = {});

// read_image + preprocess.
Tensor load_image(const std::string& path, const InputSpec& spec, const ImageLimits& limits = {});

}  // namespace gapnet
