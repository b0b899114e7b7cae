// Every layer against hand-computed values (checked once against PyTorch's functional ops).
#include <cmath>

#include "engine/error.h"
#include "engine/layers/avg_pool2d.h"
#include "engine/layers/batch_norm2d.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/dense.h"
#include "engine/layers/flatten.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/global_max_pool2d.h"
#include "engine/layers/max_pool2d.h"
#include "engine/layers/relu.h"
#include "engine/layers/softmax.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::require_values;
using gapnet::test::run;

namespace {

Window2d window(int64_t k, int64_t s, int64_t pad = 0, bool ceil_mode = false) {
    Window2d w;
    w.kernel_h = w.kernel_w = k;
    w.stride_h = w.stride_w = s;
    w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = pad;
    w.ceil_mode = ceil_mode;
    return w;
}

const std::vector<float> kOneToNine = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // [[1,2,3],[4,5,6],[7,8,9]]

}  // namespace

TEST_CASE("max_pool2d 2x2: the course example") {
    const Tensor out = run(MaxPool2d(window(2, 2)), {1, 4, 4},
                           {29, 15, 28, 184, 0, 100, 70, 38, 12, 12, 7, 2, 12, 12, 45, 6});
    REQUIRE(out.shape == Shape{1, 2, 2});
    require_values(out.data, {100, 184, 12, 45});
}

TEST_CASE("avg_pool2d 2x2: the course example") {
    const Tensor out = run(AvgPool2d(window(2, 2), true), {1, 4, 4},
                           {31, 15, 28, 184, 0, 100, 70, 38, 12, 12, 7, 2, 12, 12, 45, 6});
    REQUIRE(out.shape == Shape{1, 2, 2});
    require_values(out.data, {36.5f, 80, 12, 15});
}

TEST_CASE("max_pool2d: padding never wins, ceil_mode keeps the partial window") {
    require_values(run(MaxPool2d(window(2, 2, 1)), {1, 3, 3}, kOneToNine).data, {1, 3, 7, 9});
    const Tensor ceil = run(MaxPool2d(window(2, 2, 0, true)), {1, 3, 3}, kOneToNine);
    REQUIRE(ceil.shape == Shape{1, 2, 2});
    require_values(ceil.data, {5, 6, 8, 9});
    // Without ceil_mode the partial window is dropped.
    REQUIRE(run(MaxPool2d(window(2, 2)), {1, 3, 3}, kOneToNine).shape == Shape{1, 1, 1});
    // With ceil_mode a window may be larger than the whole map, as in PyTorch: a 2x2 pool of a
    // 1x4 map gives [max(0.1, 0.7), max(-0.3, 0.2)] (avg: the mean of the covered pixels).
    const Tensor thin = run(MaxPool2d(window(2, 2, 0, true)), {1, 1, 4}, {0.1f, 0.7f, -0.3f, 0.2f});
    REQUIRE(thin.shape == Shape{1, 1, 2});
    require_values(thin.data, {0.7f, 0.2f});
    require_values(run(AvgPool2d(window(2, 2, 0, true), true), {1, 1, 4}, {0.1f, 0.7f, -0.3f, 0.2f}).data, {0.4f, -0.05f});
    REQUIRE_THROWS_WITH(MaxPool2d(window(4, 2, 0, true)).output_shape({1, 1, 4}),
                        "kernel extent 4 is larger than the padded input height 1 by more than stride - 1 (even with ceil_mode)");
}

