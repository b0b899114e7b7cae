#include "pooling_blocked.h"

#include <algorithm>
#include <limits>

#include "blocked.h"
#include "parallel.h"
#include "vec16.h"
#include "window_taps.h"

namespace gapnet {

namespace {

// A chunk spans enough output rows for at least this many output pixels of a block.
constexpr int64_t kChunkPixels = 512;

// Runs rows(in, out, oy0, oy1) over spans of output rows [oy0, oy1) of each (sample, block)
// (for_each_row_span); in: its input plane [H][W][16], out: its output plane [H'][W'][16]. `reads`:
// the input vectors an output pixel reads, for run_chunks' measure of the work.
template <typename Rows>
void row_chunks(const Tensor& input, Tensor& output, int64_t reads, ThreadPool& pool, const Rows& rows) {
    const int64_t in_plane = input.shape[2] * input.shape[3] * kBlock;
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    for_each_row_span(pool, input.shape[0], input.shape[1], out_h, out_w, kChunkPixels,
                      input.shape[0] * input.shape[1] * out_h * out_w * reads * kBlock,
                      [&](int64_t plane, int64_t, int64_t oy0, int64_t oy1) {
                          rows(input.ptr() + plane * in_plane, output.ptr() + plane * out_h * out_w * kBlock, oy0, oy1);
                      });
}

using Float8 = float __attribute__((vector_size(32)));
using Double8 = double __attribute__((vector_size(64)));

// sums[0] += the pixel's lanes 0-7, sums[1] += lanes 8-15, in double.
inline void add_in_double(const float* pixel, Double8* sums) {
    const Vec16 v = load16(pixel);
    const Float8 low = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    const Float8 high = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    sums[0] += __builtin_convertvector(low, Double8);
    sums[1] += __builtin_convertvector(high, Double8);
}

}  // namespace

void max_pool_blocked(const Window2d& w, const Tensor& input, Tensor& output, ThreadPool& pool) {
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_w = output.shape[3];
    const Vec16 lowest = broadcast16(-std::numeric_limits<float>::infinity());
    row_chunks(input, output, w.kernel_h * w.kernel_w, pool,
               [&](const float* in, float* out, int64_t oy0, int64_t oy1) {
                   for (int64_t oy = oy0; oy < oy1; ++oy) {
                       const int64_t y = oy * w.stride_h - w.pad_top;
                       const auto [ky0, ky1] = taps_inside(y, w.dilation_h, in_h, w.kernel_h);
                       for (int64_t ox = 0; ox < out_w; ++ox) {
                           const int64_t x = ox * w.stride_w - w.pad_left;
                           const auto [kx0, kx1] = taps_inside(x, w.dilation_w, in_w, w.kernel_w);
                           Vec16 m = lowest;
                           for (int64_t ky = ky0; ky < ky1; ++ky) {
                               const float* row = in + ((y + ky * w.dilation_h) * in_w + x) * kBlock;
                               for (int64_t kx = kx0; kx < kx1; ++kx) {
                                   const Vec16 v = load16(row + kx * w.dilation_w * kBlock);
                                   m = m < v ? v : m;
                               }
                           }
                           store16(out + (oy * out_w + ox) * kBlock, m);
                       }
                   }
               });
}

// The divisor as layers/avg_pool2d.cpp computes it (PyTorch's CPU kernel): the window clipped to the
// padded input (the count_include_pad divisor), then to the input.
void avg_pool_blocked(const Window2d& w, bool count_include_pad, const Tensor& input, Tensor& output,
                      ThreadPool& pool) {
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_w = output.shape[3];
    row_chunks(input, output, w.kernel_h * w.kernel_w, pool,
               [&](const float* in, float* out, int64_t oy0, int64_t oy1) {
                   for (int64_t oy = oy0; oy < oy1; ++oy) {
                       const PoolSpan ys = pool_span(oy, w.stride_h, w.pad_top, w.pad_bottom, w.kernel_h, in_h);
                       for (int64_t ox = 0; ox < out_w; ++ox) {
                           const PoolSpan xs = pool_span(ox, w.stride_w, w.pad_left, w.pad_right, w.kernel_w, in_w);
                           Vec16 sum{};
                           for (int64_t y = ys.begin; y < ys.end; ++y)
                               for (int64_t x = xs.begin; x < xs.end; ++x) sum += load16(in + (y * in_w + x) * kBlock);
                           const int64_t divisor =
                               count_include_pad ? ys.padded * xs.padded : (ys.end - ys.begin) * (xs.end - xs.begin);
                           store16(out + (oy * out_w + ox) * kBlock, sum / static_cast<float>(divisor));
                       }
                   }
               });
}

void global_avg_pool_blocked(const Tensor& input, Tensor& output, ThreadPool& pool) {
    const int64_t planes = input.shape[0] * input.shape[1], blocks = input.shape[1];
    const int64_t pixels = input.shape[2] * input.shape[3], channels = output.shape[1];
    run_chunks(pool, planes, planes * pixels * kBlock, [&](int64_t plane) {
        const float* in = input.ptr() + plane * pixels * kBlock;
        Double8 sums[8][2] = {};  // [pixel % 8][lanes 0-7, 8-15]
        int64_t i = 0;
        for (; i + 8 <= pixels; i += 8)
            for (int k = 0; k < 8; ++k) add_in_double(in + (i + k) * kBlock, sums[k]);
        for (int k = 0; i < pixels; ++i, ++k) add_in_double(in + i * kBlock, sums[k]);
        // The partial sums added in order per lane, from 0 (the plain layer's loop, 16 channels at once).
        Double8 total[2] = {};
        for (int k = 0; k < 8; ++k) total[0] += sums[k][0], total[1] += sums[k][1];
        const auto divisor = static_cast<double>(pixels);
        const Float8 low = __builtin_convertvector(total[0] / divisor, Float8);
        const Float8 high = __builtin_convertvector(total[1] / divisor, Float8);
        const Vec16 means = __builtin_shufflevector(low, high, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        const int64_t b = plane % blocks;
        store_under16(output.ptr() + plane / blocks * channels + b * kBlock, means,
                      std::min(kBlock, channels - b * kBlock));
    });
}

void global_max_pool_blocked(const Tensor& input, Tensor& output, ThreadPool& pool) {
    const int64_t planes = input.shape[0] * input.shape[1], blocks = input.shape[1];
    const int64_t pixels = input.shape[2] * input.shape[3], channels = output.shape[1];
    run_chunks(pool, planes, planes * pixels * kBlock, [&](int64_t plane) {
        const float* in = input.ptr() + plane * pixels * kBlock;
        Vec16 m = load16(in);
        for (int64_t i = 1; i < pixels; ++i) {
            const Vec16 v = load16(in + i * kBlock);
            m = m < v ? v : m;
        }
        const int64_t b = plane % blocks;
        store_under16(output.ptr() + plane / blocks * channels + b * kBlock, m,
                      std::min(kBlock, channels - b * kBlock));
    });
}

}  // namespace gapnet
