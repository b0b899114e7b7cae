// Dense (fully connected) kernels: output[n, o] = bias[o] + sum_i weight[o, i] * input[n, i], then
// (dense_fast) the epilogue's optional ReLU.
//   input [N, in], weight [out, in], output [N, out] (allocated by the caller)
// dense_reference is the plain loop (the oracle). dense_fast splits the outputs into fixed blocks of
// rows of the weight, one chunk each: for a small batch every chunk is a matrix-vector product per
// sample (memory-bound: the weight is read once, by as many threads as there are), for a larger one
// a GEMM of the batch against the block's rows.
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "epilogue.h"

namespace gapnet {

void dense_reference(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                     const Tensor& input, Tensor& output);

void dense_fast(int64_t in, int64_t out, const float* weight, Epilogue epilogue, const Tensor& input,
                Tensor& output, ThreadPool& pool);

}  // namespace gapnet
