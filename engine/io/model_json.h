// Reading gapnet's JSON model files (docs/model-format.md) into a validated LoadedModel.
#pragma once

#include <string>
#include <string_view>

#include "../limits.h"
#include "../model.h"

namespace gapnet {

// Parses and validates a model file's text. Throws gapnet::Error whose where() is the JSON location of
// the problem (e.g. "layers[3].weight.data"). `fallback_name` names a model that has no "name".
LoadedModel parse_model(std::string_view text, const Limits& limits = {}, const std::string& fallback_name = "model");

// Reads and parses the file at `path`.
LoadedModel load_model(const std::string& path, const Limits& limits = {});

}  // namespace gapnet
