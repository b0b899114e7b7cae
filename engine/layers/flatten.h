// flatten: a feature map becomes a vector in C-H-W order (PyTorch's nn.Flatten); on a vector (after a
// global pool) it changes nothing.
//   input [N, C, H, W] -> output [N, C*H*W]
#pragma once

#include <memory>

#include "../layer.h"

namespace gapnet {

class Flatten : public UnaryLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Flatten>(); }

    std::string_view type() const override { return "flatten"; }
    Shape output_shape(const Shape& input) const override { return {element_count(input)}; }
    void forward(const Tensor& input, Tensor& output, ThreadPool&) const override { output.data = input.data; }
};

}  // namespace gapnet
