// The blocked layout through a whole graph (Graph::fuse's plan_layouts): which steps run blocked,
// where maps are reordered, and that the result equals the plain layers run one by one
// (forward_all: no fusion, no blocking) within 1e-5, and the same graph with blocking off, for a
// batch of one and a batch run in groups, bit-identical on 1, 2 and 3 threads.
#include <cmath>
#include <memory>
#include <random>

#include "engine/graph.h"
#include "engine/kernels/conv2d_choice.h"
#include "engine/layers/activation.h"
#include "engine/layers/add.h"
#include "engine/layers/avg_pool2d.h"
#include "engine/layers/batch_norm2d.h"
#include "engine/layers/concat.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/dense.h"
#include "engine/layers/flatten.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/max_pool2d.h"
#include "engine/layers/multiply.h"
#include "engine/layers/softmax.h"
#include "graph_helpers.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::forward;
using gapnet::test::random_values;
using gapnet::test::step_of;

namespace {

std::unique_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, std::mt19937& rng,
                             int64_t groups = 1) {
    Conv2d::Params p;
    p.in_channels = in, p.out_channels = out, p.groups = groups;
    p.window.kernel_h = p.window.kernel_w = k;
    p.window.stride_h = p.window.stride_w = stride;
    p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = pad;
    const float scale = std::sqrt(3.0f / static_cast<float>(in / groups * k * k));
    return std::make_unique<Conv2d>(p, random_values(static_cast<size_t>(out * in / groups * k * k), rng, scale),
                                    random_values(static_cast<size_t>(out), rng, 0.1f));
}

Window2d window(int64_t k, int64_t stride, int64_t pad) {
    Window2d w;
    w.kernel_h = w.kernel_w = k;
    w.stride_h = w.stride_w = stride;
    w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = pad;
    return w;
}

std::unique_ptr<Layer> activation(Activation::Kind kind, float a = 0.0f, float b = 0.0f) {
    return std::make_unique<ActivationLayer>("activation", Activation{kind, a, b});
}

std::unique_ptr<Dense> dense(int64_t in, int64_t out, std::mt19937& rng) {
    return std::make_unique<Dense>(in, out, random_values(static_cast<size_t>(in * out), rng, 1.0f / std::sqrt(in)),
                                   random_values(static_cast<size_t>(out), rng, 0.1f));
}

// What the blocked path meets in ResNet, MobileNetV2, EfficientNet and SqueezeNet: an image's 3
// channels read plain, batch norm and activations fused, max pooling, a residual add fused into a
// convolution, depthwise convolutions at strides 1 and 2, a squeeze-and-excitation gate (global
// pooling, two dense layers, a multiply), concats that keep blocks (32 + 17) and that cannot
// (17 + 32), channel counts that are not multiples of 16, average pooling, then a dense head.
Graph mixed_network(std::mt19937& rng) {
    using K = Activation::Kind;
    Graph g({3, 23, 21});
    g.add("stem", conv(3, 20, 3, 2, 1, rng));
    g.add("stem_bn", std::make_unique<BatchNorm2d>(20, 1e-5, random_values(20, rng), random_values(20, rng, 0.1f),
                                                   random_values(20, rng, 0.1f), std::vector<float>(20, 1.5f)));
    g.add("stem_relu", activation(K::relu));
    g.add("pool", std::make_unique<MaxPool2d>(window(3, 2, 1)));
    g.add("a", conv(20, 20, 3, 1, 1, rng));
    g.add("a_relu", activation(K::relu));
    g.add("b", conv(20, 20, 3, 1, 1, rng));
    g.add("residual", std::make_unique<Add>(), {"b", "pool"});
    g.add("residual_relu", activation(K::relu));
    g.add("dw", conv(20, 20, 3, 2, 1, rng, 20));
    g.add("dw_relu6", activation(K::clip, 0.0f, 6.0f));
    g.add("pw", conv(20, 40, 1, 1, 0, rng));
    g.add("dw5", conv(40, 40, 5, 1, 2, rng, 40));
    g.add("dw5_silu", activation(K::silu));
    g.add("se_pool", std::make_unique<GlobalAvgPool2d>());
    g.add("se_reduce", dense(40, 10, rng));
    g.add("se_relu", activation(K::relu));
    g.add("se_expand", dense(10, 40, rng));
    g.add("se_gate", activation(K::sigmoid));
    g.add("se", std::make_unique<Multiply>(), {"dw5_silu", "se_gate"});
    g.add("left", conv(40, 32, 1, 1, 0, rng));
    g.add("right", conv(40, 17, 3, 1, 1, rng), {"se"});
    g.add("joined", std::make_unique<Concat>(), {"left", "right"});
    g.add("unaligned", std::make_unique<Concat>(), {"right", "left"});
    g.add("mix", conv(49, 24, 1, 1, 0, rng), {"unaligned"});
    g.add("mix2", conv(49, 24, 1, 1, 0, rng), {"joined"});
    g.add("sum", std::make_unique<Add>(), {"mix2", "mix"});
    g.add("mix_tanh", activation(K::tanh));
    g.add("avg", std::make_unique<AvgPool2d>(window(2, 2, 0), false));
    g.add("head_in", std::make_unique<Flatten>());
    g.add("fc", dense(24, 7, rng));  // the map is 1 x 1 by then
    g.add("probabilities", std::make_unique<Softmax>());
    return g;
}

}  // namespace

