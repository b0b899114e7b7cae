#include "conv2d_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "padding.h"
#include "parallel.h"
#include "scratch.h"
#include "vec16.h"

namespace gapnet {

void conv2d_reference(const ConvParams& p, const std::vector<float>& weight, const std::vector<float>& bias,
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

// The packed columns (kernels/gemm.h) are built for a wave of whole output rows of one sample: all
// of them when they hold at most kWaveFloats (16 MiB), fewer otherwise (at least one row).
constexpr int64_t kWaveFloats = int64_t{1} << 22;

// How a wave's product, output [channels, pixels] = weight [channels, taps] x columns [taps, pixels],
// is cut into chunks of whole panels of 32 pixels (and of output channels):
//  - with at least kMinChunks blocks of kOwnPanels panels, a chunk is such a block x all output
//    channels. It packs its columns itself, a slice of input channels at a time (at most kGemmDepth
//    taps: 22 channels of a 3x3 kernel for 64, 26 for 256), and multiplies each slice while it is in L2 (Goto's
//    blocking: the packed slice, 128 KiB, stays put while the weights stream by);
//  - with fewer (small maps), the wave's columns are packed first (a chunk per input channel),
//    then shared by chunks of kSharedPanels panels x a block of output channels (whole tiles of
//    kGemmRows), blocks small enough to make kMinChunks chunks: two threads share work evenly.
constexpr int64_t kOwnPanels = 4;
constexpr int64_t kSharedPanels = 8;
constexpr int64_t kMinChunks = 16;

int64_t wave_rows(int64_t taps, int64_t out_h, int64_t out_w) {
    return std::clamp<int64_t>(kWaveFloats / (taps * out_w), 1, out_h);
}

// The grid the columns are read from: the sample's input zero-padded (kernels/padding.h), so that
// an output pixel (oy, ox) reads tap (ky, kx) of input channel i at
// padded[i*ph*pw + (oy*stride_h + ky*dilation_h)*pw + ox*stride_w + kx*dilation_w].
struct PaddedGrid {
    int64_t ph, pw;
    int64_t floats() const { return ph * pw; }  // per channel
};

PaddedGrid padded_grid(const Window2d& w, int64_t in_h, int64_t in_w) {
    return {in_h + w.pad_top + w.pad_bottom, in_w + w.pad_left + w.pad_right};
}

// The rows of input channels [i0, i1) of the packed columns (gemm.h's panel layout, `taps` rows per
// panel) of the output pixels [p0, p1): row (i*kh + ky)*kw + kx of a panel holds, for each of its
// pixels, the value its tap (ky, kx) reads from channel i. The panels' unused columns are zero.
void pack_columns(const float* padded, const PaddedGrid& grid, int64_t i0, int64_t i1, const Window2d& w, int64_t out_w,
                  int64_t taps, int64_t p0, int64_t p1, float* packed) {
    const int64_t kernel_taps = w.kernel_h * w.kernel_w, rows = (i1 - i0) * kernel_taps;
    // Where row (i, ky, kx) reads for output pixel (0, 0).
    std::vector<int64_t> tap_offset(static_cast<size_t>(rows));
    for (int64_t i = i0, r = 0; i < i1; ++i)
        for (int64_t ky = 0; ky < w.kernel_h; ++ky)
            for (int64_t kx = 0; kx < w.kernel_w; ++kx, ++r)
                tap_offset[static_cast<size_t>(r)] =
                    i * grid.floats() + ky * w.dilation_h * grid.pw + kx * w.dilation_w;
    for (int64_t j = 0; j < gemm_panels(p1 - p0); ++j) {
        const int64_t q0 = p0 + j * kGemmPanel, count = std::min(p1 - q0, kGemmPanel);
        float* panel = packed + j * taps * kGemmPanel + i0 * kernel_taps * kGemmPanel;
        // The panel's pixels in runs along output rows, each copied into every row of the panel.
        for (int64_t v0 = 0; v0 < count;) {
            const int64_t oy = (q0 + v0) / out_w, ox = (q0 + v0) % out_w, length = std::min(count - v0, out_w - ox);
            const float* src = padded + oy * w.stride_h * grid.pw + ox * w.stride_w;
            float* dst = panel + v0;
            if (w.stride_w != 1) {
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t v = 0; v < length; ++v)
                        dst[r * kGemmPanel + v] = src[tap_offset[static_cast<size_t>(r)] + v * w.stride_w];
            } else if (length == kGemmPanel) {
                for (int64_t r = 0; r < rows; ++r) {
                    const float* from = src + tap_offset[static_cast<size_t>(r)];
                    store16(dst + r * kGemmPanel, load16(from));
                    store16(dst + r * kGemmPanel + kVec16Lanes, load16(from + kVec16Lanes));
                }
            } else if (length >= kVec16Lanes) {
                for (int64_t r = 0; r < rows; ++r) {
                    const float* from = src + tap_offset[static_cast<size_t>(r)];
                    store16(dst + r * kGemmPanel, load16(from));
                    copy_under16(dst + r * kGemmPanel + kVec16Lanes, from + kVec16Lanes, length - kVec16Lanes);
                }
            } else {
                for (int64_t r = 0; r < rows; ++r)
                    copy_under16(dst + r * kGemmPanel, src + tap_offset[static_cast<size_t>(r)], length);
            }
            v0 += length;
        }
        if (count < kGemmPanel)
            for (int64_t r = 0; r < rows; ++r)
                std::fill(panel + r * kGemmPanel + count, panel + (r + 1) * kGemmPanel, 0.0f);
    }
}

}  // namespace

