// softmax over a vector: p_i = exp(x_i - max x) / sum_j exp(x_j - max x). Subtracting the maximum
// changes nothing mathematically and keeps exp() from overflowing (logits of +-2000 stay finite).
//   input [N, F] -> output [N, F]
#pragma once

#include <memory>

#include "../layer.h"

namespace gapnet {

class Softmax : public UnaryLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Softmax>(); }

    std::string_view type() const override { return "softmax"; }
    Shape output_shape(const Shape& input) const override;
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;
};

}  // namespace gapnet
