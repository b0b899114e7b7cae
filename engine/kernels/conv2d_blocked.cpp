#include "conv2d_blocked.h"

#include <algorithm>
#include <array>
#include <bit>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "../sanitized.h"
#include "bfloat16.h"
#include "blocked.h"
#include "padding.h"
#include "parallel.h"
#include "quantize.h"
#include "scratch.h"
#include "vec16.h"

namespace gapnet {

namespace {

using Vec = Vec16;
constexpr int64_t kBlockWeights = kBlock * kBlock;  // one output block's weights for one input block and tap
constexpr int64_t kMaxTileBlocks = 4;
// Pixels of a tile of mb output blocks: mb x pixels accumulators + mb weight vectors + 1 broadcast
// within the 32 vector registers (29, 28, 27 and 26 of them).
constexpr int tile_pixels(int64_t mb) { return mb >= 4 ? 6 : mb == 3 ? 8 : mb == 2 ? 12 : 24; }
// A chunk holds at least this many multiply-adds (a few microseconds), unless the layer is smaller,
// and at least this many output pixels (a whole map if smaller): each chunk reads its group's weights
// once from beyond L2 (1.2 MB for a 512 -> 512 3x3 group), which must then serve enough pixels.
constexpr int64_t kMinChunkWork = int64_t{1} << 18;
constexpr int64_t kMinChunkPixels = 64;
// The weights a group of output blocks reads for one pass over its pixels, at most (192 KB): layers
// with more (512 -> 512 3x3: 1.2 MB a group) sum their input blocks in slices of that size, each
// slice's weights staying in L2 while every pixel of the chunk uses them; the partial sums wait in the
// output (stored and reloaded exactly, so the order of the sum does not change).
constexpr int64_t kWeightSliceFloats = int64_t{48} << 10;
// A tile over a tap list (kh x kw x fewer than 16 channels) reads one weight vector per tap and output
// block, over and over for every tile: at most this many floats (24 KB, half of L1) of them, so that
// they stay in L1 beside the input rows (a 7x7 3 -> 64 layer runs in two groups of 2 blocks).
constexpr int64_t kTapListWeightFloats = int64_t{6} << 10;

// A block's 16 channels are unrolled in full (a third faster on 1x1 layers of few input channels).
// The sanitizers' checks on every load would make that code take minutes to compile: there, 4 at a
// time (the same operations in the same order).
#if GAPNET_SANITIZED
constexpr int kBlockUnroll = 4;
#else
constexpr int kBlockUnroll = 16;
#endif

// In an AVX-512 build the tiles come in every width (P from 1 to tile_pixels(Mb), their loops over
// pixels unrolled) and for the pixel steps 16 and 32 as constants: 150 tiles per arithmetic. The
// portable build and the sanitizers' compile one tile per Mb, of the widest P, whose loops run over
// the tile's actual width: the same sums in the same order (the same results, tested), in a
// fraction of the compile time.
#if defined(__AVX512F__) && !GAPNET_SANITIZED
constexpr bool kEveryTile = true;
#else
constexpr bool kEveryTile = false;
#endif

// Keeps v in a register: GCC would otherwise fold each weight load into every multiply-add that uses
// it (Mb x P loads per input channel instead of Mb).
template <class V>
inline void in_register([[maybe_unused]] V& v) {
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64) asm("" : "+v"(v));
#endif
}

// 16 int32 sums (int8's accumulators).
using VecI32 = int32_t __attribute__((vector_size(64)));

// An accumulator vector's bits from or to 16 floats' memory: partial sums wait in the output between
// input slices, whatever their type.
template <class Acc>
Acc load_acc(const float* p) {
    Acc a;
    std::memcpy(&a, p, sizeof a);
    return a;
}
template <class Acc>
void store_acc(float* p, const Acc& a) {
    std::memcpy(p, &a, sizeof a);
}

// The arithmetic of the tiles: the types of the input map (In) and weights (Weight) they read, of
// their sums (Acc), and one step of multiply-adds, over kGroup adjacent input channels of a pixel
// (their values broadcast) and their weight vector for 16 output channels. A reduced precision
// converts the input as the kernel copies it (convert16, with its Converter's parameters; zero() is
// what a zero input becomes, for the padding).
//
// float32: one channel a step, fma.
struct Float32Math {
    using In = float;
    using Weight = float;
    using Acc = Vec16;
    using Weights = Vec16;
    using Broadcast = Vec16;
    static constexpr int kGroup = 1;
    struct Converter {};
    static Weights weights(const Weight* w) { return load16(w); }
    static Broadcast broadcast(const In* x) { return broadcast16(*x); }
    static Vec16 multiply_add(Broadcast b, Weights w, Vec16 acc) { return fma16(b, w, acc); }
};

// bfloat16 (bfloat16.h): a pair of channels a step, as AVX512-BF16's vdpbf16ps computes it: the
// weights of channels c and c + 1 interleaved per output channel ([16 out][2]), and each 32-bit pair
// of the input broadcast; acc += x[c + 1] * w[c + 1], then += x[c] * w[c], each product exact in
// float32 and each sum rounded (Intel SDM, VDPBF16PS). Without the instruction, the same sums in that
// order with fma (whose rounding may differ from vdpbf16ps's on denormals, which it flushes).
struct Bfloat16Math {
    using In = uint16_t;
    using Weight = uint16_t;
    using Acc = Vec16;
    static constexpr int kGroup = 2;
    struct Converter {};
    static In zero(const Converter&) { return 0; }
#if defined(__AVX512BF16__)
    using Weights = __m512bh;
    using Broadcast = __m512bh;
    static Weights weights(const In* w) { return std::bit_cast<__m512bh>(_mm512_loadu_si512(w)); }
    static Broadcast broadcast(const In* x) {
        int32_t pair;
        std::memcpy(&pair, x, sizeof pair);
        return std::bit_cast<__m512bh>(_mm512_set1_epi32(pair));
    }
    static Vec16 multiply_add(Broadcast b, Weights w, Vec16 acc) { return _mm512_dpbf16_ps(acc, b, w); }
#else
    using Pairs = uint32_t __attribute__((vector_size(64)));  // 16 (even, odd) pairs
    struct Weights {
        Vec16 even, odd;  // channels c and c + 1
    };
    using Broadcast = Weights;
    static Vec16 as_floats(Pairs bits) {
        Vec16 v;
        std::memcpy(&v, &bits, sizeof v);
        return v;
    }
    static Weights weights(const In* w) {
        Pairs pairs;
        std::memcpy(&pairs, w, sizeof pairs);
        return {as_floats(pairs << 16), as_floats(pairs & 0xffff0000u)};
    }
    static Broadcast broadcast(const In* x) {
        return {broadcast16(from_bfloat16(x[0])), broadcast16(from_bfloat16(x[1]))};
    }
    static Vec16 multiply_add(const Broadcast& b, const Weights& w, Vec16 acc) {
        return fma16(b.even, w.even, fma16(b.odd, w.odd, acc));
    }
#endif
    static void convert16(const float* x, In* out, const Converter&) {
#if defined(__AVX512BF16__)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                            std::bit_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(x))));
#else
        for (int c = 0; c < kBlock; ++c) out[c] = to_bfloat16(x[c]);
#endif
    }
};

// int8: four channels a step, as AVX512-VNNI's vpdpbusd computes them: the input quantized to uint8
// as ONNX's QuantizeLinear does (x_q = clamp(round_half_even(x / scale) + zero_point, 0, 255)), the
// weights int8 ([16 out][4]), each step's four products added to the int32 sums exactly (at most
// 4 x 255 x 128 a step: a sum of 16,000 steps, a 3x3 layer of 7,000 input channels, stays in range).
// Integers are exact, so every CPU gives the same sums; without VNNI, the same products one channel
// at a time. The epilogue turns a sum into float32 as scale[oc] x (sum - correction[oc])
// (kernels/conv2d_blocked.h, Int8Weights).
struct Int8Math {
    using In = uint8_t;
    using Weight = int8_t;
    using Acc = VecI32;
    static constexpr int kGroup = 4;
    struct Converter {
        float scale;
        int32_t zero_point;
    };
    static In zero(const Converter& c) { return static_cast<In>(c.zero_point); }
#if defined(__AVX512VNNI__)
    using Weights = __m512i;
    using Broadcast = __m512i;
    static Weights weights(const Weight* w) { return _mm512_loadu_si512(w); }
    static Broadcast broadcast(const In* x) {
        int32_t quad;
        std::memcpy(&quad, x, sizeof quad);
        return _mm512_set1_epi32(quad);
    }
    static Acc multiply_add(Broadcast b, Weights w, Acc acc) {
        return std::bit_cast<Acc>(_mm512_dpbusd_epi32(std::bit_cast<__m512i>(acc), b, w));
    }
#else
    struct Weights {
        Acc channel[4];  // channels c .. c + 3, each weight sign-extended
    };
    struct Broadcast {
        int32_t channel[4];
    };
    static Weights weights(const Weight* w) {
        Acc quads;
        std::memcpy(&quads, w, sizeof quads);
        return {{(quads << 24) >> 24, (quads << 16) >> 24, (quads << 8) >> 24, quads >> 24}};
    }
    static Broadcast broadcast(const In* x) { return {{x[0], x[1], x[2], x[3]}}; }
    static Acc multiply_add(const Broadcast& b, const Weights& w, Acc acc) {
        return acc + b.channel[0] * w.channel[0] + b.channel[1] * w.channel[1] + b.channel[2] * w.channel[2] +
               b.channel[3] * w.channel[3];
    }
#endif
    static void convert16(const float* x, In* out, const Converter& c) {
#if defined(__AVX512F__)
        // The zero-masked forms: GCC 12 warns that the unmasked ones read an undefined register.
        constexpr __mmask16 all = 0xffff;
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(x), _mm512_set1_ps(c.scale));
        v = _mm512_maskz_roundscale_ps(all, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_add_ps(v, _mm512_set1_ps(static_cast<float>(c.zero_point)));
        v = _mm512_maskz_min_ps(all, _mm512_maskz_max_ps(all, v, _mm512_setzero_ps()), _mm512_set1_ps(255.0f));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                         _mm512_maskz_cvtusepi32_epi8(all, _mm512_maskz_cvtps_epi32(all, v)));
#else
        for (int i = 0; i < kBlock; ++i) out[i] = quantize_uint8(x[i], c.scale, c.zero_point);
#endif
    }
};

