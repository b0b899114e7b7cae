// Graphs whose nodes read several earlier nodes: the model format's "inputs", the checks at load
// (located at layers[i].inputs[k]), fusion of residual blocks, thread-count independence, the
// heads cam and summary recognise on graphs, and the convolution kernel as a setting of each graph.
#include <nlohmann/json.hpp>
#include <random>

#include "engine/activation_arena.h"
#include "engine/cam.h"
#include "engine/error.h"
#include "engine/io/model_json.h"
#include "engine/layers/activation.h"
#include "engine/layers/add.h"
#include "helpers.h"

using namespace gapnet;
using json = nlohmann::json;
using gapnet::test::random_values;

namespace {

json tensor(const Shape& shape, std::mt19937& rng, float scale = 0.5f) {
    return {{"shape", shape}, {"data", random_values(static_cast<size_t>(element_count(shape)), rng, scale)}};
}

json conv(const std::string& name, int64_t in, int64_t out, int64_t k, std::mt19937& rng) {
    return {{"type", "conv2d"},
            {"name", name},
            {"in_channels", in},
            {"out_channels", out},
            {"kernel_size", k},
            {"padding", k / 2},
            {"weight", tensor({out, in, k, k}, rng)},
            {"bias", tensor({out}, rng, 0.1f)}};
}

// 3x8x8 -> stem conv, relu -> residual block (conv, bn, add stem, relu) -> SE gate (gap, dense, relu,
// dense, hard_sigmoid, multiply) -> concat with a 1x1 branch of the stem -> conv 1x1 to 4 classes,
// silu -> gap -> softmax: every new layer, and an all-convolutional head.
json graph_model(std::mt19937& rng) {
    json layers = json::array({conv("stem", 3, 6, 3, rng),
                               {{"type", "relu"}, {"name", "stem_relu"}},
                               conv("c1", 6, 6, 3, rng),
                               {{"type", "batch_norm2d"},
                                {"name", "bn1"},
                                {"num_features", 6},
                                {"running_mean", tensor({6}, rng, 0.1f)},
                                {"running_var", {{"shape", {6}}, {"data", std::vector<float>(6, 0.8f)}}}},
                               {{"type", "add"}, {"name", "res"}, {"inputs", {"bn1", "stem_relu"}}},
                               {{"type", "relu6"}, {"name", "res_act"}},
                               {{"type", "global_avg_pool2d"}, {"name", "se_pool"}},
                               {{"type", "dense"},
                                {"name", "se_fc1"},
                                {"in_features", 6},
                                {"out_features", 3},
                                {"weight", tensor({3, 6}, rng)}},
                               {{"type", "relu"}, {"name", "se_relu"}},
                               {{"type", "dense"},
                                {"name", "se_fc2"},
                                {"in_features", 3},
                                {"out_features", 6},
                                {"weight", tensor({6, 3}, rng)},
                                {"bias", tensor({6}, rng)}},
                               {{"type", "hard_sigmoid"}, {"name", "se_gate"}, {"alpha", 1.0 / 6}, {"beta", 0.5}},
                               {{"type", "multiply"}, {"name", "se"}, {"inputs", {"res_act", "se_gate"}}},
                               conv("branch", 6, 2, 1, rng),
                               {{"type", "tanh"}, {"name", "branch_act"}},
                               {{"type", "concat"}, {"name", "cat"}, {"inputs", {"se", "branch_act"}}},
                               conv("classes", 8, 4, 1, rng),
                               {{"type", "silu"}, {"name", "classes_act"}},
                               {{"type", "global_avg_pool2d"}, {"name", "gap"}},
                               {{"type", "softmax"}, {"name", "probabilities"}}});
    layers[12]["input"] = "stem_relu";  // the branch reads the stem, not the layer before it
    return {{"format", "gapnet"},
            {"version", 1},
            {"name", "graph"},
            {"input", {{"channels", 3}, {"height", 8}, {"width", 8}, {"color", "rgb"}}},
            {"labels", {"a", "b", "c", "d"}},
            {"layers", layers}};
}

std::string error_of(const json& doc) {
    try {
        parse_model(doc.dump());
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

Tensor random_batch(const Shape& sample, int64_t n, std::mt19937& rng) {
    const Shape shape = batched(n, sample);
    return Tensor(shape, random_values(static_cast<size_t>(element_count(shape)), rng));
}

}  // namespace

TEST_CASE("a graph model loads: inputs by name, shapes inferred, head marked") {
    std::mt19937 rng(1);
    const LoadedModel model = parse_model(graph_model(rng).dump());
    const Graph& g = model.graph;
    REQUIRE(g.nodes().size() == 19);
    REQUIRE(g.nodes()[4].inputs == std::vector<int>{3, 1});    // res: bn1 + stem_relu
    REQUIRE(g.nodes()[11].inputs == std::vector<int>{5, 10});  // se: res_act x se_gate
    REQUIRE(g.nodes()[12].inputs == std::vector<int>{1});      // branch reads stem_relu
    REQUIRE(g.nodes()[14].output_shape == Shape{8, 8, 8});     // concat: 6 + 2 channels
    REQUIRE(g.head_start() == 17);                             // from the last global pool (not the SE pool)
    REQUIRE(g.macs() == 8 * 8 * 6 * 27 + 8 * 8 * 6 * 54 + 6 * 64 + 18 + 18 + 8 * 8 * 2 * 6 + 8 * 8 * 4 * 8);
    const CamHead head = find_cam_head(g);
    REQUIRE(head.dense == nullptr);
    REQUIRE(head.classifier == 15);
    REQUIRE(head.features == 16);
}

TEST_CASE("fusion: conv+bn+add+relu6 and dense+relu run as single steps, bit for bit as the nodes one by one") {
    std::mt19937 rng(2);
    const LoadedModel model = parse_model(graph_model(rng).dump());
    const Graph& g = model.graph;
    std::vector<std::string> steps;
    for (const Graph::Step& s : g.steps()) steps.push_back(g.nodes()[s.first].name + ".." + g.nodes()[s.last].name);
    REQUIRE(steps == std::vector<std::string>{"stem..stem_relu", "c1..res_act", "se_pool..se_pool", "se_fc1..se_relu",
                                              "se_fc2..se_gate", "se..se", "branch..branch_act", "cat..cat",
                                              "classes..classes_act", "gap..gap", "probabilities..probabilities"});
    REQUIRE(g.steps()[1].inputs == std::vector<int>{1, 1});  // c1 reads stem_relu, the add reads it again
    // The batch norm is folded into c1's weights (rounding may differ there), so the fused graph is
    // compared with the unfused one within the parity tolerance, and exactly where no batch norm folds.
    const Tensor x = random_batch({3, 8, 8}, 3, rng);
    const std::vector<Tensor> all = g.forward_all(x);
    const Tensor fused = g.forward(x);
    REQUIRE(fused.shape == Shape{3, 4});
    for (size_t i = 0; i < fused.data.size(); ++i) REQUIRE(fused.data[i] == Approx(all.back().data[i]).margin(1e-6));
}

TEST_CASE("a graph gives bit-identical results on 1, 2 and 3 threads, batch 1 and 5") {
    std::mt19937 rng(3);
    // Wider maps, so that every layer's work is split between threads.
    json doc = graph_model(rng);
    doc["input"]["height"] = doc["input"]["width"] = 40;
    const LoadedModel model = parse_model(doc.dump());
    for (const int64_t n : {1, 5}) {
        const Tensor x = random_batch({3, 40, 40}, n, rng);
        ThreadPool one(1), two(2), three(3);
        const Tensor reference = model.graph.forward(x, one);
        REQUIRE(model.graph.forward(x, two).data == reference.data);
        REQUIRE(model.graph.forward(x, three).data == reference.data);
        const std::vector<Tensor> all_one = model.graph.forward_all(x, one),
                                  all_three = model.graph.forward_all(x, three);
        for (size_t i = 0; i < all_one.size(); ++i) REQUIRE(all_one[i].data == all_three[i].data);
    }
}

TEST_CASE("a batch of many groups: the flatten + dense head runs over the whole batch, as each image alone") {
    // fashion_flatten: convolutions and pools in groups of images, then flatten -> dense+relu ->
    // dense -> softmax over all 40 images at once (dense's GEMM panels of 32 samples: one full, one
    // partial). Each image's probabilities are those of the image run alone, within rounding (the
    // batch's dense layer sums in another order), and the same bit for bit on any thread count.
    const LoadedModel model = load_model(gapnet::test::source_path("models/fashion_flatten.json"));
    const Graph& g = model.graph;
    std::mt19937 rng(8);
    const int64_t n = 40;
    const Tensor x = random_batch({1, 28, 28}, n, rng);
    ThreadPool one(1), two(2);
    const Tensor batch = g.forward(x, one);
    REQUIRE(g.forward(x, two).data == batch.data);
    for (int64_t i = 0; i < n; ++i) {
        const Tensor single({1, 1, 28, 28},
                            std::vector<float>(x.data.begin() + i * 784, x.data.begin() + (i + 1) * 784));
        const Tensor alone = g.forward(single, one);
        for (int64_t c = 0; c < 10; ++c) REQUIRE(batch.data[i * 10 + c] == Approx(alone.data[c]).margin(1e-6));
    }
}

TEST_CASE("graph checks at load, located at the layer and input") {
    std::mt19937 rng(4);
    json doc = graph_model(rng);
    doc["layers"][4]["inputs"][1] = "nope";
    REQUIRE(error_of(doc) == "layers[4].inputs[1]: no earlier layer is named 'nope'");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"][1] = "se";  // a later layer
    REQUIRE(error_of(doc) == "layers[4].inputs[1]: no earlier layer is named 'se'");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"][1] = "res";  // itself
    REQUIRE(error_of(doc) == "layers[4].inputs[1]: 'res' cannot read its own output");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"] = json::array();
    REQUIRE(error_of(doc) == "layers[4].inputs: expected an array of 1 to 64 layer names");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"] = {"bn1"};
    REQUIRE(error_of(doc) == "layers[4].inputs: add reads 2 or more inputs, got 1");
    doc = graph_model(rng);
    doc["layers"][4]["input"] = "bn1";
    REQUIRE(error_of(doc) == "layers[4].inputs: give \"input\" or \"inputs\", not both");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"][1] = "input";  // 3x8x8 + 6x8x8
    REQUIRE(error_of(doc) ==
            "layers[4].inputs[1]: shape [3,8,8] differs from inputs[0]'s [6,8,8] (add needs inputs of "
            "one shape)");
    doc = graph_model(rng);
    doc["layers"][14]["inputs"][1] = "se_pool";  // a vector next to a feature map
    REQUIRE(error_of(doc).rfind("layers[14].inputs[1]: shape [6] does not fit inputs[0]'s [6,8,8]", 0) == 0);
    doc = graph_model(rng);
    doc["layers"][11]["inputs"][1] = "se_fc1";  // 3 values for 6 channels
    REQUIRE(error_of(doc).rfind("layers[11].inputs[1]: shape [3] fits neither the output [6,8,8]", 0) == 0);
    doc = graph_model(rng);
    doc["layers"][2]["inputs"] = {"stem_relu", "stem"};  // two inputs to a conv
    REQUIRE(error_of(doc) == "layers[2].inputs: conv2d reads 1 input, got 2");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"] = std::vector<std::string>(65, "bn1");
    REQUIRE(error_of(doc) == "layers[4].inputs: expected an array of 1 to 64 layer names");
    doc = graph_model(rng);
    doc["layers"][4]["inputs"][0] = 3;
    REQUIRE(error_of(doc) == "layers[4].inputs[0]: expected a string, got a number");
}

TEST_CASE("a branch the output does not depend on loads and is not run by forward") {
    std::mt19937 rng(5);
    json doc = graph_model(rng);
    // A dead end: a max pool of the stem that nothing reads.
    doc["layers"].insert(doc["layers"].begin() + 2, json::object({{"type", "max_pool2d"}, {"name", "unused"}}));
    doc["layers"][3]["input"] = "stem_relu";
    const LoadedModel model = parse_model(doc.dump());
    for (const Graph::Step& s : model.graph.steps()) REQUIRE(model.graph.nodes()[s.first].name != "unused");
    const Tensor x = random_batch({3, 8, 8}, 1, rng);
    REQUIRE(model.graph.forward_all(x)[2].shape == Shape{1, 6, 4, 4});  // forward_all still computes it
    // A node added after fuse() may read it: the graph runs every node again.
    Graph g = parse_model(doc.dump()).graph;
    g.add("reads_unused", std::make_unique<ActivationLayer>(relu_layer()), {"unused"});
    REQUIRE(g.forward(x).shape == Shape{1, 6, 4, 4});
}

TEST_CASE("cam on a graph: the all-convolutional head's map is its class channel, a GAP-dense head reads the add") {
    std::mt19937 rng(6);
    const LoadedModel model = parse_model(graph_model(rng).dump());
    const Tensor x = random_batch({3, 8, 8}, 2, rng);
    const std::vector<Tensor> all = model.graph.forward_all(x);
    const CamHead head = find_cam_head(model.graph);
    for (int64_t c = 0; c < 4; ++c) {
        const Tensor map = class_activation_map(model.graph, head, all, 1, c);
        // The map's mean is the pooled class score (the softmax's input).
        double mean = 0;
        for (float v : map.data) mean += v;
        REQUIRE(mean / 64 == Approx(all[17].data[4 + c]).margin(1e-6));
        REQUIRE(map.data[9] == all[16].data[(4 + c) * 64 + 9]);
    }
    // A GAP -> dense head after a residual add and relu.
    json doc = graph_model(rng);
    json& layers = doc["layers"];  // the head from "classes" on, replaced
    layers.erase(layers.begin() + 15, layers.end());
    layers.push_back({{"type", "add"}, {"name", "res2"}, {"inputs", {"cat", "cat"}}});
    layers.push_back({{"type", "relu"}, {"name", "res2_relu"}});
    layers.push_back({{"type", "global_avg_pool2d"}, {"name", "gap"}});
    layers.push_back({{"type", "dense"},
                      {"name", "fc"},
                      {"in_features", 8},
                      {"out_features", 4},
                      {"weight", tensor({4, 8}, rng)},
                      {"bias", tensor({4}, rng)}});
    layers.push_back({{"type", "softmax"}});
    const LoadedModel dense_model = parse_model(doc.dump());
    const CamHead dense_head = find_cam_head(dense_model.graph);
    REQUIRE(dense_head.dense != nullptr);
    REQUIRE(dense_model.graph.nodes()[dense_head.features].name == "res2_relu");
}

namespace {

// The kernel each convolution of `g` runs at batch 1, a fused one's included, in step order.
std::vector<Conv2d::Algorithm> step_kernels(const Graph& g) {
    std::vector<Conv2d::Algorithm> kernels;
    for (const Graph::Step& s : g.steps()) {
        const Layer* layer = s.layer;
        if (const auto* fused = dynamic_cast<const FusedAdd*>(layer)) layer = &fused->producer();
        if (const auto* conv = dynamic_cast<const Conv2d*>(layer))
            kernels.push_back(conv->algorithm(g.shape_of(s.inputs[0])));
    }
    return kernels;
}

}  // namespace

TEST_CASE("the convolution kernel is a setting of each graph: one forced to GEMM and another automatic") {
    std::mt19937 rng(7);
    const json doc = graph_model(rng);
    LoadedModel forced = parse_model(doc.dump()), automatic = parse_model(doc.dump());
    using A = Conv2d::Algorithm;
    const std::vector<A> automatic_kernels = step_kernels(automatic.graph);
    REQUIRE(automatic_kernels.front() == A::direct);  // the 3x3 stem on 8x8, left to itself

    forced.graph.set_conv_algorithm(A::gemm);
    REQUIRE(forced.graph.conv_algorithm() == A::gemm);
    // Every convolution, those fused with a batch norm, an add or an activation too.
    REQUIRE(step_kernels(forced.graph) == std::vector<A>(automatic_kernels.size(), A::gemm));
    REQUIRE(step_kernels(automatic.graph) == automatic_kernels);
    REQUIRE_FALSE(automatic.graph.conv_algorithm());

    const Tensor x = random_batch({3, 8, 8}, 2, rng);
    const Tensor a = forced.graph.forward(x), b = automatic.graph.forward(x);
    gapnet::test::require_values(a.data, b.data, 1e-5);

    forced.graph.set_conv_algorithm(std::nullopt);  // back to each layer's own choice
    REQUIRE(step_kernels(forced.graph) == automatic_kernels);
}

TEST_CASE("a forced kernel whose scratch exceeds the limits is refused at its layer and the graph is unchanged") {
    // A depthwise 3x3 convolution of 8 channels on 8x8 needs no scratch; GEMM's im2col does (a
    // padded 10x10 channel and 9 taps x 64 pixels), more than the 512 values allowed here.
    Conv2d::Params p;
    p.in_channels = p.out_channels = p.groups = 8;
    p.window.kernel_h = p.window.kernel_w = 3;
    p.window.pad_top = p.window.pad_left = p.window.pad_bottom = p.window.pad_right = 1;
    Limits limits;
    limits.max_activation_elements = 512;
    Graph g({8, 8, 8}, limits);
    g.add("dw", std::make_unique<Conv2d>(p, std::vector<float>(72, 0.1f), std::vector<float>{}));
    try {
        g.set_conv_algorithm(Conv2d::Algorithm::gemm);
        FAIL("no error");
    } catch (const Error& e) {
        REQUIRE(e.where() == "dw");
        REQUIRE_THAT(e.what(), Catch::Contains("scratch buffer") && Catch::Contains("max_activation_elements"));
    }
    REQUIRE_FALSE(g.conv_algorithm());
    const auto& conv = dynamic_cast<const Conv2d&>(*g.nodes()[0].layer);
    REQUIRE_FALSE(conv.preferred());
    REQUIRE(conv.algorithm({8, 8, 8}) == Conv2d::Algorithm::depthwise);
}

TEST_CASE("the arena plan: largest first, each value in the first slot free over its lifetime") {
    // a 10 floats, steps 0-1; b 6, 1-2; c 8, 2-3; d 3, 3. a -> slot 0; c -> slot 0 (after a);
    // b meets a at step 1 -> slot 1; d meets c at step 3 -> slot 1 (after b).
    const ArenaPlan plan = plan_arena({{10, 0, 1}, {6, 1, 2}, {8, 2, 3}, {3, 3, 3}});
    REQUIRE(plan.slot_of == std::vector<int>{0, 1, 0, 1});
    REQUIRE(plan.slot_floats == std::vector<int64_t>{10, 6});
    REQUIRE(plan.floats_per_image() == 16);

    // Random lifetimes: values sharing a slot never live at one step, a slot holds its largest, and
    // the slots hold at least the most that is alive at any one step.
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        std::vector<Lifetime> values(1 + rng() % 30);
        for (Lifetime& v : values) {
            v.floats = 1 + static_cast<int64_t>(rng() % 100);
            v.first = rng() % 20;
            v.last = v.first + rng() % 5;
        }
        const ArenaPlan p = plan_arena(values);
        std::vector<int64_t> largest(p.slot_floats.size(), 0), alive(25, 0);
        for (size_t a = 0; a < values.size(); ++a) {
            const auto slot = static_cast<size_t>(p.slot_of[a]);
            largest[slot] = std::max(largest[slot], values[a].floats);
            for (size_t s = values[a].first; s <= values[a].last; ++s) alive[s] += values[a].floats;
            for (size_t b = 0; b < a; ++b)
                if (p.slot_of[b] == p.slot_of[a])
                    REQUIRE((values[a].last < values[b].first || values[b].last < values[a].first));
        }
        REQUIRE(largest == p.slot_floats);
        REQUIRE(p.floats_per_image() >= *std::max_element(alive.begin(), alive.end()));
    }
}
