// The fast kernels against the plain reference loops, on seeded random inputs over every option;
// fused layers against the layers they replace; results independent of the thread count.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "engine/graph.h"
#include "engine/kernels/conv2d_gemm.h"
#include "engine/layers/conv2d.h"
#include "engine/kernels/conv2d_depthwise.h"
#include "engine/kernels/conv2d_direct.h"
#include "engine/kernels/fully_connected.h"
#include "engine/kernels/exp16.h"
#include "engine/kernels/gemm.h"
#include "engine/layers/activation.h"
#include "engine/layers/add.h"
#include "engine/layers/avg_pool2d.h"
#include "engine/layers/batch_norm2d.h"
#include "engine/layers/dense.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/global_max_pool2d.h"
#include "engine/layers/max_pool2d.h"
#include "engine/layers/softmax.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::activated;
using gapnet::test::every_activation;
using gapnet::test::random_values;
using gapnet::test::relu_if;

namespace {

struct ConvCase {
    int64_t in, out, groups, k_h, k_w, stride, dilation, pad_t, pad_l, pad_b, pad_r, h, w;
    bool bias;
};

// Every option of conv2d: kernel sizes, strides, dilation, symmetric and asymmetric padding, groups
// and depthwise, 1x1, tiny maps, channel counts that are not multiples of 16, Winograd's 3x3 s1.
const ConvCase kConvCases[] = {
    {1, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 9, 7, true},      // 3x3 same, one input channel
    {3, 5, 1, 5, 5, 2, 1, 2, 2, 2, 2, 11, 12, false},   // 5x5 stride 2
    {4, 6, 2, 3, 3, 1, 2, 2, 2, 2, 2, 10, 10, true},    // groups, dilation
    {6, 6, 6, 3, 3, 1, 1, 0, 1, 2, 0, 8, 9, true},      // depthwise, asymmetric padding
    {5, 10, 5, 3, 3, 2, 1, 1, 1, 1, 1, 9, 8, false},    // depthwise, multiplier 2, stride 2
    {7, 7, 7, 5, 3, 1, 2, 4, 2, 4, 2, 6, 5, true},      // depthwise, dilated, rectangular
    {4, 4, 4, 5, 5, 2, 1, 2, 2, 1, 2, 41, 70, false},   // depthwise 5x5 stride 2: rows of whole vectors
    {3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 20, 50, true},    // depthwise stride 3
    {8, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5, 6, true},      // pointwise: no im2col
    {19, 33, 1, 1, 1, 1, 1, 0, 0, 0, 0, 13, 11, true},  // pointwise, odd channels
    {2, 3, 1, 1, 1, 2, 1, 0, 0, 0, 0, 5, 6, false},     // 1x1 stride 2
    {3, 2, 1, 7, 7, 2, 1, 3, 3, 3, 3, 15, 13, true},    // 7x7
    {2, 2, 1, 2, 4, 3, 1, 1, 0, 0, 3, 7, 7, true},      // rectangular kernel
    {17, 18, 1, 3, 3, 1, 1, 1, 1, 1, 1, 11, 9, true},   // Winograd, odd sizes
    {16, 20, 1, 3, 3, 1, 1, 0, 0, 0, 0, 6, 7, false},   // Winograd, unpadded
    {16, 16, 1, 3, 3, 1, 1, 2, 0, 1, 2, 5, 5, true},    // Winograd, asymmetric padding
    {16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3, true},    // tiny maps: 3x3, 2x2, 1x1
    {16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, true},
    {16, 17, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
    {18, 16, 1, 3, 3, 2, 1, 1, 1, 1, 1, 9, 9, true},    // 3x3 stride 2: GEMM
    {32, 48, 2, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8, true},    // grouped 3x3: GEMM
    {40, 24, 1, 3, 3, 1, 1, 1, 1, 1, 1, 30, 30, true},  // several im2col blocks per map
    {5, 9, 1, 3, 3, 1, 1, 1, 1, 1, 1, 37, 23, true},    // direct: many index groups and spans
    {3, 7, 1, 5, 3, 1, 2, 3, 1, 2, 2, 12, 11, true},    // direct: dilated, rectangular, asymmetric
    {33, 21, 1, 1, 1, 1, 1, 1, 0, 0, 1, 6, 5, false},   // direct: padded 1x1
    {64, 130, 1, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7, true},   // direct: M1's conv3 shape, odd channels
    // direct with channel tiles (>= 256 taps): a block of 32 and one of 8 channels, 3 tiles of a
    // 31-pixel row (11, 10, 10), dilated, asymmetric padding; a 5x3 kernel, one channel past 32
    {30, 40, 1, 3, 3, 1, 2, 2, 1, 2, 3, 13, 31, true},
    {20, 33, 1, 5, 3, 1, 1, 2, 1, 0, 1, 9, 29, false},
    // GEMM with weights past the cache (packed columns shared by blocks of output channels), 3x3
    // taps of 64 and 70 channels (3 blocks of depth), last panels of 17 and of 10 pixels, 4 rows
    // in the last tile of one
    {64, 460, 1, 3, 3, 2, 1, 1, 1, 1, 1, 13, 13, true},
    {70, 420, 1, 3, 3, 2, 1, 1, 1, 1, 1, 12, 14, false},
    // GEMM on a map of 2304 pixels (72 panels): each chunk packs its own columns, in slices of input
    // channels (2 of 15 channels x 9 taps; 2 of 150 x 1) summed into the output
    {30, 20, 1, 3, 3, 1, 1, 1, 1, 1, 1, 48, 48, true},
    {300, 8, 1, 1, 1, 1, 1, 0, 0, 0, 0, 48, 48, true},
};

Conv2d::Params params_of(const ConvCase& c) {
    Conv2d::Params p;
    p.in_channels = c.in, p.out_channels = c.out, p.groups = c.groups;
    p.window.kernel_h = c.k_h, p.window.kernel_w = c.k_w;
    p.window.stride_h = p.window.stride_w = c.stride;
    p.window.dilation_h = p.window.dilation_w = c.dilation;
    p.window.pad_top = c.pad_t, p.window.pad_left = c.pad_l, p.window.pad_bottom = c.pad_b,
    p.window.pad_right = c.pad_r;
    return p;
}

Conv2d make_conv(const ConvCase& c, std::mt19937& rng) {
    const Conv2d::Params p = params_of(c);
    const float scale = std::sqrt(3.0f / static_cast<float>(c.in / c.groups * c.k_h * c.k_w));
    return Conv2d(p, random_values(static_cast<size_t>(element_count(Conv2d::weight_shape(p))), rng, scale),
                  c.bias ? random_values(static_cast<size_t>(c.out), rng) : std::vector<float>{});
}

Tensor batch_of(const Shape& sample, int64_t n, std::mt19937& rng) {
    const Shape s = batched(n, sample);
    return Tensor(s, random_values(static_cast<size_t>(element_count(s)), rng));
}

// Runs `layer` on `inputs` (batches of equal size).
Tensor run(const Layer& layer, const std::vector<const Tensor*>& inputs, int threads = 1) {
    Shapes shapes;
    for (const Tensor* t : inputs) shapes.push_back(Shape(t->shape.begin() + 1, t->shape.end()));
    Tensor output(batched(inputs[0]->shape[0], layer.output_shape(shapes)));
    ThreadPool pool(threads);
    layer.forward(inputs, output, pool);
    return output;
}

Tensor run(const Layer& layer, const Tensor& input, int threads = 1) { return run(layer, {&input}, threads); }

// |v - r| <= tolerance * max(1, |r|): the engine's parity criterion.
void require_close(const std::vector<float>& actual, const std::vector<float>& expected, double tolerance = 1e-5) {
    REQUIRE(actual.size() == expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
        INFO("value " << i << ": " << actual[i] << " vs " << expected[i]);
        REQUIRE(std::abs(static_cast<double>(actual[i]) - expected[i]) <=
                tolerance * std::max(1.0, std::abs(static_cast<double>(expected[i]))));
    }
}

std::vector<float> relu_of(std::vector<float> v) {
    for (float& x : v) x = x < 0 ? 0.0f : x;
    return v;
}

}  // namespace

TEST_CASE("conv2d_gemm equals conv2d_reference for every option, with every activation in the epilogue") {
    std::mt19937 rng(7);
    for (const ConvCase& c : kConvCases) {
        const Conv2d conv = make_conv(c, rng);
        const Conv2d::Params& p = conv.params();
        const Tensor input = batch_of({c.in, c.h, c.w}, 2, rng);
        const Shape out = conv.output_shape({c.in, c.h, c.w});
        Tensor reference({2, out[0], out[1], out[2]});
        conv2d_reference(p, conv.weight(), conv.bias(), input, reference);
        for (const Activation& activation : every_activation()) {
            Tensor fast({2, out[0], out[1], out[2]});
            ThreadPool serial(1);
            conv2d_gemm(p, conv.weight().data(), {c.bias ? conv.bias().data() : nullptr, activation}, input, fast,
                        serial);
            INFO("in " << c.in << " out " << c.out << " groups " << c.groups << " kernel " << c.k_h << "x" << c.k_w
                       << " map " << c.h << "x" << c.w << " activation " << static_cast<int>(activation.kind));
            require_close(fast.data, activated(reference.data, activation));
        }
    }
}

TEST_CASE("gemm_packed equals a plain triple loop for every tile shape, panel width and depth") {
    std::mt19937 rng(12);
    for (const int64_t m : {1, 5, 12, 13, 25})
        for (const int64_t n : {1, 16, 17, 31, 32, 33, 70})
            for (const int64_t k : {1, 7, 256, 257, 600}) {
                const int64_t lda = k + 3, ldc = n + 5;  // A and C inside wider matrices
                const auto a = random_values(static_cast<size_t>(m * lda), rng);
                const auto b = random_values(static_cast<size_t>(k * n), rng);
                const auto bias = random_values(static_cast<size_t>(m), rng);
                // B packed as gemm.h lays it out: panels of 32 columns, each k rows of 32, zeros past n.
                std::vector<float> packed(static_cast<size_t>(gemm_packed_size(k, n)), 0.0f);
                for (int64_t kk = 0; kk < k; ++kk)
                    for (int64_t j = 0; j < n; ++j)
                        packed[static_cast<size_t>(j / 32 * k * 32 + kk * 32 + j % 32)] =
                            b[static_cast<size_t>(kk * n + j)];
                for (const bool with_bias : {false, true})
                    for (const bool relu : {false, true}) {
                        std::vector<float> c(static_cast<size_t>(m * ldc), 7.0f), expected = c;
                        for (int64_t i = 0; i < m; ++i)
                            for (int64_t j = 0; j < n; ++j) {
                                double sum = with_bias ? bias[static_cast<size_t>(i)] : 0.0;
                                for (int64_t kk = 0; kk < k; ++kk)
                                    sum += static_cast<double>(a[static_cast<size_t>(i * lda + kk)]) *
                                           b[static_cast<size_t>(kk * n + j)];
                                expected[static_cast<size_t>(i * ldc + j)] =
                                    static_cast<float>(relu && sum < 0 ? 0.0 : sum);
                            }
                        gemm_packed(m, n, k, a.data(), lda, packed.data(), c.data(), ldc,
                                    {with_bias ? bias.data() : nullptr, relu_if(relu)});
                        INFO("m " << m << " n " << n << " k " << k << " bias " << with_bias << " relu " << relu);
                        // |error| <= 1e-5 * sqrt(k) * max(1, |value|): float sums of k products of values in [-1, 1]
                        for (size_t i = 0; i < c.size(); ++i)
                            REQUIRE(std::abs(c[i] - expected[i]) <=
                                    1e-5 * std::sqrt(static_cast<double>(k)) * std::max(1.0f, std::abs(expected[i])));
                    }
            }
}

TEST_CASE("conv2d_direct equals conv2d_reference, bit-identical for 1 and 2 threads") {
    std::mt19937 rng(10);
    ThreadPool serial(1), two(2);
    int channel_tiled = 0;
    for (const ConvCase& c : kConvCases) {
        const Conv2d conv = make_conv(c, rng);
        if (!direct_applies(conv.params())) continue;
        const std::vector<float> packed = direct_pack_weights(conv.params(), conv.weight().data());
        channel_tiled += direct_channel_tiles(conv.params());
        for (const int64_t batch : {1, 3}) {
            const Tensor input = batch_of({c.in, c.h, c.w}, batch, rng);
            const Shape out = conv.output_shape({c.in, c.h, c.w});
            Tensor reference({batch, out[0], out[1], out[2]});
            conv2d_reference(conv.params(), conv.weight(), conv.bias(), input, reference);
            for (const Activation& activation : every_activation()) {
                Tensor one({batch, out[0], out[1], out[2]}), both({batch, out[0], out[1], out[2]});
                const Epilogue epilogue{c.bias ? conv.bias().data() : nullptr, activation};
                conv2d_direct(conv.params(), conv.weight().data(), packed.data(), epilogue, input, one, serial);
                conv2d_direct(conv.params(), conv.weight().data(), packed.data(), epilogue, input, both, two);
                INFO("in " << c.in << " out " << c.out << " kernel " << c.k_h << "x" << c.k_w << " map " << c.h << "x"
                           << c.w << " batch " << batch << " activation " << static_cast<int>(activation.kind));
                require_close(one.data, activated(reference.data, activation));
                REQUIRE(one.data == both.data);
            }
        }
    }
    REQUIRE(channel_tiled == 3);  // the cases of >= 256 taps and >= 32 output channels (the rest: vector tiles)
}

TEST_CASE("conv2d_depthwise equals conv2d_reference") {
    std::mt19937 rng(8);
    for (const ConvCase& c : kConvCases) {
        if (c.groups != c.in || c.groups == 1) continue;
        const Conv2d conv = make_conv(c, rng);
        REQUIRE(depthwise_applies(conv.params()));
        const Tensor input = batch_of({c.in, c.h, c.w}, 3, rng);
        const Shape out = conv.output_shape({c.in, c.h, c.w});
        Tensor fast({3, out[0], out[1], out[2]}), reference({3, out[0], out[1], out[2]});
        ThreadPool serial(1);
        conv2d_reference(conv.params(), conv.weight(), conv.bias(), input, reference);
        for (const Activation& activation : every_activation()) {
            conv2d_depthwise(conv.params(), conv.weight().data(), {c.bias ? conv.bias().data() : nullptr, activation},
                             input, fast, serial);
            require_close(fast.data, activated(reference.data, activation));
        }
    }
}

TEST_CASE("the conv2d layer (whichever kernel it picks) equals conv2d_reference") {
    std::mt19937 rng(9);
    for (const ConvCase& c : kConvCases) {
        const Conv2d conv = make_conv(c, rng);
        for (const int64_t batch : {1, 3}) {
            const Tensor input = batch_of({c.in, c.h, c.w}, batch, rng);
            Tensor reference(run(conv, input).shape);
            conv2d_reference(conv.params(), conv.weight(), conv.bias(), input, reference);
            INFO("in " << c.in << " out " << c.out << " map " << c.h << "x" << c.w << " batch " << batch);
            require_close(run(conv, input).data, reference.data);
        }
    }
}

TEST_CASE(
    "conv2d picks Winograd for wide 3x3 stride-1 layers, direct for other stride-1 ones, GEMM or depthwise otherwise") {
    std::mt19937 rng(1);
    using A = Conv2d::Algorithm;
    REQUIRE(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 32, 32, true}, rng).algorithm({16, 32, 32}) == A::winograd);
    REQUIRE(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 16, 16, true}, rng).algorithm({16, 16, 16}) == A::direct);
    // An 8x8 map is 4 tiles: too few for one sample; a batch does not change a direct layer's choice.
    REQUIRE(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8, true}, rng).algorithm({16, 8, 8}) == A::direct);
    REQUIRE(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8, true}, rng).algorithm({16, 8, 8}, 16) == A::direct);
    // Where direct does not fit (a padded input over 128 KiB), a batch's waves make Winograd worth it:
    // 64x64 channels at 48x48 are 144 tiles a sample, uncached weights need 48 a wave.
    REQUIRE(make_conv({64, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 48, 48, true}, rng).algorithm({64, 48, 48}, 16) ==
            A::winograd);
    REQUIRE(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3, true}, rng).algorithm({16, 3, 3}) == A::direct);
    REQUIRE(make_conv({1, 32, 1, 3, 3, 1, 1, 1, 1, 1, 1, 28, 28, true}, rng).algorithm({1, 28, 28}) == A::direct);
    // A padded input too large for the cache, too few channels for Winograd: direct too; 1x1: GEMM.
    REQUIRE(make_conv({64, 8, 1, 3, 3, 1, 1, 1, 1, 1, 1, 80, 80, true}, rng).algorithm({64, 80, 80}) == A::direct);
    REQUIRE(make_conv({64, 8, 1, 1, 1, 1, 1, 0, 0, 0, 0, 80, 80, true}, rng).algorithm({64, 80, 80}) == A::gemm);
    REQUIRE(make_conv({16, 16, 1, 3, 3, 2, 1, 1, 1, 1, 1, 8, 8, true}, rng).algorithm({16, 8, 8}) == A::gemm);
    REQUIRE(make_conv({6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8, true}, rng).algorithm({6, 8, 8}) == A::depthwise);
}

