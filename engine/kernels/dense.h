// Dense (fully connected) kernels: output[n, o] = bias[o] + sum_i weight[o, i] * input[n, i].
//   input [N, in], weight [out, in], output [N, out] (allocated by the caller)
// dense_reference is the plain loop (the oracle); dense_gemm is one Eigen matrix product over the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"

namespace gapnet {

void dense_reference(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                     const Tensor& input, Tensor& output);

void dense_gemm(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                const Tensor& input, Tensor& output);

}  // namespace gapnet
