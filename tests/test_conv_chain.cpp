// The convolution chains Graph::fuse makes (layers/conv_chain.h): which layers join one, and that a
// chain run band by band gives the bits of its convolutions run one by one on blocked maps (the
// same kernels, whole maps), for any thread count and batch, within 1e-5 of the plain layers, and
// with blocking off the plain layers' results.
#include <cmath>
#include <memory>
#include <random>

#include "engine/graph.h"
#include "engine/kernels/blocked.h"
#include "engine/layers/activation.h"
#include "engine/layers/add.h"
#include "engine/layers/batch_norm2d.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/conv_chain.h"
#include "engine/layers/dense.h"
#include "engine/layers/global_avg_pool2d.h"
#include "engine/layers/softmax.h"
#include "graph_helpers.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::forward;
using gapnet::test::random_values;
using gapnet::test::step_of;

namespace {

std::unique_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, std::mt19937& rng,
                             int64_t groups = 1) {
    Conv2d::Params p;
    p.in_channels = in, p.out_channels = out, p.groups = groups;
    p.window.kernel_h = p.window.kernel_w = k;
    p.window.stride_h = p.window.stride_w = stride;
    p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = k / 2;
    const float scale = std::sqrt(3.0f / static_cast<float>(in / groups * k * k));
    return std::make_unique<Conv2d>(p, random_values(static_cast<size_t>(out * in / groups * k * k), rng, scale),
                                    random_values(static_cast<size_t>(out), rng, 0.1f));
}

std::unique_ptr<BatchNorm2d> batch_norm(int64_t channels, std::mt19937& rng) {
    const auto n = static_cast<size_t>(channels);
    return std::make_unique<BatchNorm2d>(channels, 1e-5, random_values(n, rng), random_values(n, rng, 0.1f),
                                         random_values(n, rng, 0.1f), std::vector<float>(n, 1.5f));
}

std::unique_ptr<Layer> activation(Activation::Kind kind, float a = 0.0f, float b = 0.0f) {
    return std::make_unique<ActivationLayer>("activation", Activation{kind, a, b});
}

// MobileNetV2's and EfficientNet's blocks on a map wide enough for several bands (a band's expanded
// rows are at most 384 KB: 80 channels x 200 pixels is 64 KB a row), channel counts that are not
// multiples of 16: an inverted residual block with its add (24 -> 72 -> 24), one at stride 2 with a
// 5x5 depthwise and SiLU (-> 48 -> 40), a depthwise + projection without expansion (40 -> 20), and an
// expansion + depthwise cut before a global pool (EfficientNet's gate comes there).
Graph chain_network(std::mt19937& rng, int64_t width) {
    using K = Activation::Kind;
    Graph g({24, 23, width});
    g.add("expand", conv(24, 72, 1, 1, rng));
    g.add("expand_bn", batch_norm(72, rng));
    g.add("expand_relu6", activation(K::clip, 0.0f, 6.0f));
    g.add("dw", conv(72, 72, 3, 1, rng, 72));
    g.add("dw_bn", batch_norm(72, rng));
    g.add("dw_relu6", activation(K::clip, 0.0f, 6.0f));
    g.add("project", conv(72, 24, 1, 1, rng));
    g.add("project_bn", batch_norm(24, rng));
    g.add("residual", std::make_unique<Add>(), {"project_bn", "input"});
    g.add("expand2", conv(24, 48, 1, 1, rng));
    g.add("expand2_silu", activation(K::silu));
    g.add("dw2", conv(48, 48, 5, 2, rng, 48));
    g.add("dw2_silu", activation(K::silu));
    g.add("project2", conv(48, 40, 1, 1, rng));
    g.add("dw3", conv(40, 40, 3, 1, rng, 40));
    g.add("dw3_relu", activation(K::relu));
    g.add("project3", conv(40, 20, 1, 1, rng));
    g.add("expand4", conv(20, 36, 1, 1, rng));
    g.add("expand4_relu", activation(K::relu));
    g.add("dw4", conv(36, 36, 3, 2, rng, 36));
    g.add("pool", std::make_unique<GlobalAvgPool2d>());
    g.add("fc", std::make_unique<Dense>(36, 5, random_values(36 * 5, rng, 0.2f), random_values(5, rng, 0.1f)));
    g.add("probabilities", std::make_unique<Softmax>());
    return g;
}

