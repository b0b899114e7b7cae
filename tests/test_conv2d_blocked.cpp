// The blocked-layout direct convolution (kernels/conv2d_blocked.h) against conv2d_reference, through
// the layout's reorders (kernels/blocked.h): every activation, with and without bias and residual,
// plain and blocked input, at the edges; bit-identical on 1, 2 and 3 threads.
#include <cmath>
#include <limits>
#include <random>

#include "engine/kernels/bfloat16.h"
#include "engine/kernels/blocked.h"
#include "engine/kernels/conv2d_gemm.h"
#include "engine/kernels/conv2d_blocked.h"
#include "engine/kernels/quantize.h"
#include "engine/sanitized.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::every_activation;
using gapnet::test::random_values;

namespace {

struct BlockedCase {
    int64_t in, out, k_h, k_w, stride, dilation, pad_t, pad_l, pad_b, pad_r, h, w, batch;
};

#if GAPNET_SANITIZED
// Under the sanitizers: one case of each path (one-row 1x1, padded copy of a blocked and of a plain
// input, input-block slices, strided unpadded), with the threads engaged.
const BlockedCase kCases[] = {
    {40, 17, 1, 1, 1, 1, 0, 0, 0, 0, 9, 7, 2},    // 1x1: the whole map as one row
    {3, 17, 3, 3, 2, 1, 1, 0, 2, 1, 9, 11, 1},    // asymmetric padding, stride 2
    {96, 40, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7, 1},    // input blocks in two slices
    {24, 40, 1, 1, 2, 1, 0, 0, 0, 0, 11, 11, 1},  // 1x1 stride 2
    {64, 40, 3, 3, 1, 1, 1, 1, 1, 1, 20, 17, 1},  // enough work for the threads
};
#else
const BlockedCase kCases[] = {
    {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},      // 1x1 map, one channel
    {3, 17, 3, 3, 1, 1, 1, 1, 1, 1, 7, 5, 2},     // 3 -> 17, same padding
    {17, 40, 3, 3, 2, 1, 1, 0, 2, 1, 9, 11, 1},   // stride 2, asymmetric padding
    {40, 3, 5, 5, 1, 1, 2, 2, 2, 2, 6, 7, 1},     // 5x5
    {3, 64, 7, 7, 2, 1, 3, 3, 3, 3, 23, 19, 1},   // the image's first layer: 7x7 stride 2
    {17, 33, 7, 7, 1, 1, 3, 3, 3, 3, 8, 9, 1},    // 7x7 over two input blocks: two slices
    {40, 17, 3, 3, 1, 2, 2, 2, 2, 2, 13, 13, 1},  // dilation 2
    {17, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},    // 1x1 map, 3x3 kernel, all padding but the centre
    {40, 40, 1, 1, 1, 1, 0, 0, 0, 0, 10, 9, 2},   // 1x1: the whole map as one row
    {24, 70, 1, 1, 2, 1, 0, 0, 0, 0, 11, 11, 1},  // 1x1 stride 2
    {16, 16, 5, 5, 1, 1, 0, 0, 0, 0, 9, 9, 1},    // unpadded 5x5, read in place
    {17, 20, 1, 3, 1, 1, 0, 1, 0, 1, 6, 5, 1},    // rectangular kernel
    {5, 9, 5, 5, 2, 2, 3, 1, 2, 4, 15, 14, 1},    // 5x5 stride 2 dilation 2, asymmetric
    {96, 40, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7, 1},    // input blocks in two slices
    {96, 24, 1, 1, 1, 1, 0, 0, 0, 0, 28, 28, 1},  // MobileNet's 1x1 at enough work for the threads
    {64, 80, 3, 3, 1, 1, 1, 1, 1, 1, 20, 17, 1},  // ResNet's 3x3 at enough work for the threads
    {3, 20, 7, 7, 2, 1, 3, 3, 3, 3, 64, 61, 1},   // the first layer at enough work for the threads
};
#endif

ConvParams params_of(const BlockedCase& c) {
    ConvParams p;
    p.in_channels = c.in, p.out_channels = c.out;
    p.window.kernel_h = c.k_h, p.window.kernel_w = c.k_w;
    p.window.stride_h = p.window.stride_w = c.stride;
    p.window.dilation_h = p.window.dilation_w = c.dilation;
    p.window.pad_top = c.pad_t, p.window.pad_left = c.pad_l, p.window.pad_bottom = c.pad_b;
    p.window.pad_right = c.pad_r;
    return p;
}

// sum |w| |x| + |b| per output: the scale a float sum's rounding errors are relative to.
Tensor magnitudes(const ConvParams& p, std::vector<float> weight, std::vector<float> bias, Tensor input,
                  const Shape& out) {
    for (float& v : weight) v = std::abs(v);
    for (float& v : bias) v = std::abs(v);
    for (float& v : input.data) v = std::abs(v);
    Tensor magnitude(out);
    conv2d_reference(p, weight, bias, input, magnitude);
    return magnitude;
}

// Padding lanes of a blocked tensor set to `value`.
void fill_padding_lanes(Tensor& blocked, int64_t channels, float value) {
    const int64_t blocks = blocked.shape[1], pixels = blocked.shape[2] * blocked.shape[3];
    for (int64_t n = 0; n < blocked.shape[0]; ++n)
        for (int64_t i = 0; i < pixels; ++i)
            for (int64_t c = channels - (blocks - 1) * kBlock; c < kBlock; ++c)
                blocked.data[static_cast<size_t>(((n * blocks + blocks - 1) * pixels + i) * kBlock + c)] = value;
}

bool padding_lanes_finite(const Tensor& blocked, int64_t channels);

// Runs `convolve(result, pool)`, a blocked convolution writing `result`, on 1, 2 and 3 threads: every
// lane written (finite), each value within 1e-5 of activation(expected) relative to `magnitude`, and
// the same bits on every pool. expected, magnitude: plain [N, C, H, W].
template <class Convolve>
void require_matches(const Convolve& convolve, const Tensor& expected, const Tensor& magnitude,
                     const Activation& activation) {
    const Shape& out = expected.shape;
    ThreadPool one(1), two(2), three(3);
    Tensor result(blocked_shape(out[0], out[1], out[2], out[3]));
    result.data.assign(static_cast<size_t>(result.size()), std::numeric_limits<float>::quiet_NaN());
    convolve(result, one);
    REQUIRE(padding_lanes_finite(result, out[1]));
    Tensor actual(out);
    from_blocked(result, actual, one);
    for (size_t i = 0; i < actual.data.size(); ++i) {
        INFO("value " << i << ": " << actual.data[i] << " vs " << activation(expected.data[i]));
        REQUIRE(std::abs(static_cast<double>(actual.data[i]) - activation(expected.data[i])) <=
                1e-5 * (1.0 + magnitude.data[i]));
    }
    Tensor on_two(result.shape), on_three(result.shape);
    convolve(on_two, two);
    convolve(on_three, three);
    REQUIRE(on_two.data == result.data);
    REQUIRE(on_three.data == result.data);
}

bool padding_lanes_finite(const Tensor& blocked, int64_t channels) {
    const int64_t blocks = blocked.shape[1], pixels = blocked.shape[2] * blocked.shape[3];
    for (int64_t n = 0; n < blocked.shape[0]; ++n)
        for (int64_t i = 0; i < pixels; ++i)
            for (int64_t c = channels - (blocks - 1) * kBlock; c < kBlock; ++c)
                if (!std::isfinite(
                        blocked.data[static_cast<size_t>(((n * blocks + blocks - 1) * pixels + i) * kBlock + c)]))
                    return false;
    return true;
}

}  // namespace

