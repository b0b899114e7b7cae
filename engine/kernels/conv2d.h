// Convolution kernels. Both compute, for one batch,
//   output[n, oc, oy, ox] = bias[oc] + sum over the group's input channels ic and taps (ky, kx) of
//       weight[oc, ic, ky, kx] * input[n, g*in_per_group + ic, oy*stride - pad + ky*dilation, ...]
// with zero padding.
//   input [N, in_channels, H, W], weight [out_channels, in_channels/groups, kh, kw],
//   output [N, out_channels, H', W'] (allocated by the caller)
//
// conv2d_reference is the plain loop: the oracle the fast kernel is tested against.
// conv2d_gemm lowers each group to one matrix product (im2col, as in Caffe and Chellapilla et al.
// 2006): the receptive fields become the columns of a [in_per_group*kh*kw, H'*W'] matrix, so that
// output_group = weight_group [out_per_group, in_per_group*kh*kw] x columns, done by Eigen's GEMM.
#pragma once

#include <vector>

#include "../layers/conv2d.h"

namespace gapnet {

void conv2d_reference(const Conv2d::Params& p, const std::vector<float>& weight, const std::vector<float>& bias,
                      const Tensor& input, Tensor& output);

void conv2d_gemm(const Conv2d::Params& p, const std::vector<float>& weight, const std::vector<float>& bias,
                 const Tensor& input, Tensor& output);

}  // namespace gapnet
