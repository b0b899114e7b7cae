// A loaded model: the layer graph plus what is needed to feed it images and name its outputs.
#pragma once

#include <string>
#include <vector>

#include "graph.h"

namespace gapnet {

enum class ColorMode { grayscale, rgb };

// How an image becomes the model's input tensor [channels, height, width]: converted to `color`,
// resized to height x width, then each pixel p (0..255) becomes (p * scale - mean[c]) / std[c].
struct InputSpec {
    int64_t channels = 1, height = 1, width = 1;
    ColorMode color = ColorMode::grayscale;
    double scale = 1.0 / 255.0;
    std::vector<float> mean, std;  // one per channel
};

struct Model {
    std::string name;
    InputSpec input;
    std::vector<std::string> labels;  // one per output value
    Graph graph;
};

}  // namespace gapnet
