// avg_pool2d: the mean of each window (PyTorch's nn.AvgPool2d).
//   input [N, C, H, W] -> output [N, C, H', W'], H' as in Window2d::output_h (floor, or ceil_mode)
// With count_include_pad (PyTorch's default) the divisor counts the zero padding inside the window
// but not the part of a ceil_mode window that hangs past the padding; without it, only input pixels.
#pragma once

#include <memory>

#include "../layer.h"
#include "window2d.h"

namespace gapnet {

class AvgPool2d : public UnaryLayer {
public:
    AvgPool2d(Window2d window, bool count_include_pad);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    std::string_view type() const override { return "avg_pool2d"; }
    Shape output_shape(const Shape& input) const override { return w_.pooled_shape(input); }
    int64_t work(const Shape& input) const override { return w_.pooled_reads(input); }
    // Follows its input into the blocked layout (kernels/pooling_blocked.h: the same arithmetic per lane).
    Blocking blocking(const Shape&) const override { return Blocking::follows; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

private:
    Window2d w_;
    bool count_include_pad_;
};

}  // namespace gapnet
