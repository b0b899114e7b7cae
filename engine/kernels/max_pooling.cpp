#include "max_pooling.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "parallel.h"
#include "scratch.h"
#include "vec16.h"
#include "window_phases.h"

namespace gapnet {

namespace {

constexpr float kLowest = -std::numeric_limits<float>::infinity();
// Chunks of whole planes with at least this many outputs, so that small maps do not pay a chunk's
// overhead per plane.
constexpr int64_t kChunkOutputs = 4096;

// out[ox] for ox in [0, count) of a 2x2 stride-2 window over rows r0, r1 (2 * count values each
// read), 16 outputs a step, the taps in the window's order (r0's even and odd column, then r1's).
void max_2x2_row(const float* r0, const float* r1, int64_t count, float* out) {
    for (int64_t ox = 0; ox < count; ox += kVec16Lanes) {
        const int64_t n = std::min<int64_t>(kVec16Lanes, count - ox);  // outputs, 2n inputs a row
        const int64_t low = std::min<int64_t>(2 * n, kVec16Lanes), high = 2 * n - low;
        Vec16 m = broadcast16(kLowest);
        for (const float* r : {r0 + 2 * ox, r1 + 2 * ox}) {
            const Vec16 a = load_under16(r, low), b = high > 0 ? load_under16(r + kVec16Lanes, high) : Vec16{};
            const Vec16 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const Vec16 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            m = m < even ? even : m;
            m = m < odd ? odd : m;
        }
        store_under16(out + ox, m, n);
    }
}

// One plane of the 2x2 stride-2 unpadded window: whole windows by max_2x2_row, the rest (an odd last
// column, a ceil_mode window past the last row or column) one by one.
void max_2x2_plane(const float* in, int64_t in_h, int64_t in_w, float* out, int64_t out_h, int64_t out_w) {
    for (int64_t oy = 0; oy < out_h; ++oy) {
        const int64_t y0 = 2 * oy, y1 = std::min(2 * oy + 2, in_h);
        int64_t ox = 0;
        if (y1 - y0 == 2) {
            ox = std::min(out_w, in_w / 2);
            max_2x2_row(in + y0 * in_w, in + (y0 + 1) * in_w, ox, out + oy * out_w);
        }
        for (; ox < out_w; ++ox) {
            float m = kLowest;
            for (int64_t y = y0; y < y1; ++y)
                for (int64_t x = 2 * ox; x < std::min(2 * ox + 2, in_w); ++x) m = std::max(m, in[y * in_w + x]);
            out[oy * out_w + ox] = m;
        }
    }
}

}  // namespace

int64_t max_pooling_workspace(const Window2d& w, int64_t in_h, int64_t in_w) {
    const WindowPhases layout(w, in_h, in_w, w.output_h(in_h), w.output_w(in_w));
    return layout.phase_floats() + layout.wide_floats();
}

void max_pooling(const Window2d& w, const Tensor& input, Tensor& output, ThreadPool& pool) {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_h = output.shape[2], out_w = output.shape[3];
    const WindowPhases layout(w, in_h, in_w, out_h, out_w);
    const std::vector<int64_t>& offsets = layout.tap_offsets();
    const int64_t per_chunk = std::max<int64_t>(1, kChunkOutputs / (out_h * out_w));
    const bool two_by_two = w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 &&
                            w.dilation_h == 1 && w.dilation_w == 1 && w.pad_top == 0 && w.pad_left == 0;
    run_chunks(pool, (planes + per_chunk - 1) / per_chunk, planes * out_h * out_w * w.kernel_h * w.kernel_w,
               [&](int64_t chunk) {
                   thread_local std::vector<float> scratch;
                   float* phases =
                       two_by_two ? nullptr : thread_scratch(scratch, layout.phase_floats() + layout.wide_floats());
                   for (int64_t p = chunk * per_chunk; p < std::min(planes, (chunk + 1) * per_chunk); ++p) {
                       const float* in = input.ptr() + p * in_h * in_w;
                       float* out = output.ptr() + p * out_h * out_w;
                       if (two_by_two) {
                           max_2x2_plane(in, in_h, in_w, out, out_h, out_w);
                           continue;
                       }
                       float* wide = phases + layout.phase_floats();
                       float* target = layout.wide_target(wide, out);
                       layout.fill(in, kLowest, phases);
                       for (int64_t j = 0; j < layout.wide_count(); j += kVec16Lanes) {
                           Vec16 m = broadcast16(kLowest);
                           for (const int64_t offset : offsets) {
                               const Vec16 v = load16(phases + offset + j);
                               m = m < v ? v : m;
                           }
                           layout.store(target, j, m);
                       }
                       layout.unwiden(wide, out);
                   }
               });
}

void max_pooling_reference(const Window2d& w, const Tensor& input, Tensor& output) {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_h = output.shape[2], out_w = output.shape[3];
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t oy = 0; oy < out_h; ++oy)
            for (int64_t ox = 0; ox < out_w; ++ox) {
                float m = kLowest;
                for (int64_t ky = 0; ky < w.kernel_h; ++ky)
                    for (int64_t kx = 0; kx < w.kernel_w; ++kx) {
                        const int64_t y = oy * w.stride_h - w.pad_top + ky * w.dilation_h;
                        const int64_t x = ox * w.stride_w - w.pad_left + kx * w.dilation_w;
                        if (y >= 0 && y < in_h && x >= 0 && x < in_w)
                            m = std::max(m, input.ptr()[(p * in_h + y) * in_w + x]);
                    }
                output.ptr()[(p * out_h + oy) * out_w + ox] = m;
            }
}

}  // namespace gapnet
