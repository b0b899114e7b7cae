// The blocked layout's window kernels (kernels/depthwise_blocked.h, kernels/pooling_blocked.h) against
// the plain ones, through to_blocked / from_blocked: depthwise convolution against conv2d_reference
// (groups == channels) with every activation, bias or not; max, average and global pooling against
// the plain layers bit for bit. Channel counts around the block (1, 3, 16, 17, 40), 1x1 maps, odd
// sizes, kernels 3 and 5, strides 1 and 2, asymmetric padding, ceil_mode. The input's padding lanes
// hold a value no real channel may read; every output lane is written (the output starts as NaN);
// results are bit-identical on 1, 2 and 3 threads (the large cases split into parallel chunks).
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "engine/kernels/blocked.h"
#include "engine/kernels/conv2d_gemm.h"
#include "engine/kernels/depthwise_blocked.h"
#include "engine/kernels/max_pooling.h"
#include "engine/kernels/pooling_blocked.h"
#include "engine/layers/avg_pool2d.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/global_max_pool2d.h"
#include "engine/layers/max_pool2d.h"
#include "engine/sanitized.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::activated;
using gapnet::test::every_activation;
using gapnet::test::random_values;

namespace {

// The full matrix in the release build; fewer cases under the sanitizers, so CI stays inside its time.
#if GAPNET_SANITIZED
constexpr bool kReduced = true;
#else
constexpr bool kReduced = false;
#endif

constexpr float kPaddingLane = 7.0f;  // in the input's padding lanes: larger than any real value
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const int kThreadCounts[] = {1, 2, 3};

bool is_padding_lane(const Tensor& blocked, int64_t channels, size_t i) {
    const int64_t pixels = blocked.shape[2] * blocked.shape[3];
    const auto index = static_cast<int64_t>(i);
    return index / (pixels * kBlock) % blocked.shape[1] * kBlock + index % kBlock >= channels;
}

// plain [N, C, H, W] -> blocked, its padding lanes set to kPaddingLane.
Tensor blocked_of(const Tensor& plain) {
    ThreadPool serial(1);
    const Shape& s = plain.shape;
    Tensor blocked(blocked_shape(s[0], s[1], s[2], s[3]));
    to_blocked(plain, blocked, serial);
    for (size_t i = 0; i < blocked.data.size(); ++i)
        if (is_padding_lane(blocked, s[1], i)) blocked.data[i] = kPaddingLane;
    return blocked;
}

// A blocked output {N, ceil(C/16), H, W, 16} filled with NaN, so that a lane left unwritten shows.
Tensor unwritten_blocked(int64_t n, int64_t c, int64_t h, int64_t w) {
    Tensor t(blocked_shape(n, c, h, w));
    std::fill(t.data.begin(), t.data.end(), kNaN);
    return t;
}

Tensor plain_of(const Tensor& blocked, int64_t channels) {
    ThreadPool serial(1);
    Tensor plain({blocked.shape[0], channels, blocked.shape[2], blocked.shape[3]});
    from_blocked(blocked, plain, serial);
    return plain;
}

// Every padding lane of `blocked` equals `value` (NaN: a lane the kernel did not write). The checks
// below look for the first value that fails and assert on it alone: one assertion per value would
// make the matrix slow.
void require_padding_lanes(const Tensor& blocked, int64_t channels, float value) {
    size_t i = 0;
    while (i < blocked.data.size() && (!is_padding_lane(blocked, channels, i) || blocked.data[i] == value)) ++i;
    INFO("padding lane at " << i << " of " << blocked.data.size());
    REQUIRE(i == blocked.data.size());
}

void require_same_bits(const std::vector<float>& actual, const std::vector<float>& expected) {
    REQUIRE(actual.size() == expected.size());
    size_t i = 0;
    while (i < actual.size() && std::memcmp(&actual[i], &expected[i], sizeof(float)) == 0) ++i;
    if (i < actual.size()) {
        INFO("value " << i << ": " << actual[i] << " vs " << expected[i]);
        REQUIRE(std::memcmp(&actual[i], &expected[i], sizeof(float)) == 0);
    }
}

// |v - r| <= tolerance * max(1, |r|): the engine's parity criterion.
void require_close(const std::vector<float>& actual, const std::vector<float>& expected, double tolerance = 1e-5) {
    REQUIRE(actual.size() == expected.size());
    const auto close = [&](size_t i) {
        return std::abs(static_cast<double>(actual[i]) - expected[i]) <=
               tolerance * std::max(1.0, std::abs(static_cast<double>(expected[i])));
    };
    size_t i = 0;
    while (i < actual.size() && close(i)) ++i;
    if (i < actual.size()) {
        INFO("value " << i << ": " << actual[i] << " vs " << expected[i]);
        REQUIRE(close(i));
    }
}

Tensor random_map(const Shape& shape, std::mt19937& rng) {
    return Tensor(shape, random_values(static_cast<size_t>(element_count(shape)), rng));
}

// Runs `layer` (a plain layer) on `input` [N, ...].
Tensor run_plain(const Layer& layer, const Tensor& input) {
    Tensor output(
        batched(input.shape[0], layer.output_shape(Shapes{Shape(input.shape.begin() + 1, input.shape.end())})));
    ThreadPool serial(1);
    layer.forward(Inputs{&input}, output, serial);
    return output;
}

struct DepthwiseCase {
    int64_t channels, k_h, k_w, stride_h, stride_w, dilation, pad_t, pad_l, pad_b, pad_r, h, w;
    bool large;  // enough work for run_chunks to hand chunks to the threads
};

const DepthwiseCase kDepthwiseCases[] = {
    {1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 7, 9, false},      // one channel
    {3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 9, 8, false},      // stride 2
    {16, 5, 5, 1, 1, 1, 2, 2, 2, 2, 11, 13, false},   // 5x5, one whole block
    {17, 5, 5, 2, 2, 1, 2, 1, 1, 2, 13, 12, false},   // 5x5 stride 2, asymmetric padding
    {40, 3, 3, 1, 1, 1, 0, 1, 2, 0, 10, 23, false},   // asymmetric padding, tiles and their remainder
    {17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false},     // 1x1 map: every tap but the centre outside
    {16, 5, 5, 2, 2, 1, 2, 2, 2, 2, 1, 1, false},     // 1x1 map, 5x5 stride 2
    {3, 5, 5, 1, 1, 1, 2, 2, 2, 2, 3, 4, false},      // a kernel wider than the map: no interior
    {3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 9, 11, false},     // dilation 2
    {17, 3, 3, 1, 1, 2, 2, 2, 2, 2, 12, 30, false},   // dilation 2, tiles of 8 pixels and single ones
    {17, 7, 7, 3, 3, 1, 3, 3, 3, 3, 20, 22, false},   // 7x7 stride 3: the general path
    {40, 5, 3, 3, 2, 1, 1, 0, 0, 2, 15, 29, false},   // rectangular kernel, strides 3 and 2
    {17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2, 40, false},    // a wide row of two lines
    {16, 3, 3, 1, 1, 1, 0, 0, 0, 0, 5, 20, false},    // unpadded
    {33, 5, 5, 2, 2, 1, 2, 2, 2, 2, 35, 30, false},   // 3 blocks, odd sizes
    {40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 56, 56, true},    // MobileNetV2's stride 1 (a span of rows a chunk)
    {40, 3, 3, 2, 2, 1, 0, 0, 1, 1, 57, 57, true},    // stride 2, TensorFlow's "same" padding
    {20, 5, 5, 2, 2, 1, 2, 2, 2, 2, 113, 111, true},  // 5x5 stride 2 on a large odd map
};

}  // namespace

