#include "conv2d_direct.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
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

// Channel tiles: kChannelBlock output channels (two vectors) x up to kRowPixels pixels of a row,
// 28 accumulators. A chunk is a block of output channels and a span of rows holding at least
// kMinRowsWork multiply-adds (VGG-11's 512 -> 512 at 14x14: a block's 14 rows).
constexpr int64_t kChannelBlock = 2 * kVec16Lanes;
// Layers with fewer taps (input channels x kernel) use vector tiles: with so few multiply-adds per
// output value the channel tiles' transposing stores cost more than they save (1 -> 32 and 3 -> 64
// channels run 2x slower with channel tiles, 32 -> 64 at 14x14, 288 taps, 5 % faster).
constexpr int64_t kChannelTilesMinTaps = 256;
constexpr int kRowPixels = 14;
constexpr int64_t kMinRowsWork = int64_t{1} << 24;
// The packed weights are asked for this many floats (16 taps) ahead; the next input channel's rows
// one channel ahead. Together ~10 % faster on 512 -> 512 at 14x14 (one in-process A/B).
constexpr int64_t kWeightPrefetch = 16 * kChannelBlock;

using Vec = Vec16;

struct Grid {
    int64_t in_channels, plane, pw;  // the padded input: plane = PH * PW
    int64_t kh, kw, dh, dw;
    int64_t taps;  // in_channels * kh * kw, a weight row
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
            store16(values + v * kLanes, epilogue.activation(acc[i][v] + bias));
        }
        float* dst = out + (oc0 + i) * plane;
        const int64_t j1 = std::min(j0 + Nr * kLanes, (g.out_h - 1) * g.pw + g.out_w);
        // the row segments of [j0, j1): from (y, x0) to the row's end, or to j1
        for (int64_t y = j0 / g.pw, x0 = j0 % g.pw, j = j0; j < j1; ++y, j += g.pw - x0, x0 = 0)
            if (x0 < g.out_w) copy_floats(dst + y * g.out_w + x0, values + (j - j0), std::min(g.out_w - x0, j1 - j));
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

// The tile of output channels [oc0, oc0 + channels) (channels <= 16*Vecs) x pixels [x0, x0 + Px) of
// output row y: w is the block's packed weights, [taps][kChannelBlock]. Per tap, Vecs vectors of
// weights times Px broadcast input values; the sums are then written out a channel at a time.
template <int Px, int Vecs>
void channel_tile(const Grid& g, const float* padded, const float* w, int64_t y, int64_t x0, int64_t oc0,
                  int64_t channels, Epilogue epilogue, float* out) {
    Vec acc[Px][Vecs];
    for (int p = 0; p < Px; ++p)
        for (int v = 0; v < Vecs; ++v) acc[p][v] = Vec{};
    const float* x = padded + y * g.pw + x0;
    for (int64_t ic = 0; ic < g.in_channels; ++ic)
        for (int64_t ky = 0; ky < g.kh; ++ky) {
            const float* row = x + ic * g.plane + ky * g.dh * g.pw;
            if (ic + 1 < g.in_channels) {
                __builtin_prefetch(row + g.plane, 0, 3);
                __builtin_prefetch(row + g.plane + Px + 1, 0, 3);
            }
            for (int64_t i = 0; i < g.kw * kChannelBlock; i += kVec16Lanes)  // within the packing's tail
                __builtin_prefetch(w + kWeightPrefetch + i, 0, 3);
            for (int64_t kx = 0; kx < g.kw; ++kx, w += kChannelBlock) {
                const float* src = row + kx * g.dw;
                Vec weights[Vecs];
                for (int v = 0; v < Vecs; ++v) weights[v] = load16(w + v * kLanes);
#pragma GCC unroll 16
                for (int p = 0; p < Px; ++p) {
                    const Vec s = broadcast16(src[p]);
                    for (int v = 0; v < Vecs; ++v) acc[p][v] = fma16(s, weights[v], acc[p][v]);
                }
            }
        }
    // The epilogue on the vectors (their lanes are channels: a vector of biases), then the sums are
    // written out a channel at a time.
    alignas(64) float bias[kChannelBlock] = {};
    if (epilogue.bias) std::copy(epilogue.bias + oc0, epilogue.bias + oc0 + channels, bias);
    alignas(64) float values[Px][kChannelBlock];
    for (int v = 0; v < Vecs; ++v) {
        const Vec b = load16(bias + v * kLanes);
        for (int p = 0; p < Px; ++p) store16(values[p] + v * kLanes, epilogue.activation(acc[p][v] + b));
    }
    const int64_t plane = g.out_h * g.out_w;
    float* dst = out + oc0 * plane + y * g.out_w + x0;
    for (int64_t c = 0; c < channels; ++c, dst += plane)
        for (int p = 0; p < Px; ++p) dst[p] = values[p][c];
}

