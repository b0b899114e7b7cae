// A loaded model: the layer graph plus what is needed to feed it images and name its outputs.
#pragma once

#include <string>
#include <vector>

#include "graph.h"

namespace gapnet {

// grayscale and rgb models read images; a `none` model reads tensors only (e.g. ONNX test cases),
// through its recorded tests or the API.
enum class ColorMode { grayscale, rgb, none };

inline const char* color_name(ColorMode color) {
    return color == ColorMode::grayscale ? "grayscale" : color == ColorMode::rgb ? "rgb" : "none";
}

// How an image becomes the model's input tensor: see the Resize and ChannelOrder rules below.
enum class ResizeMode {
    stretch,       // to height x width, the aspect ratio not kept
    shorter_side,  // the shorter side to `shorter_side`, then the middle height x width (torchvision)
    letterbox,     // the whole image inside height x width, aspect ratio kept, the rest `pad`
};
// The resampling filter where the image shrinks (enlarging is bilinear): `area` averages the source
// area each pixel covers (OpenCV's INTER_AREA); `bilinear` is Pillow's and torchvision's antialiased
// bilinear (a triangle filter as wide as the shrink factor).
enum class ResizeFilter { area, bilinear };
enum class ChannelOrder { rgb, bgr };

// How an image becomes the model's input tensor [channels, height, width]: converted to `color`
// (in `channel_order`), resized to height x width as `resize` says, then each pixel p (0..255)
// becomes (p * scale - mean[c]) / std[c] (docs/model-format.md#input).
struct InputSpec {
    int64_t channels = 1, height = 1, width = 1;
    ColorMode color = ColorMode::grayscale;
    ChannelOrder channel_order = ChannelOrder::rgb;
    ResizeMode resize = ResizeMode::stretch;
    ResizeFilter filter = ResizeFilter::area;
    int64_t shorter_side = 0;  // shorter_side: the scaled shorter side, at least max(height, width)
    float pad = 0;             // letterbox: the value (0..255) of the pixels outside the image
    double scale = 1.0 / 255.0;
    std::vector<float> mean, std;  // one per channel, in channel_order
};

// A recorded input (already preprocessed, [channels, height, width]) and the output the training
// framework computed for it: the file's proof that it computes what the framework computed.
struct ModelTest {
    Tensor input;
    Tensor output;
};

struct Model {
    std::string name;
    InputSpec input;
    std::vector<std::string> labels;  // one per output value
    Graph graph;
    std::vector<ModelTest> tests;     // may be empty
};

}  // namespace gapnet