// Where a tile reads its input: strides in floats within one sample (possibly the padded copy).
struct Source {
    int64_t channels, blocks;  // input channels and their blocks of 16
    int64_t block_step;        // between blocks of 16 input channels
    int64_t channel_step;      // between the channels of a block: 1 blocked, a plane plain
    int64_t row_step;          // between input rows
    int64_t pixel_step;        // between consecutive output pixels of a row: stride_w columns
    int64_t kh, kw;
    int64_t tap_row, tap_col;   // between kernel taps: dilation_h rows, dilation_w columns
    int64_t weight_block_step;  // between output blocks of the packed weights
    // One block of fewer than 16 input channels (an image's first layer): its (ky, kx, channel) taps
    // as one list of (input offset, weight offset) pairs, one loop instead of a short loop per tap.
    const int64_t* taps = nullptr;
    int64_t tap_count = 0;
};

// Where a tile writes: the sample's blocked output, and its epilogue.
struct Sink {
    float* out;
    const float* residual;  // the sample's residual, same layout as out; or null
    int64_t block_step;     // between output blocks: out_h * out_w * 16
    const float* bias;
    int64_t out_channels;
    Activation activation;
    // int8: per output channel, padded to whole blocks (Int8Weights)
    const float* scale = nullptr;
    const int32_t* correction = nullptr;
};

