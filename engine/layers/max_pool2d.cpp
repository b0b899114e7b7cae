#include "max_pool2d.h"

#include <algorithm>
#include <limits>

#include "../kernels/parallel.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gapnet {

namespace {

// out[ox] for ox in [0, count) of a 2x2 stride-2 window over rows r0, r1 (2*count values each read),
// 16 outputs a step: the same maxima, in the same order, as the scalar loop (max_ps(v, m) is
// (v > m) ? v : m, i.e. std::max(m, v), NaN and signed zeros included). Returns the outputs done.
int64_t max_2x2_row(const float* r0, const float* r1, int64_t count, float* out) {
#if defined(__AVX512F__)
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int64_t ox = 0;
    for (; ox < count; ox += 16) {
        const int64_t n = std::min<int64_t>(16, count - ox);  // outputs, 2n inputs a row
        const __mmask16 lo = static_cast<__mmask16>(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
        const __mmask16 hi = static_cast<__mmask16>(n <= 8 ? 0 : n == 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
        const __m512 a0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox), b0 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
        const __m512 a1 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox), b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
        __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
        m = _mm512_maskz_max_ps(0xFFFF, _mm512_permutex2var_ps(a0, even, b0), m);
        m = _mm512_maskz_max_ps(0xFFFF, _mm512_permutex2var_ps(a0, odd, b0), m);
        m = _mm512_maskz_max_ps(0xFFFF, _mm512_permutex2var_ps(a1, even, b1), m);
        m = _mm512_maskz_max_ps(0xFFFF, _mm512_permutex2var_ps(a1, odd, b1), m);
        _mm512_mask_storeu_ps(out + ox, static_cast<__mmask16>((1u << n) - 1), m);
    }
    return count;
#else
    (void)r0, (void)r1, (void)count, (void)out;
    return 0;
#endif
}

}  // namespace

MaxPool2d::MaxPool2d(Window2d window) : w_(window) { w_.check_pads_smaller_than_kernel(); }

std::unique_ptr<Layer> MaxPool2d::create(LayerConfig& config) {
    return std::make_unique<MaxPool2d>(read_pooling_window(config));
}

// Planes are spread over the threads in fixed blocks. A 2x2 stride-2 unpadded window (the common
// case) has its own loop; both take the maximum in the same order (std::max from -infinity, row by
// row), so they agree bit for bit, NaN included (never a maximum, as in the reference loop).
void MaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const bool two_by_two = w_.kernel_h == 2 && w_.kernel_w == 2 && w_.stride_h == 2 && w_.stride_w == 2 &&
                            w_.pad_top == 0 && w_.pad_left == 0;
    constexpr int64_t kPlanes = 8;  // planes a chunk
    const int64_t work = planes * out_h * out_w * w_.kernel_h * w_.kernel_w;
    run_chunks(pool, (planes + kPlanes - 1) / kPlanes, work, [&](int64_t chunk) {
        for (int64_t p = chunk * kPlanes; p < std::min(planes, (chunk + 1) * kPlanes); ++p) {
            const float* in = input.ptr() + p * in_h * in_w;
            float* out = output.ptr() + p * out_h * out_w;
            for (int64_t oy = 0; oy < out_h; ++oy) {
                const int64_t y0 = std::max<int64_t>(oy * w_.stride_h - w_.pad_top, 0);
                const int64_t y1 = std::min(oy * w_.stride_h - w_.pad_top + w_.kernel_h, in_h);
                int64_t ox = 0;
                if (two_by_two && y1 - y0 == 2) {
                    const float* r0 = in + y0 * in_w;
                    const float* r1 = r0 + in_w;
                    ox = max_2x2_row(r0, r1, std::min(out_w, in_w / 2), out + oy * out_w);
                    for (; ox < out_w && 2 * ox + 1 < in_w; ++ox) {
                        float m = -std::numeric_limits<float>::infinity();
                        m = std::max(m, r0[2 * ox]);
                        m = std::max(m, r0[2 * ox + 1]);
                        m = std::max(m, r1[2 * ox]);
                        m = std::max(m, r1[2 * ox + 1]);
                        out[oy * out_w + ox] = m;
                    }
                }
                for (; ox < out_w; ++ox) {
                    const int64_t x0 = std::max<int64_t>(ox * w_.stride_w - w_.pad_left, 0);
                    const int64_t x1 = std::min(ox * w_.stride_w - w_.pad_left + w_.kernel_w, in_w);
                    float m = -std::numeric_limits<float>::infinity();
                    for (int64_t y = y0; y < y1; ++y)
                        for (int64_t x = x0; x < x1; ++x) m = std::max(m, in[y * in_w + x]);
                    out[oy * out_w + ox] = m;
                }
            }
        }
    });
}

}  // namespace gapnet
