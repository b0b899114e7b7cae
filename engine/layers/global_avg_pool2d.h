// global_avg_pool2d: the mean of each feature map (Lin et al., "Network In Network", 2014).
//   input [N, C, H, W] -> output [N, C]
// The output is a vector, so a dense layer may follow directly (no flatten needed); it has no
// parameters, which is why a GAP head is so much smaller than flatten + dense.
#pragma once

#include <memory>

#include "../layer.h"

namespace gapnet {

class GlobalAvgPool2d : public UnaryLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<GlobalAvgPool2d>(); }

    std::string_view type() const override { return "global_avg_pool2d"; }
    Shape output_shape(const Shape& input) const override;
    // Follows its input into the blocked layout (kernels/pooling_blocked.h: the same arithmetic per lane).
    Blocking blocking(const Shape&) const override { return Blocking::follows; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;
};

}  // namespace gapnet
