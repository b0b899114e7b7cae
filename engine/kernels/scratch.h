// Scratch memory of the kernels: one buffer per thread and use, kept between calls (grown, never
// shrunk). Allocating a kernel's temporary arrays on every call would cost, besides the allocation,
// a page fault per 4 KiB touched (a fresh 4 MB array: ~1000 faults, about a millisecond here).
// The memory a model needs at most is the same either way: Graph::peak_memory_bytes counts the
// largest scratch of any layer.
#pragma once

#include <cstdint>
#include <vector>

namespace gapnet {

// `buffer` (a thread_local of the caller) holding at least `count` values; not zeroed between uses.
template <class T>
T* thread_scratch(std::vector<T>& buffer, int64_t count) {
    if (buffer.size() < static_cast<size_t>(count)) buffer.resize(static_cast<size_t>(count));
    return buffer.data();
}

}  // namespace gapnet