TEST_CASE("depthwise_blocked equals conv2d_reference with every activation, bias or not, on any thread count",
          "[blocked_window]") {
    std::mt19937 rng(22);
    const std::vector<Activation> activations = kReduced
                                                    ? std::vector<Activation>{{Activation::Kind::identity},
                                                                              {Activation::Kind::clip, -0.25f, 0.5f},
                                                                              {Activation::Kind::silu}}
                                                    : every_activation();
    for (const DepthwiseCase& c : kDepthwiseCases) {
        if (kReduced && c.large && c.h > 100) continue;
        ConvParams p;
        p.in_channels = p.out_channels = p.groups = c.channels;
        Window2d& w = p.window;
        w.kernel_h = c.k_h, w.kernel_w = c.k_w, w.stride_h = c.stride_h, w.stride_w = c.stride_w;
        w.dilation_h = w.dilation_w = c.dilation;
        w.pad_top = c.pad_t, w.pad_left = c.pad_l, w.pad_bottom = c.pad_b, w.pad_right = c.pad_r;
        REQUIRE(depthwise_blocked_applies(p));
        const int64_t out_h = w.output_h(c.h), out_w = w.output_w(c.w);
        const Tensor input = random_map({2, c.channels, c.h, c.w}, rng);
        const Tensor blocked_input = blocked_of(input);
        const std::vector<float> weight = random_values(static_cast<size_t>(c.channels * c.k_h * c.k_w), rng);
        const std::vector<float> packed = depthwise_blocked_pack(p, weight.data());
        REQUIRE(static_cast<int64_t>(packed.size()) == depthwise_blocked_packed_size(p));
        for (const bool with_bias : {false, true}) {
            const std::vector<float> bias =
                with_bias ? random_values(static_cast<size_t>(c.channels), rng) : std::vector<float>{};
            Tensor reference({2, c.channels, out_h, out_w});
            conv2d_reference(p, weight, bias, input, reference);
            for (const Activation& activation : activations) {
                INFO("channels " << c.channels << ", kernel " << c.k_h << "x" << c.k_w << ", stride " << c.stride_h
                                 << "x" << c.stride_w << ", map " << c.h << "x" << c.w << ", bias " << with_bias
                                 << ", activation " << static_cast<int>(activation.kind));
                const Epilogue epilogue{with_bias ? bias.data() : nullptr, activation};
                Tensor first;
                for (const int threads : kThreadCounts) {
                    if (threads > 1 && !c.large) break;
                    ThreadPool pool(threads);
                    Tensor output = unwritten_blocked(2, c.channels, out_h, out_w);
                    depthwise_blocked(p, packed.data(), epilogue, blocked_input, output, pool);
                    if (threads == 1) {
                        require_close(plain_of(output, c.channels).data, activated(reference.data, activation));
                        require_padding_lanes(output, c.channels, activation(0.0f));
                        first = output;
                    } else {
                        INFO(threads << " threads");
                        require_same_bits(output.data, first.data);
                    }
                }
            }
        }
    }
}

