#include "avg_pool2d.h"

#include <algorithm>

#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/pooling_blocked.h"

namespace gapnet {

AvgPool2d::AvgPool2d(Window2d window, bool count_include_pad) : w_(window), count_include_pad_(count_include_pad) {
    w_.check_pads_smaller_than_kernel();
}

std::unique_ptr<Layer> AvgPool2d::create(LayerConfig& config) {
    const Window2d w = read_pooling_window(config);
    return std::make_unique<AvgPool2d>(w, config.boolean("count_include_pad", true));
}

// The divisor follows PyTorch's CPU kernel (aten/src/ATen/native/cpu/AvgPoolKernel.cpp): the window
// is first clipped to the padded input (that size is the count_include_pad divisor), then to the input.
// Planes are spread over the threads, one chunk each.
void AvgPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(output)) return avg_pool_blocked(w_, count_include_pad_, input, output, pool);
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    run_chunks(pool, planes, planes * out_h * out_w * w_.kernel_h * w_.kernel_w, [&](int64_t p) {
        const float* in = input.ptr() + p * in_h * in_w;
        float* out = output.ptr() + p * out_h * out_w;
        for (int64_t oy = 0; oy < out_h; ++oy) {
            int64_t y0 = oy * w_.stride_h - w_.pad_top;
            int64_t y1 = std::min(y0 + w_.kernel_h, in_h + w_.pad_bottom);
            const int64_t padded_h = y1 - y0;
            y0 = std::max<int64_t>(y0, 0), y1 = std::min(y1, in_h);
            for (int64_t ox = 0; ox < out_w; ++ox) {
                int64_t x0 = ox * w_.stride_w - w_.pad_left;
                int64_t x1 = std::min(x0 + w_.kernel_w, in_w + w_.pad_right);
                const int64_t padded_w = x1 - x0;
                x0 = std::max<int64_t>(x0, 0), x1 = std::min(x1, in_w);
                float sum = 0.0f;
                for (int64_t y = y0; y < y1; ++y)
                    for (int64_t x = x0; x < x1; ++x) sum += in[y * in_w + x];
                const int64_t divisor = count_include_pad_ ? padded_h * padded_w : (y1 - y0) * (x1 - x0);
                out[oy * out_w + ox] = sum / static_cast<float>(divisor);
            }
        }
    });
}

}  // namespace gapnet
