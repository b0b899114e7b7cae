// relu: y = max(x, 0), element-wise, any shape. NaN stays NaN, as in PyTorch and ONNX.
#pragma once

#include <memory>

#include "../layer.h"

namespace gapnet {

class Relu : public Layer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Relu>(); }

    std::string_view type() const override { return "relu"; }
    Shape output_shape(const Shape& input) const override { return input; }
    void forward(const Tensor& input, Tensor& output, ThreadPool&) const override {
        for (int64_t i = 0; i < input.size(); ++i) output.data[i] = input.data[i] < 0 ? 0.0f : input.data[i];
    }
};

}  // namespace gapnet
