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

#include <cstdint>

#include "../tensor.h"
#include "../thread_pool.h"

namespace gapnet {

inline constexpr int64_t kBlock = 16;

// ceil(channels / 16)
inline int64_t channel_blocks(int64_t channels) { return (channels + kBlock - 1) / kBlock; }

// The physical shape of a blocked map: {n, ceil(c/16), h, w, 16}.
inline Shape blocked_shape(int64_t n, int64_t c, int64_t h, int64_t w) { return {n, channel_blocks(c), h, w, kBlock}; }

inline bool is_blocked(const Tensor& t) { return t.shape.size() == 5; }

// plain [N, C, H, W] -> blocked [N, ceil(C/16), H, W, 16] (`blocked` already that shape); padding lanes 0.
void to_blocked(const Tensor& plain, Tensor& blocked, ThreadPool& pool);

// blocked [N, ceil(C/16), H, W, 16] -> plain [N, C, H, W] (`plain` already that shape; C from it).
void from_blocked(const Tensor& blocked, Tensor& plain, ThreadPool& pool);

}  // namespace gapnet
