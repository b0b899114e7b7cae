// ThreadPool: every chunk runs exactly once, on any number of threads, loop after loop; exceptions
// reach the caller; a pool of 1 runs on the calling thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/thread_pool.h"

using gapnet::ThreadPool;

TEST_CASE("parallel_for runs each chunk exactly once") {
    for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        REQUIRE(pool.size() == threads);
        for (int64_t chunks : {0, 1, 2, 3, 7, 64, 1000}) {
            std::vector<std::atomic<int>> runs(static_cast<size_t>(chunks));
            pool.parallel_for(chunks, [&](int64_t i) { runs[static_cast<size_t>(i)]++; });
            for (int64_t i = 0; i < chunks; ++i) REQUIRE(runs[static_cast<size_t>(i)] == 1);
        }
    }
}

TEST_CASE("parallel_for can be called many times in a row (workers spin, then sleep, then wake)") {
    ThreadPool pool(3);
    std::atomic<int64_t> sum{0};
    for (int round = 0; round < 2000; ++round) {
        pool.parallel_for(5, [&](int64_t i) { sum += i + 1; });
        if (round == 1000) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let workers sleep
    }
    REQUIRE(sum == 2000 * 15);
}

TEST_CASE("parallel_for rethrows a chunk's exception after every chunk has finished") {
    ThreadPool pool(2);
    std::atomic<int> finished{0};
    REQUIRE_THROWS_WITH(pool.parallel_for(16,
                                          [&](int64_t i) {
                                              if (i == 5) throw std::runtime_error("chunk 5 failed");
                                              ++finished;
                                          }),
                        "chunk 5 failed");
    REQUIRE(finished == 15);
    // The pool is still usable.
    std::atomic<int> after{0};
    pool.parallel_for(4, [&](int64_t) { ++after; });
    REQUIRE(after == 4);
}

TEST_CASE("a pool of one thread runs chunks on the caller, in order") {
    ThreadPool pool(1);
    const auto caller = std::this_thread::get_id();
    std::vector<int64_t> order;
    pool.parallel_for(4, [&](int64_t i) {
        REQUIRE(std::this_thread::get_id() == caller);
        order.push_back(i);
    });
    REQUIRE(order == std::vector<int64_t>{0, 1, 2, 3});
    REQUIRE(ThreadPool(0).size() == ThreadPool::hardware_threads());
}

TEST_CASE("on_each_thread runs once on every thread, the same index on the same thread every time") {
    for (int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        std::vector<std::thread::id> first(static_cast<size_t>(threads));
        for (int call = 0; call < 50; ++call) {
            std::vector<std::atomic<int>> runs(static_cast<size_t>(threads));
            std::vector<std::thread::id> ids(static_cast<size_t>(threads));
            pool.on_each_thread([&](int64_t t) {
                runs[static_cast<size_t>(t)]++;
                ids[static_cast<size_t>(t)] = std::this_thread::get_id();
            });
            for (int t = 0; t < threads; ++t) REQUIRE(runs[static_cast<size_t>(t)] == 1);
            REQUIRE(ids[0] == std::this_thread::get_id());  // the caller is thread 0
            if (call == 0) first = ids;
            REQUIRE(ids == first);
            for (int t = 1; t < threads; ++t) REQUIRE(ids[static_cast<size_t>(t)] != ids[0]);
            if (call % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers asleep
            pool.parallel_for(7, [](int64_t) {});  // interleaved with ordinary loops
        }
    }
}
