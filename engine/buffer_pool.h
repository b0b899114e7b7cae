// Activation buffers kept between forward passes.
#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "tensor.h"

namespace gapnet {

// A forward pass takes each output's memory from here and gives it back once the last step reading
// it has run, so that pass after pass reuses memory it has already touched: a fresh allocation of a
// large buffer costs the kernel a page fault and a zero-filled page per 4 KiB, every call (M3 at
// batch 32: 848,000 faults, 5.9 s of system time in 21 s). The pool keeps at most what one pass held
// at its peak (more only while passes run concurrently). Thread-safe.
class BufferPool {
public:
    // A tensor of `shape`, in the smallest kept buffer that holds it, or new memory. What it holds is
    // unspecified (an earlier output's values): every layer writes its whole output, so zeroing it
    // would only cost a pass over the memory (the test suite passes with such buffers NaN-filled).
    Tensor take(Shape shape) {
        const auto n = static_cast<size_t>(element_count(shape));
        std::vector<float> data;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            size_t best = free_.size();
            for (size_t i = 0; i < free_.size(); ++i)
                if (free_[i].capacity() >= n && (best == free_.size() || free_[i].capacity() < free_[best].capacity()))
                    best = i;
            if (best < free_.size()) {
                data = std::move(free_[best]);
                free_[best] = std::move(free_.back());
                free_.pop_back();
            }
        }
        data.resize(n);  // within the capacity: no allocation, and no pass over the memory
        return Tensor(std::move(shape), std::move(data));
    }

    void give(Tensor&& tensor) {
        if (tensor.data.capacity() == 0) return;
        std::lock_guard<std::mutex> lock(mutex_);
        free_.push_back(std::move(tensor.data));
        tensor = Tensor();
    }

private:
    std::mutex mutex_;
    std::vector<std::vector<float>> free_;
};

}  // namespace gapnet
