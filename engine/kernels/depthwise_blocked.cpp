#include "depthwise_blocked.h"

#include <algorithm>

#include "blocked.h"
#include "parallel.h"
#include "vec16.h"
#include "window_taps.h"

namespace gapnet {

namespace {

// Output pixels of a row whose sums stay in registers over all the taps. The fast path (row_tile):
// up to 16, which with a kernel row's 3 or 5 weight vectors and an input vector fit the 32 vector
// registers; each output's taps are a chain of dependent multiply-adds, so many outputs in flight
// hide their latency. The general path (generic_tile): 8.
constexpr int kRowTilePixels = 16;
constexpr int kTilePixels = 8;
// A chunk spans enough output rows for at least this many output pixels of a block, so that a
// chunk's overhead is small and 112 x 112 maps still split into many chunks.
constexpr int64_t kChunkPixels = 512;

struct Geometry {
    int64_t in_h, in_w, out_h, out_w;
    int64_t kh, kw, sh, sw, dh, dw, pad_top, pad_left;
    // The output columns whose window lies inside the input's columns: [x_lo, x_hi).
    int64_t x_lo, x_hi;
    // The rows the kernels' plane pointers point at: the input's row in_row0 and the output's row
    // out_row0 (0 for whole maps; a band's first rows in a chain, layers/conv_chain.h).
    int64_t in_row0 = 0, out_row0 = 0;
};

Geometry geometry_of(const Window2d& w, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
    Geometry g{.in_h = in_h,
               .in_w = in_w,
               .out_h = out_h,
               .out_w = out_w,
               .kh = w.kernel_h,
               .kw = w.kernel_w,
               .sh = w.stride_h,
               .sw = w.stride_w,
               .dh = w.dilation_h,
               .dw = w.dilation_w,
               .pad_top = w.pad_top,
               .pad_left = w.pad_left,
               .x_lo = 0,
               .x_hi = 0};
    // Column ox reads ox * sw - pad_left + kx * dw for kx in [0, kw): inside when the first tap is
    // at or past column 0 and the last before in_w.
    const int64_t first_inside = (w.pad_left + w.stride_w - 1) / w.stride_w;
    const int64_t last_room = in_w - 1 + w.pad_left - (w.kernel_w - 1) * w.dilation_w;
    g.x_lo = std::min(first_inside, out_w);
    g.x_hi = last_room < 0 ? g.x_lo : std::clamp(last_room / w.stride_w + 1, g.x_lo, out_w);
    return g;
}

// v, held in a register: without this the compiler folds each use of a loaded input vector back
// into a load (a memory operand of each multiply-add), undoing row_tile's reuse.
inline Vec16 in_register(Vec16 v) {
#if defined(__AVX512F__)
    asm("" : "+v"(v));
#endif
    return v;
}

// Stores the tile's sums, the activation applied, to pixels [0, Pixels) of out.
template <int Pixels>
void finish(const Vec16 (&acc)[Pixels], const Activation& activation, float* out) {
    const Activation f = activation;  // a local copy: the stores below cannot change it
#pragma GCC unroll 16
    for (int p = 0; p < Pixels; ++p) store16(out + p * kBlock, f(acc[p]));
}

// The fast path, for a kernel KW wide at stride SW without dilation (3x3 and 5x5 at stride 1 or 2):
// output pixels [ox0, ox0 + Pixels) of row oy, the taps of rows [ky0, ky1) summed onto the bias.
// Each input pixel of the tile's row is loaded once and multiplied into every output that reads it
// (a 1x3 row of 8 outputs at stride 1: 10 loads for 24 multiply-adds instead of 24), which matters
// because a core loads fewer vectors a cycle than it multiplies. Checked: some window crosses the
// left or right edge: the input columns outside count as zeros. Each output's taps are summed in the
// order (ky, kx), as generic_tile and edge_pixel do.
// in: the block's input plane [in_h][in_w][16]; w: its packed weights [kh][kw][16]; out_row: the
// block's output row [out_w][16].
template <int Pixels, int KW, int SW, bool Checked>
void row_tile(const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1, int64_t oy, int64_t ox0,
              Vec16 bias, const Activation& activation, float* out_row) {
    constexpr int kSpan = (Pixels - 1) * SW + KW;  // the input columns a row of the tile reads
    const int64_t x0 = ox0 * SW - g.pad_left;      // the first of them (negative in the padding)
    Vec16 acc[Pixels];
    for (int p = 0; p < Pixels; ++p) acc[p] = bias;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
        const int64_t row = ((oy * g.sh - g.pad_top + ky * g.dh - g.in_row0) * g.in_w + x0) * kBlock;
        Vec16 weight[KW];
        for (int kx = 0; kx < KW; ++kx) weight[kx] = load16(w + (ky * KW + kx) * kBlock);
        // The row's input vectors; in a checked tile those outside the input are zeros (the
        // convolution's zero padding), read first, so that the multiply-adds below do not branch.
        Vec16 x[kSpan];
#pragma GCC unroll 40
        for (int j = 0; j < kSpan; ++j)
            x[j] = !Checked || (x0 + j >= 0 && x0 + j < g.in_w) ? load16(in + row + j * kBlock) : Vec16{};
#pragma GCC unroll 40
        for (int j = 0; j < kSpan; ++j) {
            const Vec16 v = in_register(x[j]);
#pragma GCC unroll 16
            for (int p = 0; p < Pixels; ++p)
                if (j - p * SW >= 0 && j - p * SW < KW) acc[p] = fma16(weight[j - p * SW], v, acc[p]);
        }
    }
    finish(acc, activation, out_row + ox0 * kBlock);
}

// row_tile for a tile of 1 to kRowTilePixels pixels.
template <int KW, int SW, bool Checked>
void any_row_tile(int64_t pixels, const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1,
                  int64_t oy, int64_t ox0, Vec16 bias, const Activation& activation, float* out_row) {
    switch (pixels) {
#define GAPNET_DEPTHWISE_TILE(P) \
    case P: return row_tile<P, KW, SW, Checked>(g, in, w, ky0, ky1, oy, ox0, bias, activation, out_row);
        GAPNET_DEPTHWISE_TILE(1)
        GAPNET_DEPTHWISE_TILE(2)
        GAPNET_DEPTHWISE_TILE(3)
        GAPNET_DEPTHWISE_TILE(4)
        GAPNET_DEPTHWISE_TILE(5)
        GAPNET_DEPTHWISE_TILE(6)
        GAPNET_DEPTHWISE_TILE(7)
        GAPNET_DEPTHWISE_TILE(8)
        GAPNET_DEPTHWISE_TILE(9)
        GAPNET_DEPTHWISE_TILE(10)
        GAPNET_DEPTHWISE_TILE(11)
        GAPNET_DEPTHWISE_TILE(12)
        GAPNET_DEPTHWISE_TILE(13)
        GAPNET_DEPTHWISE_TILE(14)
        GAPNET_DEPTHWISE_TILE(15)
        GAPNET_DEPTHWISE_TILE(16)
#undef GAPNET_DEPTHWISE_TILE
        default: break;
    }
}
static_assert(kRowTilePixels == 16, "any_row_tile instantiates tiles of 1 to 16 pixels");

// Output rows [oy0, oy1) of one block on the fast path: in [in_h][in_w][16] -> out [out_h][out_w][16].
// A row is cut into tiles of equal size but the last (14 pixels: 7 + 7, not 8 + 6), those whose
// windows all lie inside the input's columns unchecked.
template <int KW, int SW>
void fast_rows(const Geometry& g, const float* in, const float* w, Vec16 bias, const Activation& activation,
               int64_t oy0, int64_t oy1, float* out) {
    const int64_t tiles = (g.out_w + kRowTilePixels - 1) / kRowTilePixels, per_tile = (g.out_w + tiles - 1) / tiles;
    for (int64_t oy = oy0; oy < oy1; ++oy) {
        const auto [ky0, ky1] = taps_inside(oy * g.sh - g.pad_top, g.dh, g.in_h, g.kh);
        float* out_row = out + (oy - g.out_row0) * g.out_w * kBlock;
        for (int64_t ox = 0; ox < g.out_w; ox += per_tile) {
            const int64_t pixels = std::min(per_tile, g.out_w - ox);
            if (ox >= g.x_lo && ox + pixels <= g.x_hi)
                any_row_tile<KW, SW, false>(pixels, g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
            else
                any_row_tile<KW, SW, true>(pixels, g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        }
    }
}

// Any kernel, stride and dilation: output pixels [ox0, ox0 + Pixels) of row oy, whose windows lie
// inside the input's columns, each tap loaded.
template <int Pixels>
void generic_tile(const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1, int64_t oy, int64_t ox0,
                  Vec16 bias, const Activation& activation, float* out_row) {
    const int64_t step = g.sw * kBlock;  // between the tile's pixels, in the input row
    Vec16 acc[Pixels];
    for (int p = 0; p < Pixels; ++p) acc[p] = bias;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row =
            in + ((oy * g.sh - g.pad_top + ky * g.dh - g.in_row0) * g.in_w + ox0 * g.sw - g.pad_left) * kBlock;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
            const Vec16 weight = load16(w + (ky * g.kw + kx) * kBlock);
            const float* x = row + kx * g.dw * kBlock;
            for (int p = 0; p < Pixels; ++p) acc[p] = fma16(weight, load16(x + p * step), acc[p]);
        }
    }
    finish(acc, activation, out_row + ox0 * kBlock);
}

// Output pixel (oy, ox) whose window crosses the left or right edge: the taps inside the input.
void edge_pixel(const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1, int64_t oy, int64_t ox,
                Vec16 bias, const Activation& activation, float* out_row) {
    const auto [kx0, kx1] = taps_inside(ox * g.sw - g.pad_left, g.dw, g.in_w, g.kw);
    Vec16 acc = bias;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row =
            in + ((oy * g.sh - g.pad_top + ky * g.dh - g.in_row0) * g.in_w + ox * g.sw - g.pad_left) * kBlock;
        for (int64_t kx = kx0; kx < kx1; ++kx)
            acc = fma16(load16(w + (ky * g.kw + kx) * kBlock), load16(row + kx * g.dw * kBlock), acc);
    }
    store16(out_row + ox * kBlock, activation(acc));
}

