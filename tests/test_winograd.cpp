// Winograd F(4x4, 3x3) (kernels/conv2d_winograd.h) against the plain reference loop.
//
// Accuracy, as measured by these cases with He-scaled random weights (std sqrt(2/fan_in)) and inputs
// in [-1, 1]: the largest |winograd - reference| is a few float ulps of sum |w||x| (under 10), i.e.
// about 1e-6 relative for channel counts 16 to 512; the test requires the engine's parity tolerance,
// |v - r| <= 1e-5 * max(1, |r|), and the fuzz harness's bound (2 (n + 2) ulps of sum |w||x|).
#include <cmath>
#include <random>

#include "engine/graph.h"
#include "engine/kernels/conv2d_gemm.h"
#include "engine/kernels/conv2d_winograd.h"
#include "engine/layers/conv2d.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::random_values;

namespace {

std::vector<float> absolute(std::vector<float> v) {
    for (float& x : v) x = std::abs(x);
    return v;
}

Conv2d::Params params3x3(int64_t in, int64_t out, int64_t top, int64_t left, int64_t bottom, int64_t right) {
    Conv2d::Params p;
    p.in_channels = in, p.out_channels = out;
    p.window.kernel_h = p.window.kernel_w = 3;
    p.window.pad_top = top, p.window.pad_left = left, p.window.pad_bottom = bottom, p.window.pad_right = right;
    return p;
}

// Runs conv2d_winograd and conv2d_reference on one case; checks the tolerances described above.
void check_case(const Conv2d::Params& p, int64_t batch, int64_t h, int64_t w, bool bias, bool relu, std::mt19937& rng) {
    const float scale = std::sqrt(6.0f / static_cast<float>(p.in_channels * 9));  // uniform with He's variance
    const std::vector<float> weight =
        random_values(static_cast<size_t>(p.out_channels * p.in_channels * 9), rng, scale);
    const std::vector<float> b = bias ? random_values(static_cast<size_t>(p.out_channels), rng) : std::vector<float>{};
    const Tensor input({batch, p.in_channels, h, w},
                       random_values(static_cast<size_t>(batch * p.in_channels * h * w), rng));
    const Shape out{batch, p.out_channels, p.window.output_h(h), p.window.output_w(w)};
    Tensor fast(out), uncached(out), reference(out), magnitude(out);
    const std::vector<float> u = winograd_filter(weight.data(), p.out_channels, p.in_channels);
    ThreadPool serial(1);
    conv2d_winograd(p, u.data(), nullptr, {bias ? b.data() : nullptr, gapnet::test::relu_if(relu)}, input, fast,
                    serial);
    // Filters transformed on the fly, a block of output channels at a time: the same values.
    conv2d_winograd(p, nullptr, weight.data(), {bias ? b.data() : nullptr, gapnet::test::relu_if(relu)}, input,
                    uncached, serial);
    REQUIRE(uncached.data == fast.data);
    conv2d_reference(p, weight, b, input, reference);
    conv2d_reference(p, absolute(weight), absolute(b), Tensor(input.shape, absolute(input.data)), magnitude);
    const double ulp = std::ldexp(1.0, -24), terms = static_cast<double>(p.in_channels * 9);
    INFO("in " << p.in_channels << " out " << p.out_channels << " batch " << batch << " map " << h << "x" << w
               << " pad " << p.window.pad_top << p.window.pad_left << p.window.pad_bottom << p.window.pad_right);
    for (size_t i = 0; i < fast.data.size(); ++i) {
        const float r = relu && reference.data[i] < 0 ? 0.0f : reference.data[i];
        const double error = std::abs(static_cast<double>(fast.data[i]) - r);
        INFO("value " << i << ": " << fast.data[i] << " vs " << r);
        REQUIRE(error <= 1e-5 * std::max(1.0, std::abs(static_cast<double>(r))));
        REQUIRE(error <= 2 * (terms + 2) * ulp * magnitude.data[i] + 1e-30);
    }
}

}  // namespace

TEST_CASE("winograd: a hand-computed case") {
    // One channel of ones, 3x3 kernel of ones, padding 1: each output counts its in-map neighbours.
    const Conv2d::Params p = params3x3(1, 1, 1, 1, 1, 1);
    const std::vector<float> ones(9, 1.0f);
    const std::vector<float> u = winograd_filter(ones.data(), 1, 1);
    const Tensor input({1, 1, 5, 4}, std::vector<float>(20, 1.0f));
    Tensor output({1, 1, 5, 4});
    ThreadPool serial(1);
    const float bias = 0.5f;
    conv2d_winograd(p, u.data(), nullptr, {&bias, gapnet::test::relu_if(false)}, input, output, serial);
    gapnet::test::require_values(output.data, {4.5f, 6.5f, 6.5f, 4.5f,  //
                                               6.5f, 9.5f, 9.5f, 6.5f,  //
                                               6.5f, 9.5f, 9.5f, 6.5f,  //
                                               6.5f, 9.5f, 9.5f, 6.5f,  //
                                               4.5f, 6.5f, 6.5f, 4.5f},
                                 1e-5);
}