TEST_CASE("blocked kernels cut rows into an even number of spans and number them span-major", "[blocked_window]") {
    CHECK(row_spans(0, 14) == 2);  // at least kMinRowSpans
    CHECK(row_spans(3, 14) == 4);  // a multiple of it
    CHECK(row_spans(7, 100) == 8);
    CHECK(row_spans(5, 3) == 3);  // at most one a row
    CHECK(row_spans(0, 1) == 1);
    CHECK(row_spans(0, 0) == 1);
    // 2 samples of 3 blocks, 5 rows of 4 pixels, 100-pixel chunks: 2 spans, rows [0, 2) and [2, 5).
    ThreadPool pool(1);
    std::vector<std::array<int64_t, 4>> calls;
    for_each_row_span(pool, 2, 3, 5, 4, 100, 0, [&](int64_t plane, int64_t block, int64_t oy0, int64_t oy1) {
        calls.push_back({plane, block, oy0, oy1});
    });
    const std::vector<std::array<int64_t, 4>> expected = {{0, 0, 0, 2}, {1, 1, 0, 2}, {2, 2, 0, 2}, {0, 0, 2, 5},
                                                          {1, 1, 2, 5}, {2, 2, 2, 5}, {3, 0, 0, 2}, {4, 1, 0, 2},
                                                          {5, 2, 0, 2}, {3, 0, 2, 5}, {4, 1, 2, 5}, {5, 2, 2, 5}};
    CHECK(calls == expected);
}

