// Depthwise convolution (groups == in_channels: each input channel has its own out/in filters, e.g.
// MobileNet's and EfficientNet's 3x3 and 5x5 layers). As a GEMM each group would be a
// [multiplier x kh*kw] x [kh*kw x pixels] product too thin to pay for its im2col matrix, so this
// kernel works a channel at a time: the channel padded and split by stride into a per-thread buffer
// (kernels/window_phases.h), then 16 outputs at a time with every tap accumulated in a register and
// the epilogue applied before the one store. Chunks of whole channels.
#pragma once

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

bool depthwise_applies(const ConvParams& p);  // groups == in_channels

// Floats of the per-thread buffer (one padded input channel and one output channel).
int64_t conv2d_depthwise_workspace(const ConvParams& p, int64_t in_h, int64_t in_w);

void conv2d_depthwise(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                      ThreadPool& pool);

}  // namespace gapnet
