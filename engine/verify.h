// Re-running a model's recorded tests (Model::tests) and comparing with the recorded outputs.
#pragma once

#include <cstdint>

#include "model.h"

namespace gapnet {

// An output value v matches its recorded value r when |v - r| <= tolerance * max(1, |r|): absolute
// for probabilities and small logits, relative for large values.
constexpr double kDefaultVerifyTolerance = 1e-5;

struct VerifyReport {
    int64_t cases = 0;
    double largest_difference = 0;  // |v - r| / max(1, |r|), over every value of every case
    int64_t worst_case = -1, worst_index = -1;
    float worst_value = 0, worst_expected = 0;
    bool passed = true;
};

// Runs every recorded test through the graph, as one batch.
VerifyReport verify(const Model& model, double tolerance = kDefaultVerifyTolerance);

}  // namespace gapnet