// One step's multiply-adds (Math): its Mb weight vectors (`w`, blocks weight_step apart) times each
// of the P pixels' values (`x`, pixel_step apart), broadcast.
template <class Math, int Mb, int P>
inline void channel(typename Math::Acc (&acc)[Mb][P], const typename Math::In* x, const typename Math::Weight* w,
                    int64_t weight_step, int64_t pixel_step, int width) {
    typename Math::Weights weights[Mb];
#pragma GCC unroll 4
    for (int m = 0; m < Mb; ++m) {
        weights[m] = Math::weights(w + m * weight_step);
        in_register(weights[m]);
    }
#pragma GCC unroll 24
    for (int p = 0; p < width; ++p) {
        const typename Math::Broadcast b = Math::broadcast(x + p * pixel_step);
#pragma GCC unroll 4
        for (int m = 0; m < Mb; ++m) acc[m][p] = Math::multiply_add(b, weights[m], acc[m][p]);
    }
}

// Output blocks [ob0, ob0 + Mb) x P consecutive pixels of a row, the first at `in` (its tap (0, 0),
// channel 0 of block 0) and at `offset` in each output block; `w`: block ob0's packed weights.
// Sums input blocks [ib_begin, ib_end) onto zero (first) or onto the partial sums in the output, then
// stores the sums, or (last) the epilogue's results. Step: the pixel step of a blocked input at stride
// 1 or 2 (16 or 32 values; channels adjacent), as constant offsets; 0: any input, steps read from s.
template <class Math, int Mb, int P, int Step>
void tile(const Source& s, const Sink& o, const typename Math::In* in, const typename Math::Weight* w, int64_t ob0,
          int64_t offset, int64_t ib_begin, int64_t ib_end, bool first, bool last, int64_t pixels) {
    const int width = kEveryTile ? P : static_cast<int>(pixels);  // a constant where the tile has one width
    using Acc = typename Math::Acc;
    constexpr int group = Math::kGroup;
    const int64_t pixel_step = Step ? Step : s.pixel_step;
    const int64_t channel_step = Step ? 1 : s.channel_step;
    Acc acc[Mb][P];
    for (int m = 0; m < Mb; ++m)
        for (int p = 0; p < width; ++p)
            acc[m][p] = first ? Acc{} : load_acc<Acc>(o.out + (ob0 + m) * o.block_step + offset + p * kBlock);
    if (s.taps) {
        for (int64_t t = 0; t < s.tap_count; ++t)
            channel<Math, Mb, P>(acc, in + s.taps[2 * t], w + s.taps[2 * t + 1], s.weight_block_step, pixel_step,
                                 width);
    } else {
        for (int64_t ib = ib_begin; ib < ib_end; ++ib) {
            // Padding lanes are never read by float32; a group reaching past the last channel reads
            // them (finite) times zero weights.
            const int64_t lanes = std::min(kBlock, s.channels - ib * kBlock);
            for (int64_t ky = 0; ky < s.kh; ++ky)
                for (int64_t kx = 0; kx < s.kw; ++kx) {
                    const typename Math::In* x = in + ib * s.block_step + ky * s.tap_row + kx * s.tap_col;
                    const typename Math::Weight* wt = w + ((ib * s.kh + ky) * s.kw + kx) * kBlockWeights;
                    if (lanes == kBlock) {
#pragma GCC unroll kBlockUnroll
                        for (int c = 0; c < kBlock; c += group)
                            channel<Math, Mb, P>(acc, x + c * channel_step, wt + c * kBlock, s.weight_block_step,
                                                 pixel_step, width);
                    } else {
                        for (int64_t c = 0; c < lanes; c += group)
                            channel<Math, Mb, P>(acc, x + c * channel_step, wt + c * kBlock, s.weight_block_step,
                                                 pixel_step, width);
                    }
                }
        }
    }
    for (int m = 0; m < Mb; ++m) {
        const int64_t ob = ob0 + m;
        float* dst = o.out + ob * o.block_step + offset;
        if (!last) {
            for (int p = 0; p < width; ++p) store_acc(dst + p * kBlock, acc[m][p]);
            continue;
        }
        // Zero bias past the last output channel: the padding lanes hold activation(0 + residual).
        const Vec bias =
            o.bias ? load_under16(o.bias + ob * kBlock, std::min(kBlock, o.out_channels - ob * kBlock)) : Vec{};
        const float* residual = o.residual ? o.residual + ob * o.block_step + offset : nullptr;
        for (int p = 0; p < width; ++p) {
            Vec v;
            if constexpr (std::is_same_v<Acc, VecI32>) {  // int8: scale x (sum - correction)
                const VecI32 sum =
                    acc[m][p] - load_acc<VecI32>(reinterpret_cast<const float*>(o.correction) + ob * kBlock);
                v = __builtin_convertvector(sum, Vec) * load16(o.scale + ob * kBlock) + bias;
            } else {
                v = acc[m][p] + bias;
            }
            if (residual) v += load16(residual + p * kBlock);
            store16(dst + p * kBlock, o.activation(v));
        }
    }
}