TEST_CASE("the blocked plan: which steps block, which maps are reordered", "[blocked_graph]") {
    std::mt19937 rng(5);
    Graph g = mixed_network(rng);
    g.fuse();
    // The first convolution reads the image's 3 channels plain and writes blocks.
    CHECK(step_of(g, "stem").blocked);
    CHECK(step_of(g, "stem").reorder == std::vector<bool>{false});
    CHECK(step_of(g, "stem_relu").first == step_of(g, "stem").first);  // batch norm and relu fused in
    // The residual add is fused into b's step, its other operand read blocked as stored.
    CHECK(step_of(g, "residual_relu").first == g.find("b"));
    CHECK(step_of(g, "residual").blocked);
    CHECK(step_of(g, "pool").blocked);  // pooling follows its input's layout
    CHECK(step_of(g, "dw").blocked);
    CHECK(step_of(g, "se_pool").blocked);  // a blocked map in, a plain vector out
    CHECK_FALSE(step_of(g, "se_reduce").blocked);
    CHECK(step_of(g, "se").blocked);
    CHECK(step_of(g, "se").reorder == std::vector<bool>{false, false});  // a map and a vector
    CHECK(step_of(g, "joined").blocked);
    // 17 + 32 channels cannot be joined block by block: plain, both inputs reordered.
    CHECK_FALSE(step_of(g, "unaligned").blocked);
    CHECK(step_of(g, "unaligned").reorder == std::vector<bool>{true, true});
    CHECK(step_of(g, "mix").blocked);
    CHECK(step_of(g, "mix").reorder == std::vector<bool>{true});
    CHECK(step_of(g, "mix_tanh").first == g.find("mix2"));  // conv + add + tanh, one blocked step
    CHECK(step_of(g, "mix_tanh").blocked);
    // Flatten reads the map plain; the vectors after it are never blocked.
    CHECK(step_of(g, "avg").blocked);
    CHECK(step_of(g, "head_in").reorder == std::vector<bool>{true});
    CHECK_FALSE(step_of(g, "fc").blocked);

    g.set_blocking(false);
    for (const Graph::Step& step : g.steps()) {
        CHECK_FALSE(step.blocked);
        CHECK(step.reorder == std::vector<bool>(step.inputs.size(), false));
    }
}

TEST_CASE("a blocked graph equals the plain layers one by one, on any thread count", "[blocked_graph]") {
    std::mt19937 rng(7);
    Graph g = mixed_network(rng);
    g.fuse();
    for (const int64_t batch : {1, 5, 40}) {
        const Shape shape = batched(batch, g.input_shape());
        const Tensor input(shape, random_values(static_cast<size_t>(element_count(shape)), rng));
        INFO("batch " << batch);
        gapnet::test::check_against_plain_layers(g, input);
    }
}

TEST_CASE("large 3x3 layers of many channels stay plain, for Winograd", "[blocked_graph]") {
    const auto params = [](int64_t in, int64_t out, int64_t k, int64_t stride) {
        ConvParams p;
        p.in_channels = in, p.out_channels = out;
        p.window.kernel_h = p.window.kernel_w = k;
        p.window.stride_h = p.window.stride_w = stride;
        p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = k / 2;
        return p;
    };
    // VGG-11's layers at 112 x 112 to 28 x 28 (conv2d_choice.cpp: Winograd ran them 1.2-1.5x faster).
    CHECK_FALSE(conv_runs_blocked(params(64, 128, 3, 1), 112, 112, std::nullopt));
    CHECK_FALSE(conv_runs_blocked(params(128, 256, 3, 1), 56, 56, std::nullopt));
    CHECK_FALSE(conv_runs_blocked(params(512, 512, 3, 1), 28, 28, std::nullopt));
    // 14 x 14, ResNet-18's 64 and 128 channels, stride 2, 1x1: blocked.
    CHECK(conv_runs_blocked(params(512, 512, 3, 1), 14, 14, std::nullopt));
    CHECK(conv_runs_blocked(params(64, 64, 3, 1), 56, 56, std::nullopt));
    CHECK(conv_runs_blocked(params(128, 128, 3, 1), 28, 28, std::nullopt));
    CHECK(conv_runs_blocked(params(128, 256, 3, 2), 56, 56, std::nullopt));
    CHECK(conv_runs_blocked(params(128, 256, 1, 1), 56, 56, std::nullopt));
    // A preference decides alone.
    CHECK(conv_runs_blocked(params(128, 256, 3, 1), 56, 56, ConvKernel::blocked));
    CHECK_FALSE(conv_runs_blocked(params(64, 64, 3, 1), 56, 56, ConvKernel::gemm));
}

TEST_CASE("a graph ending on a blocked map returns it plain", "[blocked_graph]") {
    std::mt19937 rng(9);
    Graph g({16, 9, 11});
    g.add("c", conv(16, 21, 3, 1, 1, rng));
    g.add("r", activation(Activation::Kind::relu));
    g.fuse();
    REQUIRE(g.steps().back().blocked);
    const Tensor input({2, 16, 9, 11}, random_values(2 * 16 * 9 * 11, rng));
    ThreadPool serial(1);
    const Tensor reference = g.forward_all(input, serial).back();
    const Tensor out = forward(g, input, 2);
    REQUIRE(out.shape == Shape{2, 21, 9, 11});
    gapnet::test::require_values(out.data, reference.data, 1e-5);
}
