#include "max_pool2d.h"

#include <algorithm>
#include <limits>

#include "../kernels/parallel.h"

namespace gapnet {

MaxPool2d::MaxPool2d(Window2d window) : w_(window) { w_.check_pads_smaller_than_kernel(); }

std::unique_ptr<Layer> MaxPool2d::create(LayerConfig& config) {
    return std::make_unique<MaxPool2d>(Window2d::read_pooling(config));
}

// Planes are spread over the threads in fixed blocks. A 2x2 stride-2 unpadded window (the common
// case) has its own loop; both take the maximum in the same order (std::max from -infinity, row by
// row), so they agree bit for bit, NaN included (never a maximum, as in the reference loop).
void MaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const bool two_by_two = w_.kernel_h == 2 && w_.kernel_w == 2 && w_.stride_h == 2 && w_.stride_w == 2 &&
                            w_.pad_top == 0 && w_.pad_left == 0;
    constexpr int64_t kPlanes = 8;  // planes a chunk
    const int64_t work = planes * out_h * out_w * w_.kernel_h * w_.kernel_w;
    run_chunks(pool, (planes + kPlanes - 1) / kPlanes, work, [&](int64_t chunk) {
        for (int64_t p = chunk * kPlanes; p < std::min(planes, (chunk + 1) * kPlanes); ++p) {
            const float* in = input.ptr() + p * in_h * in_w;
            float* out = output.ptr() + p * out_h * out_w;
            for (int64_t oy = 0; oy < out_h; ++oy) {
                const int64_t y0 = std::max<int64_t>(oy * w_.stride_h - w_.pad_top, 0);
                const int64_t y1 = std::min(oy * w_.stride_h - w_.pad_top + w_.kernel_h, in_h);
                int64_t ox = 0;
                if (two_by_two && y1 - y0 == 2) {
                    const float* r0 = in + y0 * in_w;
                    const float* r1 = r0 + in_w;
                    for (; ox < out_w && 2 * ox + 1 < in_w; ++ox) {
                        float m = -std::numeric_limits<float>::infinity();
                        m = std::max(m, r0[2 * ox]);
                        m = std::max(m, r0[2 * ox + 1]);
                        m = std::max(m, r1[2 * ox]);
                        m = std::max(m, r1[2 * ox + 1]);
                        out[oy * out_w + ox] = m;
                    }
                }
                for (; ox < out_w; ++ox) {
                    const int64_t x0 = std::max<int64_t>(ox * w_.stride_w - w_.pad_left, 0);
                    const int64_t x1 = std::min(ox * w_.stride_w - w_.pad_left + w_.kernel_w, in_w);
                    float m = -std::numeric_limits<float>::infinity();
                    for (int64_t y = y0; y < y1; ++y)
                        for (int64_t x = x0; x < x1; ++x) m = std::max(m, in[y * in_w + x]);
                    out[oy * out_w + ox] = m;
                }
            }
        }
    });
}

}  // namespace gapnet