TEST_CASE("conv2d_blocked packs the weights as [out/16][in/16][kh][kw][16 in][16 out], zeros past the channels",
          "[conv2d_blocked]") {
    ConvParams p;
    p.in_channels = 17, p.out_channels = 18;
    p.window.kernel_h = 2, p.window.kernel_w = 3;
    std::vector<float> weight(static_cast<size_t>(18 * 17 * 6));
    for (size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i + 1);
    const std::vector<float> packed = conv2d_blocked_pack(p, weight.data());
    REQUIRE(static_cast<int64_t>(packed.size()) == conv2d_blocked_packed_size(p));
    REQUIRE(packed.size() == 2 * 2 * 6 * 256);
    // out 17, in 16, ky 1, kx 2: block (1, 1), tap 5, lane (in 0, out 1)
    REQUIRE(packed[((1 * 2 + 1) * 6 + 5) * 256 + 0 * 16 + 1] == weight[((17 * 17 + 16) * 2 + 1) * 3 + 2]);
    // out 3, in 5, ky 0, kx 1: block (0, 0), tap 1, lane (5, 3)
    REQUIRE(packed[1 * 256 + 5 * 16 + 3] == weight[((3 * 17 + 5) * 2 + 0) * 3 + 1]);
    // in 16..31 of block 1 past channel 16, and outputs past 17, are zeros
    REQUIRE(packed[((0 * 2 + 1) * 6 + 0) * 256 + 1 * 16 + 0] == 0.0f);
    REQUIRE(packed[((1 * 2 + 0) * 6 + 0) * 256 + 0 * 16 + 2] == 0.0f);
    double sum = 0, expected = 0;
    for (float v : packed) sum += v;
    for (float v : weight) expected += v;
    REQUIRE(sum == expected);  // every weight once
}

