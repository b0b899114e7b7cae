// What the convolution and dense kernels do to their results before returning them, while those
// are still in cache: add the bias, then optionally ReLU (a fused relu layer). ReLU keeps NaN as
// NaN, as the relu layer does (x < 0 is false for NaN).
#pragma once

#include <cstdint>

namespace gapnet {

struct Epilogue {
    const float* bias = nullptr;  // one value per output channel/feature; null: no bias
    bool relu = false;
};

// values[i] = relu?(values[i] + bias), for `count` values sharing one bias.
inline void finish(float* values, int64_t count, float bias, bool relu) {
    if (relu) {
        for (int64_t i = 0; i < count; ++i) {
            const float v = values[i] + bias;
            values[i] = v < 0.0f ? 0.0f : v;
        }
    } else if (bias != 0.0f) {
        for (int64_t i = 0; i < count; ++i) values[i] += bias;
    }
}

}  // namespace gapnet
