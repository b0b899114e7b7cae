// What the layers that merge two or more inputs into one (add, concat, multiply) share: no
// parameters, no multiply-accumulates by gapnet's convention, and one pass over the output per input.
#pragma once

#include "../layer.h"

namespace gapnet {

class MergeLayer : public Layer {
public:
    static constexpr int kMaxInputs = 64;  // as Graph::kMaxInputs

    int min_inputs() const override { return 2; }
    int max_inputs() const override { return kMaxInputs; }
    int64_t macs(const Shapes&) const override { return 0; }
    int64_t work(const Shapes& inputs) const override {
        return checked_mul(element_count(output_shape(inputs)), static_cast<int64_t>(inputs.size()));
    }
    int64_t workspace_elements(const Shapes&) const override { return 0; }
    int64_t prepared_elements(const Shapes&) const override { return 0; }
};

}  // namespace gapnet