TEST_CASE("conv2d counts the weights it prepares: Winograd's where it runs, the direct kernel's packed copy") {
    std::mt19937 rng(2);
    Conv2d conv = make_conv({64, 64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7, true}, rng);
    // Running blocked (its automatic choice): only the weights packed for the blocked kernel,
    // [4 output blocks][4 input blocks][3][3][16][16].
    REQUIRE(conv.runs_blocked({64, 7, 7}));
    REQUIRE(conv.prepared_elements({64, 7, 7}) == 4 * 4 * 9 * 16 * 16);
    // On plain maps (a plain kernel preferred): on a 7x7 map every batch runs direct with channel
    // tiles (576 taps): 2 blocks x 576 taps x 32 channels, plus the zeros the prefetch reaches past
    // them (16 taps + one row of 3 taps, x 32); Winograd's transformed filters are never made there.
    // On a 32x32 map, Winograd's 6x6 transformed filters: 36 x 64 x 64.
    conv.prefer(Conv2d::Algorithm::direct);
    REQUIRE_FALSE(conv.runs_blocked({64, 7, 7}));
    REQUIRE(conv.algorithm({64, 7, 7}, 1024) == Conv2d::Algorithm::direct);
    REQUIRE(conv.prepared_elements({64, 7, 7}) == 2 * 576 * 32 + 19 * 32);
    conv.prefer(Conv2d::Algorithm::winograd);
    REQUIRE(conv.algorithm({64, 32, 32}) == Conv2d::Algorithm::winograd);
    REQUIRE(conv.prepared_elements({64, 32, 32}) == 36 * 64 * 64);
    // Fewer than 8 output channels never block; a strided 3x3 on plain maps prepares nothing.
    REQUIRE(make_conv({16, 7, 1, 3, 3, 2, 1, 1, 1, 1, 1, 8, 8, true}, rng).prepared_elements({16, 8, 8}) == 0);
}