template <class Math>
using TileFn = void (*)(const Source&, const Sink&, const typename Math::In*, const typename Math::Weight*, int64_t,
                        int64_t, int64_t, int64_t, bool, bool, int64_t);

template <class Math, int Mb, int Step, int... P>
constexpr std::array<TileFn<Math>, sizeof...(P)> tiles_of(std::integer_sequence<int, P...>) {
    return {&tile<Math, Mb, P + 1, Step>...};
}

// The tile of mb blocks x px pixels.
template <class Math, int Step>
TileFn<Math> tile_for(int64_t mb, int64_t px) {
    if constexpr (!kEveryTile) {
        (void)px;
        return mb == 1   ? &tile<Math, 1, tile_pixels(1), 0>
               : mb == 2 ? &tile<Math, 2, tile_pixels(2), 0>
               : mb == 3 ? &tile<Math, 3, tile_pixels(3), 0>
                         : &tile<Math, 4, tile_pixels(4), 0>;
    }
    static constexpr auto one = tiles_of<Math, 1, Step>(std::make_integer_sequence<int, tile_pixels(1)>{});
    static constexpr auto two = tiles_of<Math, 2, Step>(std::make_integer_sequence<int, tile_pixels(2)>{});
    static constexpr auto three = tiles_of<Math, 3, Step>(std::make_integer_sequence<int, tile_pixels(3)>{});
    static constexpr auto four = tiles_of<Math, 4, Step>(std::make_integer_sequence<int, tile_pixels(4)>{});
    const auto i = static_cast<size_t>(px - 1);
    return mb == 1 ? one[i] : mb == 2 ? two[i] : mb == 3 ? three[i] : four[i];
}

