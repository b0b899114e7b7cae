#include "activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../kernels/parallel.h"

namespace gapnet {
namespace {

using Kind = Activation::Kind;

std::unique_ptr<Layer> make(const char* type, Kind kind, float a = 0.0f, float b = 0.0f) {
    return std::make_unique<ActivationLayer>(type, Activation{kind, a, b});
}

// An attribute as a float32 (the precision the activation computes in); absent: `fallback`.
float read_float(LayerConfig& config, const std::string& key, double fallback) {
    const double value = config.number(key).value_or(fallback);
    if (std::abs(value) > std::numeric_limits<float>::max()) config.fail(key, "is beyond the float32 range");
    return static_cast<float>(value);
}

}  // namespace

std::unique_ptr<Layer> ActivationLayer::create_relu(LayerConfig&) { return make("relu", Kind::relu); }
std::unique_ptr<Layer> ActivationLayer::create_relu6(LayerConfig&) { return make("relu6", Kind::clip, 0.0f, 6.0f); }
std::unique_ptr<Layer> ActivationLayer::create_sigmoid(LayerConfig&) { return make("sigmoid", Kind::sigmoid); }
std::unique_ptr<Layer> ActivationLayer::create_hard_swish(LayerConfig&) { return make("hard_swish", Kind::hard_swish); }
std::unique_ptr<Layer> ActivationLayer::create_silu(LayerConfig&) { return make("silu", Kind::silu); }
std::unique_ptr<Layer> ActivationLayer::create_tanh(LayerConfig&) { return make("tanh", Kind::tanh); }

std::unique_ptr<Layer> ActivationLayer::create_clip(LayerConfig& config) {
    const float infinity = std::numeric_limits<float>::infinity();
    const float min = config.number("min") ? read_float(config, "min", 0.0) : -infinity;
    const float max = config.number("max") ? read_float(config, "max", 0.0) : infinity;
    if (min > max) config.fail("max", "is less than min");
    return make("clip", Kind::clip, min, max);
}

std::unique_ptr<Layer> ActivationLayer::create_leaky_relu(LayerConfig& config) {
    return make("leaky_relu", Kind::leaky_relu, read_float(config, "negative_slope", 0.01));
}

std::unique_ptr<Layer> ActivationLayer::create_hard_sigmoid(LayerConfig& config) {
    return make("hard_sigmoid", Kind::hard_sigmoid, read_float(config, "alpha", 0.2), read_float(config, "beta", 0.5));
}

void ActivationLayer::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    run_blocks(pool, input.size(), 1, [&](int64_t begin, int64_t end) {
        std::copy(input.ptr() + begin, input.ptr() + end, output.ptr() + begin);
        activation_.apply(output.ptr() + begin, end - begin);
    });
}

}  // namespace gapnet
