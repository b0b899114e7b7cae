#include "max_pool2d.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "../kernels/parallel.h"
#include "../kernels/scratch.h"
#include "../kernels/vec16.h"
#include "../kernels/window_phases.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gapnet {

namespace {

#if defined(__AVX512F__)
// out[ox] for ox in [0, count) of a 2x2 stride-2 window over rows r0, r1 (2*count values each read),
// 16 outputs a step: the same maxima, in the same order, as the scalar loop (max_ps(v, m) is
// (v > m) ? v : m, i.e. std::max(m, v), NaN and signed zeros included). Returns the outputs done.
int64_t max_2x2_row(const float* r0, const float* r1, int64_t count, float* out) {
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
}

// The 2x2 stride-2 unpadded window (most CNNs' pool) straight from the input rows: a plane of
// a 28 x 28 map is too small to pay for the general path's copy.
void max_2x2_plane(const float* in, int64_t in_h, int64_t in_w, float* out, int64_t out_h, int64_t out_w) {
    for (int64_t oy = 0; oy < out_h; ++oy) {
        const int64_t y0 = 2 * oy, y1 = std::min(2 * oy + 2, in_h);
        const float* r0 = in + y0 * in_w;
        int64_t ox = 0;
        if (y1 - y0 == 2) {
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
        for (; ox < out_w; ++ox) {  // a ceil_mode window past the last row or column
            float m = -std::numeric_limits<float>::infinity();
            for (int64_t y = y0; y < y1; ++y)
                for (int64_t x = 2 * ox; x < std::min(2 * ox + 2, in_w); ++x) m = std::max(m, in[y * in_w + x]);
            out[oy * out_w + ox] = m;
        }
    }
}
#endif

}  // namespace

MaxPool2d::MaxPool2d(Window2d window) : w_(window) { w_.check_pads_smaller_than_kernel(); }

std::unique_ptr<Layer> MaxPool2d::create(LayerConfig& config) {
    return std::make_unique<MaxPool2d>(read_pooling_window(config));
}

int64_t MaxPool2d::workspace_elements(const Shape& input) const {
    const Shape out = output_shape(input);
    const WindowPhases layout(w_, input[1], input[2], out[1], out[2]);
    return layout.phase_floats() + layout.wide_floats();
}

// A plane at a time, padded with -infinity and split by stride (kernels/window_phases.h), 16
// outputs a step; with AVX-512, a 2x2 stride-2 unpadded window reads the input rows directly
// (max_2x2_plane). Each output takes its taps row by row from -infinity, m = (m < v) ? v : m, i.e.
// std::max(m, v): padding never wins, NaN is never a maximum, and of two equal zeros the first
// stays, as in the plain loop over the window; both paths agree bit for bit. Chunks of whole
// planes, at least kChunkOutputs outputs each.
void MaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    constexpr int64_t kChunkOutputs = 4096;
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_h = output.shape[2], out_w = output.shape[3];
    const WindowPhases layout(w_, in_h, in_w, out_h, out_w);
    const std::vector<int64_t>& offsets = layout.tap_offsets();
    const int64_t per_chunk = std::max<int64_t>(1, kChunkOutputs / (out_h * out_w));
    const float lowest = -std::numeric_limits<float>::infinity();
#if defined(__AVX512F__)
    const bool two_by_two = w_.kernel_h == 2 && w_.kernel_w == 2 && w_.stride_h == 2 && w_.stride_w == 2 &&
                            w_.pad_top == 0 && w_.pad_left == 0;
#endif
    run_chunks(pool, (planes + per_chunk - 1) / per_chunk, planes * out_h * out_w * w_.kernel_h * w_.kernel_w,
               [&](int64_t chunk) {
                   thread_local std::vector<float> scratch;
                   float* phases = thread_scratch(scratch, layout.phase_floats() + layout.wide_floats());
                   float* wide = phases + layout.phase_floats();
                   for (int64_t p = chunk * per_chunk; p < std::min(planes, (chunk + 1) * per_chunk); ++p) {
                       float* out = output.ptr() + p * out_h * out_w;
#if defined(__AVX512F__)
                       if (two_by_two) {
                           max_2x2_plane(input.ptr() + p * in_h * in_w, in_h, in_w, out, out_h, out_w);
                           continue;
                       }
#endif
                       float* target = layout.wide_target(wide, out);
                       layout.fill(input.ptr() + p * in_h * in_w, lowest, phases);
                       for (int64_t j = 0; j < layout.wide_count(); j += kVec16Lanes) {
                           Vec16 m = broadcast16(lowest);
                           for (const int64_t offset : offsets) {
                               const Vec16 v = load16(phases + offset + j);
                               m = m < v ? v : m;
                           }
                           layout.store(target, j, m);
                       }
                       layout.unwiden(wide, out);
                   }
               });
}

}  // namespace gapnet
