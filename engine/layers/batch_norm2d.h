// batch_norm2d at inference (PyTorch's nn.BatchNorm2d in eval mode), per channel c:
//   y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]
// computed as y = x * scale[c] + shift[c] with scale and shift precomputed in double precision.
//   input, output [N, C, H, W], C = num_features
#pragma once

#include <memory>
#include <vector>

#include "../layer.h"

namespace gapnet {

class BatchNorm2d : public UnaryLayer {
public:
    // weight and bias empty mean 1 and 0 (PyTorch's affine=False).
    BatchNorm2d(int64_t num_features, double eps, std::vector<float> weight, std::vector<float> bias,
                std::vector<float> running_mean, std::vector<float> running_var);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    std::string_view type() const override { return "batch_norm2d"; }
    Shape output_shape(const Shape& input) const override;
    int64_t parameter_count() const override { return stored_values_; }
    int64_t macs(const Shape& input) const override { return element_count(input); }
    Blocking blocking(const Shape&) const override { return Blocking::follows; }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

    const std::vector<float>& scale() const { return scale_; }
    const std::vector<float>& shift() const { return shift_; }

private:
    int64_t num_features_;
    int64_t stored_values_;
    std::vector<float> scale_, shift_;
};

}  // namespace gapnet
