// The k largest values of a vector with their indices, largest first (ties: lower index first).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace gapnet {

struct Ranked {
    int64_t index;
    float value;
};

inline std::vector<Ranked> top_k(const float* values, int64_t n, int64_t k) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    k = std::clamp<int64_t>(k, 0, n);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    std::vector<Ranked> out;
    for (int64_t i = 0; i < k; ++i) out.push_back({order[i], values[order[i]]});
    return out;
}

}  // namespace gapnet
