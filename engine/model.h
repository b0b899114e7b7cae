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

// How an image becomes the model's input tensor [channels, height, width]: converted to `color`,
// resized to height x width, then each pixel p (0..255) becomes (p * scale - mean[c]) / std[c].
struct InputSpec {
    int64_t channels = 1, height = 1, width = 1;
    ColorMode color = ColorMode::grayscale;
    double scale = 1.0 / 255.0;
    std::vector<float> mean, std;  // one per channel
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
