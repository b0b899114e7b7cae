// Which taps of a window fall inside the input, for the kernels that skip the padding instead of
// reading a padded copy (kernels/depthwise_blocked.h, kernels/pooling_blocked.h), and for the
// window phases' copy of what lies inside (kernels/window_phases.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

namespace gapnet {

// [first, last) of the taps k in [0, count) with 0 <= start + k * step < size (step > 0): along one
// axis, a window starting at `start` (negative in the padding) with taps `step` apart (the dilation).
inline std::pair<int64_t, int64_t> taps_inside(int64_t start, int64_t step, int64_t size, int64_t count) {
    const int64_t first = start >= 0 ? 0 : (-start + step - 1) / step;
    const int64_t last = size - start <= 0 ? 0 : (size - start - 1) / step + 1;
    const int64_t lo = std::clamp<int64_t>(first, 0, count);
    return {lo, std::clamp<int64_t>(last, lo, count)};
}

}  // namespace gapnet