template <int Vecs>
void any_channel_tile(int64_t px, const Grid& g, const float* padded, const float* w, int64_t y, int64_t x0,
                      int64_t oc0, int64_t channels, Epilogue epilogue, float* out) {
    switch (px) {
        // clang-format off
#define GAPNET_TILE(P) \
    case P: return channel_tile<P, Vecs>(g, padded, w, y, x0, oc0, channels, epilogue, out);
        GAPNET_TILE(1) GAPNET_TILE(2) GAPNET_TILE(3) GAPNET_TILE(4) GAPNET_TILE(5) GAPNET_TILE(6) GAPNET_TILE(7)
        GAPNET_TILE(8) GAPNET_TILE(9) GAPNET_TILE(10) GAPNET_TILE(11) GAPNET_TILE(12) GAPNET_TILE(13) GAPNET_TILE(14)
#undef GAPNET_TILE
        // clang-format on
    }
}
static_assert(kRowPixels == 14, "any_channel_tile instantiates tiles of 1 to 14 pixels");

struct Layout {
    int64_t ph, pw, out_h, out_w;
    int64_t vectors;  // index vectors covering [0, (out_h - 1)*PW + out_w)
    int64_t floats;   // the padded input plus the over-read of the last vectors, zeroed
};

Layout layout(const ConvParams& p, int64_t in_h, int64_t in_w) {
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

// One sample's output with output indices in the vector lanes (the padded input read in place).
void vector_tiles(const Grid& g, const Layout& l, int64_t out_channels, const float* padded, const float* weight,
                  Epilogue epilogue, float* out, ThreadPool& pool) {
    // Groups of index vectors, as even as kMaxVectors allows (14 vectors: 5, 5, 4).
    const int64_t groups = (l.vectors + kMaxVectors - 1) / kMaxVectors;
    const int64_t per_group = (l.vectors + groups - 1) / groups;
    const int mr = tile_channels(per_group);
    const int64_t chunk_channels = kChunkTiles * mr;
    const int64_t channel_chunks = (out_channels + chunk_channels - 1) / chunk_channels;
    const int64_t group_work = std::min(chunk_channels, out_channels) * g.taps * per_group * kLanes;
    const int64_t span = std::clamp<int64_t>(kMinChunkWork / group_work, 1, groups);
    const int64_t spans = (groups + span - 1) / span;
    // Chunks run in the order (index span, channel block): the chunks that threads run at the
    // same time write different output planes, not the two sides of one cache line.
    run_chunks(pool, channel_chunks * spans, out_channels * g.taps * l.vectors * kLanes, [&](int64_t chunk) {
        const int64_t oc_begin = chunk % channel_chunks * chunk_channels;
        const int64_t oc_end = std::min(out_channels, oc_begin + chunk_channels);
        const int64_t group_end = std::min(groups, (chunk / channel_chunks + 1) * span);
        for (int64_t group = chunk / channel_chunks * span; group < group_end; ++group) {
            const int64_t v0 = group * per_group, nr = std::min(per_group, l.vectors - v0);
            for (int64_t oc0 = oc_begin; oc0 < oc_end; oc0 += mr)
                any_tile(static_cast<int>(std::min<int64_t>(mr, oc_end - oc0)), static_cast<int>(nr), g, padded, weight,
                         oc0, v0 * kLanes, epilogue, out);
        }
    });
}

// One sample's output with output channels in the vector lanes. Chunks run block by block (a
// block's packed weights, up to 590 KB for 512 input channels, stay in L2 for its span of rows).
void channel_tiles(const Grid& g, int64_t out_channels, const float* padded, const float* packed, Epilogue epilogue,
                   float* out, ThreadPool& pool) {
    const int64_t blocks = (out_channels + kChannelBlock - 1) / kChannelBlock;
    const int64_t row_tiles = (g.out_w + kRowPixels - 1) / kRowPixels;  // as even as they can be
    const int64_t rows = std::clamp<int64_t>(kMinRowsWork / (kChannelBlock * g.taps * g.out_w), 1, g.out_h);
    const int64_t spans = (g.out_h + rows - 1) / rows;
    run_chunks(pool, blocks * spans, out_channels * g.taps * g.out_h * g.out_w, [&](int64_t chunk) {
        const int64_t block = chunk / spans, y_end = std::min(g.out_h, (chunk % spans + 1) * rows);
        const int64_t oc0 = block * kChannelBlock, channels = std::min(kChannelBlock, out_channels - oc0);
        const float* w = packed + block * g.taps * kChannelBlock;
        for (int64_t y = chunk % spans * rows; y < y_end; ++y)
            for (int64_t t = 0, x0 = 0; t < row_tiles; ++t) {
                const int64_t px = g.out_w / row_tiles + (t < g.out_w % row_tiles ? 1 : 0);
                if (channels > kLanes)
                    any_channel_tile<2>(px, g, padded, w, y, x0, oc0, channels, epilogue, out);
                else
                    any_channel_tile<1>(px, g, padded, w, y, x0, oc0, channels, epilogue, out);
                x0 += px;
            }
    });
}

}  // namespace

