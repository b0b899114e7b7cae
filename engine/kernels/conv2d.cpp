#include "conv2d.h"

#include <Eigen/Core>
#include <algorithm>

namespace gapnet {

void conv2d_reference(const Conv2d::Params& p, const std::vector<float>& weight, const std::vector<float>& bias,
                      const Tensor& input, Tensor& output) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t in_per_group = p.in_channels / p.groups, out_per_group = p.out_channels / p.groups;
    const int64_t in_plane = in_h * in_w, out_plane = out_h * out_w;

    for (int64_t n = 0; n < batch; ++n) {
        for (int64_t oc = 0; oc < p.out_channels; ++oc) {
            float* out = output.ptr() + (n * p.out_channels + oc) * out_plane;
            std::fill(out, out + out_plane, bias.empty() ? 0.0f : bias[oc]);
            const int64_t group = oc / out_per_group;
            for (int64_t i = 0; i < in_per_group; ++i) {
                const float* in = input.ptr() + (n * p.in_channels + group * in_per_group + i) * in_plane;
                const float* kernel = weight.data() + (oc * in_per_group + i) * w.kernel_h * w.kernel_w;
                for (int64_t ky = 0; ky < w.kernel_h; ++ky) {
                    for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                        const float k = kernel[ky * w.kernel_w + kx];
                        for (int64_t oy = 0; oy < out_h; ++oy) {
                            const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                            if (iy < 0 || iy >= in_h) continue;
                            for (int64_t ox = 0; ox < out_w; ++ox) {
                                const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
                                if (ix >= 0 && ix < in_w) out[oy * out_w + ox] += k * in[iy * in_w + ix];
                            }
                        }
                    }
                }
            }
        }
    }
}

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// columns[(i*kh + ky)*kw + kx][oy*out_w + ox] = in[i][oy*s - pad + ky*d][ox*s - pad + kx*d], 0 outside.
void im2col(const float* in, int64_t channels, int64_t in_h, int64_t in_w, const Window2d& w, int64_t out_h,
            int64_t out_w, float* columns) {
    for (int64_t i = 0; i < channels; ++i)
        for (int64_t ky = 0; ky < w.kernel_h; ++ky)
            for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                float* row = columns + ((i * w.kernel_h + ky) * w.kernel_w + kx) * out_h * out_w;
                for (int64_t oy = 0; oy < out_h; ++oy) {
                    const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                    float* dst = row + oy * out_w;
                    if (iy < 0 || iy >= in_h) {
                        std::fill(dst, dst + out_w, 0.0f);
                        continue;
                    }
                    const float* src = in + (i * in_h + iy) * in_w;
                    for (int64_t ox = 0; ox < out_w; ++ox) {
                        const int64_t ix = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
                        dst[ox] = ix >= 0 && ix < in_w ? src[ix] : 0.0f;
                    }
                }
            }
}

}  // namespace

void conv2d_gemm(const Conv2d::Params& p, const std::vector<float>& weight, const std::vector<float>& bias,
                 const Tensor& input, Tensor& output) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t in_per_group = p.in_channels / p.groups, out_per_group = p.out_channels / p.groups;
    const int64_t taps = in_per_group * w.kernel_h * w.kernel_w, pixels = out_h * out_w;
    // A 1x1, stride-1, unpadded convolution reads its input as the columns directly.
    const bool pointwise = w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
                           w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0;
    std::vector<float> columns(pointwise ? 0 : static_cast<size_t>(taps * pixels));

    for (int64_t n = 0; n < batch; ++n) {
        for (int64_t g = 0; g < p.groups; ++g) {
            const float* in = input.ptr() + (n * p.in_channels + g * in_per_group) * in_h * in_w;
            if (!pointwise) im2col(in, in_per_group, in_h, in_w, w, out_h, out_w, columns.data());
            const Eigen::Map<const RowMajor> cols(pointwise ? in : columns.data(), taps, pixels);
            const Eigen::Map<const RowMajor> kernel(weight.data() + g * out_per_group * taps, out_per_group, taps);
            Eigen::Map<RowMajor> out(output.ptr() + (n * p.out_channels + g * out_per_group) * pixels, out_per_group,
                                     pixels);
            out.noalias() = kernel * cols;
            if (!bias.empty()) out.colwise() += Eigen::Map<const Eigen::VectorXf>(bias.data() + g * out_per_group, out_per_group);
        }
    }
}

}  // namespace gapnet
