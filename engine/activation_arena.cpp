#include "activation_arena.h"

#include <algorithm>
#include <numeric>

#include "shape.h"

namespace gapnet {

int64_t ArenaPlan::floats_per_image() const {
    return std::accumulate(slot_floats.begin(), slot_floats.end(), int64_t{0});
}

ArenaPlan plan_arena(const std::vector<Lifetime>& values) {
    std::vector<size_t> order(values.size());
    std::iota(order.begin(), order.end(), size_t{0});
    // Equal sizes keep the values' order, so the plan is the same on every platform.
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return values[a].floats > values[b].floats; });
    ArenaPlan plan;
    plan.slot_of.assign(values.size(), -1);
    std::vector<std::vector<size_t>> holders;  // per slot: the values in it
    const auto overlap = [&](size_t a, size_t b) {
        return values[a].first <= values[b].last && values[b].first <= values[a].last;
    };
    for (size_t v : order) {
        size_t slot = 0;
        while (slot < holders.size() &&
               std::any_of(holders[slot].begin(), holders[slot].end(), [&](size_t w) { return overlap(v, w); }))
            ++slot;
        if (slot == holders.size()) {
            holders.emplace_back();
            plan.slot_floats.push_back(values[v].floats);
        }
        holders[slot].push_back(v);
        plan.slot_of[v] = static_cast<int>(slot);
    }
    return plan;
}

Tensor Arena::Pass::take(int slot, Shape shape) {
    std::vector<float> data = std::move(slots_.at(static_cast<size_t>(slot)));
    data.resize(static_cast<size_t>(element_count(shape)));  // within the capacity after the first pass
    return Tensor(std::move(shape), std::move(data));
}

void Arena::Pass::give(int slot, Tensor&& tensor) {
    if (tensor.data.capacity() == 0) return;  // given already (a step reading a value twice)
    slots_.at(static_cast<size_t>(slot)) = std::move(tensor.data);
    tensor = Tensor();
}

Arena::Pass Arena::begin_pass(size_t slots) {
    std::vector<std::vector<float>> set;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!free_.empty()) {
            set = std::move(free_.back());
            free_.pop_back();
        }
    }
    set.resize(slots);  // a graph planned anew (Graph::fuse) may want more or fewer
    return Pass(*this, std::move(set));
}

void Arena::release(std::vector<std::vector<float>>&& slots) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(slots));
}

}  // namespace gapnet
