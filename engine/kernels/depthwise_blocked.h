// Depthwise convolution on blocked maps (kernels/blocked.h): each channel convolved with its own
// kh x kw filter (groups == in_channels == out_channels, MobileNet's and EfficientNet's 3x3 and 5x5
// layers), 16 channels per vector.
//
// In the blocked layout a pixel's 16 channels are one vector and a filter tap's 16 channels another,
// so a tap is one multiply-add per pixel whatever the stride: no padded copy, no split by stride
// (the plain kernel's kernels/window_phases.h). A tile keeps up to 16 output pixels of a row in
// registers over every tap (bias first, then the taps row by row), applies the activation and
// stores each pixel once. For 3 and 5 wide kernels at stride 1 or 2 (MobileNet's, EfficientNet's)
// each input vector of a tile's row is loaded once and multiplied into every output that reads it:
// a core loads fewer vectors a cycle than it multiplies. The padding is never copied: the rows of
// a window outside the input are skipped; the columns, in the tiles that touch the left or right
// edge, count as zeros (any other window: the edge pixels one at a time, their taps outside
// skipped). Each output's taps are summed in the order (ky, kx).
//
// Chunks: (sample, channel block, span of output rows), fixed by the shapes, so results are
// bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

// groups == in_channels == out_channels (a multiplier of 1); any kernel, stride, dilation, padding.
bool depthwise_blocked_applies(const ConvParams& p);

// weight [C][1][kh][kw] (PyTorch's) -> [ceil(C/16)][kh][kw][16], zeros past the last channel.
std::vector<float> depthwise_blocked_pack(const ConvParams& p, const float* weight);
int64_t depthwise_blocked_packed_size(const ConvParams& p);  // the floats depthwise_blocked_pack returns

// input blocked {N, ceil(C/16), H, W, 16} -> output blocked {N, ceil(C/16), H', W', 16} (allocated by
// the caller; every lane written). packed: depthwise_blocked_pack's. epilogue.bias (C values, or
// null) then epilogue.activation, in registers before the one store. Padding lanes get
// activation(0) (their weights and bias are zero).
void depthwise_blocked(const ConvParams& p, const float* packed, const Epilogue& epilogue, const Tensor& input,
                       Tensor& output, ThreadPool& pool);

// Output rows [oy0, oy1) of one sample (depthwise_blocked's arithmetic, bit for bit), on the calling
// thread, for layers that run a map band by band (layers/conv_chain.h): `in` holds rows [in_row0, ...)
// of the in_h x in_w input map (its block planes in_block_step floats apart, rows of in_w pixels),
// covering every row the output rows read; `out` receives rows [out_row0, ...) of the output map
// (planes out_block_step apart).
void depthwise_blocked_rows(const ConvParams& p, const float* packed, const Epilogue& epilogue, const float* in,
                            int64_t in_block_step, int64_t in_row0, int64_t in_h, int64_t in_w, float* out,
                            int64_t out_block_step, int64_t out_row0, int64_t oy0, int64_t oy1);

}  // namespace gapnet