TEST_CASE("conv2d_blocked equals conv2d_reference with every epilogue, on 1, 2 and 3 threads bit for bit",
          "[conv2d_blocked]") {
    std::mt19937 rng(22);
    ThreadPool one(1), two(2), three(3);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const BlockedCase& c : kCases) {
        const ConvParams p = params_of(c);
        REQUIRE(conv2d_blocked_applies(p));
        const int64_t oh = p.window.output_h(c.h), ow = p.window.output_w(c.w);
        const std::vector<float> weight = random_values(static_cast<size_t>(c.out * c.in * c.k_h * c.k_w), rng);
        const std::vector<float> bias = random_values(static_cast<size_t>(c.out), rng);
        const std::vector<float> packed = conv2d_blocked_pack(p, weight.data());
        const Tensor plain_input({c.batch, c.in, c.h, c.w},
                                 random_values(static_cast<size_t>(c.batch * c.in * c.h * c.w), rng));
        Tensor blocked_input(blocked_shape(c.batch, c.in, c.h, c.w));
        to_blocked(plain_input, blocked_input, one);
        fill_padding_lanes(blocked_input, c.in, nan);  // never read: a NaN would reach every output
        const Shape out{c.batch, c.out, oh, ow};
        Tensor with_bias(out), without_bias(out);
        conv2d_reference(p, weight, bias, plain_input, with_bias);
        conv2d_reference(p, weight, {}, plain_input, without_bias);
        const Tensor magnitude = magnitudes(p, weight, bias, plain_input, out);
        const Tensor residual_plain(out, random_values(static_cast<size_t>(c.batch * c.out * oh * ow), rng));
        Tensor residual(blocked_shape(c.batch, c.out, oh, ow));
        to_blocked(residual_plain, residual, one);
        fill_padding_lanes(residual, c.out, 3.0f);  // finite, as the layout keeps them

        for (const bool blocked : {true, false}) {
            const Tensor& input = blocked ? blocked_input : plain_input;
            for (const bool has_bias : {true, false})
                for (const bool has_residual : {false, true})
                    for (const Activation& activation : every_activation()) {
                        INFO("in " << c.in << " out " << c.out << " kernel " << c.k_h << "x" << c.k_w << " stride "
                                   << c.stride << " dilation " << c.dilation << " map " << c.h << "x" << c.w
                                   << " batch " << c.batch << (blocked ? " blocked" : " plain") << " bias " << has_bias
                                   << " residual " << has_residual << " activation "
                                   << static_cast<int>(activation.kind));
                        const Epilogue epilogue{has_bias ? bias.data() : nullptr, activation,
                                                has_residual ? residual.ptr() : nullptr};
                        Tensor result(blocked_shape(c.batch, c.out, oh, ow));
                        result.data.assign(static_cast<size_t>(result.size()), nan);  // every lane must be written
                        conv2d_blocked(p, packed.data(), epilogue, input, result, one);
                        REQUIRE(padding_lanes_finite(result, c.out));
                        Tensor actual(out);
                        from_blocked(result, actual, one);
                        const Tensor& sums = has_bias ? with_bias : without_bias;
                        for (size_t i = 0; i < actual.data.size(); ++i) {
                            const float expected =
                                activation(has_residual ? sums.data[i] + residual_plain.data[i] : sums.data[i]);
                            const double scale = 1.0 + magnitude.data[i] + (has_residual ? 1.0 : 0.0);
                            INFO("value " << i << ": " << actual.data[i] << " vs " << expected);
                            REQUIRE(std::abs(static_cast<double>(actual.data[i]) - expected) <= 1e-5 * scale);
                        }
                        // The threads' chunks are fixed by the shapes: the same bits on any pool.
                        if (activation.kind == Activation::Kind::identity ||
                            activation.kind == Activation::Kind::silu) {
                            Tensor on_two(result.shape), on_three(result.shape);
                            conv2d_blocked(p, packed.data(), epilogue, input, on_two, two);
                            conv2d_blocked(p, packed.data(), epilogue, input, on_three, three);
                            REQUIRE(on_two.data == result.data);
                            REQUIRE(on_three.data == result.data);
                        }
                    }
        }
    }
}

