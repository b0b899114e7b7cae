// How kernels spread work over a ThreadPool: a fixed number of chunks (their boundaries depend only
// on the shapes, never on the pool's size, so results are bit-identical for any thread count), run
// on the calling thread alone when the whole loop is too little work to be worth waking workers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "../thread_pool.h"

namespace gapnet {

// Below this many multiply-adds (or element operations) in total a loop runs serially: handing a
// loop to the workers and collecting it costs a few microseconds, and the data a layer's chunks
// share crosses between cores' caches (slow on a virtual machine's cores), the time of about a
// million multiply-adds.
inline constexpr int64_t kMinParallelWork = 1'000'000;

inline void run_chunks(ThreadPool& pool, int64_t chunks, int64_t total_work,
                       const std::function<void(int64_t)>& chunk) {
    if (pool.size() == 1 || chunks <= 1 || total_work < kMinParallelWork) {
        for (int64_t i = 0; i < chunks; ++i) chunk(i);
        return;
    }
    pool.parallel_for(chunks, chunk);
}

// An element-wise loop over [0, size) in fixed blocks of 64k values (chunks of run_chunks), each
// block given to block(begin, end); `work_per_value` operations per value.
inline void run_blocks(ThreadPool& pool, int64_t size, int64_t work_per_value,
                       const std::function<void(int64_t, int64_t)>& block) {
    constexpr int64_t kBlock = int64_t{1} << 16;
    run_chunks(pool, (size + kBlock - 1) / kBlock, size * work_per_value,
               [&](int64_t b) { block(b * kBlock, std::min(size, (b + 1) * kBlock)); });
}

}  // namespace gapnet