TEST_CASE("depthwise_blocked_pack puts channel c's tap t at [c / 16][t][c % 16], zeros past the last channel",
          "[blocked_window]") {
    ConvParams p;
    p.in_channels = p.out_channels = p.groups = 17;
    p.window.kernel_h = 1, p.window.kernel_w = 2;
    std::vector<float> weight(34);
    for (size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i + 1);  // channel c: 2c+1, 2c+2
    const std::vector<float> packed = depthwise_blocked_pack(p, weight.data());
    REQUIRE(packed.size() == 2 * 2 * 16);
    CHECK(packed[0] == 1.0f);    // channel 0, tap 0
    CHECK(packed[16] == 2.0f);   // channel 0, tap 1
    CHECK(packed[15] == 31.0f);  // channel 15, tap 0
    CHECK(packed[31] == 32.0f);  // channel 15, tap 1
    CHECK(packed[32] == 33.0f);  // channel 16, tap 0
    CHECK(packed[48] == 34.0f);  // channel 16, tap 1
    for (size_t i = 33; i < 48; ++i) CHECK(packed[i] == 0.0f);
    for (size_t i = 49; i < 64; ++i) CHECK(packed[i] == 0.0f);
}

namespace {

struct PoolCase {
    int64_t k_h, k_w, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
    bool ceil_mode;
};

const PoolCase kPoolCases[] = {
    {2, 2, 2, 2, 0, 0, 0, 0, false},  // the common 2x2
    {2, 2, 2, 2, 0, 0, 0, 0, true},   // 2x2, ceil_mode: a last window of one column or row
    {3, 3, 2, 2, 0, 0, 0, 0, true},   // SqueezeNet's, ceil_mode
    {3, 3, 2, 2, 1, 1, 1, 1, false},  // ResNet's stem
    {3, 3, 1, 1, 1, 1, 1, 1, false},  // stride 1
    {5, 5, 2, 2, 2, 2, 2, 2, true},   // 5x5, padded, ceil_mode
    {3, 2, 3, 1, 0, 1, 2, 0, true},   // rectangular, asymmetric padding, stride 3
    {1, 1, 2, 2, 0, 0, 0, 0, false},  // 1x1 stride 2
};

struct MapSize {
    int64_t h, w;
};
const MapSize kPoolMaps[] = {{1, 1}, {3, 5}, {7, 7}, {14, 13}, {28, 31}};
const int64_t kChannelCounts[] = {1, 3, 16, 17, 40};

// Random values with zeros of both signs, NaN and -infinity among them (NaN only when `with_nan`).
Tensor awkward_map(const Shape& shape, std::mt19937& rng, bool with_nan) {
    Tensor t = random_map(shape, rng);
    for (size_t i = 0; i < t.data.size(); ++i) {
        if (i % 7 == 0) t.data[i] = 0.0f;
        if (i % 11 == 0) t.data[i] = -0.0f;
        if (with_nan && i % 13 == 0) t.data[i] = kNaN;
        if (with_nan && i % 17 == 0) t.data[i] = -std::numeric_limits<float>::infinity();
    }
    return t;
}

// The kernel `pool(input, output, threads)` on the blocked form of `input` [N, C, H, W] equals the
// plain `layer` bit for bit, on 1, 2 and 3 threads; its padding lanes are finite.
template <typename Kernel>
void require_blocked_pool_equals(const Layer& layer, const Tensor& input, const Kernel& kernel) {
    const Tensor expected = run_plain(layer, input);
    const Tensor blocked_input = blocked_of(input);
    const int64_t channels = input.shape[1];
    const bool to_vector = expected.shape.size() == 2;
    for (const int threads : kThreadCounts) {
        INFO(threads << " threads");
        ThreadPool pool(threads);
        Tensor output = to_vector ? Tensor(expected.shape)
                                  : unwritten_blocked(input.shape[0], channels, expected.shape[2], expected.shape[3]);
        if (to_vector) std::fill(output.data.begin(), output.data.end(), kNaN);
        kernel(blocked_input, output, pool);
        if (to_vector) {
            require_same_bits(output.data, expected.data);
        } else {
            require_same_bits(plain_of(output, channels).data, expected.data);
            size_t i = 0;
            while (i < output.data.size() && (!is_padding_lane(output, channels, i) || std::isfinite(output.data[i])))
                ++i;
            INFO("padding lane at " << i << " not finite");
            REQUIRE(i == output.data.size());
        }
    }
}

}  // namespace

