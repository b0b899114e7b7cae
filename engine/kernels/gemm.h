// C = A x B in registers: the matrix product under the im2col convolution (kernels/conv2d_gemm.h).
//
// The loops follow Goto & van de Geijn, "Anatomy of high-performance matrix multiplication" (2008):
// a micro-kernel keeps a tile of 12 rows x 32 columns of C in 24 vector registers and adds to it,
// for each k, the outer product of 12 values of A (broadcast) and 32 values of B (two vector
// loads): 24 fused multiply-adds for 14 loads. Around it, k runs in blocks of at most kGemmDepth,
// and for each block the tiles of rows in turn: a tile's block of A (12 x kGemmDepth floats,
// 12 KiB) stays in L1 while the panels' blocks of B stream by from L2.
//
//   A  [m, k], row-major with row stride lda: the convolution's weights, read where they are (no
//      packed copy, so no second copy of the weights in memory).
//   B  packed in panels of kGemmPanel columns: column n of row kk is at
//      b[(n / kGemmPanel) * k * kGemmPanel + kk * kGemmPanel + n % kGemmPanel], a panel's rows
//      contiguous; the columns past n in the last panel are zero (conv2d_gemm's im2col writes it).
//   C  [m, n], row stride ldc: written, then finished by the epilogue (bias per row, ReLU).
//
// Each value of C is summed in the same order (bias, then k ascending) whatever the blocking of the
// caller: results do not depend on how work is cut between threads.
#pragma once

#include <cstdint>

#include "epilogue.h"

namespace gapnet {

inline constexpr int64_t kGemmPanel = 32;   // columns of a packed panel of B
inline constexpr int64_t kGemmRows = 12;    // rows of a micro-tile
inline constexpr int64_t kGemmDepth = 256;  // k per block, at most

inline int64_t gemm_panels(int64_t n) { return (n + kGemmPanel - 1) / kGemmPanel; }

// The floats of B packed: k rows of every panel.
inline int64_t gemm_packed_size(int64_t k, int64_t n) { return gemm_panels(n) * kGemmPanel * k; }

// C [m, n] = epilogue(A [m, k] x B), B packed; epilogue.bias, if any, holds m values (one per row).
// accumulate: C = epilogue(C + A x B) (no bias added), for a product computed in slices of k.
void gemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b_packed, float* c,
                 int64_t ldc, Epilogue epilogue, bool accumulate = false);

}  // namespace gapnet
