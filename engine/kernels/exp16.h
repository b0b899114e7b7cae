// e^x for 16 floats at once, for the activations that need it (sigmoid, silu). A lane-by-lane
// std::exp made them the slowest part of EfficientNet's convolutions (silu after a 1x1 conv took
// 10x the conv itself).
//
// The method is Cephes' expf (S. L. Moshier, Cephes Math Library, 1984-2000; the approach SLEEF and
// ONNX Runtime's MLAS vectorize too): e^x = 2^n * e^r with n = round(x / ln 2) and
// r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two constants, so r is exact to float precision),
// e^r by a degree-7 minimax polynomial (relative error about 1 ulp), 2^n built in the exponent bits.
// x is clamped to [-87, 88] so that 2^n stays a normal float: e^88 = 1.65e38 stands for anything
// larger and e^-87 = 1.6e-38 for anything smaller, which changes sigmoid and silu by less than 1e-37.
// NaN stays NaN.
#pragma once

#include <cstdint>

#include "vec16.h"

namespace gapnet {

inline Vec16 exp16(Vec16 x) {
    using Int16 = int32_t __attribute__((vector_size(64)));
    x = x < -87.0f ? broadcast16(-87.0f) : x;
    x = x > 88.0f ? broadcast16(88.0f) : x;
    // n = round(x log2 e): adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
    const Vec16 shifter = broadcast16(12582912.0f);
    const Vec16 t = fma16(x, broadcast16(1.44269504088896341f), shifter);
    const Vec16 n = t - shifter;
    const Vec16 r = fma16(n, broadcast16(2.12194440e-4f), fma16(n, broadcast16(-0.693359375f), x));
    Vec16 p = broadcast16(1.9875691500e-4f);
    p = fma16(p, r, broadcast16(1.3981999507e-3f));
    p = fma16(p, r, broadcast16(8.3334519073e-3f));
    p = fma16(p, r, broadcast16(4.1665795894e-2f));
    p = fma16(p, r, broadcast16(1.6666665459e-1f));
    p = fma16(p, r, broadcast16(5.0000001201e-1f));
    p = fma16(p, r * r, r) + 1.0f;
    // 2^n: n + 127 in the exponent field; n is in [-126, 127], read from t's low mantissa bits.
    // (GCC's vector casts between types of one size reinterpret the bits.)
    const Int16 exponent = (((Int16)t - (Int16)shifter) + 127) << 23;
    return p * (Vec16)exponent;
}

}  // namespace gapnet
