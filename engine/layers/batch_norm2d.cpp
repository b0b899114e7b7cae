#include "batch_norm2d.h"

#include <cmath>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/vec16.h"

namespace gapnet {

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, std::vector<float> weight, std::vector<float> bias,
                         std::vector<float> running_mean, std::vector<float> running_var)
    : num_features_(num_features), scale_(num_features), shift_(num_features) {
    const auto n = static_cast<size_t>(num_features);
    if (num_features < 1) throw Error("must be positive", "num_features");
    if (!(eps > 0) || !std::isfinite(eps)) throw Error("must be a positive number", "eps");
    if (running_mean.size() != n) throw Error("needs " + std::to_string(n) + " values", "running_mean");
    if (running_var.size() != n) throw Error("needs " + std::to_string(n) + " values", "running_var");
    if (!weight.empty() && weight.size() != n) throw Error("needs " + std::to_string(n) + " values", "weight");
    if (!bias.empty() && bias.size() != n) throw Error("needs " + std::to_string(n) + " values", "bias");
    stored_values_ = static_cast<int64_t>(weight.size() + bias.size() + 2 * n);
    for (size_t c = 0; c < n; ++c) {
        if (running_var[c] < 0) throw Error("value " + std::to_string(c) + " is negative", "running_var");
        const double inv_std = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
        const double gamma = weight.empty() ? 1.0 : weight[c];
        const double beta = bias.empty() ? 0.0 : bias[c];
        scale_[c] = static_cast<float>(gamma * inv_std);
        shift_[c] = static_cast<float>(beta - running_mean[c] * gamma * inv_std);
    }
}

std::unique_ptr<Layer> BatchNorm2d::create(LayerConfig& config) {
    const int64_t c = config.integer("num_features", 1);
    const double eps = config.positive_number("eps", 1e-5);
    auto weight = config.tensor("weight", {c}, false);
    auto bias = config.tensor("bias", {c}, false);
    auto mean = config.tensor("running_mean", {c}, true);
    auto var = config.tensor("running_var", {c}, true);
    for (size_t i = 0; i < var->size(); ++i)
        if ((*var)[i] < 0) config.fail("running_var", "value " + std::to_string(i) + " is negative");
    return std::make_unique<BatchNorm2d>(c, eps, weight ? std::move(*weight) : std::vector<float>{},
                                         bias ? std::move(*bias) : std::vector<float>{}, std::move(*mean),
                                         std::move(*var));
}

Shape BatchNorm2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input), "num_features");
    if (input[0] != num_features_)
        throw Error("is " + std::to_string(num_features_) + " but the input has " + std::to_string(input[0]) +
                        (input[0] == 1 ? " channel" : " channels"),
                    "num_features");
    return input;
}

// Planes are spread over the threads, one chunk each. (After a conv2d, Graph::fuse folds this
// layer into the convolution's weights: Conv2d::fused_with.)
void BatchNorm2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(output)) {  // a chunk per (sample, block): a vector of scales and one of shifts
        const int64_t blocks = output.shape[1], plane = output.shape[2] * output.shape[3];
        run_chunks(pool, output.shape[0] * blocks, output.size(), [&](int64_t chunk) {
            const int64_t c0 = chunk % blocks * kBlock, lanes = std::min(kBlock, num_features_ - c0);
            const Vec16 a = load_under16(scale_.data() + c0, lanes), b = load_under16(shift_.data() + c0, lanes);
            const float* in = input.ptr() + chunk * plane * kBlock;
            float* out = output.ptr() + chunk * plane * kBlock;
            for (int64_t i = 0; i < plane * kBlock; i += kBlock) store16(out + i, load16(in + i) * a + b);
        });
        return;
    }
    const int64_t planes = input.shape[0] * num_features_;
    const int64_t plane = input.shape[2] * input.shape[3];
    run_chunks(pool, planes, planes * plane, [&](int64_t p) {
        const float a = scale_[p % num_features_], b = shift_[p % num_features_];
        const float* in = input.ptr() + p * plane;
        float* out = output.ptr() + p * plane;
        for (int64_t i = 0; i < plane; ++i) out[i] = in[i] * a + b;
    });
}

}  // namespace gapnet
