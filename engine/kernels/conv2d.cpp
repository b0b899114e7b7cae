#include "conv2d.h"

#include <Eigen/Core>
#include <algorithm>
#include <memory>

#include "parallel.h"

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
using Strided = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;

// The im2col matrix of a group is built for a wave of whole output rows of one sample: all of them
// when it holds at most kWaveFloats (16 MiB), fewer otherwise (at least one row).
constexpr int64_t kWaveFloats = int64_t{1} << 22;

// How a wave's product, output [channels, pixels] = weight [channels, taps] x columns [taps, pixels],
// is cut into chunks (Eigen packs both operands of each product it computes):
//  - weights that fit in cache (kCachedFloats) are cheap to re-pack: blocks of pixels whose columns
//    take about kCachedFloats too (64 to 4096 pixels), each built, multiplied and finished (bias,
//    ReLU) while in cache;
//  - larger weights: the whole wave, cut in two when it is big enough for two threads to share,
//    along the dimension whose cut re-packs less (pixels re-pack the weights, channels the columns).
constexpr int64_t kCachedFloats = int64_t{1} << 18;  // 1 MiB, half an L2 cache
constexpr int64_t kMinSplitWork = 1'000'000;          // multiply-adds

struct Chunking {
    int64_t channels, pixels;  // per chunk
};

Chunking chunking(int64_t channels, int64_t taps, int64_t pixels) {
    const auto round16 = [](int64_t n) { return (n + 15) / 16 * 16; };
    if (channels * taps <= kCachedFloats)
        return {channels, std::min(pixels, std::clamp<int64_t>(round16(kCachedFloats / taps), 64, 4096))};
    Chunking c{channels, pixels};
    if (channels * taps * pixels < kMinSplitWork) return c;
    if (channels * taps < taps * pixels) c.pixels = std::min(pixels, round16((pixels + 1) / 2));
    else c.channels = std::min(channels, round16((channels + 1) / 2));
    return c;
}

bool is_pointwise(const Window2d& w) {
    return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_top == 0 &&
           w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0;
}

int64_t wave_rows(int64_t taps, int64_t out_h, int64_t out_w) {
    return std::clamp<int64_t>(kWaveFloats / (taps * out_w), 1, out_h);
}

// columns[(i*kh + ky)*kw + kx][p - p0] = in[i][oy*s - pad + ky*d][ox*s - pad + kx*d] (0 outside the
// input) for the output pixels p = oy*out_w + ox in [p0, p1).
void im2col(const float* in, int64_t channels, int64_t in_h, int64_t in_w, const Window2d& w, int64_t out_w,
            int64_t p0, int64_t p1, float* columns) {
    const int64_t count = p1 - p0;
    for (int64_t i = 0; i < channels; ++i)
        for (int64_t ky = 0; ky < w.kernel_h; ++ky)
            for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                float* row = columns + ((i * w.kernel_h + ky) * w.kernel_w + kx) * count;
                const int64_t offset = kx * w.dilation_w - w.pad_left;  // ix = ox*stride + offset
                // The ox whose ix falls inside the input: [x_begin, x_end).
                const int64_t x_begin = offset >= 0 ? 0 : (-offset + w.stride_w - 1) / w.stride_w;
                const int64_t x_end = in_w - offset <= 0 ? 0 : (in_w - offset - 1) / w.stride_w + 1;
                for (int64_t p = p0; p < p1;) {
                    const int64_t oy = p / out_w, ox0 = p % out_w;
                    const int64_t ox1 = std::min(out_w, ox0 + (p1 - p));
                    float* dst = row + (p - p0);  // dst[ox - ox0] for ox in [ox0, ox1)
                    const int64_t iy = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                    if (iy < 0 || iy >= in_h) {
                        std::fill(dst, dst + (ox1 - ox0), 0.0f);
                    } else {
                        const float* src = in + (i * in_h + iy) * in_w;  // src[ox*stride + offset]
                        const int64_t a = std::clamp(x_begin, ox0, ox1), b = std::clamp(x_end, a, ox1);
                        std::fill(dst, dst + (a - ox0), 0.0f);
                        if (w.stride_w == 1 && a < b)
                            std::copy(src + a + offset, src + b + offset, dst + (a - ox0));
                        else
                            for (int64_t ox = a; ox < b; ++ox) dst[ox - ox0] = src[ox * w.stride_w + offset];
                        std::fill(dst + (b - ox0), dst + (ox1 - ox0), 0.0f);
                    }
                    p += ox1 - ox0;
                }
            }
}

}  // namespace

