// An element-wise activation described as data (a kind and up to two numbers), so that one
// definition serves the activation layers and every kernel that applies one to its results while
// they are still in registers or cache (a conv2d or dense followed by an activation, Graph::fuse).
// A kernel calls apply(); no kernel tests for particular activations (ncnn's fused_activation.h
// does the same).
//
// The formulas are PyTorch's, so that fused and unfused results, and PyTorch's own, agree:
//   identity      x
//   relu          max(x, 0)                            NaN stays NaN (as torch.relu)
//   clip          min(max(x, a), b)                    relu6 is clip(0, 6); NaN stays NaN
//   leaky_relu    x >= 0 ? x : a * x
//   sigmoid       1 / (1 + exp(-x))
//   hard_sigmoid  max(0, min(1, a * x + b))            ONNX's defaults a = 0.2, b = 0.5;
//                                                      PyTorch's nn.Hardsigmoid is a = 1/6, b = 0.5
//   hard_swish    x * min(max(x + 3, 0), 6) / 6        PyTorch's nn.Hardswish, ONNX's HardSwish
//   silu          x / (1 + exp(-x))                    x * sigmoid(x), a.k.a. swish
//   tanh          tanh(x)
// exp is exp16 (kernels/exp16.h, within about 1 ulp of e^x), 16 values at a time. The scalar form
// computes each value exactly as the vector form computes its lane (the cheap kinds with scalar
// operations of the same rounding; sigmoid and silu in a vector's first lane; tanh lane by lane), so
// results do not depend on which kernel ran.
#pragma once

#include <cmath>
#include <cstdint>

#include "exp16.h"
#include "vec16.h"

namespace gapnet {

struct Activation {
    enum class Kind : uint8_t { identity, relu, clip, leaky_relu, sigmoid, hard_sigmoid, hard_swish, silu, tanh };
    Kind kind = Kind::identity;
    float a = 0.0f, b = 0.0f;  // clip: min, max; leaky_relu: negative slope; hard_sigmoid: alpha, beta

    bool is_identity() const { return kind == Kind::identity; }

    float operator()(float x) const {
        switch (kind) {
            case Kind::identity: return x;
            case Kind::relu: return x < 0.0f ? 0.0f : x;
            case Kind::clip: return x < a ? a : x > b ? b : x;
            case Kind::leaky_relu: return x < 0.0f ? a * x : x;
            case Kind::sigmoid:
            case Kind::silu: return (*this)(broadcast16(x))[0];
            case Kind::hard_sigmoid: {
                const float y = a * x + b;
                return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
            }
            case Kind::hard_swish: {
                const float r = x + 3.0f;
                return x * (r < 0.0f ? 0.0f : r > 6.0f ? 6.0f : r) / 6.0f;
            }
            case Kind::tanh: return std::tanh(x);
        }
        return x;
    }

    Vec16 operator()(Vec16 v) const {
        switch (kind) {
            case Kind::identity: return v;
            case Kind::relu: return v < 0.0f ? Vec16{} : v;
            case Kind::clip: {
                const Vec16 low = v < a ? broadcast16(a) : v;
                return low > b ? broadcast16(b) : low;
            }
            case Kind::leaky_relu: return v < 0.0f ? v * a : v;
            case Kind::sigmoid: return 1.0f / (1.0f + exp16(-v));
            case Kind::silu: return v / (1.0f + exp16(-v));
            default:
                for (int i = 0; i < kVec16Lanes; ++i) v[i] = (*this)(v[i]);
                return v;
        }
    }

    // values[i] = f(values[i] + bias), for `count` values sharing one bias: a vector at a time (the
    // kind is tested once per 16 values), the tail one by one.
    void apply(float* values, int64_t count, float bias = 0.0f) const {
        if (is_identity() && bias == 0.0f) return;
        const Vec16 b = broadcast16(bias);
        int64_t i = 0;
        for (; i + kVec16Lanes <= count; i += kVec16Lanes) store16(values + i, (*this)(load16(values + i) + b));
        for (; i < count; ++i) values[i] = (*this)(values[i] + bias);
    }
};

}  // namespace gapnet