bool direct_applies(const ConvParams& p) { return p.groups == 1 && p.window.stride_h == 1 && p.window.stride_w == 1; }

bool direct_channel_tiles(const ConvParams& p) {
    // At least a block of output channels: the packed copy then takes at most twice the weights.
    return p.in_channels * p.window.kernel_h * p.window.kernel_w >= kChannelTilesMinTaps &&
           p.out_channels >= kChannelBlock;
}

int64_t direct_packed_size(const ConvParams& p) {
    const int64_t taps = p.in_channels * p.window.kernel_h * p.window.kernel_w;
    const int64_t blocks = (p.out_channels + kChannelBlock - 1) / kChannelBlock;
    // and zeros past the last block, as far as the tiles' prefetch reaches
    return blocks * taps * kChannelBlock + kWeightPrefetch + p.window.kernel_w * kChannelBlock;
}

std::vector<float> direct_pack_weights(const ConvParams& p, const float* weight) {
    const int64_t taps = p.in_channels * p.window.kernel_h * p.window.kernel_w;
    std::vector<float> packed(static_cast<size_t>(direct_packed_size(p)), 0.0f);
    for (int64_t oc = 0; oc < p.out_channels; ++oc)
        for (int64_t k = 0; k < taps; ++k)
            packed[static_cast<size_t>((oc / kChannelBlock * taps + k) * kChannelBlock + oc % kChannelBlock)] =
                weight[oc * taps + k];
    return packed;
}

int64_t conv2d_direct_workspace(const ConvParams& p, int64_t in_h, int64_t in_w) {
    return layout(p, in_h, in_w).floats;
}

void conv2d_direct(const ConvParams& p, const float* weight, const float* packed, Epilogue epilogue,
                   const Tensor& input, Tensor& output, ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const Layout l = layout(p, in_h, in_w);
    if (l.vectors == 0) return;
    if (direct_channel_tiles(p) && packed == nullptr)
        throw std::logic_error("conv2d_direct: channel tiles need the weights of direct_pack_weights");
    const Grid g{p.in_channels, l.ph * l.pw,  l.pw,         w.kernel_h,
                 w.kernel_w,    w.dilation_h, w.dilation_w, p.in_channels * w.kernel_h * w.kernel_w,
                 l.out_h,       l.out_w};
    // The calling thread's scratch, shared with the workers.
    thread_local std::vector<float> padded_scratch;
    float* padded = thread_scratch(padded_scratch, l.floats);

    for (int64_t n = 0; n < batch; ++n) {
        const float* in = input.ptr() + n * p.in_channels * in_h * in_w;
        run_chunks(pool, p.in_channels, p.in_channels * g.plane, [&](int64_t c) {
            copy_padded(in + c * in_h * in_w, 1, in_h, in_w, w.pad_top, w.pad_left, l.ph, l.pw, padded + c * g.plane);
        });
        std::fill(padded + p.in_channels * g.plane, padded + l.floats, 0.0f);  // what the last vectors over-read
        float* out = output.ptr() + n * p.out_channels * l.out_h * l.out_w;
        if (direct_channel_tiles(p))
            channel_tiles(g, p.out_channels, padded, packed, epilogue, out, pool);
        else
            vector_tiles(g, l, p.out_channels, padded, weight, epilogue, out, pool);
    }
}

}  // namespace gapnet
