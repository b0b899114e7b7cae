// global_max_pool2d: the maximum of each feature map.
//   input [N, C, H, W] -> output [N, C]
#pragma once

#include <memory>

#include "../layer.h"

namespace gapnet {

class GlobalMaxPool2d : public UnaryLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<GlobalMaxPool2d>(); }

    std::string_view type() const override { return "global_max_pool2d"; }
    Shape output_shape(const Shape& input) const override;
    // Follows its input into the blocked layout (kernels/pooling_blocked.h: the same arithmetic per lane).
    Blocking blocking(const Shape&) const override { return Blocking::follows; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;
};

}  // namespace gapnet
