// The fast kernels against the plain reference loops, on seeded random inputs over every option.
#include <random>

#include "engine/kernels/conv2d.h"
#include "engine/kernels/dense.h"
#include "helpers.h"

using namespace gapnet;

namespace {

std::vector<float> random_values(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

}  // namespace

TEST_CASE("conv2d_gemm equals conv2d_reference for every option") {
    std::mt19937 rng(7);
    struct Case {
        int64_t in, out, groups, k_h, k_w, stride, dilation, pad_t, pad_l, pad_b, pad_r, h, w;
        bool bias;
    };
    const Case cases[] = {
        {1, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 9, 7, true},      // 3x3 same
        {3, 5, 1, 5, 5, 2, 1, 2, 2, 2, 2, 11, 12, false},   // 5x5 stride 2
        {4, 6, 2, 3, 3, 1, 2, 2, 2, 2, 2, 10, 10, true},    // groups, dilation
        {6, 6, 6, 3, 3, 1, 1, 0, 1, 2, 0, 8, 9, true},      // depthwise, asymmetric padding
        {8, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5, 6, true},      // pointwise: no im2col
        {2, 3, 1, 1, 1, 2, 1, 0, 0, 0, 0, 5, 6, false},     // 1x1 stride 2
        {3, 2, 1, 7, 7, 2, 1, 3, 3, 3, 3, 15, 13, true},    // 7x7
        {2, 2, 1, 2, 4, 3, 1, 1, 0, 0, 3, 7, 7, true},      // rectangular kernel
    };
    for (const Case& c : cases) {
        Conv2d::Params p;
        p.in_channels = c.in, p.out_channels = c.out, p.groups = c.groups;
        p.window.kernel_h = c.k_h, p.window.kernel_w = c.k_w;
        p.window.stride_h = p.window.stride_w = c.stride;
        p.window.dilation_h = p.window.dilation_w = c.dilation;
        p.window.pad_top = c.pad_t, p.window.pad_left = c.pad_l, p.window.pad_bottom = c.pad_b, p.window.pad_right = c.pad_r;
        const Conv2d conv(p, random_values(static_cast<size_t>(element_count(Conv2d::weight_shape(p))), rng),
                          c.bias ? random_values(static_cast<size_t>(c.out), rng) : std::vector<float>{});
        const Shape out = conv.output_shape({c.in, c.h, c.w});
        const Tensor input({2, c.in, c.h, c.w}, random_values(static_cast<size_t>(2 * c.in * c.h * c.w), rng));
        Tensor fast({2, out[0], out[1], out[2]}), reference({2, out[0], out[1], out[2]});
        ThreadPool serial(1);
        conv2d_gemm(p, conv.weight().data(), {c.bias ? conv.bias().data() : nullptr, false}, input, fast, serial);
        conv2d_reference(p, conv.weight(), conv.bias(), input, reference);
        INFO("in " << c.in << " out " << c.out << " groups " << c.groups << " kernel " << c.k_h << "x" << c.k_w);
        gapnet::test::require_values(fast.data, reference.data, 1e-5);
    }
}

TEST_CASE("dense_gemm equals dense_reference") {
    std::mt19937 rng(3);
    for (const bool bias : {true, false}) {
        const int64_t in = 37, out = 11, batch = 5;
        const auto weight = random_values(in * out, rng);
        const auto b = bias ? random_values(out, rng) : std::vector<float>{};
        const Tensor input({batch, in}, random_values(batch * in, rng));
        Tensor fast({batch, out}), reference({batch, out});
        ThreadPool serial(1);
        dense_fast(in, out, weight.data(), {bias ? b.data() : nullptr, false}, input, fast, serial);
        dense_reference(in, out, weight, b, input, reference);
        gapnet::test::require_values(fast.data, reference.data, 1e-5);
    }
}
