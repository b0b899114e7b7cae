// Small helpers shared by the unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/activation_function.h"
#include "engine/layer.h"

namespace gapnet::test {

// Runs `layer` on one sample of shape `shape` holding `values`; returns the output without the batch.
inline Tensor run(const Layer& layer, const Shape& shape, std::vector<float> values) {
    const Tensor input(batched(1, shape), std::move(values));
    const Shape sample_out = layer.output_shape(Shapes{shape});
    Tensor output(batched(1, sample_out));
    gapnet::ThreadPool serial(1);
    layer.forward(Inputs{&input}, output, serial);
    output.shape = sample_out;
    return output;
}

// ReLU when `relu`, else the identity: the two epilogues the kernel tests always ran.
inline Activation relu_if(bool relu) { return relu ? Activation{Activation::Kind::relu} : Activation{}; }

// One activation of every kind, with non-default parameters (clip with a negative minimum, a leaky
// slope other than 0.01, PyTorch's hard_sigmoid): what the fused epilogues are tested with.
inline std::vector<Activation> every_activation() {
    using K = Activation::Kind;
    return {{K::identity},         {K::relu},    {K::clip, -0.25f, 0.5f},
            {K::leaky_relu, 0.1f}, {K::sigmoid}, {K::hard_sigmoid, 1.0f / 6.0f, 0.5f},
            {K::hard_swish},       {K::silu},    {K::tanh}};
}

// `values` with `activation` applied, one value at a time.
inline std::vector<float> activated(std::vector<float> values, const Activation& activation) {
    for (float& v : values) v = activation(v);
    return values;
}

// n values uniform in [-scale, scale].
inline std::vector<float> random_values(size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

// Every value of `actual` equals `expected` within `tolerance`.
inline void require_values(const std::vector<float>& actual, const std::vector<float>& expected,
                           double tolerance = 1e-6) {
    REQUIRE(actual.size() == expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
        INFO("value " << i);
        REQUIRE(actual[i] == Approx(expected[i]).margin(tolerance));
    }
}

// The source tree, for data files.
inline std::string source_path(const std::string& relative) { return std::string(GAPNET_SOURCE_DIR) + "/" + relative; }

}  // namespace gapnet::test
