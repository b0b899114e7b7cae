// dense: a fully connected layer (PyTorch's nn.Linear): y = W x + b.
//   input [N, in_features] -> output [N, out_features];  weight [out_features, in_features]
// The arithmetic is in kernels/fully_connected.h. A following activation is fused into it (Graph::fuse),
// sharing the parameters.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "../kernels/activation_function.h"
#include "../kernels/fully_connected.h"
#include "../layer.h"
#include "../precision.h"

namespace gapnet {

class Dense : public UnaryLayer {
public:
    // `bias` empty means no bias. `precision`: the weights' (bfloat16: their values are bfloat16's;
    // the kernel computes in float32).
    Dense(int64_t in_features, int64_t out_features, std::vector<float> weight, std::vector<float> bias,
          Precision precision = Precision::float32);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    std::string_view type() const override { return "dense"; }
    Shape output_shape(const Shape& input) const override;
    int64_t parameter_count() const override { return static_cast<int64_t>(weight().size() + bias().size()); }
    int64_t macs(const Shape&) const override { return in_ * out_; }
    int64_t workspace_elements(const Shape&) const override { return dense_workspace(in_, out_); }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;
    std::unique_ptr<Layer> fused_with(const Layer& next, int next_position, int next_inputs) const override;

    int64_t in_features() const { return in_; }
    int64_t out_features() const { return out_; }
    const std::vector<float>& weight() const { return parameters_->weight; }
    const std::vector<float>& bias() const { return parameters_->bias; }
    const Activation& activation() const { return activation_; }  // a fused activation, or identity
    Precision precision() const override { return parameters_->precision; }
    int64_t parameter_bytes() const override {
        return precision_bytes(precision()) * static_cast<int64_t>(weight().size()) +
               4 * static_cast<int64_t>(bias().size());
    }

private:
    struct Parameters {
        std::vector<float> weight, bias;
        Precision precision = Precision::float32;
        // Calls of forward() on a small batch so far: their parity alternates the order in which
        // the weights are read (kernels/fully_connected.h). Shared by the fused layer, as the weights are.
        mutable std::atomic<uint64_t> passes{0};
    };
    Dense(int64_t in_features, int64_t out_features, std::shared_ptr<const Parameters> parameters,
          Activation activation);

    int64_t in_, out_;
    std::shared_ptr<const Parameters> parameters_;
    Activation activation_;
};

}  // namespace gapnet
