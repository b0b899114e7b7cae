// multiply: the element-wise product of two or more inputs, left to right (y = (x0 * x1) * x2 ...).
// Each input has the output's shape, or is a vector of one value per channel, broadcast over a
// feature map: the squeeze-and-excitation gate of MobileNetV3 and EfficientNet (Hu et al., 2018),
// x * sigmoid(dense(relu(dense(global_avg_pool(x))))).
//   inputs [N, C, H, W] or [N, C] (at least one a feature map, if any is), output [N, C, H, W];
//   or all [N, F] -> [N, F]
#pragma once

#include <memory>

#include "merge.h"

namespace gapnet {

class Multiply : public MergeLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Multiply>(); }

    std::string_view type() const override { return "multiply"; }
    Shape output_shape(const Shapes& inputs) const override;
    Blocking blocking(const Shapes& inputs) const override;
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const override;

private:
    void forward_blocked(const Inputs& inputs, Tensor& output, ThreadPool& pool) const;
};

}  // namespace gapnet