TEST_CASE("avg_pool2d: count_include_pad and ceil_mode follow PyTorch") {
    // Window (0,0) covers pad, pad, pad, 1: 1/4 with the pad counted, 1/1 without.
    require_values(run(AvgPool2d(window(2, 2, 1), true), {1, 3, 3}, kOneToNine).data, {0.25f, 1.25f, 2.75f, 7});
    require_values(run(AvgPool2d(window(2, 2, 1), false), {1, 3, 3}, kOneToNine).data, {1, 2.5f, 5.5f, 7});
    // ceil_mode windows hanging past the input average only what they cover.
    require_values(run(AvgPool2d(window(2, 2, 0, true), true), {1, 3, 3}, kOneToNine).data, {3, 4.5f, 7.5f, 9});
    // 3x3 stride 2 pad 1 ceil_mode on 1..25: the corner window [19,20,24,25] counts its 5 padding
    // cells but not the cells past the padding: 88 / 9.
    std::vector<float> x(25);
    for (int i = 0; i < 25; ++i) x[i] = static_cast<float>(i + 1);
    const Tensor out = run(AvgPool2d(window(3, 2, 1, true), true), {1, 5, 5}, x);
    REQUIRE(out.shape == Shape{1, 3, 3});
    require_values(out.data, {16.f / 9, 33.f / 9, 28.f / 9, 69.f / 9, 13, 87.f / 9, 76.f / 9, 123.f / 9, 88.f / 9}, 1e-5);
}

TEST_CASE("global_avg_pool2d of 1024x7x7 gives 1024 values, each the mean of its 49") {
    std::vector<float> x(1024 * 49);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);  // channel c holds 49c .. 49c+48
    const Tensor out = run(GlobalAvgPool2d(), {1024, 7, 7}, x);
    REQUIRE(out.shape == Shape{1024});
    for (int c = 0; c < 1024; ++c) REQUIRE(out.data[c] == Approx(49.0 * c + 24).epsilon(1e-7));
}

TEST_CASE("global_max_pool2d takes each map's maximum") {
    const Tensor out = run(GlobalMaxPool2d(), {2, 2, 2}, {1, -5, 3, 2, -1, -7, -3, -2});
    REQUIRE(out.shape == Shape{2});
    require_values(out.data, {3, -1});
}

TEST_CASE("conv2d: bias, padding, stride, asymmetric padding, dilation, groups") {
    Conv2d::Params p;
    p.window = window(2, 1);
    // out[i,j] = x[i,j] - x[i+1,j+1] + 0.5
    const Tensor valid = run(Conv2d(p, {1, 0, 0, -1}, {0.5f}), {1, 3, 3}, kOneToNine);
    REQUIRE(valid.shape == Shape{1, 2, 2});
    require_values(valid.data, {-3.5f, -3.5f, -3.5f, -3.5f});

    p.window = window(2, 2, 1);
    require_values(run(Conv2d(p, {1, 0, 0, -1}, {}), {1, 3, 3}, kOneToNine).data, {-1, -3, -7, -4});

    p.window = window(2, 1);
    p.window.pad_top = 0, p.window.pad_left = 1, p.window.pad_bottom = 1, p.window.pad_right = 0;
    const Tensor asym = run(Conv2d(p, {1, 0, 0, -1}, {}), {1, 3, 3}, kOneToNine);
    REQUIRE(asym.shape == Shape{1, 3, 3});
    require_values(asym.data, {-4, -4, -4, -7, -4, -4, 0, 7, 8});

    p.window = window(2, 1);
    p.window.dilation_h = p.window.dilation_w = 2;  // taps 1, 3, 7, 9
    require_values(run(Conv2d(p, {1, 1, 1, 1}, {}), {1, 3, 3}, kOneToNine).data, {20});

    // Depthwise: each channel has its own kernel.
    Conv2d::Params dw;
    dw.in_channels = dw.out_channels = dw.groups = 2;
    dw.window = window(2, 1);
    std::vector<float> x = kOneToNine;
    for (float v : kOneToNine) x.push_back(10 * v);
    const Tensor depthwise = run(Conv2d(dw, {1, 1, 1, 1, 0, 0, 0, 1}, {}), {2, 3, 3}, x);
    require_values(depthwise.data, {12, 16, 24, 28, 50, 60, 80, 90});
}

