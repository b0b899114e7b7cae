// A zero-padded copy of input planes, for the kernels that read convolution windows without bounds
// checks (direct convolution, im2col): `channels` planes of in_h x in_w become planes of ph x pw
// with the input at row `top`, column `left`, and zeros everywhere else.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace gapnet {

inline void copy_padded(const float* in, int64_t channels, int64_t in_h, int64_t in_w, int64_t top, int64_t left,
                        int64_t ph, int64_t pw, float* out) {
    for (int64_t c = 0; c < channels; ++c) {
        float* plane = out + c * ph * pw;
        std::fill(plane, plane + top * pw, 0.0f);
        for (int64_t y = 0; y < in_h; ++y) {
            float* row = plane + (top + y) * pw;
            std::fill(row, row + left, 0.0f);
            std::memcpy(row + left, in + (c * in_h + y) * in_w, static_cast<size_t>(in_w) * sizeof(float));
            std::fill(row + left + in_w, row + pw, 0.0f);
        }
        std::fill(plane + (top + in_h) * pw, plane + ph * pw, 0.0f);
    }
}

}  // namespace gapnet
