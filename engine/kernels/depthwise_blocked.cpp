#include "depthwise_blocked.h"

#include <algorithm>

#include "blocked.h"
#include "parallel.h"
#include "vec16.h"
#include "window_taps.h"

namespace gapnet {

namespace {

// Output pixels of a row whose sums stay in registers over all the taps: 8 accumulators, a weight
// vector and the input operands fit the 32 vector registers with room to spare.
constexpr int kTilePixels = 8;
// A chunk spans enough output rows for at least this many output pixels of a block, so that a
// chunk's overhead is small and 112 x 112 maps still split into many chunks.
constexpr int64_t kChunkPixels = 512;

struct Geometry {
    int64_t in_h, in_w, out_h, out_w;
    int64_t kh, kw, sh, sw, dh, dw, pad_top, pad_left;
    // The output columns whose window lies inside the input's columns: [x_lo, x_hi).
    int64_t x_lo, x_hi;
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

// Output pixels [ox0, ox0 + Pixels) of row oy, whose windows lie inside the input's columns: the
// taps of rows [ky0, ky1) summed onto the bias in registers, the activation applied, each pixel
// stored once. in: the block's input plane [in_h][in_w][16]; w: its packed weights [kh][kw][16];
// out_row: the block's output row [out_w][16]. KW > 0: the kernel width, known at compile time.
template <int Pixels, int KW>
void interior_tile(const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1, int64_t oy,
                   int64_t ox0, Vec16 bias, const Activation& activation, float* out_row) {
    const int64_t kw = KW > 0 ? KW : g.kw;
    const int64_t step = g.sw * kBlock;  // between the tile's pixels, in the input row
    Vec16 acc[Pixels];
    for (int p = 0; p < Pixels; ++p) acc[p] = bias;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row = in + ((oy * g.sh - g.pad_top + ky * g.dh) * g.in_w + ox0 * g.sw - g.pad_left) * kBlock;
        const float* wr = w + ky * kw * kBlock;
        for (int64_t kx = 0; kx < kw; ++kx) {
            const Vec16 weight = load16(wr + kx * kBlock);
            const float* x = row + kx * g.dw * kBlock;
            for (int p = 0; p < Pixels; ++p) acc[p] = fma16(weight, load16(x + p * step), acc[p]);
        }
    }
    for (int p = 0; p < Pixels; ++p) store16(out_row + (ox0 + p) * kBlock, activation(acc[p]));
}

// A tile of 1 to kTilePixels pixels (the last of a row's interior).
template <int KW>
void any_interior_tile(int64_t pixels, const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1,
                       int64_t oy, int64_t ox0, Vec16 bias, const Activation& activation, float* out_row) {
    switch (pixels) {
#define GAPNET_DEPTHWISE_TILE(P) \
    case P: return interior_tile<P, KW>(g, in, w, ky0, ky1, oy, ox0, bias, activation, out_row);
        GAPNET_DEPTHWISE_TILE(1)
        GAPNET_DEPTHWISE_TILE(2)
        GAPNET_DEPTHWISE_TILE(3)
        GAPNET_DEPTHWISE_TILE(4)
        GAPNET_DEPTHWISE_TILE(5)
        GAPNET_DEPTHWISE_TILE(6)
        GAPNET_DEPTHWISE_TILE(7)
        GAPNET_DEPTHWISE_TILE(8)
#undef GAPNET_DEPTHWISE_TILE
        default: break;
    }
}
static_assert(kTilePixels == 8, "any_interior_tile instantiates tiles of 1 to 8 pixels");

// Output pixel (oy, ox) whose window crosses the left or right edge: the taps inside the input, in
// the interior tiles' order.
void edge_pixel(const Geometry& g, const float* in, const float* w, int64_t ky0, int64_t ky1, int64_t oy, int64_t ox,
                Vec16 bias, const Activation& activation, float* out_row) {
    const auto [kx0, kx1] = taps_inside(ox * g.sw - g.pad_left, g.dw, g.in_w, g.kw);
    Vec16 acc = bias;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
        const float* row = in + ((oy * g.sh - g.pad_top + ky * g.dh) * g.in_w + ox * g.sw - g.pad_left) * kBlock;
        for (int64_t kx = kx0; kx < kx1; ++kx)
            acc = fma16(load16(w + (ky * g.kw + kx) * kBlock), load16(row + kx * g.dw * kBlock), acc);
    }
    store16(out_row + ox * kBlock, activation(acc));
}

// Output rows [oy0, oy1) of one block: in [in_h][in_w][16] -> out [out_h][out_w][16].
template <int KW>
void block_rows(const Geometry& g, const float* in, const float* w, Vec16 bias, const Activation& activation,
                int64_t oy0, int64_t oy1, float* out) {
    for (int64_t oy = oy0; oy < oy1; ++oy) {
        const auto [ky0, ky1] = taps_inside(oy * g.sh - g.pad_top, g.dh, g.in_h, g.kh);
        float* out_row = out + oy * g.out_w * kBlock;
        int64_t ox = 0;
        for (; ox < g.x_lo; ++ox) edge_pixel(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        for (; ox + kTilePixels <= g.x_hi; ox += kTilePixels)
            interior_tile<kTilePixels, KW>(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
        if (ox < g.x_hi) {
            any_interior_tile<KW>(g.x_hi - ox, g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
            ox = g.x_hi;
        }
        for (; ox < g.out_w; ++ox) edge_pixel(g, in, w, ky0, ky1, oy, ox, bias, activation, out_row);
    }
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
    const int64_t rows_per_chunk = std::clamp<int64_t>((kChunkPixels + out_w - 1) / out_w, 1, out_h);
    const int64_t spans = (out_h + rows_per_chunk - 1) / rows_per_chunk;
    const auto rows = g.kw == 3 ? block_rows<3> : g.kw == 5 ? block_rows<5> : block_rows<0>;
    run_chunks(pool, batch * blocks * spans, batch * blocks * out_h * out_w * taps * kBlock, [&](int64_t chunk) {
        const int64_t plane = chunk / spans, span = chunk % spans, b = plane % blocks;  // plane: (sample, block)
        const int64_t lanes = std::min(kBlock, channels - b * kBlock);
        const Vec16 bias = epilogue.bias ? load_under16(epilogue.bias + b * kBlock, lanes) : Vec16{};
        const int64_t oy0 = span * rows_per_chunk;
        rows(g, input.ptr() + plane * in_h * in_w * kBlock, packed + b * taps * kBlock, bias, epilogue.activation, oy0,
             std::min(out_h, oy0 + rows_per_chunk), output.ptr() + plane * out_h * out_w * kBlock);
    });
}

}  // namespace gapnet