// Reported as the whole column matrix of one group, [taps, H' x W'], as before waves: an upper bound
// of the wave (at most 16 MiB unless one output row's columns are more), kept so that the loader's
// limit on it refuses absurd kernels as it did (tests/bad_inputs: huge-conv-scratch.json).
// Tightening it to the wave needs that case changed.
int64_t conv2d_gemm_workspace(const Conv2d::Params& p, int64_t out_h, int64_t out_w) {
    if (is_pointwise(p.window)) return 0;
    const int64_t taps = p.in_channels / p.groups * p.window.kernel_h * p.window.kernel_w;
    return taps * out_h * out_w;
}

void conv2d_gemm(const Conv2d::Params& p, const float* weight, Epilogue epilogue, const Tensor& input,
                 Tensor& output, ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t in_per_group = p.in_channels / p.groups, out_per_group = p.out_channels / p.groups;
    const int64_t kernel_taps = w.kernel_h * w.kernel_w, taps = in_per_group * kernel_taps, pixels = out_h * out_w;
    const bool pointwise = is_pointwise(w);
    const int64_t rows_per_wave = pointwise ? out_h : wave_rows(taps, out_h, out_w);
    // Not zeroed: im2col writes every value.
    const std::unique_ptr<float[]> columns(pointwise ? nullptr : new float[static_cast<size_t>(taps * rows_per_wave * out_w)]);

    for (int64_t n = 0; n < batch; ++n)
        for (int64_t g = 0; g < p.groups; ++g)
            for (int64_t y0 = 0; y0 < out_h; y0 += rows_per_wave) {
                const int64_t p0 = y0 * out_w, p1 = std::min(out_h, y0 + rows_per_wave) * out_w, count = p1 - p0;
                const float* in = input.ptr() + (n * p.in_channels + g * in_per_group) * in_h * in_w;
                const Chunking c = chunking(out_per_group, taps, count);
                const int64_t channel_chunks = (out_per_group + c.channels - 1) / c.channels;
                const int64_t pixel_chunks = (count + c.pixels - 1) / c.pixels;
                // With one channel chunk, each chunk builds its own pixels' columns (a block of
                // [taps, pixels] at the chunk's offset in the wave) and multiplies them while they
                // are in cache; with several, the columns are built first, shared by the chunks.
                const bool own_columns = channel_chunks == 1;
                if (!pointwise && !own_columns)
                    run_chunks(pool, in_per_group, taps * count, [&](int64_t i) {
                        im2col(in + i * in_h * in_w, 1, in_h, in_w, w, out_w, p0, p1,
                               columns.get() + i * kernel_taps * count);
                    });
                run_chunks(pool, channel_chunks * pixel_chunks, out_per_group * taps * count, [&](int64_t chunk) {
                    const int64_t oc0 = chunk / pixel_chunks * c.channels;
                    const int64_t oc_count = std::min(c.channels, out_per_group - oc0);
                    const int64_t q0 = chunk % pixel_chunks * c.pixels, q_count = std::min(c.pixels, count - q0);
                    const float* cols = in + p0 + q0;  // pointwise: the input is the column matrix
                    int64_t cols_stride = pixels;
                    if (!pointwise && own_columns) {
                        float* block = columns.get() + taps * q0;
                        im2col(in, in_per_group, in_h, in_w, w, out_w, p0 + q0, p0 + q0 + q_count, block);
                        cols = block, cols_stride = q_count;
                    } else if (!pointwise) {
                        cols = columns.get() + q0, cols_stride = count;
                    }
                    const Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>> rhs(cols, taps, q_count,
                                                                                  Eigen::OuterStride<>(cols_stride));
                    const Eigen::Map<const RowMajor> kernel(weight + (g * out_per_group + oc0) * taps, oc_count, taps);
                    float* out = output.ptr() + (n * p.out_channels + g * out_per_group + oc0) * pixels + p0 + q0;
                    Strided result(out, oc_count, q_count, Eigen::OuterStride<>(pixels));
                    // The block starts as the bias (Eigen would zero it otherwise), then accumulates
                    // the product, then gets its ReLU while still in cache.
                    for (int64_t oc = 0; oc < oc_count; ++oc)
                        std::fill(out + oc * pixels, out + oc * pixels + q_count,
                                  epilogue.bias ? epilogue.bias[g * out_per_group + oc0 + oc] : 0.0f);
                    result.noalias() += kernel * rhs;
                    if (epilogue.relu)
                        for (int64_t oc = 0; oc < oc_count; ++oc) finish(out + oc * pixels, q_count, 0.0f, true);
                });
            }
}

}  // namespace gapnet
