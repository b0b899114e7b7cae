// bfloat16: the upper half of a float32 (sign, the same 8-bit exponent, 7 of the 23 mantissa bits),
// so it spans float32's range at about 3 significant digits. A bfloat16 value widens to float32
// exactly; a float32 narrows by rounding to nearest, ties to even, as AVX512-BF16's vcvtneps2bf16
// does (it also reads a denormal input as zero, and keeps a NaN a quiet NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace gapnet {

inline float from_bfloat16(uint16_t b) {
    const uint32_t bits = uint32_t{b} << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline uint16_t to_bfloat16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);           // zero, denormal
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);  // to nearest, ties to even (may carry into the exponent)
    return static_cast<uint16_t>(bits >> 16);
}

// f rounded to the nearest bfloat16, as a float.
inline float round_to_bfloat16(float f) { return from_bfloat16(to_bfloat16(f)); }

}  // namespace gapnet
