// A fixed set of worker threads that run one parallel loop at a time (intra-operator parallelism).
//
// Determinism: callers split their work into chunks whose boundaries do not depend on the number of
// threads (e.g. blocks of 64 output columns), and each chunk is computed by the same code whichever
// thread runs it, so results are bit-identical for any thread count.
//
// The calling thread takes part in the work. After a loop, workers spin briefly before sleeping, so
// the many short loops of a small model do not pay a wake-up each; the caller spins (never sleeps)
// while the workers finish, and the condition variable is signalled only when a worker sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gapnet {

class ThreadPool {
public:
    // `threads` counts the caller: 1 runs everything on the calling thread. 0 means all cores.
    explicit ThreadPool(int threads = 1);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls chunk(i) once for every i in [0, chunks), spread over the threads; returns when all have
    // returned. Not reentrant: chunk() must not call parallel_for on the same pool. If a chunk throws,
    // the first exception is rethrown here after every chunk has finished.
    void parallel_for(int64_t chunks, const std::function<void(int64_t)>& chunk);

    // Calls fn(t) once on each thread t of the pool (the caller is 0; t < size()), for work that a
    // thread should find in its own cache when it comes back to it: fn decides from t what it does,
    // the same t getting the same work on every call. Same rules as parallel_for otherwise.
    void on_each_thread(const std::function<void(int64_t)>& fn);

    // The number of cores this process may use (at least 1).
    static int hardware_threads();

private:
    void worker_loop(int self);
    void run_chunks(int self);
    void run(int64_t chunks, const std::function<void(int64_t)>& chunk, bool pinned);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    const std::function<void(int64_t)>* job_ = nullptr;
    int64_t chunks_ = 0;
    bool pinned_ = false;         // chunk i runs on thread i (on_each_thread), not on whichever takes it
    struct alignas(64) Counter {  // a cache line each: the threads take chunks concurrently
        std::atomic<int64_t> value{0};
    };
    std::vector<Counter> next_;  // per thread: the next chunk of its share
    std::atomic<int64_t> finished_{0};
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> busy_workers_{0};  // registered under mutex_ for a loop; leave when done with it
    int sleepers_ = 0;                  // workers waiting on wake_ (guarded by mutex_)
    bool stopping_ = false;
    std::exception_ptr error_;
};

}  // namespace gapnet
