// dense: a fully connected layer (PyTorch's nn.Linear): y = W x + b.
//   input [N, in_features] -> output [N, out_features];  weight [out_features, in_features]
#pragma once

#include <memory>
#include <vector>

#include "../layer.h"

namespace gapnet {

class Dense : public Layer {
public:
    // `bias` empty means no bias.
    Dense(int64_t in_features, int64_t out_features, std::vector<float> weight, std::vector<float> bias);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    std::string_view type() const override { return "dense"; }
    Shape output_shape(const Shape& input) const override;
    int64_t parameter_count() const override { return static_cast<int64_t>(weight_.size() + bias_.size()); }
    int64_t macs(const Shape&) const override { return in_ * out_; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

    int64_t in_features() const { return in_; }
    int64_t out_features() const { return out_; }
    const std::vector<float>& weight() const { return weight_; }
    const std::vector<float>& bias() const { return bias_; }

private:
    int64_t in_, out_;
    std::vector<float> weight_, bias_;
};

}  // namespace gapnet