TEST_CASE("max_pool_blocked and avg_pool_blocked equal the plain layers bit for bit", "[blocked_window]") {
    std::mt19937 rng(23);
    for (const PoolCase& c : kPoolCases) {
        Window2d w;
        w.kernel_h = c.k_h, w.kernel_w = c.k_w, w.stride_h = c.stride_h, w.stride_w = c.stride_w;
        w.pad_top = c.pad_t, w.pad_left = c.pad_l, w.pad_bottom = c.pad_b, w.pad_right = c.pad_r;
        w.ceil_mode = c.ceil_mode;
        const MaxPool2d max_pool(w);
        const AvgPool2d avg_with_pad(w, true), avg_without_pad(w, false);
        for (const MapSize& m : kPoolMaps)
            for (const int64_t channels : kChannelCounts) {
                if (kReduced && channels != 17 && channels != 1) continue;
                if (c.k_h > m.h + c.pad_t + c.pad_b + (c.ceil_mode ? c.stride_h - 1 : 0) ||
                    c.k_w > m.w + c.pad_l + c.pad_r + (c.ceil_mode ? c.stride_w - 1 : 0))
                    continue;  // the window does not fit the map
                INFO("window " << c.k_h << "x" << c.k_w << " stride " << c.stride_h << "x" << c.stride_w << " ceil "
                               << c.ceil_mode << ", map " << channels << "x" << m.h << "x" << m.w);
                const Shape shape{2, channels, m.h, m.w};
                require_blocked_pool_equals(
                    max_pool, awkward_map(shape, rng, true),
                    [&](const Tensor& in, Tensor& out, ThreadPool& pool) { max_pool_blocked(w, in, out, pool); });
                const Tensor input = awkward_map(shape, rng, false);
                require_blocked_pool_equals(avg_with_pad, input, [&](const Tensor& in, Tensor& out, ThreadPool& pool) {
                    avg_pool_blocked(w, true, in, out, pool);
                });
                require_blocked_pool_equals(avg_without_pad, input,
                                            [&](const Tensor& in, Tensor& out, ThreadPool& pool) {
                                                avg_pool_blocked(w, false, in, out, pool);
                                            });
            }
    }
    // Large enough for parallel chunks: ResNet's stem pool on 40 channels of 112 x 112, two samples.
    Window2d stem;
    stem.kernel_h = stem.kernel_w = 3, stem.stride_h = stem.stride_w = 2;
    stem.pad_top = stem.pad_left = stem.pad_bottom = stem.pad_right = 1;
    const Tensor input = awkward_map({2, 40, 112, 112}, rng, true);
    require_blocked_pool_equals(MaxPool2d(stem), input, [&](const Tensor& in, Tensor& out, ThreadPool& pool) {
        max_pool_blocked(stem, in, out, pool);
    });
    require_blocked_pool_equals(
        AvgPool2d(stem, false), awkward_map({2, 40, 112, 112}, rng, false),
        [&](const Tensor& in, Tensor& out, ThreadPool& pool) { avg_pool_blocked(stem, false, in, out, pool); });
}