// A chunk's tiles: output blocks [ob0, ob0 + mb) at output rows [y0, y1), pixels [x0, x1) of each.
struct TileRange {
    int64_t ob0, mb, y0, y1, x0, x1;
};

// Runs the tiles of `r`, the input blocks summed in slices of `slice` blocks (the partial sums kept
// in the output between slices), each row cut into tiles as even as the tile width allows (14 pixels
// at 6 a tile: 5, 5, 4). in: the input's tap (0, 0) for output pixel (0, 0); row_step: between the
// input rows of consecutive output rows; out_w: the output rows' length; step: tile_for's Step.
template <class Math>
void run_tiles(const Source& s, const Sink& o, const typename Math::In* in, const typename Math::Weight* packed,
               const TileRange& r, int64_t out_w, int64_t row_step, int64_t slice, int64_t step) {
    const int64_t slices = (s.blocks + slice - 1) / slice;
    const int64_t tiles = (r.x1 - r.x0 + tile_pixels(r.mb) - 1) / tile_pixels(r.mb);
    const typename Math::Weight* weights = packed + r.ob0 * s.weight_block_step;
    for (int64_t sl = 0; sl < slices; ++sl) {
        const int64_t ib0 = sl * slice, ib1 = std::min(s.blocks, ib0 + slice);
        for (int64_t y = r.y0; y < r.y1; ++y)
            for (int64_t t = 0; t < tiles; ++t) {
                const int64_t xa = r.x0 + part_begin(r.x1 - r.x0, tiles, t);
                const int64_t px = r.x0 + part_begin(r.x1 - r.x0, tiles, t + 1) - xa;
                TileFn<Math> fn = tile_for<Math, 0>(r.mb, px);
                if constexpr (kEveryTile) {
                    if (step == kBlock) fn = tile_for<Math, kBlock>(r.mb, px);
                    if (step == 2 * kBlock) fn = tile_for<Math, 2 * kBlock>(r.mb, px);
                }
                fn(s, o, in + y * row_step + xa * s.pixel_step, weights, r.ob0, (y * out_w + xa) * kBlock, ib0, ib1,
                   sl == 0, sl + 1 == slices, px);
            }
    }
}

// Input blocks per slice: a full group's weights for them fit kWeightSliceFloats.
int64_t slice_blocks(int64_t in_blocks, int64_t taps) {
    return std::clamp<int64_t>(kWeightSliceFloats / (kMaxTileBlocks * taps * kBlockWeights), 1, in_blocks);
}

struct Plan {
    bool blocked_input, padded, one_row;
    int64_t in_h, in_w, ph, pw;  // input and (padded) source map
    int64_t out_h, out_w;        // output map
    int64_t rows, row_pixels;    // the tiles' rows: out_h x out_w, or 1 x out_h*out_w (one_row)
};

Plan plan_for(const ConvParams& p, const Tensor& input) {
    if (input.shape.size() != 4 && input.shape.size() != 5)
        throw std::logic_error("conv2d_blocked: the input is neither a plain nor a blocked map");
    const Window2d& w = p.window;
    Plan plan;
    plan.blocked_input = is_blocked(input);
    plan.in_h = input.shape[2], plan.in_w = input.shape[3];
    plan.padded = w.pad_top > 0 || w.pad_left > 0 || w.pad_bottom > 0 || w.pad_right > 0;
    plan.ph = plan.in_h + w.pad_top + w.pad_bottom;
    plan.pw = plan.in_w + w.pad_left + w.pad_right;
    plan.out_h = w.output_h(plan.in_h), plan.out_w = w.output_w(plan.in_w);
    plan.one_row = !plan.padded && w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1;
    plan.rows = plan.one_row ? 1 : plan.out_h;
    plan.row_pixels = plan.one_row ? plan.out_h * plan.out_w : plan.out_w;
    return plan;
}

void check_shapes(const ConvParams& p, const Plan& plan, const Tensor& input, const Tensor& output) {
    const bool input_ok = plan.blocked_input
                              ? input.shape[1] == channel_blocks(p.in_channels) && input.shape[4] == kBlock
                              : input.shape.size() == 4 && input.shape[1] == p.in_channels;
    if (!input_ok || output.shape != blocked_shape(input.shape[0], p.out_channels, plan.out_h, plan.out_w))
        throw std::logic_error("conv2d_blocked: input or output shape does not match the layer");
}

// The values of one sample's copy the tiles read: its blocks of 16 channels over the padded map.
int64_t copy_values(const ConvParams& p, int64_t in_h, int64_t in_w) {
    const Window2d& w = p.window;
    return channel_blocks(p.in_channels) * kBlock * (in_h + w.pad_top + w.pad_bottom) *
           (in_w + w.pad_left + w.pad_right);
}