// conv on a blocked map, whole, as an unfused step runs it.
Tensor run_blocked(const Conv2d& conv, const Tensor& x, const float* residual, const Activation& activation) {
    const Shape s = conv.output_shape(Shape{conv.params().in_channels, x.shape[2], x.shape[3]});
    Tensor y(blocked_shape(x.shape[0], s[0], s[1], s[2]));
    ThreadPool serial(1);
    conv.forward_blocked(x, residual, activation, y, serial);
    return y;
}

}  // namespace

TEST_CASE("a depthwise convolution chains with the 1x1 convolutions around it", "[conv_chain]") {
    std::mt19937 rng(3);
    Graph g = chain_network(rng, 33);
    g.fuse();
    const auto chain = [&](const std::string& node) { return dynamic_cast<const ConvChain*>(step_of(g, node).layer); };
    // expand + its batch norm and relu6, the depthwise + its batch norm and relu6, the projection +
    // its batch norm, the add: one step.
    REQUIRE(chain("expand"));
    CHECK(step_of(g, "expand").first == g.find("expand"));
    CHECK(step_of(g, "residual").last == g.find("residual"));
    CHECK(step_of(g, "expand").inputs == std::vector<int>{-1, -1});  // the input, and the input added
    CHECK(chain("expand")->expand());
    CHECK(chain("expand")->project());
    REQUIRE(chain("expand2"));
    CHECK(step_of(g, "project2").first == g.find("expand2"));
    REQUIRE(chain("dw3"));  // no expansion
    CHECK_FALSE(chain("dw3")->expand());
    CHECK(step_of(g, "project3").first == g.find("dw3"));
    REQUIRE(chain("expand4"));  // no projection: the global pool is a step of its own
    CHECK(step_of(g, "dw4").first == g.find("expand4"));
    CHECK_FALSE(chain("expand4")->project());
    CHECK(step_of(g, "pool").first == g.find("pool"));
    for (const std::string node : {"expand", "expand2", "dw3", "expand4"}) CHECK(step_of(g, node).blocked);
}

TEST_CASE("a chain gives the bits of its convolutions run one by one, on any thread count", "[conv_chain]") {
    std::mt19937 rng(11);
    for (const int64_t width : {200, 7}) {  // several bands a span; a narrow map
        Graph g = chain_network(rng, width);
        g.fuse();
        for (const int64_t batch : {1, 3}) {
            // The first chain alone: its output is the graph's node "residual". (A chain is a step's
            // layer: looked up again after check_against_plain_layers, which fuses the graph anew.)
            const auto* chain = dynamic_cast<const ConvChain*>(step_of(g, "expand").layer);
            REQUIRE(chain);
            const Shape shape = batched(batch, g.input_shape());
            const Tensor input(shape, random_values(static_cast<size_t>(element_count(shape)), rng));
            ThreadPool serial(1);
            Tensor x(blocked_shape(batch, 24, 23, width));
            to_blocked(input, x, serial);
            const Tensor expanded = run_blocked(*chain->expand(), x, nullptr, chain->expand()->activation());
            const Tensor dw = run_blocked(chain->depthwise(), expanded, nullptr, chain->depthwise().activation());
            const Tensor one_by_one = run_blocked(*chain->project(), dw, x.ptr(), Activation{});
            for (const int threads : {1, 2, 3}) {
                Tensor chained(one_by_one.shape);
                ThreadPool pool(threads);
                chain->forward({&x, &x}, chained, pool);
                INFO("width " << width << ", batch " << batch << ", " << threads << " threads");
                CHECK(chained.data == one_by_one.data);
            }
            gapnet::test::check_against_plain_layers(g, input);  // the whole network
        }
    }
}
