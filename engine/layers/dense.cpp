#include "dense.h"

#include "../error.h"

namespace gapnet {

Dense::Dense(int64_t in_features, int64_t out_features, std::vector<float> weight, std::vector<float> bias)
    : in_(in_features), out_(out_features), weight_(std::move(weight)), bias_(std::move(bias)) {
    if (in_ < 1 || out_ < 1) throw Error("in_features and out_features must be positive");
    if (static_cast<int64_t>(weight_.size()) != in_ * out_)
        throw Error(std::to_string(weight_.size()) + " values, shape [" + std::to_string(out_) + "," +
                        std::to_string(in_) + "] needs " + std::to_string(in_ * out_), "weight");
    if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != out_)
        throw Error(std::to_string(bias_.size()) + " values, out_features is " + std::to_string(out_), "bias");
}

std::unique_ptr<Layer> Dense::create(LayerConfig& config) {
    const int64_t in = config.integer("in_features", 1);
    const int64_t out = config.integer("out_features", 1);
    auto weight = config.tensor("weight", {out, in}, true);
    auto bias = config.tensor("bias", {out}, false);
    return std::make_unique<Dense>(in, out, std::move(*weight), bias ? std::move(*bias) : std::vector<float>{});
}

Shape Dense::output_shape(const Shape& input) const {
    if (input.size() != 1)
        throw Error("needs a vector input, got " + to_string(input) +
                        " (put a flatten or a global pool before it)", "in_features");
    if (input[0] != in_)
        throw Error("is " + std::to_string(in_) + " but the input has " + std::to_string(input[0]) +
                        " features", "in_features");
    return {out_};
}

void Dense::forward(const Tensor& input, Tensor& output) const {
    const int64_t batch = input.shape[0];
    for (int64_t n = 0; n < batch; ++n) {
        const float* x = input.ptr() + n * in_;
        float* y = output.ptr() + n * out_;
        for (int64_t o = 0; o < out_; ++o) {
            const float* w = weight_.data() + o * in_;
            float sum = bias_.empty() ? 0.0f : bias_[o];
            for (int64_t i = 0; i < in_; ++i) sum += w[i] * x[i];
            y[o] = sum;
        }
    }
}

}  // namespace gapnet