// weight [out][in][kh][kw] -> [ceil(out/16)][ceil(in/16)][kh][kw][16 / group][16 out][group], zeros
// past the last input and output channel; `convert` makes each value the tiles' type.
template <class Math, class From, class Convert>
std::vector<typename Math::Weight> pack(const ConvParams& p, const From* weight, Convert convert) {
    constexpr int64_t group = Math::kGroup;
    const int64_t kh = p.window.kernel_h, kw = p.window.kernel_w, in_blocks = channel_blocks(p.in_channels);
    std::vector<typename Math::Weight> packed(static_cast<size_t>(conv2d_blocked_packed_size(p)),
                                              typename Math::Weight{});
    for (int64_t oc = 0; oc < p.out_channels; ++oc)
        for (int64_t ic = 0; ic < p.in_channels; ++ic)
            for (int64_t ky = 0; ky < kh; ++ky)
                for (int64_t kx = 0; kx < kw; ++kx) {
                    const int64_t tap = ((oc / kBlock * in_blocks + ic / kBlock) * kh + ky) * kw + kx;
                    const int64_t lane = ic % kBlock / group * kBlock * group + oc % kBlock * group + ic % group;
                    packed[static_cast<size_t>(tap * kBlockWeights + lane)] =
                        convert(weight[((oc * p.in_channels + ic) * kh + ky) * kw + kx]);
                }
    return packed;
}

// One block plane of a blocked map (in_h x in_w pixels of 16 channels) as the tiles read it: each
// pixel's first `lanes` channels converted (Math::convert16), its padding lanes zero (a group of
// channels reaching past the last multiplies them by zero weights: a finite product, never a NaN),
// inside a border of zeros (top, left; ph x pw pixels) as the precision writes zero.
template <class Math>
void copy_converted(const float* in, int64_t lanes, int64_t in_h, int64_t in_w, int64_t top, int64_t left, int64_t ph,
                    int64_t pw, const typename Math::Converter& converter, typename Math::In* out) {
    using In = typename Math::In;
    const In zero = Math::zero(converter);
    std::fill(out, out + top * pw * kBlock, zero);
    for (int64_t y = 0; y < in_h; ++y) {
        In* row = out + (top + y) * pw * kBlock;
        std::fill(row, row + left * kBlock, zero);
        for (int64_t x = 0; x < in_w; ++x) {
            In* pixel = row + (left + x) * kBlock;
            Math::convert16(in + (y * in_w + x) * kBlock, pixel, converter);
            std::fill(pixel + lanes, pixel + kBlock, zero);
        }
        std::fill(row + (left + in_w) * kBlock, row + pw * kBlock, zero);
    }
    std::fill(out + (top + in_h) * pw * kBlock, out + ph * pw * kBlock, zero);
}

