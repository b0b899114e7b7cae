// A plane of a windowed layer (depthwise convolution, max pooling) laid out so that its window
// loops run 16 outputs at a time whatever the stride, padding or map size.
//
// The plane is padded (with the layer's pad value: 0 for a convolution, -infinity for a max pool)
// and split by stride into sh * sw phases: phase (qy, qx) holds the padded pixels
// (i * sh + qy, j * sw + qx) as a rows x width plane. Output (oy, ox) reads tap (ky, kx) at padded
// (oy * sh + ky * dh, ox * sw + kx * dw), which is pixel (oy + ky * dh / sh, ox + kx * dw / sw) of
// phase ((ky * dh) % sh, (kx * dw) % sw). So "wide" output j = oy * width + ox reads, for each tap,
// the float at j plus a fixed offset: 16 consecutive wide outputs are 16 consecutive floats of every
// tap. The wide outputs with ox >= out_w are computed and dropped (unwiden), which also lets a small
// map (7 x 7) fill its vectors across rows.
#pragma once

#include <cstdint>
#include <vector>

#include "vec16.h"
#include "window_geometry.h"

namespace gapnet {

class WindowPhases {
public:
    // in_h x in_w -> out_h x out_w (the layer's output size: Window2d::output_h/_w).
    WindowPhases(const Window2d& w, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w);

    // Floats of the phases (with the last wide vector's over-read) and of the wide outputs (whole
    // vectors).
    int64_t phase_floats() const { return planes_ * rows_ * width_ + kSlack; }
    int64_t wide_floats() const { return (wide_count() + kSlack - 1) / kSlack * kSlack; }
    int64_t wide_count() const { return (out_h_ - 1) * width_ + out_w_; }  // the wide outputs computed
    const std::vector<int64_t>& tap_offsets() const { return offsets_; }   // tap ky * kw + kx, from phases

    // in [in_h, in_w] -> phases [phase_floats()], `pad` outside the input.
    void fill(const float* in, float pad, float* phases) const;

    // Where the wide outputs go: when there are none to drop (a window no wider than its stride,
    // e.g. a 2x2 stride-2 pool) they are the output itself, else a buffer unwiden() then copies
    // out. store() writes wide vector j, the last one only up to wide_count().
    bool dense() const { return width_ == out_w_; }
    float* wide_target(float* wide, float* out) const { return dense() ? out : wide; }
    void store(float* target, int64_t j, Vec16 v) const {
        if (j + kSlack <= wide_count())
            store16(target + j, v);
        else
            store_under16(target + j, v, wide_count() - j);
    }
    // wide [wide_count()] -> out [out_h, out_w] (nothing to do when dense())
    void unwiden(const float* wide, float* out) const;

private:
    static constexpr int64_t kSlack = 16;  // one vector
    Window2d w_;
    int64_t in_h_, in_w_, out_h_, out_w_;
    int64_t rows_, width_, planes_;  // of each phase; phases
    std::vector<int64_t> offsets_;
    bool padded_ = false;  // some phase pixel lies outside the input
};

}  // namespace gapnet
