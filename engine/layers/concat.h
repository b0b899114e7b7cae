// concat: two or more inputs joined along their first per-sample axis, in input order: feature maps
// along channels (SqueezeNet's Fire, DenseNet, GoogLeNet), vectors along features.
//   inputs [N, C_i, H, W] -> output [N, sum C_i, H, W];  inputs [N, F_i] -> output [N, sum F_i]
#pragma once

#include <memory>

#include "merge.h"

namespace gapnet {

class Concat : public MergeLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Concat>(); }

    std::string_view type() const override { return "concat"; }
    Shape output_shape(const Shapes& inputs) const override;
    int64_t work(const Shapes& inputs) const override { return element_count(output_shape(inputs)); }
    // Blocked when every input but the last fills whole blocks of 16 channels (the blocks are then
    // copied as they are); otherwise the maps are reordered to plain.
    Blocking blocking(const Shapes& inputs) const override;
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const override;
};

}  // namespace gapnet
