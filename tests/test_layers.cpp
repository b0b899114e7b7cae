// Every layer against hand-computed values (checked once against PyTorch's functional ops).
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/io/model_json.h"
#include "engine/layers/activation.h"
#include "engine/layers/add.h"
#include "engine/layers/avg_pool2d.h"
#include "engine/layers/batch_norm2d.h"
#include "engine/layers/concat.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/dense.h"
#include "engine/layers/flatten.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/global_max_pool2d.h"
#include "engine/layers/max_pool2d.h"
#include "engine/layers/multiply.h"
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
    const Tensor out =
        run(MaxPool2d(window(2, 2)), {1, 4, 4}, {29, 15, 28, 184, 0, 100, 70, 38, 12, 12, 7, 2, 12, 12, 45, 6});
    REQUIRE(out.shape == Shape{1, 2, 2});
    require_values(out.data, {100, 184, 12, 45});
}

TEST_CASE("avg_pool2d 2x2: the course example") {
    const Tensor out =
        run(AvgPool2d(window(2, 2), true), {1, 4, 4}, {31, 15, 28, 184, 0, 100, 70, 38, 12, 12, 7, 2, 12, 12, 45, 6});
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
    require_values(run(AvgPool2d(window(2, 2, 0, true), true), {1, 1, 4}, {0.1f, 0.7f, -0.3f, 0.2f}).data,
                   {0.4f, -0.05f});
    REQUIRE_THROWS_WITH(
        MaxPool2d(window(4, 2, 0, true)).output_shape({1, 1, 4}),
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
    require_values(out.data, {16.f / 9, 33.f / 9, 28.f / 9, 69.f / 9, 13, 87.f / 9, 76.f / 9, 123.f / 9, 88.f / 9},
                   1e-5);
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
    REQUIRE_THROWS_WITH(conv.output_shape({3, 1, 8}), "kernel extent 2 is larger than the padded input height 1");
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
    require_values(run(relu_layer(), {4}, {-1, 0, 2, -0.5f}).data, {0, 0, 2, 0});
    REQUIRE(std::isnan(run(relu_layer(), {1}, {NAN}).data[0]));  // as torch.relu: NaN is not clamped to 0
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

TEST_CASE("activations: hand-computed values, PyTorch's formulas") {
    using K = Activation::Kind;
    const std::vector<float> x{-4, -1, -0.25f, 0, 0.5f, 2, 7};
    const auto apply = [&](const char* type, Activation a) { return run(ActivationLayer(type, a), {7}, x).data; };
    require_values(apply("relu", {K::relu}), {0, 0, 0, 0, 0.5f, 2, 7});
    require_values(apply("relu6", {K::clip, 0, 6}), {0, 0, 0, 0, 0.5f, 2, 6});
    require_values(apply("clip", {K::clip, -0.5f, 1}), {-0.5f, -0.5f, -0.25f, 0, 0.5f, 1, 1});
    require_values(apply("leaky_relu", {K::leaky_relu, 0.1f}), {-0.4f, -0.1f, -0.025f, 0, 0.5f, 2, 7});
    // sigmoid(x) = 1 / (1 + e^-x): sigmoid(-1) = 0.26894142, sigmoid(2) = 0.88079708
    require_values(apply("sigmoid", {K::sigmoid}),
                   {0.01798621f, 0.26894142f, 0.43782350f, 0.5f, 0.62245933f, 0.88079708f, 0.99908895f});
    // ONNX's defaults: clamp(0.2 x + 0.5, 0, 1); PyTorch's Hardsigmoid: clamp(x / 6 + 0.5, 0, 1)
    require_values(apply("hard_sigmoid", {K::hard_sigmoid, 0.2f, 0.5f}), {0, 0.3f, 0.45f, 0.5f, 0.6f, 0.9f, 1});
    require_values(apply("hard_sigmoid", {K::hard_sigmoid, 1.0f / 6, 0.5f}),
                   {0, 1.0f / 3, 0.45833333f, 0.5f, 0.58333333f, 0.83333333f, 1});
    // x * clamp(x + 3, 0, 6) / 6: -1 * 2 / 6, 2 * 5 / 6, 7 * 6 / 6
    require_values(apply("hard_swish", {K::hard_swish}), {0, -1.0f / 3, -0.11458333f, 0, 0.29166667f, 1.6666667f, 7});
    // x * sigmoid(x)
    require_values(apply("silu", {K::silu}),
                   {-0.07194484f, -0.26894142f, -0.10945588f, 0, 0.31122967f, 1.76159416f, 6.99362264f});
    require_values(apply("tanh", {K::tanh}),
                   {-0.99932930f, -0.76159416f, -0.24491866f, 0, 0.46211716f, 0.96402758f, 0.99999834f});
    // NaN stays NaN through the clamping activations, as in PyTorch.
    for (const Activation a : {Activation{K::relu}, Activation{K::clip, 0, 6}, Activation{K::leaky_relu, 0.01f}})
        REQUIRE(std::isnan(run(ActivationLayer("a", a), {1}, {NAN}).data[0]));
}

TEST_CASE("activation attributes are read and checked") {
    // Through the model loader: clip's bounds, leaky_relu's slope, hard_sigmoid's defaults.
    const auto one = [](const nlohmann::json& layer) {
        nlohmann::json doc = {{"format", "gapnet"},
                              {"version", 1},
                              {"input", {{"channels", 1}, {"height", 1}, {"width", 2}, {"color", "none"}}},
                              {"labels", {"a", "b"}},
                              {"layers", {layer, {{"type", "flatten"}}}}};
        return doc.dump();
    };
    const auto output = [&](const nlohmann::json& layer) {
        const LoadedModel m = parse_model(one(layer));
        return m.graph.forward(Tensor({1, 1, 1, 2}, {-3, 3})).data;
    };
    require_values(output({{"type", "clip"}, {"min", -1}}), {-1, 3});
    require_values(output({{"type", "clip"}, {"max", 1}}), {-3, 1});
    require_values(output({{"type", "clip"}, {"min", -2.5}, {"max", 2}}), {-2.5f, 2});
    require_values(output({{"type", "leaky_relu"}}), {-0.03f, 3});  // PyTorch's default slope 0.01
    require_values(output({{"type", "leaky_relu"}, {"negative_slope", 0.5}}), {-1.5f, 3});
    require_values(output({{"type", "hard_sigmoid"}}), {0, 1});  // 0.2 * 3 + 0.5 > 1
    require_values(output({{"type", "hard_sigmoid"}, {"alpha", 0.1}}), {0.2f, 0.8f});
    const auto error = [](const std::string& text) {
        try {
            parse_model(text);
        } catch (const Error& e) {
            return e.message();
        }
        return std::string("(no error)");
    };
    REQUIRE(error(one({{"type", "clip"}, {"min", 2}, {"max", 1}})) == "layers[0].max: is less than min");
    REQUIRE(error(one({{"type", "leaky_relu"}, {"negative_slope", "x"}})) ==
            "layers[0].negative_slope: expected a number, got a string");
    REQUIRE(error(one({{"type", "clip"}, {"min", 1e39}})) == "layers[0].min: is beyond the float32 range");
    REQUIRE(error(one({{"type", "relu6"}, {"max", 5}})) ==
            "layers[0].max: unknown key for relu6 (a typo? see docs/model-format.md)");
}

namespace {

// Runs a multi-input layer on one sample per input.
Tensor run_many(const Layer& layer, const Shapes& shapes, const std::vector<std::vector<float>>& values) {
    std::vector<Tensor> inputs;
    Inputs pointers;
    for (size_t i = 0; i < shapes.size(); ++i) inputs.emplace_back(batched(1, shapes[i]), values[i]);
    for (const Tensor& t : inputs) pointers.push_back(&t);
    const Shape out = layer.output_shape(shapes);
    Tensor output(batched(1, out));
    ThreadPool serial(1);
    layer.forward(pointers, output, serial);
    output.shape = out;
    return output;
}

}  // namespace

TEST_CASE("add, concat and multiply: hand-computed values and shape checks") {
    const Add add;
    require_values(
        run_many(add, {{2, 1, 2}, {2, 1, 2}, {2, 1, 2}}, {{1, 2, 3, 4}, {10, 20, 30, 40}, {-1, -1, 0, 0.5f}}).data,
        {10, 21, 33, 44.5f});
    REQUIRE(add.macs({{4}, {4}}) == 0);
    REQUIRE_THROWS_WITH(add.output_shape({{2, 3, 3}, {2, 3, 3}, {3, 3, 3}}),
                        "shape [3,3,3] differs from inputs[0]'s [2,3,3] (add needs inputs of one shape)");
    REQUIRE(add.min_inputs() == 2);

    const Concat concat;
    const Tensor joined = run_many(concat, {{1, 2, 2}, {2, 2, 2}}, {{1, 2, 3, 4}, {5, 6, 7, 8, 9, 10, 11, 12}});
    REQUIRE(joined.shape == Shape{3, 2, 2});
    require_values(joined.data, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    require_values(run_many(concat, {{2}, {1}, {3}}, {{1, 2}, {3}, {4, 5, 6}}).data, {1, 2, 3, 4, 5, 6});
    REQUIRE_THROWS_WITH(concat.output_shape({{1, 2, 2}, {1, 2, 3}}),
                        "shape [1,2,3] does not fit inputs[0]'s [1,2,2] (concat joins feature maps of one height and "
                        "width along channels)");
    REQUIRE_THROWS_AS(concat.output_shape({{4}, {1, 2, 2}}), Error);

    // A feature map [2,1,2] times a per-channel gate [2] (either order), and two equal maps.
    const Multiply multiply;
    require_values(run_many(multiply, {{2, 1, 2}, {2}}, {{1, 2, 3, 4}, {0.5f, -2}}).data, {0.5f, 1, -6, -8});
    require_values(run_many(multiply, {{2}, {2, 1, 2}}, {{0.5f, -2}, {1, 2, 3, 4}}).data, {0.5f, 1, -6, -8});
    require_values(run_many(multiply, {{2, 1, 2}, {2, 1, 2}}, {{1, 2, 3, 4}, {2, 2, -1, 0}}).data, {2, 4, -3, 0});
    require_values(run_many(multiply, {{3}, {3}}, {{1, 2, 3}, {4, 5, 6}}).data, {4, 10, 18});
    REQUIRE(multiply.output_shape({{2}, {2, 5, 5}}) == Shape{2, 5, 5});
    REQUIRE_THROWS_WITH(multiply.output_shape({{2, 5, 5}, {3}}),
                        "shape [3] fits neither the output [2,5,5] nor its channels [2] (multiply needs equal shapes, "
                        "or a per-channel vector and a feature map)");
    REQUIRE_THROWS_AS(multiply.output_shape({{2, 5, 5}, {2, 5, 4}}), Error);
}
