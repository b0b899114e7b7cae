#include "layer_registry.h"

#include <utility>

#include "error.h"
#include "layers/activation.h"
#include "layers/add.h"
#include "layers/avg_pool2d.h"
#include "layers/batch_norm2d.h"
#include "layers/concat.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/flatten.h"
#include "layers/global_avg_pool2d.h"
#include "layers/global_max_pool2d.h"
#include "layers/max_pool2d.h"
#include "layers/multiply.h"
#include "layers/softmax.h"

namespace gapnet {
namespace {

using Factory = std::unique_ptr<Layer> (*)(LayerConfig&);

const std::pair<const char*, Factory> kLayers[] = {
    {"conv2d", Conv2d::create},
    {"batch_norm2d", BatchNorm2d::create},
    {"relu", ActivationLayer::create_relu},
    {"relu6", ActivationLayer::create_relu6},
    {"clip", ActivationLayer::create_clip},
    {"leaky_relu", ActivationLayer::create_leaky_relu},
    {"sigmoid", ActivationLayer::create_sigmoid},
    {"hard_sigmoid", ActivationLayer::create_hard_sigmoid},
    {"hard_swish", ActivationLayer::create_hard_swish},
    {"silu", ActivationLayer::create_silu},
    {"tanh", ActivationLayer::create_tanh},
    {"max_pool2d", MaxPool2d::create},
    {"avg_pool2d", AvgPool2d::create},
    {"global_avg_pool2d", GlobalAvgPool2d::create},
    {"global_max_pool2d", GlobalMaxPool2d::create},
    {"flatten", Flatten::create},
    {"dense", Dense::create},
    {"softmax", Softmax::create},
    {"add", Add::create},
    {"concat", Concat::create},
    {"multiply", Multiply::create},
};

}  // namespace

std::unique_ptr<Layer> create_layer(const std::string& type, LayerConfig& config) {
    for (const auto& [name, factory] : kLayers)
        if (type == name) return factory(config);
    std::string known;
    for (const auto& t : layer_types()) known += (known.empty() ? "" : ", ") + t;
    throw Error("unknown layer type '" + type + "' (known: " + known + ")", "type");
}

std::vector<std::string> layer_types() {
    std::vector<std::string> types;
    for (const auto& entry : kLayers) types.emplace_back(entry.first);
    return types;
}

}  // namespace gapnet