template <class Math>
void convolve(const ConvParams& p, const typename Math::Weight* packed, const Epilogue& epilogue, const Tensor& input,
              Tensor& output, ThreadPool& pool, const typename Math::Converter& converter = {},
              const float* scale = nullptr, const int32_t* correction = nullptr) {
    using In = typename Math::In;
    constexpr bool float32 = std::is_same_v<In, float>;
    const Window2d& w = p.window;
    const Plan plan = plan_for(p, input);
    check_shapes(p, plan, input, output);
    if (!float32 && !plan.blocked_input)
        throw std::logic_error("conv2d_blocked: reduced precision needs a blocked input");
    const int64_t batch = input.shape[0], in_blocks = channel_blocks(p.in_channels);
    const int64_t out_blocks = channel_blocks(p.out_channels), taps = w.kernel_h * w.kernel_w;
    // Whether the tiles read a copy of the sample: the zero-padded one, or the converted one.
    const bool copied = plan.padded || !float32;

    // Strides of the map the tiles read (the input itself, or its copy), in values.
    const int64_t src_h = plan.padded ? plan.ph : plan.in_h, src_w = plan.padded ? plan.pw : plan.in_w;
    const int64_t column = plan.blocked_input ? kBlock : 1;  // between a row's pixels
    Source s;
    s.channels = p.in_channels, s.blocks = in_blocks;
    s.channel_step = plan.blocked_input ? 1 : src_h * src_w;
    s.block_step = kBlock * src_h * src_w;
    s.row_step = src_w * column;
    s.pixel_step = w.stride_w * column;
    s.kh = w.kernel_h, s.kw = w.kernel_w;
    s.tap_row = w.dilation_h * s.row_step, s.tap_col = w.dilation_w * column;
    s.weight_block_step = in_blocks * taps * kBlockWeights;
    std::vector<int64_t> taps_list;
    if (float32 && in_blocks == 1 && p.in_channels < kBlock) {
        for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx)
                for (int64_t c = 0; c < p.in_channels; ++c) {
                    taps_list.push_back(ky * s.tap_row + kx * s.tap_col + c * s.channel_step);
                    taps_list.push_back((ky * s.kw + kx) * kBlockWeights + c * kBlock);
                }
        s.taps = taps_list.data(), s.tap_count = p.in_channels * taps;
    }
    const int64_t step = plan.blocked_input && w.stride_w <= 2 ? s.pixel_step : 0;
    const int64_t sample_in =
        plan.blocked_input ? in_blocks * kBlock * plan.in_h * plan.in_w : p.in_channels * plan.in_h * plan.in_w;
    const int64_t out_plane = plan.out_h * plan.out_w * kBlock;

    // Output blocks in groups of up to 4 (fewer when a tap list's weights would not stay in L1), as
    // even as they can be (10 blocks: 4, 3, 3).
    const int64_t group_blocks =
        s.taps ? std::clamp<int64_t>(kTapListWeightFloats / (s.tap_count * kBlock), 1, kMaxTileBlocks) : kMaxTileBlocks;
    const int64_t groups = (out_blocks + group_blocks - 1) / group_blocks;
    const int64_t slice = slice_blocks(in_blocks, taps);
    // Spans of rows (or of the one row's pixels, at least a tile's worth each), each a chunk per group.
    const int64_t group_work = kMaxTileBlocks * kBlock * p.in_channels * taps * plan.out_h * plan.out_w;
    const int64_t max_spans = std::min(plan.rows * plan.row_pixels / kMinChunkPixels,
                                       plan.one_row ? plan.row_pixels / tile_pixels(1) : plan.rows);
    const int64_t units = plan.one_row ? plan.row_pixels : plan.rows;
    const int64_t spans =
        row_spans(std::min(group_work / kMinChunkWork, max_spans), plan.one_row ? units / tile_pixels(1) : units);
    const int64_t total_work = p.out_channels * p.in_channels * taps * plan.out_h * plan.out_w;

    thread_local std::vector<In> copy_scratch;  // the calling thread's, read by the workers
    In* copy = copied ? thread_scratch(copy_scratch, copy_values(p, plan.in_h, plan.in_w)) : nullptr;

    for (int64_t n = 0; n < batch; ++n) {
        const float* sample = input.ptr() + n * sample_in;
        const In* in = nullptr;
        if constexpr (float32) in = sample;
        if (copied) {
            // A blocked block is a plane of in_h rows of in_w * 16 floats; a plain channel one of in_w.
            const int64_t planes = plan.blocked_input ? in_blocks : p.in_channels;
            const int64_t plane_in = plan.in_h * plan.in_w * column, plane_out = src_h * src_w * column;
            run_chunks(pool, planes, planes * plane_out, [&](int64_t c) {
                if constexpr (float32)
                    copy_padded(sample + c * plane_in, 1, plan.in_h, plan.in_w * column, w.pad_top, w.pad_left * column,
                                plan.ph, plan.pw * column, copy + c * plane_out);
                else
                    copy_converted<Math>(sample + c * plane_in, std::min(kBlock, p.in_channels - c * kBlock), plan.in_h,
                                         plan.in_w, w.pad_top, w.pad_left, src_h, src_w, converter,
                                         copy + c * plane_out);
            });
            in = copy;
        }
        const Sink o{output.ptr() + n * out_blocks * out_plane,
                     epilogue.residual ? epilogue.residual + n * out_blocks * out_plane : nullptr,
                     out_plane,
                     epilogue.bias,
                     p.out_channels,
                     epilogue.activation,
                     scale,
                     correction};
        run_chunks(pool, groups * spans, total_work, [&](int64_t chunk) {
            const int64_t span = chunk / groups, group = chunk % groups;  // span-major (blocked.h)
            const int64_t ob0 = part_begin(out_blocks, groups, group);
            const int64_t mb = part_begin(out_blocks, groups, group + 1) - ob0;
            const int64_t u0 = part_begin(units, spans, span), u1 = part_begin(units, spans, span + 1);
            const TileRange r{ob0,
                              mb,
                              plan.one_row ? 0 : u0,
                              plan.one_row ? 1 : u1,
                              plan.one_row ? u0 : 0,
                              plan.one_row ? u1 : plan.out_w};
            run_tiles<Math>(s, o, in, packed, r, plan.out_w, w.stride_h * s.row_step, slice, step);
        });
    }
}

}  // namespace

