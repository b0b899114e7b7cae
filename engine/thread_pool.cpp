#include "thread_pool.h"

#include <chrono>
#include <sched.h>

namespace gapnet {

namespace {

// How long an idle worker polls for the next loop before it sleeps on the condition variable.
constexpr auto kSpin = std::chrono::microseconds(300);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

int ThreadPool::hardware_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = hardware_threads();
    next_ = std::vector<Counter>(static_cast<size_t>(threads));
    workers_.reserve(static_cast<size_t>(threads - 1));
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
}

// Runs chunk `self` (pinned) or takes chunks until none is left. job_, chunks_ and pinned_ are only
// replaced under mutex_ while no worker is registered (busy_workers_ == 0), and a worker registers
// under mutex_, so the loop it reads here is the one it registered for. A worker that registers
// after its loop's last chunk was taken finds none left (next_ >= chunks_; a pinned loop cannot end
// without its worker) and never calls job_.
// A thread counts the chunks it ran into finished_ once, when it has no more to take: one shared
// counter touched per chunk moved its cache line between the cores for every chunk, which cost more
// than a 7 x 7 depthwise layer's 120 chunks of about 0.1 us each.
void ThreadPool::run_chunks(int self) {
    int64_t done = 0;
    const auto run_one = [this, &done](int64_t i) {
        try {
            (*job_)(i);
        } catch (...) {
            std::lock_guard lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
        ++done;
    };
    if (pinned_) {
        if (self < chunks_) run_one(self);
        if (done > 0) finished_.fetch_add(done, std::memory_order_acq_rel);
        return;
    }
    // Thread t's own share first, chunks [t * chunks / threads, (t + 1) * chunks / threads), so that
    // consecutive loops over the same data find it in the cache the previous loop left it in (across
    // cores it costs: a 1x1 convolution at 112 x 112 took twice as long on 2 threads as on 1 when
    // chunks went to whichever thread came first); then what is left of the others' shares.
    const int64_t threads = size();
    for (int64_t k = 0; k < threads; ++k) {
        const int64_t t = (self + k) % threads, end = (t + 1) * chunks_ / threads;
        for (int64_t i; (i = next_[static_cast<size_t>(t)].value.fetch_add(1, std::memory_order_relaxed)) < end;)
            run_one(i);
    }
    if (done > 0) finished_.fetch_add(done, std::memory_order_acq_rel);
}

void ThreadPool::worker_loop(int self) {
    uint64_t seen = 0;
    for (;;) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        for (int spins = 0; generation_.load(std::memory_order_acquire) == seen; ++spins) {
            if ((spins & 63) == 63 && std::chrono::steady_clock::now() > until) break;
            cpu_relax();
        }
        std::unique_lock lock(mutex_);
        if (!stopping_ && generation_.load(std::memory_order_relaxed) == seen) {
            ++sleepers_;
            wake_.wait(lock, [&] { return stopping_ || generation_.load(std::memory_order_relaxed) != seen; });
            --sleepers_;
        }
        if (stopping_) return;
        seen = generation_.load(std::memory_order_relaxed);
        busy_workers_.fetch_add(1, std::memory_order_relaxed);
        lock.unlock();
        run_chunks(self);
        busy_workers_.fetch_sub(1, std::memory_order_release);
    }
}

void ThreadPool::parallel_for(int64_t chunks, const std::function<void(int64_t)>& chunk) { run(chunks, chunk, false); }

void ThreadPool::on_each_thread(const std::function<void(int64_t)>& fn) { run(size(), fn, true); }

void ThreadPool::run(int64_t chunks, const std::function<void(int64_t)>& chunk, bool pinned) {
    if (chunks <= 0) return;
    if (workers_.empty() || chunks == 1) {
        for (int64_t i = 0; i < chunks; ++i) chunk(i);
        return;
    }
    bool sleeping = false;
    {
        std::unique_lock lock(mutex_);
        while (busy_workers_.load(std::memory_order_acquire) != 0) {  // a straggler of the previous loop
            lock.unlock();
            cpu_relax();
            lock.lock();
        }
        job_ = &chunk;
        chunks_ = chunks;
        pinned_ = pinned;
        for (size_t t = 0; t < next_.size(); ++t)
            next_[t].value.store(static_cast<int64_t>(t) * chunks / size(), std::memory_order_relaxed);
        finished_.store(0, std::memory_order_relaxed);
        error_ = nullptr;
        generation_.fetch_add(1, std::memory_order_release);
        sleeping = sleepers_ > 0;
    }
    if (sleeping) wake_.notify_all();
    run_chunks(0);
    while (finished_.load(std::memory_order_acquire) < chunks) cpu_relax();
    while (busy_workers_.load(std::memory_order_acquire) != 0) cpu_relax();  // workers done with job_
    std::exception_ptr error;
    {
        std::lock_guard lock(mutex_);
        error = error_;
        error_ = nullptr;
        job_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace gapnet
