// Re-running a model's recorded tests (LoadedModel::tests) and comparing with the recorded outputs.
// VerifyReport and kDefaultVerifyTolerance (the rule for a match) are declared in the public header.
#pragma once

#include <cstdint>

#include "gapnet/gapnet.h"
#include "model.h"

namespace gapnet {

// Runs every recorded test through the graph, as one batch.
VerifyReport verify(const LoadedModel& model, double tolerance);

}  // namespace gapnet
