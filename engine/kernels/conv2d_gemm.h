// Convolution kernels. Each computes, for one batch,
//   output[n, oc, oy, ox] = bias[oc] + sum over the group's input channels ic and taps (ky, kx) of
//       weight[oc, ic, ky, kx] * input[n, g*in_per_group + ic, oy*stride - pad + ky*dilation, ...]
// with zero padding, then (fast kernels) the epilogue's optional ReLU.
//   input [N, in_channels, H, W], weight [out_channels, in_channels/groups, kh, kw],
//   output [N, out_channels, H', W'] (allocated by the caller)
//
// conv2d_reference is the plain loop: the oracle the fast kernels are tested against.
// conv2d_gemm lowers each group to matrix products (im2col, as in Caffe and Chellapilla et al.
// 2006): the receptive fields of a wave of output rows become the columns of a
// [in_per_group*kh*kw, pixels] matrix, so that output = weight_group x columns (kernels/gemm.h,
// which reads the weights where they are). The columns are written straight into the GEMM's
// packed panels, read from a zero-padded copy of the input; blocks of output channels and pixels
// are finished (bias, ReLU) in registers. The wave is bounded (16 MiB).
// Depthwise convolutions (kernels/conv2d_depthwise.h) and 3x3 stride-1 ones (conv2d_winograd.h)
// have their own kernels; layers/conv2d.cpp chooses.
#pragma once

#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

void conv2d_reference(const ConvParams& p, const std::vector<float>& weight, const std::vector<float>& bias,
                      const Tensor& input, Tensor& output);

// An upper bound of the scratch floats conv2d_gemm uses (the padded input of a group and its packed
// columns, shared by the threads) for an input map of in_h x in_w and output map of out_h x out_w.
int64_t conv2d_gemm_workspace(const ConvParams& p, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w);

void conv2d_gemm(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                 ThreadPool& pool);

}  // namespace gapnet
