#include "blocked.h"

#include <algorithm>

#include "parallel.h"
#include "vec16.h"

namespace gapnet {

// One chunk per (sample, block): 16 planes interleaved into pixels of 16 lanes.
void to_blocked(const Tensor& plain, Tensor& blocked, ThreadPool& pool) {
    const int64_t n = plain.shape[0], c = plain.shape[1], hw = plain.shape[2] * plain.shape[3];
    const int64_t blocks = channel_blocks(c);
    run_chunks(pool, n * blocks, n * blocks * hw * kBlock, [&](int64_t chunk) {
        const int64_t b = chunk % blocks, lanes = std::min(kBlock, c - b * kBlock);
        const float* src = plain.ptr() + (chunk / blocks * c + b * kBlock) * hw;
        float* dst = blocked.ptr() + chunk * hw * kBlock;
        for (int64_t i = 0; i < hw; ++i) {
            Vec16 v{};
            for (int64_t l = 0; l < lanes; ++l) v[l] = src[l * hw + i];
            store16(dst + i * kBlock, v);
        }
    });
}

void from_blocked(const Tensor& blocked, Tensor& plain, ThreadPool& pool) {
    const int64_t n = plain.shape[0], c = plain.shape[1], hw = plain.shape[2] * plain.shape[3];
    const int64_t blocks = channel_blocks(c);
    run_chunks(pool, n * blocks, n * blocks * hw * kBlock, [&](int64_t chunk) {
        const int64_t b = chunk % blocks, lanes = std::min(kBlock, c - b * kBlock);
        const float* src = blocked.ptr() + chunk * hw * kBlock;
        float* dst = plain.ptr() + (chunk / blocks * c + b * kBlock) * hw;
        for (int64_t i = 0; i < hw; ++i) {
            const Vec16 v = load16(src + i * kBlock);
            for (int64_t l = 0; l < lanes; ++l) dst[l * hw + i] = v[l];
        }
    });
}

}  // namespace gapnet
