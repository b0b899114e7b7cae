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
// loop to the workers and collecting it costs one to a few microseconds, the time of about 100,000
// multiply-adds. (The blocked kernels split maps by rows, the same way in every layer, so a layer's
// input is mostly in the cache of the thread that reads it: smaller layers gain from a second thread
// than when data crossed between cores at every layer.)
inline constexpr int64_t kMinParallelWork = 100'000;

// Where part i starts when `count` things are cut into `parts` parts as even as they can be.
inline int64_t part_begin(int64_t count, int64_t parts, int64_t i) { return count * i / parts; }

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
