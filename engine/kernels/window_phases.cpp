#include "window_phases.h"

#include <algorithm>

#include "vec16.h"
#include "window_taps.h"

namespace gapnet {

namespace {

// dst[j] = src[j * stride] for j in [0, n).
void gather_row(const float* src, int64_t stride, int64_t n, float* dst) {
    if (stride == 1) {
        copy_floats(dst, src, n);
    } else if (stride == 2) {  // the even lanes of up to 32 floats, none read past src[2 * (n - 1)]
        for (int64_t j = 0; j < n; j += kVec16Lanes) {
            const int64_t outputs = std::min<int64_t>(kVec16Lanes, n - j), reads = 2 * outputs - 1;
            const float* s = src + 2 * j;
            const Vec16 low = load_under16(s, std::min<int64_t>(reads, kVec16Lanes));
            const Vec16 high = load_under16(s + kVec16Lanes, std::max<int64_t>(reads - kVec16Lanes, 0));
            const Vec16 even =
                __builtin_shufflevector(low, high, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            store_under16(dst + j, even, outputs);
        }
    } else {
        for (int64_t j = 0; j < n; ++j) dst[j] = src[j * stride];
    }
}

}  // namespace

WindowPhases::WindowPhases(const Window2d& w, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w)
    : w_(w),
      in_h_(in_h),
      in_w_(in_w),
      out_h_(out_h),
      out_w_(out_w),
      rows_(out_h + (w.kernel_h - 1) * w.dilation_h / w.stride_h),
      width_(out_w + (w.kernel_w - 1) * w.dilation_w / w.stride_w),
      planes_(w.stride_h * w.stride_w) {
    for (int64_t ky = 0; ky < w.kernel_h; ++ky)
        for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
            const int64_t y = ky * w.dilation_h, x = kx * w.dilation_w;
            const int64_t phase = (y % w.stride_h) * w.stride_w + x % w.stride_w;
            offsets_.push_back((phase * rows_ + y / w.stride_h) * width_ + x / w.stride_w);
        }
    for (int64_t qy = 0; qy < w.stride_h; ++qy)
        for (int64_t qx = 0; qx < w.stride_w; ++qx) {
            const auto [i0, i1] = taps_inside(qy - w.pad_top, w.stride_h, in_h, rows_);
            const auto [j0, j1] = taps_inside(qx - w.pad_left, w.stride_w, in_w, width_);
            padded_ = padded_ || i0 > 0 || i1 < rows_ || j0 > 0 || j1 < width_;
        }
}

void WindowPhases::fill(const float* in, float pad, float* phases) const {
    // The padding first, in one pass (or just the slack when every phase lies inside the input);
    // then the rows and columns of each phase inside the input.
    std::fill(padded_ ? phases : phases + planes_ * rows_ * width_, phases + phase_floats(), pad);
    for (int64_t qy = 0; qy < w_.stride_h; ++qy) {
        const auto [i0, i1] = taps_inside(qy - w_.pad_top, w_.stride_h, in_h_, rows_);
        for (int64_t qx = 0; qx < w_.stride_w; ++qx) {
            const auto [j0, j1] = taps_inside(qx - w_.pad_left, w_.stride_w, in_w_, width_);
            float* phase = phases + (qy * w_.stride_w + qx) * rows_ * width_;
            for (int64_t i = i0; i < i1; ++i)
                gather_row(in + (i * w_.stride_h + qy - w_.pad_top) * in_w_ + j0 * w_.stride_w + qx - w_.pad_left,
                           w_.stride_w, j1 - j0, phase + i * width_ + j0);
        }
    }
}

void WindowPhases::unwiden(const float* wide, float* out) const {
    if (!dense())
        for (int64_t oy = 0; oy < out_h_; ++oy) copy_floats(out + oy * out_w_, wide + oy * width_, out_w_);
}

}  // namespace gapnet
