// A vector of 16 floats, for the kernels written once for every CPU: GCC's vector extension is one
// AVX-512 register when the build targets AVX-512 (-march=native on such a machine) and is split
// into narrower registers elsewhere (GAPNET_NATIVE=OFF). Loads and stores are unaligned.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gapnet {

using Vec16 = float __attribute__((vector_size(64)));
inline constexpr int kVec16Lanes = 16;

inline Vec16 load16(const float* p) {
    Vec16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store16(float* p, Vec16 v) { std::memcpy(p, &v, sizeof v); }

inline Vec16 broadcast16(float s) { return Vec16{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

// Copies n < 16 floats (masked moves with AVX-512: nothing read or written past them).
inline void copy_under16(float* dst, const float* src, int64_t n) {
#if defined(__AVX512F__)
    const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
    _mm512_mask_storeu_ps(dst, mask, _mm512_maskz_loadu_ps(mask, src));
#else
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
#endif
}

// The first n <= 16 floats at p, the other lanes 0 (masked with AVX-512: nothing read past them).
inline Vec16 load_under16(const float* p, int64_t n) {
#if defined(__AVX512F__)
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
#else
    Vec16 v{};
    std::memcpy(&v, p, static_cast<size_t>(n) * sizeof(float));
    return v;
#endif
}

// Stores the first n <= 16 lanes of v (nothing written past them).
inline void store_under16(float* p, Vec16 v, int64_t n) {
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
#else
    std::memcpy(p, &v, static_cast<size_t>(n) * sizeof(float));
#endif
}

// Copies n floats, a vector at a time (nothing read or written past them).
inline void copy_floats(float* dst, const float* src, int64_t n) {
    int64_t i = 0;
    for (; i + kVec16Lanes <= n; i += kVec16Lanes) store16(dst + i, load16(src + i));
    if (i < n) copy_under16(dst + i, src + i, n - i);
}

// a * b + c, fused (one rounding) with AVX-512; without it, as the compiler contracts it.
inline Vec16 fma16(Vec16 a, Vec16 b, Vec16 c) {
#if defined(__AVX512F__)
    return _mm512_fmadd_ps(a, b, c);
#else
    return a * b + c;
#endif
}

}  // namespace gapnet
