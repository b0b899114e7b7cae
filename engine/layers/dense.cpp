#include "dense.h"

#include "../error.h"
#include "../kernels/fully_connected.h"
#include "activation.h"

namespace gapnet {

Dense::Dense(int64_t in_features, int64_t out_features, std::vector<float> weight, std::vector<float> bias,
             Precision precision)
    : in_(in_features), out_(out_features) {
    if (in_ < 1 || out_ < 1) throw Error("in_features and out_features must be positive");
    if (static_cast<int64_t>(weight.size()) != in_ * out_)
        throw Error(std::to_string(weight.size()) + " values, shape [" + std::to_string(out_) + "," +
                        std::to_string(in_) + "] needs " + std::to_string(in_ * out_),
                    "weight");
    if (!bias.empty() && static_cast<int64_t>(bias.size()) != out_)
        throw Error(std::to_string(bias.size()) + " values, out_features is " + std::to_string(out_), "bias");
    auto parameters = std::make_shared<Parameters>();
    parameters->weight = std::move(weight);
    parameters->bias = std::move(bias);
    parameters->precision = precision;
    parameters_ = std::move(parameters);
}

Dense::Dense(int64_t in_features, int64_t out_features, std::shared_ptr<const Parameters> parameters,
             Activation activation)
    : in_(in_features), out_(out_features), parameters_(std::move(parameters)), activation_(activation) {}

std::unique_ptr<Layer> Dense::create(LayerConfig& config) {
    const int64_t in = config.integer("in_features", 1);
    const int64_t out = config.integer("out_features", 1);
    Precision precision = Precision::float32;
    auto weight = config.tensor("weight", {out, in}, true, &precision);
    auto bias = config.tensor("bias", {out}, false);
    return std::make_unique<Dense>(in, out, std::move(*weight), bias ? std::move(*bias) : std::vector<float>{},
                                   precision);
}

Shape Dense::output_shape(const Shape& input) const {
    if (input.size() != 1)
        throw Error("needs a vector input, got " + to_string(input) + " (put a flatten or a global pool before it)",
                    "in_features");
    if (input[0] != in_)
        throw Error("is " + std::to_string(in_) + " but the input has " + std::to_string(input[0]) +
                        (input[0] == 1 ? " feature" : " features"),
                    "in_features");
    return {out_};
}

void Dense::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const bool backwards = input.shape[0] < 4 && parameters_->passes.fetch_add(1, std::memory_order_relaxed) % 2 == 1;
    dense_fast(in_, out_, weight().data(), {bias().empty() ? nullptr : bias().data(), activation_}, input, output, pool,
               backwards);
}

std::unique_ptr<Layer> Dense::fused_with(const Layer& next, int, int) const {
    const auto* act = dynamic_cast<const ActivationLayer*>(&next);
    if (!activation_.is_identity() || !act) return nullptr;
    return std::unique_ptr<Layer>(new Dense(in_, out_, parameters_, act->activation()));
}

}  // namespace gapnet