TEST_CASE("conv2d: inconsistent parameters and inputs are refused") {
    Conv2d::Params p;
    p.in_channels = 3, p.out_channels = 4, p.groups = 2;
    p.window = window(2, 1);
    REQUIRE_THROWS_AS(Conv2d(p, std::vector<float>(24), {}), Error);  // 3 channels in 2 groups
    p.groups = 1;
    REQUIRE_THROWS_WITH(Conv2d(p, std::vector<float>(47), {}), "47 values, shape [4,3,2,2] needs 48");
    const Conv2d conv(p, std::vector<float>(48), {});
    REQUIRE_THROWS_WITH(conv.output_shape({2, 8, 8}), "is 3 but the input has 2 channels");
    REQUIRE_THROWS_WITH(conv.output_shape({3, 1, 8}),
                        "kernel extent 2 is larger than the padded input height 1");
    REQUIRE(conv.macs({3, 8, 8}) == 4 * 7 * 7 * 3 * 2 * 2);
    REQUIRE(conv.parameter_count() == 48);
}

TEST_CASE("batch_norm2d: (x - mean) / sqrt(var + eps) * weight + bias") {
    // Channel 0: mean 1, var 4 - eps, weight 2, bias 1: y = (x - 1) / 2 * 2 + 1 = x.
    // Channel 1: mean 0, var 1 - eps, weight 3, bias -1: y = 3x - 1.
    const double eps = 1e-3;
    const BatchNorm2d bn(2, eps, {2, 3}, {1, -1}, {1, 0}, {static_cast<float>(4 - eps), static_cast<float>(1 - eps)});
    require_values(run(bn, {2, 1, 2}, {5, -3, 2, 0}).data, {5, -3, 5, -1}, 1e-5);
    REQUIRE(bn.parameter_count() == 8);
    REQUIRE_THROWS_WITH(bn.output_shape({3, 1, 2}), "is 2 but the input has 3 channels");
}

TEST_CASE("relu, flatten (C-H-W order) and dense") {
    require_values(run(Relu(), {4}, {-1, 0, 2, -0.5f}).data, {0, 0, 2, 0});
    REQUIRE(std::isnan(run(Relu(), {1}, {NAN}).data[0]));  // as torch.relu: NaN is not clamped to 0
    const Tensor flat = run(Flatten(), {2, 1, 2}, {1, 2, 3, 4});
    REQUIRE(flat.shape == Shape{4});
    require_values(flat.data, {1, 2, 3, 4});
    REQUIRE(Flatten().output_shape({7}) == Shape{7});  // after a global pool: nothing changes

    // y = W x + b, W [2,3]
    const Dense dense(3, 2, {1, 2, 3, -1, 0, 1}, {0.5f, -2});
    require_values(run(dense, {3}, {1, 1, 2}).data, {9.5f, -1});
    REQUIRE(dense.parameter_count() == 8);
    REQUIRE(dense.macs({3}) == 6);
    REQUIRE_THROWS_WITH(dense.output_shape({4}), "is 3 but the input has 4 features");
    REQUIRE_THROWS_AS(dense.output_shape({3, 1, 1}), Error);  // needs a flatten first
}

TEST_CASE("softmax is stable for large logits") {
    require_values(run(Softmax(), {3}, {1, 2, 3}).data, {0.09003057f, 0.24472847f, 0.66524096f}, 1e-7);
    const Tensor big = run(Softmax(), {3}, {-2000, 2000, 0});
    require_values(big.data, {0, 1, 0}, 0);
    const Tensor tie = run(Softmax(), {2}, {2000, 2000});
    require_values(tie.data, {0.5f, 0.5f}, 1e-7);
}

TEST_CASE("layers process every sample of a batch") {
    const Dense dense(2, 1, {1, -1}, {});
    const Tensor input({3, 2}, {1, 2, 5, 1, 0, 0});
    Tensor output({3, 1});
    ThreadPool serial(1);
    dense.forward(input, output, serial);
    require_values(output.data, {-1, 4, 0});
}
