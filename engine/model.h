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
    // The largest difference the recorded tests allow (verify's rule, gapnet.h), as the file states
    // it (version 2: "tolerance", e.g. a bfloat16 file against its float32 outputs), else
    // kDefaultVerifyTolerance.
    double tolerance = kDefaultVerifyTolerance;
};

}  // namespace gapnet
