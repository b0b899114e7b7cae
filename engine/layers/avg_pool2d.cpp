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
            const PoolSpan ys = pool_span(oy, w_.stride_h, w_.pad_top, w_.pad_bottom, w_.kernel_h, in_h);
            for (int64_t ox = 0; ox < out_w; ++ox) {
                const PoolSpan xs = pool_span(ox, w_.stride_w, w_.pad_left, w_.pad_right, w_.kernel_w, in_w);
                float sum = 0.0f;
                for (int64_t y = ys.begin; y < ys.end; ++y)
                    for (int64_t x = xs.begin; x < xs.end; ++x) sum += in[y * in_w + x];
                const int64_t divisor =
                    count_include_pad_ ? ys.padded * xs.padded : (ys.end - ys.begin) * (xs.end - xs.begin);
                out[oy * out_w + ox] = sum / static_cast<float>(divisor);
            }
        }
    });
}

}  // namespace gapnet
