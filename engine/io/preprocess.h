// From decoded pixels to the model's input tensor, one row at a time (docs/model-format.md#input):
// colour, then resize (stretch, shorter side + centre crop, letterbox), then normalization. Rows are
// consumed as a decoder produces them, so a photo never exists at full resolution in float: the
// memory is a few rows of the image plus the input tensor.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "../model.h"
#include "../tensor.h"

namespace gapnet {

// Interleaved samples: `height` rows of `width * channels` values 0..max_value, each `bits` (8 or
// 16) wide. channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
struct PixelFormat {
    int64_t width = 0, height = 0, channels = 0;
    int bits = 8;
    int max_value = 255;
};

// A sample of 0..max_value on the 0..255 scale. v * 255 is exact in float (v < 2^16) and the
// division rounds once, so max_value maps to exactly 255 (v * (255 / max_value) could give 255.00002).
inline float sample_value(float v, int max_value) {
    return max_value == 255 ? v : v * 255.0f / static_cast<float>(max_value);
}

// One axis of the resize: output pixel j reads the scaled image's pixel j + offset (outside
// 0..scaled-1 it is padding), and scaled pixel k is a weighted sum of source pixels
// first[j] .. first[j] + count[j] - 1 with weights[start[j] ...]. The filters (ResizeFilter):
//  - area, shrinking: scaled pixel k covers the source interval [k s, (k+1) s), s = source / scaled,
//    each source pixel weighted by the length it overlaps, divided by s (OpenCV's INTER_AREA);
//  - bilinear, shrinking: a triangle filter stretched over 2 s source pixels around the centre
//    (k + 0.5) s, normalized (Pillow's and torchvision's antialiased BILINEAR);
//  - enlarging, both: bilinear between the two source pixels nearest the centre (k + 0.5) s - 0.5,
//    the edges clamped (the triangle filter unstretched);
//  - same size: the pixel itself.
struct AxisResampler {
    int64_t source = 0, scaled = 0, output = 0, offset = 0;
    std::vector<int64_t> first, count, start;  // per scaled pixel used by the output
    std::vector<float> weights;

    AxisResampler(int64_t source, int64_t scaled, int64_t output, int64_t offset, ResizeFilter filter);
    // The output pixels that read source pixels: [begin, end).
    int64_t begin() const;
    int64_t end() const;
};

// The size the image is scaled to before a crop or padding: height x width for stretch; for
// shorter_side the shorter side becomes `shorter_side` and the longer int(shorter_side * longer /
// shorter) (torchvision's Resize); for letterbox the largest size inside height x width with the
// image's aspect ratio, rounded as Pillow's ImageOps.contain does. Returns {width, height}.
std::pair<int64_t, int64_t> scaled_size(const InputSpec& spec, int64_t width, int64_t height);

class Preprocessor {
public:
    // Throws gapnet::Error for a model that reads tensors (color "none") or an unusable format.
    Preprocessor(const InputSpec& spec, const PixelFormat& format);

    // Whether any input pixel reads source row `y` (a crop skips rows; a decoder may too).
    bool wants_row(int64_t y) const;
    // The source rows, in order 0 .. height - 1, each `width * channels` samples of `bits`.
    void add_row(int64_t y, const void* samples);
    // The input tensor [channels, height, width] once every wanted row was added.
    Tensor finish();

private:
    InputSpec spec_;
    PixelFormat format_;
    AxisResampler across_, down_;
    std::vector<float> line_, resized_line_, sums_;  // sums_: output rows x width x channels, interleaved
    int64_t next_output_row_ = 0;                    // the first output row a later source row can reach
};

// `format` pixels at `samples` -> the input tensor. Row y starts `stride` bytes after row y - 1;
// 0: rows without padding.
Tensor preprocess_pixels(const void* samples, const PixelFormat& format, const InputSpec& spec, int64_t stride = 0);

}  // namespace gapnet
