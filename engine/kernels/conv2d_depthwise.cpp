#include "conv2d_depthwise.h"

#include <algorithm>

#include "parallel.h"

namespace gapnet {

bool depthwise_applies(const ConvParams& p) { return p.groups > 1 && p.groups == p.in_channels; }

void conv2d_depthwise(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                      ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t multiplier = p.out_channels / p.in_channels, taps = w.kernel_h * w.kernel_w;

    run_chunks(pool, batch * p.in_channels, batch * p.out_channels * taps * out_h * out_w, [&](int64_t chunk) {
        const int64_t c = chunk % p.in_channels;
        const float* in = input.ptr() + chunk * in_h * in_w;
        for (int64_t m = 0; m < multiplier; ++m) {
            const int64_t oc = c * multiplier + m;
            const float* kernel = weight + oc * taps;
            float* out = output.ptr() + (chunk / p.in_channels * p.out_channels + oc) * out_h * out_w;
            std::fill(out, out + out_h * out_w, epilogue.bias ? epilogue.bias[oc] : 0.0f);
            for (int64_t ky = 0; ky < w.kernel_h; ++ky)
                for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                    const float k = kernel[ky * w.kernel_w + kx];
                    const int64_t offset = kx * w.dilation_w - w.pad_left;  // ix = ox*stride + offset
                    const int64_t x_begin = offset >= 0 ? 0 : (-offset + w.stride_w - 1) / w.stride_w;
                    const int64_t x_end =
                        std::min(out_w, in_w - offset <= 0 ? 0 : (in_w - offset - 1) / w.stride_w + 1);
                    for (int64_t oy = 0; oy < out_h; ++oy) {
                        const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                        if (iy < 0 || iy >= in_h) continue;
                        const float* src = in + iy * in_w;  // src[ox*stride + offset]
                        float* dst = out + oy * out_w;
                        if (w.stride_w == 1)
                            for (int64_t ox = x_begin; ox < x_end; ++ox) dst[ox] += k * src[ox + offset];
                        else
                            for (int64_t ox = x_begin; ox < x_end; ++ox) dst[ox] += k * src[ox * w.stride_w + offset];
                    }
                }
            epilogue.activation.apply(out, out_h * out_w);
        }
    });
}

}  // namespace gapnet
