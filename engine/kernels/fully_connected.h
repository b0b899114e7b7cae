// Dense (fully connected) kernels: output[n, o] = bias[o] + sum_i weight[o, i] * input[n, i], then
// (dense_fast) the epilogue's optional ReLU.
//   input [N, in], weight [out, in], output [N, out] (allocated by the caller)
// dense_reference is the plain loop (the oracle). dense_fast splits the outputs into fixed blocks of
// rows of the weight. For a larger batch each block is a chunk, a GEMM of the batch against its rows.
// For a small batch each block is a matrix-vector product per sample, which is memory-bound (every
// weight read once): thread t of the pool always takes the same blocks (ThreadPool::on_each_thread),
// in the order `backwards` says. Alternating it from call to call, a thread starts on the rows it
// read last, which may still be in its cache: its share of a large layer's weights is bigger than its
// L2, and read in the same order every time none of it would be found there (least recently used).
// M2's 3136 -> 500 layer on 2 threads: 3.1 MB per thread, 2 MB of L2 each. A batch of 16 or more
// runs as GEMMs of 32 samples at a time (kernels/gemm.h), its scratch dense_workspace floats.
// (Eigen's GEMM, which it replaces there, packs the weights anew on every call.)
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "epilogue.h"

namespace gapnet {

void dense_reference(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                     const Tensor& input, Tensor& output);

int64_t dense_workspace(int64_t in, int64_t out);

void dense_fast(int64_t in, int64_t out, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                ThreadPool& pool, bool backwards = false);

}  // namespace gapnet