TEST_CASE("global_avg_pool_blocked and global_max_pool_blocked equal the plain layers bit for bit",
          "[blocked_window]") {
    std::mt19937 rng(24);
    const GlobalAvgPool2d global_avg;
    const GlobalMaxPool2d global_max;
    // 169 and 3 x 5 pixels leave a tail past the last 8; 112 x 112 x 40 x 2 splits over the threads.
    const MapSize maps[] = {{1, 1}, {3, 5}, {7, 7}, {13, 13}, {56, 56}, {112, 112}};
    for (const MapSize& m : maps)
        for (const int64_t channels : kChannelCounts) {
            if (kReduced && channels != 17 && m.h > 56) continue;
            if (m.h == 112 && channels != 40) continue;
            INFO("map " << channels << "x" << m.h << "x" << m.w);
            const Shape shape{2, channels, m.h, m.w};
            const Tensor input = awkward_map(shape, rng, false);
            require_blocked_pool_equals(global_avg, input, [&](const Tensor& in, Tensor& out, ThreadPool& pool) {
                global_avg_pool_blocked(in, out, pool);
            });
            // NaN (sample 0's channel 0 starts with one: it stays the maximum, as std::max_element keeps
            // it), -infinity, signed zeros.
            require_blocked_pool_equals(
                global_max, awkward_map(shape, rng, true),
                [&](const Tensor& in, Tensor& out, ThreadPool& pool) { global_max_pool_blocked(in, out, pool); });
        }
}

TEST_CASE("max_pooling_reference takes each window's maximum, padding and NaN never winning", "[blocked_window]") {
    // One 3 x 3 plane, a 2x2 window, stride 1, one pixel of padding at the top and left only.
    Window2d w;
    w.kernel_h = w.kernel_w = 2, w.pad_top = w.pad_left = 1;
    const Tensor input({1, 1, 3, 3}, {-5.0f, kNaN, -1.0f,  //
                                      -3.0f, -4.0f, 2.0f,  //
                                      -0.0f, 0.0f, -9.0f});
    Tensor output({1, 1, 3, 3});
    max_pooling_reference(w, input, output);
    const std::vector<float> expected = {-5.0f, -5.0f, -1.0f,  //
                                         -3.0f, -3.0f, 2.0f,   //
                                         -0.0f, -0.0f, 2.0f};
    require_same_bits(output.data, expected);  // output (2, 1) sees -0 before 0: the first zero stays
}

TEST_CASE("max_pooling equals max_pooling_reference bit for bit, dilated windows included", "[blocked_window]") {
    std::mt19937 rng(25);
    struct Case {
        int64_t k, stride, dilation, pad;
    };
    for (const Case c : {Case{2, 2, 1, 0}, Case{3, 2, 2, 2}, Case{3, 1, 3, 1}, Case{2, 1, 2, 1}})
        for (const MapSize& m : {MapSize{7, 9}, MapSize{16, 33}}) {
            Window2d w;
            w.kernel_h = w.kernel_w = c.k, w.stride_h = w.stride_w = c.stride;
            w.dilation_h = w.dilation_w = c.dilation;
            w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = c.pad;
            const Tensor input = awkward_map({2, 3, m.h, m.w}, rng, true);
            Tensor expected({2, 3, w.output_h(m.h), w.output_w(m.w)});
            max_pooling_reference(w, input, expected);
            Tensor output(expected.shape);
            ThreadPool serial(1);
            max_pooling(w, input, output, serial);
            INFO("kernel " << c.k << " stride " << c.stride << " dilation " << c.dilation << ", map " << m.h << "x"
                           << m.w);
            require_same_bits(output.data, expected.data);
        }
}