bool conv2d_blocked_applies(const ConvParams& p) { return p.groups == 1; }

int64_t conv2d_blocked_packed_size(const ConvParams& p) {
    return channel_blocks(p.out_channels) * channel_blocks(p.in_channels) * p.window.kernel_h * p.window.kernel_w *
           kBlockWeights;
}

std::vector<float> conv2d_blocked_pack(const ConvParams& p, const float* weight) {
    return pack<Float32Math>(p, weight, [](float v) { return v; });
}

std::vector<uint16_t> conv2d_blocked_pack_bf16(const ConvParams& p, const float* weight) {
    return pack<Bfloat16Math>(p, weight, to_bfloat16);
}

int64_t conv2d_blocked_workspace(const ConvParams& p, int64_t in_h, int64_t in_w) {
    const Window2d& w = p.window;
    if (w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0) return 0;
    return copy_values(p, in_h, in_w);
}

int64_t conv2d_blocked_bf16_workspace(const ConvParams& p, int64_t in_h, int64_t in_w) {
    return (copy_values(p, in_h, in_w) + 1) / 2;  // two bfloat16 a float
}

void conv2d_blocked(const ConvParams& p, const float* packed, const Epilogue& epilogue, const Tensor& input,
                    Tensor& output, ThreadPool& pool) {
    convolve<Float32Math>(p, packed, epilogue, input, output, pool);
}

void conv2d_blocked_bf16(const ConvParams& p, const uint16_t* packed, const Epilogue& epilogue, const Tensor& input,
                         Tensor& output, ThreadPool& pool) {
    convolve<Bfloat16Math>(p, packed, epilogue, input, output, pool);
}

Int8Weights conv2d_blocked_pack_int8(const ConvParams& p, const int8_t* weight, const float* weight_scale,
                                     float input_scale, int32_t input_zero_point) {
    Int8Weights w;
    w.packed = pack<Int8Math>(p, weight, [](int8_t v) { return v; });
    w.input_scale = input_scale, w.input_zero_point = input_zero_point;
    const int64_t padded = channel_blocks(p.out_channels) * kBlock;
    w.scale.assign(static_cast<size_t>(padded), 0.0f);
    w.correction.assign(static_cast<size_t>(padded), 0);
    const int64_t per_channel = p.in_channels * p.window.kernel_h * p.window.kernel_w;
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
        int32_t sum = 0;
        for (int64_t i = 0; i < per_channel; ++i) sum += weight[oc * per_channel + i];
        w.scale[static_cast<size_t>(oc)] = input_scale * weight_scale[oc];
        w.correction[static_cast<size_t>(oc)] = input_zero_point * sum;
    }
    return w;
}

int64_t conv2d_blocked_int8_workspace(const ConvParams& p, int64_t in_h, int64_t in_w) {
    return (copy_values(p, in_h, in_w) + 3) / 4;  // four bytes a float
}

void conv2d_blocked_int8(const ConvParams& p, const Int8Weights& weights, const Epilogue& epilogue, const Tensor& input,
                         Tensor& output, ThreadPool& pool) {
    convolve<Int8Math>(p, weights.packed.data(), epilogue, input, output, pool,
                       {weights.input_scale, weights.input_zero_point}, weights.scale.data(),
                       weights.correction.data());
}

void pointwise_blocked_pixels(const ConvParams& p, const float* packed, const Epilogue& epilogue, const float* in,
                              int64_t in_block_step, int64_t pixels, float* out, int64_t out_block_step) {
    const int64_t in_blocks = channel_blocks(p.in_channels), out_blocks = channel_blocks(p.out_channels);
    Source s;
    s.channels = p.in_channels, s.blocks = in_blocks;
    s.channel_step = 1, s.block_step = in_block_step;
    s.row_step = 0, s.pixel_step = kBlock;
    s.kh = 1, s.kw = 1;
    s.tap_row = 0, s.tap_col = kBlock;
    s.weight_block_step = in_blocks * kBlockWeights;
    const Sink o{out, epilogue.residual, out_block_step, epilogue.bias, p.out_channels, epilogue.activation};
    const int64_t groups = (out_blocks + kMaxTileBlocks - 1) / kMaxTileBlocks;
    for (int64_t g = 0; g < groups; ++g) {
        const int64_t ob0 = part_begin(out_blocks, groups, g), mb = part_begin(out_blocks, groups, g + 1) - ob0;
        run_tiles<Float32Math>(s, o, in, packed, {ob0, mb, 0, 1, 0, pixels}, pixels, 0, slice_blocks(in_blocks, 1),
                               kBlock);
    }
}

}  // namespace gapnet
