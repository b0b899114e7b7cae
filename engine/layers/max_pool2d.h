// max_pool2d: the maximum of each window (PyTorch's nn.MaxPool2d; padding never wins a maximum).
//   input [N, C, H, W] -> output [N, C, H', W'], H' as in Window2d::output_h (floor, or ceil_mode)
#pragma once

#include <memory>

#include "../layer.h"
#include "window2d.h"

namespace gapnet {

class MaxPool2d : public UnaryLayer {
public:
    explicit MaxPool2d(Window2d window);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    std::string_view type() const override { return "max_pool2d"; }
    Shape output_shape(const Shape& input) const override { return w_.pooled_shape(input); }
    int64_t work(const Shape& input) const override { return w_.pooled_reads(input); }
    int64_t workspace_elements(const Shape& input) const override;  // one padded plane, per thread
    // Follows its input into the blocked layout (kernels/pooling_blocked.h: the same arithmetic per lane).
    Blocking blocking(const Shape&) const override { return Blocking::follows; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

private:
    Window2d w_;
};

}  // namespace gapnet
