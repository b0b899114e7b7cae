// Small helpers shared by the unit tests.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "engine/layer.h"

namespace gapnet::test {

// Runs `layer` on one sample of shape `shape` holding `values`; returns the output without the batch.
inline Tensor run(const Layer& layer, const Shape& shape, std::vector<float> values) {
    Shape batch_shape{1};
    batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
    const Tensor input(batch_shape, std::move(values));
    Shape out_shape{1};
    const Shape sample_out = layer.output_shape(shape);
    out_shape.insert(out_shape.end(), sample_out.begin(), sample_out.end());
    Tensor output(out_shape);
    gapnet::ThreadPool serial(1);
    layer.forward(input, output, serial);
    output.shape = sample_out;
    return output;
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
