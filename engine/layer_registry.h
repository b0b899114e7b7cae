// The layer types a model file may use, by name. Adding a layer: write engine/layers/<name>.{h,cpp}
// with a static create(LayerConfig&), then add one line to the table in layer_registry.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layer.h"
#include "layer_config.h"

namespace gapnet {

// Builds a layer of type `type` from its attributes; throws gapnet::Error (where = "type") for an
// unknown type, or whatever the layer's factory throws for bad attributes.
std::unique_ptr<Layer> create_layer(const std::string& type, LayerConfig& config);

// Every known type name, in the table's order.
std::vector<std::string> layer_types();

}  // namespace gapnet
