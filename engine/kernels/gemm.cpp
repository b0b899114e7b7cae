#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "vec16.h"

namespace gapnet {

namespace {

constexpr int kLanes = kVec16Lanes;

using Vec = Vec16;

// The tile C[0..Rows, 0..cols) (cols <= 16*Vecs) += A[0..Rows, 0..depth) x B block, where b is the
// panel's block (row stride kGemmPanel). first: the tile starts as the bias (epilogue.bias[r], or
// 0) instead of C's values. The activation (identity until the last block of k) is applied before C
// is written.
// The sums start from zero and C is added at the end: its loads (requested at the start) then wait
// for no multiply-add, and the next tile's work overlaps them.
template <int Rows, int Vecs>
void tile(int64_t depth, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t cols,
          const float* bias, bool first, Activation activation) {
    const bool whole = cols == Vecs * kLanes;
    if (!first)
        for (int r = 0; r < Rows; ++r)
            for (int v = 0; v < Vecs; ++v) __builtin_prefetch(c + r * ldc + v * kLanes, 0, 3);
    Vec acc[Rows][Vecs] = {};
#pragma GCC unroll 2
    for (int64_t kk = 0; kk < depth; ++kk) {
        Vec in[Vecs];
#pragma GCC unroll 4
        for (int v = 0; v < Vecs; ++v) in[v] = load16(b + kk * kGemmPanel + v * kLanes);
        // B streams from L2; its lines are asked for 8 rows ahead (a small but measured gain).
        __builtin_prefetch(b + (kk + 8) * kGemmPanel, 0, 3);
        __builtin_prefetch(b + (kk + 8) * kGemmPanel + kLanes, 0, 3);
#pragma GCC unroll 16
        for (int r = 0; r < Rows; ++r) {
            const Vec s = broadcast16(a[r * lda + kk]);
#pragma GCC unroll 4
            for (int v = 0; v < Vecs; ++v) acc[r][v] = fma16(s, in[v], acc[r][v]);
        }
    }
    for (int r = 0; r < Rows; ++r) {
        alignas(64) float values[Vecs * kLanes] = {};
        if (first)
            for (int v = 0; v < Vecs; ++v) acc[r][v] += bias ? bias[r] : 0.0f;
        else if (whole)
            for (int v = 0; v < Vecs; ++v) acc[r][v] += load16(c + r * ldc + v * kLanes);
        else {
            std::memcpy(values, c + r * ldc, static_cast<size_t>(cols) * sizeof(float));
            for (int v = 0; v < Vecs; ++v) acc[r][v] += load16(values + v * kLanes);
        }
        for (int v = 0; v < Vecs; ++v) acc[r][v] = activation(acc[r][v]);
        if (whole) {
            for (int v = 0; v < Vecs; ++v) store16(c + r * ldc + v * kLanes, acc[r][v]);
        } else {
            for (int v = 0; v < Vecs; ++v) store16(values + v * kLanes, acc[r][v]);
            std::memcpy(c + r * ldc, values, static_cast<size_t>(cols) * sizeof(float));
        }
    }
}

void any_tile(int64_t rows, int vecs, int64_t depth, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
              int64_t cols, const float* bias, bool first, Activation activation) {
    switch (rows * 2 + vecs - 1) {
        // clang-format off
#define GAPNET_TILE(R, V) \
    case R * 2 + V - 1: return tile<R, V>(depth, a, lda, b, c, ldc, cols, bias, first, activation);
#define GAPNET_TILES(R) GAPNET_TILE(R, 1) GAPNET_TILE(R, 2)
        GAPNET_TILES(1) GAPNET_TILES(2) GAPNET_TILES(3) GAPNET_TILES(4) GAPNET_TILES(5) GAPNET_TILES(6)
        GAPNET_TILES(7) GAPNET_TILES(8) GAPNET_TILES(9) GAPNET_TILES(10) GAPNET_TILES(11) GAPNET_TILES(12)
#undef GAPNET_TILES
#undef GAPNET_TILE
        // clang-format on
    }
}

}  // namespace

void gemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b_packed, float* c,
                 int64_t ldc, Epilogue epilogue, bool accumulate) {
    // Blocks of depth and tiles of rows as even as their limits allow (576 = 3 x 192, not
    // 256 + 256 + 64; 128 rows = 7 x 12 + 4 x 11, not 10 x 12 + 8): a thin block or tile does as
    // many loads and stores of C for fewer multiply-adds.
    const int64_t depth_blocks = std::max<int64_t>(1, (k + kGemmDepth - 1) / kGemmDepth);
    const int64_t tiles = (m + kGemmRows - 1) / kGemmRows;
    for (int64_t block = 0, k0 = 0; block < depth_blocks; ++block) {
        const int64_t depth = k / depth_blocks + (block < k % depth_blocks ? 1 : 0);
        const bool first = block == 0 && !accumulate;
        const Activation activation = block == depth_blocks - 1 ? epilogue.activation : Activation{};
        // Rows outer: the tile's block of A (rows x depth) stays in L1 while B's panels stream by.
        for (int64_t t = 0, i = 0; t < tiles; ++t) {
            const int64_t rows = m / tiles + (t < m % tiles ? 1 : 0);
            for (int64_t j = 0; j < gemm_panels(n); ++j) {
                const int64_t n0 = j * kGemmPanel, cols = std::min(kGemmPanel, n - n0);
                any_tile(rows, cols > kLanes ? 2 : 1, depth, a + i * lda + k0, lda,
                         b_packed + j * k * kGemmPanel + k0 * kGemmPanel, c + i * ldc + n0, ldc, cols,
                         epilogue.bias ? epilogue.bias + i : nullptr, first, activation);
            }
            i += rows;
        }
        k0 += depth;
    }
}

}  // namespace gapnet
