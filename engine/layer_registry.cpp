#include "layer_registry.h"

#include <utility>

#include "error.h"
#include "layers/avg_pool2d.h"
#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/flatten.h"
#include "layers/global_avg_pool2d.h"
#include "layers/global_max_pool2d.h"
#include "layers/max_pool2d.h"
#include "layers/relu.h"
#include "layers/softmax.h"

namespace gapnet {
namespace {

using Factory = std::unique_ptr<Layer> (*)(LayerConfig&);

const std::pair<const char*, Factory> kLayers[] = {
    {"conv2d", Conv2d::create},
    {"batch_norm2d", BatchNorm2d::create},
    {"relu", Relu::create},
    {"max_pool2d", MaxPool2d::create},
    {"avg_pool2d", AvgPool2d::create},
    {"global_avg_pool2d", GlobalAvgPool2d::create},
    {"global_max_pool2d", GlobalMaxPool2d::create},
    {"flatten", Flatten::create},
    {"dense", Dense::create},
    {"softmax", Softmax::create},
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