TEST_CASE("a hand-computed convolution through every kernel") {
    // in = [[1,2,3],[4,5,6],[7,8,9]], kernel [[0,1,0],[1,-4,1],[0,1,0]] (a Laplacian), padding 1, bias 1.
    Conv2d::Params p;
    p.window.kernel_h = p.window.kernel_w = 3;
    p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = 1;
    const Conv2d conv(p, {0, 1, 0, 1, -4, 1, 0, 1, 0}, {1});
    const Tensor input({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    const std::vector<float> expected{3, 2, -3, -2, 1, -6, -15, -10, -21};
    gapnet::test::require_values(run(conv, input).data, expected, 1e-6);
    Tensor out({1, 1, 3, 3});
    ThreadPool serial(1);
    const float bias = 1;
    conv2d_gemm(p, conv.weight().data(), {&bias, relu_if(true)}, input, out, serial);
    gapnet::test::require_values(out.data, relu_of(expected), 1e-6);
}

TEST_CASE("dense_fast equals dense_reference") {
    std::mt19937 rng(3);
    struct Case {
        int64_t in, out, batch;
    };
    // Batches of 16 and more run as GEMM panels of 32 samples: one partial, two, three with a tail.
    for (const Case c : {Case{37, 11, 5}, Case{3136, 500, 1}, Case{500, 10, 2}, Case{128, 130, 8}, Case{1, 1, 1},
                         Case{37, 11, 16}, Case{300, 130, 64}, Case{65, 49, 70}})
        for (const bool bias : {true, false})
            for (const Activation& activation : every_activation()) {
                const auto weight = random_values(static_cast<size_t>(c.in * c.out), rng, 1.0f / std::sqrt(c.in));
                const auto b = bias ? random_values(static_cast<size_t>(c.out), rng) : std::vector<float>{};
                const Tensor input({c.batch, c.in}, random_values(static_cast<size_t>(c.batch * c.in), rng));
                Tensor fast({c.batch, c.out}), reference({c.batch, c.out});
                ThreadPool serial(1);
                dense_fast(c.in, c.out, weight.data(), {bias ? b.data() : nullptr, activation}, input, fast, serial);
                dense_reference(c.in, c.out, weight, b, input, reference);
                INFO("in " << c.in << " out " << c.out << " batch " << c.batch);
                require_close(fast.data, activated(reference.data, activation));
            }
}

TEST_CASE("dense_fast reads its blocks backwards or forwards, on any thread count, with the same result") {
    std::mt19937 rng(14);
    const int64_t in = 400, out = 333;  // past kMinParallelWork even for one sample
    const auto weight = random_values(static_cast<size_t>(in * out), rng);
    const auto bias = random_values(static_cast<size_t>(out), rng);
    for (const int64_t batch : {1, 3, 40}) {
        const Tensor input({batch, in}, random_values(static_cast<size_t>(batch * in), rng));
        Tensor forwards({batch, out});
        ThreadPool serial(1);
        dense_fast(in, out, weight.data(), {bias.data(), relu_if(true)}, input, forwards, serial, false);
        for (const int threads : {1, 2, 3}) {
            ThreadPool pool(threads);
            for (const bool backwards : {false, true}) {
                Tensor other({batch, out});
                dense_fast(in, out, weight.data(), {bias.data(), relu_if(true)}, input, other, pool, backwards);
                INFO("batch " << batch << " threads " << threads << " backwards " << backwards);
                REQUIRE(other.data == forwards.data);
            }
        }
    }
}

TEST_CASE("fused conv2d + activation and dense + activation equal the layers run one by one bit for bit") {
    std::mt19937 rng(4);
    for (const Activation& activation : every_activation()) {
        const ActivationLayer act("activation", activation);
        INFO("activation " << static_cast<int>(activation.kind));
        for (const ConvCase& c : kConvCases) {
            const Conv2d conv = make_conv(c, rng);
            const auto fused = conv.fused_with(act, 0, 1);
            REQUIRE(fused);
            if (!activation.is_identity())
                REQUIRE(fused->fused_with(act, 0, 1) == nullptr);  // one activation is absorbed, not two
            REQUIRE(&dynamic_cast<const Conv2d&>(*fused).weight() == &conv.weight());  // shared, not copied
            const Tensor input = batch_of({c.in, c.h, c.w}, 2, rng);
            REQUIRE(run(*fused, input).data == run(act, run(conv, input)).data);
        }
        const Dense dense(50, 30, random_values(1500, rng), random_values(30, rng));
        const auto fused = dense.fused_with(act, 0, 1);
        REQUIRE(fused);
        REQUIRE(&dynamic_cast<const Dense&>(*fused).weight() == &dense.weight());
        for (const int64_t batch : {1, 6}) {
            const Tensor input = batch_of({50}, batch, rng);
            REQUIRE(run(*fused, input).data == run(act, run(dense, input)).data);
        }
        REQUIRE(dense.fused_with(Softmax(), 0, 1) == nullptr);
    }
}

TEST_CASE("fused conv2d + add (+ activation) equals the layers run one by one bit for bit in either operand order") {
    std::mt19937 rng(14);
    const Add add;
    for (const Activation& activation : every_activation()) {
        const ActivationLayer act("activation", activation);
        for (const ConvCase& c : kConvCases) {
            const Conv2d conv = make_conv(c, rng);
            const auto fused_add = conv.fused_with(add, 1, 2);
            REQUIRE(fused_add);
            REQUIRE(conv.fused_with(add, 0, 3) == nullptr);  // only an add of two tensors
            const auto fused = fused_add->fused_with(act, 0, 1);
            REQUIRE(fused);
            const Tensor input = batch_of({c.in, c.h, c.w}, 2, rng);
            const Tensor conv_out = run(conv, input);
            const Tensor residual = batch_of(Shape(conv_out.shape.begin() + 1, conv_out.shape.end()), 2, rng);
            INFO("activation " << static_cast<int>(activation.kind) << " in " << c.in << " out " << c.out);
            REQUIRE(run(*fused_add, {&input, &residual}).data == run(add, {&residual, &conv_out}).data);
            REQUIRE(run(*fused, {&input, &residual}, 2).data == run(act, run(add, {&conv_out, &residual})).data);
        }
    }
}

TEST_CASE("conv2d + batch_norm2d (+ relu) folds into one conv2d within rounding") {
    std::mt19937 rng(6);
    for (const ConvCase& c : kConvCases) {
        const Conv2d conv = make_conv(c, rng);
        std::vector<float> var = random_values(static_cast<size_t>(c.out), rng);
        for (float& v : var) v = v * v + 0.1f;
        const BatchNorm2d bn(c.out, 1e-5, random_values(static_cast<size_t>(c.out), rng),
                             random_values(static_cast<size_t>(c.out), rng),
                             random_values(static_cast<size_t>(c.out), rng), var);
        const auto folded = conv.fused_with(bn, 0, 1);
        REQUIRE(folded);
        const auto folded_relu = folded->fused_with(relu_layer(), 0, 1);
        REQUIRE(folded_relu);
        const Tensor input = batch_of({c.in, c.h, c.w}, 2, rng);
        const Tensor expected = run(bn, run(conv, input));
        INFO("in " << c.in << " out " << c.out << " groups " << c.groups);
        require_close(run(*folded, input).data, expected.data, 2e-5);
        require_close(run(*folded_relu, input).data, relu_of(expected.data), 2e-5);
    }
    // A relu-fused conv2d cannot take a batch norm after its relu.
    const Conv2d conv = make_conv(kConvCases[0], rng);
    const BatchNorm2d bn(4, 1e-5, {}, {}, {0, 0, 0, 0}, {1, 1, 1, 1});
    REQUIRE(conv.fused_with(relu_layer(), 0, 1)->fused_with(bn, 0, 1) == nullptr);
}

TEST_CASE("Graph::fuse runs conv2d+batch_norm2d+relu and dense+relu as one step, with the same result") {
    std::mt19937 rng(12);
    Graph g({3, 12, 12});
    g.add("conv", std::make_unique<Conv2d>(make_conv({3, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 12, 12, true}, rng)));
    g.add("bn", std::make_unique<BatchNorm2d>(16, 1e-5, random_values(16, rng), random_values(16, rng),
                                              random_values(16, rng), std::vector<float>(16, 0.5f)));
    g.add("relu", std::make_unique<ActivationLayer>(relu_layer()));
    g.add("conv2", std::make_unique<Conv2d>(make_conv({16, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 12, 12, true}, rng)));
    g.add("relu2", std::make_unique<ActivationLayer>(relu_layer()));
    g.add("gap", std::make_unique<GlobalAvgPool2d>());
    g.add("fc", std::make_unique<Dense>(16, 8, random_values(128, rng), random_values(8, rng)));
    g.add("relu3", std::make_unique<ActivationLayer>(relu_layer()));
    const Tensor input = batch_of({3, 12, 12}, 2, rng);
    const Tensor unfused = g.forward_all(input).back();
    g.fuse();
    REQUIRE(g.steps().size() == 4);
    require_close(g.forward(input).data, unfused.data, 2e-5);
}

TEST_CASE("every fast path gives bit-identical results on 1, 2 and 3 threads") {
    std::mt19937 rng(13);
    std::vector<std::unique_ptr<Layer>> layers;
    std::vector<Shape> shapes;
    for (const ConvCase& c : kConvCases) {
        layers.push_back(std::make_unique<Conv2d>(make_conv(c, rng)));
        shapes.push_back({c.in, c.h, c.w});
    }
    layers.push_back(std::make_unique<Conv2d>(make_conv({32, 32, 1, 3, 3, 1, 1, 1, 1, 1, 1, 20, 20, true}, rng)));
    shapes.push_back({32, 20, 20});
    layers.push_back(std::make_unique<Dense>(700, 300, random_values(210000, rng), random_values(300, rng)));
    shapes.push_back({700});
    Window2d w;
    w.kernel_h = w.kernel_w = 2, w.stride_h = w.stride_w = 2;
    layers.push_back(std::make_unique<MaxPool2d>(w));
    shapes.push_back({64, 33, 34});
    Window2d a;
    a.kernel_h = a.kernel_w = 3, a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = 1;
    layers.push_back(std::make_unique<AvgPool2d>(a, false));
    shapes.push_back({64, 33, 34});
    layers.push_back(std::make_unique<GlobalAvgPool2d>());
    shapes.push_back({64, 40, 40});
    layers.push_back(std::make_unique<GlobalMaxPool2d>());
    shapes.push_back({64, 40, 40});
    layers.push_back(std::make_unique<ActivationLayer>(relu_layer()));
    shapes.push_back({64, 40, 40});
    layers.push_back(std::make_unique<BatchNorm2d>(64, 1e-5, std::vector<float>{}, std::vector<float>{},
                                                   random_values(64, rng), std::vector<float>(64, 2.0f)));
    shapes.push_back({64, 40, 40});
    layers.push_back(std::make_unique<Softmax>());
    shapes.push_back({1000});
    for (size_t i = 0; i < layers.size(); ++i)
        for (const int64_t batch : {1, 5}) {
            const Tensor input = batch_of(shapes[i], batch, rng);
            const Tensor one = run(*layers[i], input, 1);
            INFO("layer " << i << " (" << layers[i]->type() << ") batch " << batch);
            REQUIRE(run(*layers[i], input, 2).data == one.data);
            REQUIRE(run(*layers[i], input, 3).data == one.data);
        }
}

TEST_CASE("max_pool2d equals a plain loop over each window bit for bit, NaN and signed zeros included") {
    std::mt19937 rng(11);
    struct PoolCase {
        int64_t k_h, k_w, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r;
        bool ceil_mode;
    };
    const PoolCase cases[] = {
        {2, 2, 2, 2, 0, 0, 0, 0, false},  // the common 2x2
        {3, 3, 2, 2, 0, 0, 0, 0, true},   // SqueezeNet's, ceil_mode
        {3, 3, 2, 2, 1, 1, 1, 1, false},  // ResNet's stem
        {3, 3, 1, 1, 1, 1, 1, 1, false},  // stride 1
        {3, 2, 3, 1, 0, 1, 2, 0, true},   // rectangular, asymmetric padding, stride 3
    };
    for (const PoolCase& c : cases) {
        Window2d w;
        w.kernel_h = c.k_h, w.kernel_w = c.k_w, w.stride_h = c.stride_h, w.stride_w = c.stride_w;
        w.pad_top = c.pad_t, w.pad_left = c.pad_l, w.pad_bottom = c.pad_b, w.pad_right = c.pad_r;
        w.ceil_mode = c.ceil_mode;
        const MaxPool2d pool(w);
        for (const int64_t h : {3, 5, 28})
            for (const int64_t width : {3, 14, 31, 32, 33, 67}) {
                Tensor input({2, 3, h, width});
                auto values = random_values(static_cast<size_t>(input.size()), rng);
                for (size_t i = 0; i < values.size(); ++i) {
                    if (i % 7 == 0) values[i] = 0.0f;
                    if (i % 11 == 0) values[i] = -0.0f;
                    if (i % 13 == 0) values[i] = std::numeric_limits<float>::quiet_NaN();
                    if (i % 17 == 0) values[i] = -std::numeric_limits<float>::infinity();
                }
                std::copy(values.begin(), values.end(), input.ptr());
                const Tensor out = run(pool, input);
                const int64_t out_h = w.output_h(h), out_w = w.output_w(width);
                REQUIRE(out.shape == Shape{2, 3, out_h, out_w});
                for (int64_t p = 0; p < 6; ++p)
                    for (int64_t oy = 0; oy < out_h; ++oy)
                        for (int64_t ox = 0; ox < out_w; ++ox) {
                            float m = -std::numeric_limits<float>::infinity();
                            for (int64_t ky = 0; ky < c.k_h; ++ky)
                                for (int64_t kx = 0; kx < c.k_w; ++kx) {
                                    const int64_t y = oy * c.stride_h - c.pad_t + ky,
                                                  x = ox * c.stride_w - c.pad_l + kx;
                                    if (y >= 0 && y < h && x >= 0 && x < width)
                                        m = std::max(m, input.ptr()[(p * h + y) * width + x]);
                                }
                            const float got = out.ptr()[(p * out_h + oy) * out_w + ox];
                            INFO("window " << c.k_h << "x" << c.k_w << " stride " << c.stride_h << "x" << c.stride_w
                                           << ", map " << h << "x" << width << " at " << p << "," << oy << "," << ox);
                            REQUIRE(std::memcmp(&got, &m, sizeof m) == 0);
                        }
            }
    }
}

TEST_CASE("exp16 is within 2 ulp of e^x, and sigmoid and silu are the same for a lane and a scalar") {
    // e^x in double, rounded to float, against exp16's lane: every 1/64 from -87 to 88 and 100,000
    // random points between.
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> uniform(-87.0f, 88.0f);
    std::vector<float> xs;
    for (int i = -87 * 64; i <= 88 * 64; ++i) xs.push_back(static_cast<float>(i) / 64.0f);
    for (int i = 0; i < 100000; ++i) xs.push_back(uniform(rng));
    float worst = 0.0f;
    for (size_t i = 0; i + kVec16Lanes <= xs.size(); i += kVec16Lanes) {
        const Vec16 got = exp16(load16(xs.data() + i));
        for (int l = 0; l < kVec16Lanes; ++l) {
            const auto want = static_cast<float>(std::exp(static_cast<double>(xs[i + l])));
            const float ulp = std::nextafter(want, std::numeric_limits<float>::infinity()) - want;
            worst = std::max(worst, std::abs(got[l] - want) / ulp);
        }
    }
    INFO("worst error " << worst << " ulp");
    REQUIRE(worst <= 2.0f);
    // Past the clamp: e^88 and e^-87 stand in; NaN stays NaN.
    const Vec16 edges = exp16(Vec16{1000.0f, -1000.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f});
    REQUIRE(edges[0] == exp16(broadcast16(88.0f))[0]);
    REQUIRE(edges[1] == exp16(broadcast16(-87.0f))[0]);
    REQUIRE(std::isnan(edges[2]));
    REQUIRE(edges[3] == 1.0f);
    for (const auto kind : {Activation::Kind::sigmoid, Activation::Kind::silu}) {
        const Activation f{kind};
        for (size_t i = 0; i + kVec16Lanes <= 4096; i += kVec16Lanes) {
            const Vec16 lanes = f(load16(xs.data() + i));
            for (int l = 0; l < kVec16Lanes; ++l) REQUIRE(f(xs[i + l]) == lanes[l]);
        }
        // sigmoid(-1) = 0.26894142, silu(2) = 2 * 0.88079708
        REQUIRE(Activation{Activation::Kind::sigmoid}(-1.0f) == Approx(0.26894142f).epsilon(1e-6));
        REQUIRE(Activation{Activation::Kind::silu}(2.0f) == Approx(1.76159416f).epsilon(1e-6));
    }
}
