// int8 quantization's rounding, as ONNX's QuantizeLinear defines it: q = saturate(round(x / scale) +
// zero_point), rounding half to even, saturating to uint8's 0..255 (or int8's -128..127).
#pragma once

#include <cmath>
#include <cstdint>

namespace gapnet {

// x / scale rounded half to even (the default rounding mode), plus zero_point, clamped to 0..255;
// computed in float32 like the AVX-512 path (a division, a rounding, an exact add), so both agree.
inline uint8_t quantize_uint8(float x, float scale, int32_t zero_point) {
    float q = std::nearbyint(x / scale) + static_cast<float>(zero_point);
    q = q >= 0.0f ? q : 0.0f;  // a NaN too, as AVX-512's max does
    q = q <= 255.0f ? q : 255.0f;
    return static_cast<uint8_t>(q);
}

}  // namespace gapnet