TEST_CASE("conv2d_blocked adds a hand-computed residual before the activation", "[conv2d_blocked]") {
    // 2 -> 1 channels, 1x1 kernel on a 1x2 map: out = 2*x0 - x1 + bias + residual, then ReLU.
    ConvParams p;
    p.in_channels = 2, p.out_channels = 1;
    const std::vector<float> weight{2.0f, -1.0f}, bias{0.5f};
    const std::vector<float> packed = conv2d_blocked_pack(p, weight.data());
    const Tensor input({1, 2, 1, 2}, {1.0f, 3.0f, 4.0f, 1.0f});  // x0 = (1, 3), x1 = (4, 1)
    Tensor residual(blocked_shape(1, 1, 1, 2));
    residual.data[0] = 1.0f, residual.data[16] = -2.0f;
    Tensor output(blocked_shape(1, 1, 1, 2));
    ThreadPool pool(1);
    conv2d_blocked(p, packed.data(), {bias.data(), {Activation::Kind::relu}, residual.ptr()}, input, output, pool);
    REQUIRE(output.data[0] == 0.0f);   // 2 - 4 + 0.5 + 1 = -0.5 -> 0
    REQUIRE(output.data[16] == 3.5f);  // 6 - 1 + 0.5 - 2
    REQUIRE(output.data[1] == 0.0f);   // a padding lane: relu(0)
}

