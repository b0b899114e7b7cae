// Depthwise convolution (groups == in_channels: each input channel has its own out/in filters, e.g.
// MobileNet's 3x3 layers). As a GEMM each group would be a [multiplier x kh*kw] x [kh*kw x pixels]
// product too thin to pay for its im2col matrix, so this kernel accumulates each tap over whole
// output rows instead (a loop the compiler vectorizes), one chunk per (sample, channel), no scratch.
#pragma once

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

bool depthwise_applies(const ConvParams& p);  // groups == in_channels

void conv2d_depthwise(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                      ThreadPool& pool);

}  // namespace gapnet