// Output rows [oy0, oy1) of one block for any window: the edge columns a pixel at a time, the
// interior in tiles of kTilePixels (the last one single pixels).
void generic_rows(const Geometry& g, const float* in, const float* w, Vec16 bias, const Activation& activation,
                  int64_t oy0, int64_t oy1, float* out) {
    for (int64_t oy = oy0; oy < oy1; ++oy) {
        const auto [ky0, ky1] = taps_inside(oy * g.sh - g.pad_top, g.dh, g.in_h, g.kh);
        float* out_row = out + (oy - g.out_row0) * g.out_w * kBlock;
        int64_t ox = 0;
        for (; ox < g.x_lo; ++ox) edge_pixel(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        for (; ox + kTilePixels <= g.x_hi; ox += kTilePixels)
            generic_tile<kTilePixels>(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        for (; ox < g.x_hi; ++ox) generic_tile<1>(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        for (; ox < g.out_w; ++ox) edge_pixel(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
    }
}

using BlockRows = void (*)(const Geometry&, const float*, const float*, Vec16, const Activation&, int64_t, int64_t,
                           float*);

// fast_rows for kernels 3 and 5 wide at stride 1 or 2 without dilation (MobileNet's, EfficientNet's),
// else generic_rows.
BlockRows rows_kernel(const Geometry& g) {
    if (g.dw == 1 && (g.kw == 3 || g.kw == 5) && (g.sw == 1 || g.sw == 2)) {
        if (g.kw == 3) return g.sw == 1 ? fast_rows<3, 1> : fast_rows<3, 2>;
        return g.sw == 1 ? fast_rows<5, 1> : fast_rows<5, 2>;
    }
    return generic_rows;
}

}  // namespace

bool depthwise_blocked_applies(const ConvParams& p) {
    return p.groups == p.in_channels && p.out_channels == p.in_channels;
}

int64_t depthwise_blocked_packed_size(const ConvParams& p) {
    return channel_blocks(p.out_channels) * p.window.kernel_h * p.window.kernel_w * kBlock;
}

std::vector<float> depthwise_blocked_pack(const ConvParams& p, const float* weight) {
    const int64_t channels = p.out_channels, taps = p.window.kernel_h * p.window.kernel_w;
    std::vector<float> packed(static_cast<size_t>(depthwise_blocked_packed_size(p)), 0.0f);
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t t = 0; t < taps; ++t)
            packed[static_cast<size_t>((c / kBlock * taps + t) * kBlock + c % kBlock)] = weight[c * taps + t];
    return packed;
}

void depthwise_blocked(const ConvParams& p, const float* packed, const Epilogue& epilogue, const Tensor& input,
                       Tensor& output, ThreadPool& pool) {
    const int64_t batch = input.shape[0], blocks = input.shape[1], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3], channels = p.out_channels;
    const Geometry g = geometry_of(p.window, in_h, in_w, out_h, out_w);
    const int64_t taps = g.kh * g.kw;
    const auto rows = rows_kernel(g);
    for_each_row_span(pool, batch, blocks, out_h, out_w, kChunkPixels, batch * blocks * out_h * out_w * taps * kBlock,
                      [&](int64_t plane, int64_t b, int64_t oy0, int64_t oy1) {
                          const int64_t lanes = std::min(kBlock, channels - b * kBlock);
                          const Vec16 bias = epilogue.bias ? load_under16(epilogue.bias + b * kBlock, lanes) : Vec16{};
                          rows(g, input.ptr() + plane * in_h * in_w * kBlock, packed + b * taps * kBlock, bias,
                               epilogue.activation, oy0, oy1, output.ptr() + plane * out_h * out_w * kBlock);
                      });
}

void depthwise_blocked_rows(const ConvParams& p, const float* packed, const Epilogue& epilogue, const float* in,
                            int64_t in_block_step, int64_t in_row0, int64_t in_h, int64_t in_w, float* out,
                            int64_t out_block_step, int64_t out_row0, int64_t oy0, int64_t oy1) {
    Geometry g = geometry_of(p.window, in_h, in_w, p.window.output_h(in_h), p.window.output_w(in_w));
    g.in_row0 = in_row0, g.out_row0 = out_row0;
    const int64_t taps = g.kh * g.kw;
    const auto rows = rows_kernel(g);
    for (int64_t b = 0; b < channel_blocks(p.out_channels); ++b) {
        const int64_t lanes = std::min(kBlock, p.out_channels - b * kBlock);
        const Vec16 bias = epilogue.bias ? load_under16(epilogue.bias + b * kBlock, lanes) : Vec16{};
        rows(g, in + b * in_block_step, packed + b * taps * kBlock, bias, epilogue.activation, oy0, oy1,
             out + b * out_block_step);
    }
}

}  // namespace gapnet
