// A loaded model: the layer graph plus what is needed to feed it images and name its outputs. The
// engine's form of it; the API's gapnet::Model (include/gapnet/gapnet.h) holds one. InputSpec and
// its enums are declared in the public header, which describes them to the API's callers.
#pragma once

#include <string>
#include <vector>

#include "gapnet/gapnet.h"
#include "graph.h"

namespace gapnet {

// A recorded input (already preprocessed, [channels, height, width]) and the output the training
// framework computed for it: the file's proof that it computes what the framework computed.
struct ModelTest {
    Tensor input;
    Tensor output;
};

struct LoadedModel {
    std::string name;
    InputSpec input;
    std::vector<std::string> labels;  // one per output value
    Graph graph;
    std::vector<ModelTest> tests;  // may be empty
};

}  // namespace gapnet