TEST_CASE("winograd equals conv2d_reference on odd sizes, paddings, tiny maps and batches") {
    std::mt19937 rng(11);
    struct Case {
        int64_t in, out, batch, h, w, top, left, bottom, right;
    };
    const Case cases[] = {
        {16, 16, 1, 8, 8, 1, 1, 1, 1},   {17, 19, 2, 9, 7, 1, 1, 1, 1}, {16, 32, 3, 5, 11, 0, 0, 0, 0},
        {20, 16, 1, 13, 13, 2, 2, 2, 2}, {16, 18, 2, 7, 6, 0, 1, 2, 0}, {33, 17, 1, 3, 3, 1, 1, 1, 1},
        {16, 16, 2, 1, 1, 1, 1, 1, 1},   {16, 16, 1, 2, 2, 1, 1, 1, 1}, {16, 24, 1, 3, 3, 0, 0, 0, 0},
        {3, 5, 2, 10, 9, 1, 1, 1, 1},    {1, 1, 1, 6, 6, 0, 0, 0, 0},   {64, 64, 1, 14, 14, 1, 1, 1, 1},
        {16, 150, 1, 6, 6, 1, 1, 1, 1},  // output channels in several filter blocks, the last partial
        {16, 16, 40, 7, 7, 1, 1, 1, 1},  // several waves, spanning samples
    };
    for (const Case& c : cases)
        for (const bool relu : {false, true})
            check_case(params3x3(c.in, c.out, c.top, c.left, c.bottom, c.right), c.batch, c.h, c.w, !relu, relu, rng);
}

TEST_CASE("winograd results do not depend on the thread count") {
    std::mt19937 rng(5);
    const Conv2d::Params p = params3x3(24, 20, 1, 1, 1, 1);
    const std::vector<float> weight = random_values(static_cast<size_t>(20 * 24 * 9), rng, 0.1f);
    const std::vector<float> u = winograd_filter(weight.data(), 20, 24);
    const std::vector<float> bias = random_values(20, rng);
    const Tensor input({5, 24, 15, 13}, random_values(5 * 24 * 15 * 13, rng));
    Tensor first({5, 20, 15, 13});
    ThreadPool serial(1);
    conv2d_winograd(p, u.data(), nullptr, {bias.data(), gapnet::test::relu_if(true)}, input, first, serial);
    for (const int threads : {2, 3}) {
        ThreadPool pool(threads);
        Tensor again({5, 20, 15, 13});
        conv2d_winograd(p, u.data(), nullptr, {bias.data(), gapnet::test::relu_if(true)}, input, again, pool);
        REQUIRE(again.data == first.data);
        conv2d_winograd(p, nullptr, weight.data(), {bias.data(), gapnet::test::relu_if(true)}, input, again, pool);
        REQUIRE(again.data == first.data);
    }
}

TEST_CASE("a VGG-like stack through Winograd stays within the tolerance of the reference") {
    // Conv layers of growing width on a small map (the start of VGG-11's stack at 16x16), each
    // through the layer (Winograd where it applies) and through conv2d_reference, output fed on.
    std::mt19937 rng(2);
    Tensor x({1, 3, 16, 16}, random_values(3 * 16 * 16, rng)), reference = x;
    int64_t channels = 3;
    for (const int64_t width : {32, 64, 64}) {
        const Conv2d::Params p = params3x3(channels, width, 1, 1, 1, 1);
        const Conv2d conv(
            p, random_values(static_cast<size_t>(width * channels * 9), rng, std::sqrt(6.0f / (channels * 9))),
            random_values(static_cast<size_t>(width), rng, 0.1f));
        Tensor fast({1, width, 16, 16}), slow({1, width, 16, 16});
        ThreadPool serial(1);
        conv.forward(x, fast, serial);
        conv2d_reference(p, conv.weight(), conv.bias(), reference, slow);
        for (float& v : slow.data) v = v < 0 ? 0.0f : v;
        for (float& v : fast.data) v = v < 0 ? 0.0f : v;
        for (size_t i = 0; i < fast.data.size(); ++i) {
            INFO("width " << width << " value " << i);
            REQUIRE(std::abs(fast.data[i] - slow.data[i]) <= 1e-5 * std::max(1.0f, std::abs(slow.data[i])));
        }
        x = std::move(fast), reference = std::move(slow), channels = width;
    }
}
