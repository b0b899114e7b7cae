// The blocked channel layout (NCHW16c; oneDNN's nChw16c, ONNX Runtime's NCHWc): a feature map
// [N, C, H, W] stored as [N, ceil(C/16), H, W, 16], the 16 channels of a block side by side, so that
// one vector register holds one pixel's channels of a block. A kernel then loads a whole vector of
// channels at once (a convolution's output channels, a depthwise filter's channels, a pooling
// window's channels) and writes it once, whatever the map's width.
//
// A blocked tensor is a gapnet::Tensor whose shape is the physical one, 5-D: {N, blocks, H, W, 16};
// a plain map is 4-D. A kernel tells the two layouts apart by the rank. Vectors ([N, F]) are never
// blocked. The lanes past the last channel (C not a multiple of 16) are padding: the kernels keep
// them finite (the reorder writes zeros; a convolution's packed weights and bias are zero there,
// so its padding lanes hold activation(0)), and no real channel ever reads them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../tensor.h"
#include "../thread_pool.h"
#include "parallel.h"

namespace gapnet {

inline constexpr int64_t kBlock = 16;

// ceil(channels / 16)
inline int64_t channel_blocks(int64_t channels) { return (channels + kBlock - 1) / kBlock; }

// Threads split a blocked map by rows first: every blocked kernel cuts its output rows into at least
// kMinRowSpans spans (when it has that many rows) and numbers its chunks span-major, so that the
// pool's first thread takes the top rows and the second the bottom ones in every layer alike. Each
// core then finds in its own cache the rows the layer before wrote (a map crossing between cores
// cost a 14 x 14 depthwise layer 2.5x its time on 2 threads when layers split by channels).
inline constexpr int64_t kMinRowSpans = 2;

// The number of spans a blocked kernel cuts `units` output rows (or pixels) into: `wanted`, made a
// multiple of kMinRowSpans (so the threads' shares meet at the middle row in every layer), at most
// one a unit.
inline int64_t row_spans(int64_t wanted, int64_t units) {
    const int64_t spans = (std::max(wanted, kMinRowSpans) + kMinRowSpans - 1) / kMinRowSpans * kMinRowSpans;
    return std::max<int64_t>(1, std::min(spans, units));
}

// Runs rows(plane, block, oy0, oy1) for output rows [oy0, oy1) of every plane (sample n, block b;
// plane = n * blocks + b) of a blocked map of `out_h` rows of `out_w` pixels, in chunks of a span of
// rows each (at least `chunk_pixels` pixels, or kMinRowSpans spans), span-major within a sample.
// `work`: run_chunks' measure of the whole loop.
template <typename Rows>
void for_each_row_span(ThreadPool& pool, int64_t batch, int64_t blocks, int64_t out_h, int64_t out_w,
                       int64_t chunk_pixels, int64_t work, const Rows& rows) {
    const int64_t spans = row_spans(out_h * out_w / chunk_pixels, out_h);
    run_chunks(pool, batch * spans * blocks, work, [&](int64_t chunk) {
        const int64_t n = chunk / (spans * blocks), span = chunk / blocks % spans, b = chunk % blocks;
        rows(n * blocks + b, b, part_begin(out_h, spans, span), part_begin(out_h, spans, span + 1));
    });
}

// The physical shape of a blocked map: {n, ceil(c/16), h, w, 16}.
inline Shape blocked_shape(int64_t n, int64_t c, int64_t h, int64_t w) { return {n, channel_blocks(c), h, w, kBlock}; }

inline bool is_blocked(const Tensor& t) { return t.shape.size() == 5; }

// plain [N, C, H, W] -> blocked [N, ceil(C/16), H, W, 16] (`blocked` already that shape); padding lanes 0.
void to_blocked(const Tensor& plain, Tensor& blocked, ThreadPool& pool);

// blocked [N, ceil(C/16), H, W, 16] -> plain [N, C, H, W] (`plain` already that shape; C from it).
void from_blocked(const Tensor& blocked, Tensor& plain, ThreadPool& pool);

}  // namespace gapnet