TEST_CASE("bfloat16 rounds to nearest, ties to even, as vcvtneps2bf16", "[conv2d_blocked]") {
    REQUIRE(to_bfloat16(1.0f) == 0x3f80);
    REQUIRE(to_bfloat16(1.0f + 0x1p-8f) == 0x3f80);             // halfway between 1 and 1 + 2^-7: to the even 1
    REQUIRE(to_bfloat16(1.0f + 3 * 0x1p-8f) == 0x3f82);         // halfway between 1 + 2^-7 and 1 + 2^-6: to the even
    REQUIRE(to_bfloat16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);  // past halfway: up
    REQUIRE(to_bfloat16(-2.5f) == 0xc020);
    REQUIRE(to_bfloat16(-0.0f) == 0x8000);
    REQUIRE(to_bfloat16(0x1p-140f) == 0x0000);                          // a denormal reads as zero
    REQUIRE(to_bfloat16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds up past the largest: infinity
    REQUIRE(std::isnan(from_bfloat16(to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
    REQUIRE(from_bfloat16(0x3f82) == 1.015625f);
}

TEST_CASE("conv2d_blocked_bf16 packs pairs of input channels and rounds input and weights to bfloat16",
          "[conv2d_blocked]") {
    ConvParams p;
    p.in_channels = 17, p.out_channels = 18;
    p.window.kernel_h = 2, p.window.kernel_w = 3;
    std::vector<float> weight(static_cast<size_t>(18 * 17 * 6));
    for (size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i + 1);  // exact in bf16 up to 256
    const std::vector<uint16_t> packed = conv2d_blocked_pack_bf16(p, weight.data());
    REQUIRE(static_cast<int64_t>(packed.size()) == conv2d_blocked_packed_size(p));
    // out 3, in 5, ky 0, kx 1: block (0, 0), tap 1, pair 2, lane (out 3, second of the pair)
    const size_t w_3_5 = ((3 * 17 + 5) * 2 + 0) * 3 + 1;
    REQUIRE(from_bfloat16(packed[1 * 256 + 2 * 32 + 3 * 2 + 1]) == round_to_bfloat16(weight[w_3_5]));
    // out 17, in 16, ky 1, kx 2: block (1, 1), tap 5, pair 0, lane (out 1, first)
    const size_t w_17_16 = ((17 * 17 + 16) * 2 + 1) * 3 + 2;
    REQUIRE(from_bfloat16(packed[((1 * 2 + 1) * 6 + 5) * 256 + 0 * 32 + 1 * 2 + 0]) ==
            round_to_bfloat16(weight[w_17_16]));
    REQUIRE(packed[((1 * 2 + 1) * 6 + 5) * 256 + 0 * 32 + 1 * 2 + 1] == 0);  // in 17: past the channels

    // 2 -> 1 channels, 1x1 on one pixel, hand-computed in bfloat16: w = (1 + 2^-8 -> 1, 0.5),
    // x = (1 + 3 * 2^-8 -> 1.015625, 2): 1 * 1.015625 + 0.5 * 2 + bias 0.25 = 2.265625.
    ConvParams q;
    q.in_channels = 2, q.out_channels = 1;
    const std::vector<float> w{1.0f + 0x1p-8f, 0.5f}, bias{0.25f};
    const std::vector<uint16_t> qp = conv2d_blocked_pack_bf16(q, w.data());
    ThreadPool pool(1);
    Tensor input(blocked_shape(1, 2, 1, 1)), output(blocked_shape(1, 1, 1, 1));
    input.data[0] = 1.0f + 3 * 0x1p-8f, input.data[1] = 2.0f;
    input.data[2] = std::numeric_limits<float>::quiet_NaN();  // a padding lane: never reaches a result
    conv2d_blocked_bf16(q, qp.data(), {bias.data(), {}}, input, output, pool);
    REQUIRE(output.data[0] == 2.265625f);
    REQUIRE(output.data[1] == 0.0f);
}

TEST_CASE("conv2d_blocked_bf16 equals conv2d_reference on bfloat16-rounded input and weights, bit for bit on any pool",
          "[conv2d_blocked]") {
    std::mt19937 rng(23);
    ThreadPool one(1);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const BlockedCase& c : kCases) {
        const ConvParams p = params_of(c);
        const int64_t oh = p.window.output_h(c.h), ow = p.window.output_w(c.w);
        std::vector<float> weight = random_values(static_cast<size_t>(c.out * c.in * c.k_h * c.k_w), rng);
        const std::vector<float> bias = random_values(static_cast<size_t>(c.out), rng);
        const std::vector<uint16_t> packed = conv2d_blocked_pack_bf16(p, weight.data());
        Tensor plain_input({c.batch, c.in, c.h, c.w},
                           random_values(static_cast<size_t>(c.batch * c.in * c.h * c.w), rng));
        Tensor blocked_input(blocked_shape(c.batch, c.in, c.h, c.w));
        to_blocked(plain_input, blocked_input, one);
        fill_padding_lanes(blocked_input, c.in, nan);
        // What the kernel computes: the products of bfloat16 values (exact in float32), summed in float32.
        for (float& v : weight) v = round_to_bfloat16(v);
        for (float& v : plain_input.data) v = round_to_bfloat16(v);
        const Shape out{c.batch, c.out, oh, ow};
        Tensor expected(out);
        conv2d_reference(p, weight, bias, plain_input, expected);
        const Tensor magnitude = magnitudes(p, weight, bias, plain_input, out);
        for (const Activation& activation : {Activation{}, Activation{Activation::Kind::clip, 0.0f, 6.0f}}) {
            INFO("in " << c.in << " out " << c.out << " kernel " << c.k_h << "x" << c.k_w << " stride " << c.stride
                       << " map " << c.h << "x" << c.w << " activation " << static_cast<int>(activation.kind));
            require_matches(
                [&](Tensor& result, ThreadPool& pool) {
                    conv2d_blocked_bf16(p, packed.data(), {bias.data(), activation}, blocked_input, result, pool);
                },
                expected, magnitude, activation);
        }
    }
}

TEST_CASE("quantize_uint8 rounds half to even and saturates, as ONNX's QuantizeLinear", "[conv2d_blocked]") {
    REQUIRE(quantize_uint8(0.5f, 0.25f, 10) == 12);    // 2 + 10
    REQUIRE(quantize_uint8(0.625f, 0.25f, 10) == 12);  // 2.5: to the even 2
    REQUIRE(quantize_uint8(0.875f, 0.25f, 10) == 14);  // 3.5: to the even 4
    REQUIRE(quantize_uint8(-0.25f, 0.25f, 10) == 9);
    REQUIRE(quantize_uint8(-10.0f, 0.25f, 10) == 0);  // saturates
    REQUIRE(quantize_uint8(1e30f, 0.25f, 10) == 255);
    REQUIRE(quantize_uint8(std::numeric_limits<float>::quiet_NaN(), 0.25f, 10) == 0);
}

TEST_CASE("conv2d_blocked_int8: a hand-computed sum, the zero point's correction and the padding", "[conv2d_blocked]") {
    // 2 -> 1 channels, 1x1, one pixel: x = (0.5, -0.25) at scale 0.25, zero point 10 -> (12, 9);
    // w_q = (3, -2) at scale 0.5. Sum 3 * 12 - 2 * 9 = 18, correction 10 * (3 - 2) = 10:
    // 0.25 * 0.5 * (18 - 10) = 1 (the float products: 0.5 * 1.5 + -0.25 * -1), + bias 0.5.
    ConvParams p;
    p.in_channels = 2, p.out_channels = 1;
    const std::vector<int8_t> w{3, -2};
    const std::vector<float> weight_scale{0.5f}, bias{0.5f};
    const Int8Weights q = conv2d_blocked_pack_int8(p, w.data(), weight_scale.data(), 0.25f, 10);
    REQUIRE(q.packed[0] == 3);
    REQUIRE(q.packed[1] == -2);
    REQUIRE(q.correction[0] == 10);
    REQUIRE(q.scale[0] == 0.125f);
    ThreadPool pool(1);
    Tensor input(blocked_shape(1, 2, 1, 1)), output(blocked_shape(1, 1, 1, 1));
    input.data[0] = 0.5f, input.data[1] = -0.25f;
    input.data[2] = std::numeric_limits<float>::quiet_NaN();  // a padding lane: never reaches a result
    conv2d_blocked_int8(p, q, {bias.data(), {}}, input, output, pool);
    REQUIRE(output.data[0] == 1.5f);

    // 3x3 with zero padding around one pixel: the border is the zero point (a real 0), so only the
    // centre tap counts: the same 1.5.
    ConvParams padded = p;
    padded.window.kernel_h = padded.window.kernel_w = 3;
    padded.window.pad_top = padded.window.pad_left = padded.window.pad_bottom = padded.window.pad_right = 1;
    std::vector<int8_t> w3(18, 0);
    w3[4] = 3, w3[9 + 4] = -2;                                   // the centre taps
    for (int i : {0, 8, 9, 17}) w3[static_cast<size_t>(i)] = 7;  // corner taps: they read only the border
    const Int8Weights q3 = conv2d_blocked_pack_int8(padded, w3.data(), weight_scale.data(), 0.25f, 10);
    conv2d_blocked_int8(padded, q3, {bias.data(), {}}, input, output, pool);
    REQUIRE(output.data[0] == 1.5f);
}

TEST_CASE("conv2d_blocked_int8 equals conv2d_reference on the dequantized values, bit for bit on any pool",
          "[conv2d_blocked]") {
    std::mt19937 rng(24);
    ThreadPool one(1);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const BlockedCase& c : kCases) {
        const ConvParams p = params_of(c);
        const int64_t oh = p.window.output_h(c.h), ow = p.window.output_w(c.w);
        const auto per_channel = static_cast<size_t>(c.in * c.k_h * c.k_w);
        std::vector<int8_t> w_q(static_cast<size_t>(c.out) * per_channel);
        for (int8_t& v : w_q) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
        std::vector<float> weight_scale(static_cast<size_t>(c.out));
        for (float& s : weight_scale) s = 0.001f + 0.01f * static_cast<float>(rng() % 100) / 100.0f;
        const std::vector<float> bias = random_values(static_cast<size_t>(c.out), rng);
        const float input_scale = 0.0078125f;  // an input in [-1, 1] spans 256 steps
        const int32_t zero_point = 128;
        const Int8Weights q = conv2d_blocked_pack_int8(p, w_q.data(), weight_scale.data(), input_scale, zero_point);
        Tensor plain_input({c.batch, c.in, c.h, c.w},
                           random_values(static_cast<size_t>(c.batch * c.in * c.h * c.w), rng));
        Tensor blocked_input(blocked_shape(c.batch, c.in, c.h, c.w));
        to_blocked(plain_input, blocked_input, one);
        fill_padding_lanes(blocked_input, c.in, nan);
        // What the kernel computes, in float: the dequantized input and weights.
        for (float& v : plain_input.data)
            v = input_scale * static_cast<float>(quantize_uint8(v, input_scale, zero_point) - zero_point);
        std::vector<float> weight(w_q.size());
        for (size_t i = 0; i < w_q.size(); ++i) weight[i] = weight_scale[i / per_channel] * static_cast<float>(w_q[i]);
        const Shape out{c.batch, c.out, oh, ow};
        Tensor expected(out);
        conv2d_reference(p, weight, bias, plain_input, expected);
        const Tensor magnitude = magnitudes(p, weight, bias, plain_input, out);
        for (const Activation& activation : {Activation{}, Activation{Activation::Kind::relu}}) {
            INFO("in " << c.in << " out " << c.out << " kernel " << c.k_h << "x" << c.k_w << " stride " << c.stride
                       << " map " << c.h << "x" << c.w << " activation " << static_cast<int>(activation.kind));
            require_matches(
                [&](Tensor& result, ThreadPool& pool) {
                    conv2d_blocked_int8(p, q, {bias.data(), activation}, blocked_input, result, pool);
                },
                expected, magnitude, activation);
        }
    }
}
