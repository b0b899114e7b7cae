#include "conv2d_direct.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "padding.h"
#include "parallel.h"
#include "scratch.h"
#include "vec16.h"

namespace gapnet {

namespace {

constexpr int kLanes = kVec16Lanes;
constexpr int kMaxVectors = 6;  // index vectors of a micro-tile
// Output channels of a micro-tile of nr index vectors: as many as the 32 vector registers hold
// (mr x nr accumulators + nr inputs + 1 broadcast weight): 4 x 6, 5 x 5, 6 x 4.
constexpr int tile_channels(int64_t nr) { return nr >= 6 ? 4 : nr == 5 ? 5 : 6; }
constexpr int64_t kChunkTiles = 3;  // micro-tiles of output channels per chunk
// A chunk spans enough index groups to hold at least this many multiply-adds (a few microseconds).
constexpr int64_t kMinChunkWork = int64_t{1} << 18;

using Vec = Vec16;

struct Grid {
    int64_t in_channels, plane, pw;  // the padded input: plane = PH * PW
    int64_t kh, kw, dh, dw;
    int64_t taps;                    // in_channels * kh * kw, a weight row
    int64_t out_h, out_w;
};

// The tile of output channels [oc0, oc0 + Mr) and indices [j0, j0 + 16*Nr): sums over the taps in
// registers, then the epilogue, written to out (the sample's output) where x < out_w.
template <int Mr, int Nr>
void tile(const Grid& g, const float* padded, const float* weight, int64_t oc0, int64_t j0, Epilogue epilogue,
          float* out) {
    Vec acc[Mr][Nr];
    for (int i = 0; i < Mr; ++i)
        for (int v = 0; v < Nr; ++v) acc[i][v] = Vec{};
    const float* w = weight + oc0 * g.taps;
    const float* x = padded + j0;
    int64_t k = 0;
    for (int64_t ic = 0; ic < g.in_channels; ++ic)
        for (int64_t ky = 0; ky < g.kh; ++ky) {
            const float* row = x + ic * g.plane + ky * g.dh * g.pw;
            for (int64_t kx = 0; kx < g.kw; ++kx, ++k) {
                const float* src = row + kx * g.dw;
                Vec in[Nr];
#pragma GCC unroll 8
                for (int v = 0; v < Nr; ++v) in[v] = load16(src + v * kLanes);
#pragma GCC unroll 8
                for (int i = 0; i < Mr; ++i) {
                    const Vec b = broadcast16(w[i * g.taps + k]);
#pragma GCC unroll 8
                    for (int v = 0; v < Nr; ++v) acc[i][v] = fma16(b, in[v], acc[i][v]);
                }
            }
        }
    const int64_t plane = g.out_h * g.out_w;
    for (int i = 0; i < Mr; ++i) {
        const float bias = epilogue.bias ? epilogue.bias[oc0 + i] : 0.0f;
        alignas(64) float values[Nr * kLanes];
        for (int v = 0; v < Nr; ++v) {
            Vec value = acc[i][v] + bias;
            if (epilogue.relu) value = value < 0.0f ? Vec{} : value;
            store16(values + v * kLanes, value);
        }
        float* dst = out + (oc0 + i) * plane;
        const int64_t j1 = std::min(j0 + Nr * kLanes, (g.out_h - 1) * g.pw + g.out_w);
        // the row segments of [j0, j1): from (y, x0) to the row's end, or to j1
        for (int64_t y = j0 / g.pw, x0 = j0 % g.pw, j = j0; j < j1; ++y, j += g.pw - x0, x0 = 0)
            if (x0 < g.out_w)
                copy_floats(dst + y * g.out_w + x0, values + (j - j0), std::min(g.out_w - x0, j1 - j));
    }
}

template <int Mr>
void tile_vectors(int nr, const Grid& g, const float* padded, const float* weight, int64_t oc0, int64_t j0,
                  Epilogue epilogue, float* out) {
    switch (nr) {
        case 1: return tile<Mr, 1>(g, padded, weight, oc0, j0, epilogue, out);
        case 2: return tile<Mr, 2>(g, padded, weight, oc0, j0, epilogue, out);
        case 3: return tile<Mr, 3>(g, padded, weight, oc0, j0, epilogue, out);
        case 4: return tile<Mr, 4>(g, padded, weight, oc0, j0, epilogue, out);
        case 5: return tile<Mr, 5>(g, padded, weight, oc0, j0, epilogue, out);
        default: return tile<Mr, 6>(g, padded, weight, oc0, j0, epilogue, out);
    }
}

void any_tile(int mr, int nr, const Grid& g, const float* padded, const float* weight, int64_t oc0, int64_t j0,
              Epilogue epilogue, float* out) {
    switch (mr) {
        case 1: return tile_vectors<1>(nr, g, padded, weight, oc0, j0, epilogue, out);
        case 2: return tile_vectors<2>(nr, g, padded, weight, oc0, j0, epilogue, out);
        case 3: return tile_vectors<3>(nr, g, padded, weight, oc0, j0, epilogue, out);
        case 4: return tile_vectors<4>(nr, g, padded, weight, oc0, j0, epilogue, out);
        case 5: return tile_vectors<5>(std::min(nr, 5), g, padded, weight, oc0, j0, epilogue, out);
        default: return tile_vectors<6>(std::min(nr, 4), g, padded, weight, oc0, j0, epilogue, out);
    }
}

struct Layout {
    int64_t ph, pw, out_h, out_w;
    int64_t vectors;  // index vectors covering [0, (out_h - 1)*PW + out_w)
    int64_t floats;   // the padded input plus the over-read of the last vectors, zeroed
};

Layout layout(const Conv2d::Params& p, int64_t in_h, int64_t in_w) {
    const Window2d& w = p.window;
    Layout l;
    l.ph = in_h + w.pad_top + w.pad_bottom;
    l.pw = in_w + w.pad_left + w.pad_right;
    l.out_h = l.ph - (w.kernel_h - 1) * w.dilation_h;
    l.out_w = l.pw - (w.kernel_w - 1) * w.dilation_w;
    const int64_t indices = l.out_h < 1 || l.out_w < 1 ? 0 : (l.out_h - 1) * l.pw + l.out_w;
    l.vectors = (indices + kLanes - 1) / kLanes;
    const int64_t reach = (p.in_channels - 1) * l.ph * l.pw + (w.kernel_h - 1) * w.dilation_h * l.pw +
                          (w.kernel_w - 1) * w.dilation_w + l.vectors * kLanes;
    l.floats = std::max(p.in_channels * l.ph * l.pw, reach);
    return l;
}

}  // namespace

bool direct_applies(const Conv2d::Params& p) {
    return p.groups == 1 && p.window.stride_h == 1 && p.window.stride_w == 1;
}

int64_t conv2d_direct_workspace(const Conv2d::Params& p, int64_t in_h, int64_t in_w) {
    return layout(p, in_h, in_w).floats;
}

void conv2d_direct(const Conv2d::Params& p, const float* weight, Epilogue epilogue, const Tensor& input,
                   Tensor& output, ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const Layout l = layout(p, in_h, in_w);
    if (l.vectors == 0) return;
    const Grid g{p.in_channels, l.ph * l.pw, l.pw, w.kernel_h, w.kernel_w, w.dilation_h, w.dilation_w,
                 p.in_channels * w.kernel_h * w.kernel_w, l.out_h, l.out_w};
    // Groups of index vectors, as even as kMaxVectors allows (14 vectors: 5, 5, 4).
    const int64_t groups = (l.vectors + kMaxVectors - 1) / kMaxVectors;
    const int64_t per_group = (l.vectors + groups - 1) / groups;
    const int mr = tile_channels(per_group);
    const int64_t chunk_channels = kChunkTiles * mr;
    const int64_t channel_chunks = (p.out_channels + chunk_channels - 1) / chunk_channels;
    const int64_t group_work = std::min(chunk_channels, p.out_channels) * g.taps * per_group * kLanes;
    const int64_t span = std::clamp<int64_t>(kMinChunkWork / group_work, 1, groups);
    const int64_t spans = (groups + span - 1) / span;
    // The calling thread's scratch, shared with the workers.
    thread_local std::vector<float> padded_scratch;
    float* padded = thread_scratch(padded_scratch, l.floats);

    for (int64_t n = 0; n < batch; ++n) {
        const float* in = input.ptr() + n * p.in_channels * in_h * in_w;
        copy_padded(in, p.in_channels, in_h, in_w, w.pad_top, w.pad_left, l.ph, l.pw, padded);
        std::fill(padded + p.in_channels * g.plane, padded + l.floats, 0.0f);  // what the last vectors over-read
        float* out = output.ptr() + n * p.out_channels * l.out_h * l.out_w;
        // Chunks run in the order (index span, channel block): the chunks that threads run at the
        // same time write different output planes, not the two sides of one cache line.
        run_chunks(pool, channel_chunks * spans, p.out_channels * g.taps * l.vectors * kLanes, [&](int64_t chunk) {
            const int64_t oc_begin = chunk % channel_chunks * chunk_channels;
            const int64_t oc_end = std::min(p.out_channels, oc_begin + chunk_channels);
            const int64_t group_end = std::min(groups, (chunk / channel_chunks + 1) * span);
            for (int64_t group = chunk / channel_chunks * span; group < group_end; ++group) {
                const int64_t v0 = group * per_group, nr = std::min(per_group, l.vectors - v0);
                for (int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += mr)
                    any_tile(static_cast<int>(std::min<int64_t>(mr, oc_end - oc0)), static_cast<int>(nr),
                             g, padded, weight, oc0, v0 * kLanes, epilogue, out);
            }
        });
    }
}

}  // namespace gapnet