// Reported as the whole column matrix of one group, [taps, H' x W'], as before waves: an upper bound
// of the wave (at most 16 MiB unless one output row's columns are more), kept so that the loader's
// limit on it refuses absurd kernels as it did (tests/bad_inputs: huge-conv-scratch.json).
// Tightening it to the wave needs that case changed.
int64_t conv2d_gemm_workspace(const ConvParams& p, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
    const int64_t in_per_group = p.in_channels / p.groups, taps = in_per_group * p.window.kernel_h * p.window.kernel_w;
    return in_per_group * padded_grid(p.window, in_h, in_w).floats() + gemm_packed_size(taps, out_h * out_w);
}

void conv2d_gemm(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                 ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t in_per_group = p.in_channels / p.groups, out_per_group = p.out_channels / p.groups;
    const int64_t kernel_taps = w.kernel_h * w.kernel_w, taps = in_per_group * kernel_taps, pixels = out_h * out_w;
    const int64_t rows_per_wave = wave_rows(taps, out_h, out_w);
    const bool own_columns = (gemm_panels(rows_per_wave * out_w) + kOwnPanels - 1) / kOwnPanels >= kMinChunks;
    // own_columns: input channels per slice, as even as at most kGemmDepth taps a slice allows
    const int64_t max_slice = std::max<int64_t>(1, kGemmDepth / kernel_taps);
    const int64_t slices = (in_per_group + max_slice - 1) / max_slice;
    const int64_t slice_channels = (in_per_group + slices - 1) / slices;
    const PaddedGrid grid = padded_grid(w, in_h, in_w);
    // The calling thread's scratch (shared with the workers while they run): the padded input of a
    // group, and the packed columns of a wave unless each chunk packs its own. copy_padded and
    // pack_columns write every value.
    thread_local std::vector<float> padded_scratch, columns_scratch;
    float* padded = thread_scratch(padded_scratch, in_per_group * grid.floats());
    float* columns =
        own_columns ? nullptr : thread_scratch(columns_scratch, gemm_packed_size(taps, rows_per_wave * out_w));

    for (int64_t n = 0; n < batch; ++n)
        for (int64_t g = 0; g < p.groups; ++g) {
            const float* in = input.ptr() + (n * p.in_channels + g * in_per_group) * in_h * in_w;
            run_chunks(pool, in_per_group, in_per_group * grid.floats(), [&](int64_t i) {
                copy_padded(in + i * in_h * in_w, 1, in_h, in_w, w.pad_top, w.pad_left, grid.ph, grid.pw,
                            padded + i * grid.floats());
            });
            for (int64_t y0 = 0; y0 < out_h; y0 += rows_per_wave) {
                const int64_t p0 = y0 * out_w, p1 = std::min(out_h, y0 + rows_per_wave) * out_w;
                const int64_t panels = gemm_panels(p1 - p0);
                float* out = output.ptr() + (n * p.out_channels + g * out_per_group) * pixels + p0;
                const float* kernel = weight + g * out_per_group * taps;
                const float* bias = epilogue.bias ? epilogue.bias + g * out_per_group : nullptr;
                if (own_columns) {
                    const int64_t chunks = (panels + kOwnPanels - 1) / kOwnPanels;
                    run_chunks(pool, chunks, out_per_group * taps * (p1 - p0), [&](int64_t chunk) {
                        const int64_t q0 = chunk * kOwnPanels * kGemmPanel;
                        const int64_t q1 = std::min(p1 - p0, q0 + kOwnPanels * kGemmPanel);
                        thread_local std::vector<float> slice_scratch;
                        float* slice =
                            thread_scratch(slice_scratch, gemm_packed_size(slice_channels * kernel_taps, q1 - q0));
                        for (int64_t i0 = 0; i0 < in_per_group; i0 += slice_channels) {
                            const int64_t i1 = std::min(in_per_group, i0 + slice_channels),
                                          depth = (i1 - i0) * kernel_taps;
                            pack_columns(padded + i0 * grid.floats(), grid, 0, i1 - i0, w, out_w, depth, p0 + q0,
                                         p0 + q1, slice);
                            gemm_packed(
                                out_per_group, q1 - q0, depth, kernel + i0 * kernel_taps, taps, slice, out + q0, pixels,
                                {i0 == 0 ? bias : nullptr, i1 == in_per_group ? epilogue.activation : Activation{}},
                                i0 > 0);
                        }
                    });
                    continue;
                }
                run_chunks(pool, in_per_group, taps * (p1 - p0),
                           [&](int64_t i) { pack_columns(padded, grid, i, i + 1, w, out_w, taps, p0, p1, columns); });
                const int64_t pixel_chunks = (panels + kSharedPanels - 1) / kSharedPanels;
                const int64_t tiles = (out_per_group + kGemmRows - 1) / kGemmRows;
                const int64_t channel_chunks_wanted = (kMinChunks + pixel_chunks - 1) / pixel_chunks;
                const int64_t chunk_rows = (tiles + channel_chunks_wanted - 1) / channel_chunks_wanted * kGemmRows;
                const int64_t channel_chunks = (out_per_group + chunk_rows - 1) / chunk_rows;
                run_chunks(pool, pixel_chunks * channel_chunks, out_per_group * taps * (p1 - p0), [&](int64_t chunk) {
                    const int64_t oc0 = chunk % channel_chunks * chunk_rows;
                    const int64_t rows = std::min(chunk_rows, out_per_group - oc0);
                    const int64_t q0 = chunk / channel_chunks * kSharedPanels * kGemmPanel;
                    const int64_t q1 = std::min(p1 - p0, q0 + kSharedPanels * kGemmPanel);
                    gemm_packed(rows, q1 - q0, taps, kernel + oc0 * taps, taps, columns + q0 * taps,
                                out + oc0 * pixels + q0, pixels, {bias ? bias + oc0 : nullptr, epilogue.activation});
                });
            }
        }
}

}  // namespace gapnet
