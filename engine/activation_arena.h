// Where a forward pass keeps its activations: a few slots, each reused by values whose lifetimes do
// not overlap, planned from the graph's steps when the model loads (Graph::fuse), not found at run
// time. The plan is per image: every activation of a batch of N takes N times its per-image size, so
// one plan serves any batch.
//
// Planning is "greedy by size for shared objects" (Pisarchyk and Lee, "Efficient Memory Management
// for Deep Neural Net Inference", 2020; TensorFlow Lite's GPU delegate plans this way): the largest
// value first, each into the first slot whose values all live at other steps, else into a new slot of
// its size. Largest first means a slot's first value is its largest, so a slot never grows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "gapnet/gapnet.h"

namespace gapnet {

// One value forward() stores: its floats per image, and the steps it lives through (inclusive: the
// step that writes it to the last step that reads it).
struct Lifetime {
    int64_t floats;
    size_t first, last;
};

struct ArenaPlan {
    std::vector<int> slot_of;          // per value (the caller's order): its slot
    std::vector<int64_t> slot_floats;  // per slot: floats per image
    int64_t floats_per_image() const;
};

ArenaPlan plan_arena(const std::vector<Lifetime>& values);

// The slot buffers of the forward passes, each pass holding one set. Passes that run at once (the
// API's classify from several threads, a batch's groups on two cores) each get their own set; a set
// returns here when its pass ends, so a process keeps as many sets as it ran passes at once.
// Thread-safe.
class Arena {
public:
    class Pass {
    public:
        Pass(Arena& arena, std::vector<std::vector<float>> slots) : arena_(arena), slots_(std::move(slots)) {}
        Pass(const Pass&) = delete;
        Pass& operator=(const Pass&) = delete;
        ~Pass() { arena_.release(std::move(slots_)); }

        // A tensor of `shape` in slot `slot`'s memory (which holds an earlier value: every layer
        // writes its whole output). The slot is empty until give() returns it.
        Tensor take(int slot, Shape shape);
        void give(int slot, Tensor&& tensor);

    private:
        Arena& arena_;
        std::vector<std::vector<float>> slots_;
    };

    // A set of `slots` slot buffers (reused from an ended pass when one is free).
    Pass begin_pass(size_t slots);

private:
    void release(std::vector<std::vector<float>>&& slots);

    std::mutex mutex_;
    std::vector<std::vector<std::vector<float>>> free_;
};

}  // namespace gapnet
