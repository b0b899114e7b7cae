// Class activation maps: located where the evidence is, and exactly consistent with the logits.
#include <nlohmann/json.hpp>

#include "engine/cam.h"
#include "engine/error.h"
#include "engine/io/image.h"
#include "engine/io/model_json.h"
#include "helpers.h"

using namespace gapnet;
using json = nlohmann::json;

namespace {

json tensor(const Shape& shape, std::vector<float> data) { return {{"shape", shape}, {"data", data}}; }

// 1x8x8 -> conv 1x1 (2 maps: x and -x) -> relu -> GAP -> dense -> softmax. Class "corner" weighs the
// first map by 3, class "other" by -3: the score of "corner" grows with the light in the image.
json corner_model() {
    return {{"format", "gapnet"},
            {"version", 1},
            {"input", {{"channels", 1}, {"height", 8}, {"width", 8}, {"color", "grayscale"}}},
            {"labels", {"corner", "other"}},
            {"layers", json::array({{{"type", "conv2d"},
                                     {"name", "conv"},
                                     {"in_channels", 1},
                                     {"out_channels", 2},
                                     {"kernel_size", 1},
                                     {"weight", tensor({2, 1, 1, 1}, {1, -1})}},
                                    {{"type", "relu"}, {"name", "relu"}},
                                    {{"type", "global_avg_pool2d"}, {"name", "gap"}},
                                    {{"type", "dense"},
                                     {"name", "fc"},
                                     {"in_features", 2},
                                     {"out_features", 2},
                                     {"weight", tensor({2, 2}, {3, 0, -3, 0})},
                                     {"bias", tensor({2}, {0.1f, -0.1f})}},
                                    {{"type", "softmax"}, {"name", "softmax"}}})}};
}

}  // namespace

TEST_CASE("cam: a class driven by one corner has its map's maximum in that corner") {
    const LoadedModel model = parse_model(corner_model().dump());
    const CamHead head = find_cam_head(model.graph);
    REQUIRE(model.graph.nodes()[head.features].name == "relu");
    for (const int corner : {0, 1, 2, 3}) {  // top-left, top-right, bottom-left, bottom-right
        INFO("corner " << corner);
        Tensor x({1, 1, 8, 8});
        const int64_t y0 = corner / 2 ? 6 : 0, x0 = corner % 2 ? 6 : 0;
        for (int64_t y = y0; y < y0 + 2; ++y)
            for (int64_t c = x0; c < x0 + 2; ++c) x.data[y * 8 + c] = 1.0f;
        const auto activations = model.graph.forward_all(x);
        const Tensor map = class_activation_map(model.graph, head, activations, 0, 0);
        REQUIRE(map.shape == Shape{8, 8});
        const auto best = std::max_element(map.data.begin(), map.data.end()) - map.data.begin();
        REQUIRE(best / 8 >= y0);
        REQUIRE(best / 8 < y0 + 2);
        REQUIRE(best % 8 >= x0);
        REQUIRE(best % 8 < x0 + 2);
        REQUIRE(map.data[best] == Approx(3.0f));
        // The spatial mean plus the bias is the logit: 3 * 4/64 + 0.1.
        double mean = 0;
        for (float v : map.data) mean += v / 64.0;
        REQUIRE(mean + 0.1 == Approx(activations[3].data[0]).margin(1e-6));
        REQUIRE(activations[3].data[0] == Approx(0.2875).margin(1e-6));
    }
}

TEST_CASE("cam: on the trained model, each map's mean plus the bias is the class logit within 1e-5") {
    const LoadedModel model = load_model(gapnet::test::source_path("models/fashion_gap.json"));
    const CamHead head = find_cam_head(model.graph);
    const int dense_node = model.graph.find("fc1");
    REQUIRE(dense_node >= 0);
    Tensor x = load_image(gapnet::test::source_path("data/samples/sneaker.png"), model.input);
    x.shape.insert(x.shape.begin(), 1);
    const auto activations = model.graph.forward_all(x);
    for (int64_t c = 0; c < 10; ++c) {
        const Tensor map = class_activation_map(model.graph, head, activations, 0, c);
        REQUIRE(map.shape == Shape{7, 7});
        double mean = 0;
        for (float v : map.data) mean += v;
        mean /= 49;
        INFO("class " << c);
        REQUIRE(mean + head.dense->bias()[c] == Approx(activations[dense_node].data[c]).margin(1e-5));
    }
}

TEST_CASE("cam: heads without GAP -> dense are refused with the reason") {
    json doc = corner_model();
    doc["layers"][2] = {{"type", "flatten"}};
    doc["layers"][3]["in_features"] = 128;
    doc["layers"][3]["weight"] = tensor({2, 128}, std::vector<float>(256, 0.5f));
    REQUIRE_THROWS_WITH(
        find_cam_head(parse_model(doc.dump()).graph),
        Catch::StartsWith(
            "this model has no global average pooling at the start of its head, so there is no class activation map"));
    doc = corner_model();
    doc["layers"].insert(doc["layers"].begin() + 4, json{{"type", "relu"}, {"name", "relu2"}});
    REQUIRE_THROWS_WITH(find_cam_head(parse_model(doc.dump()).graph),
                        Catch::StartsWith("the layers after global_avg_pool2d are not a single dense layer"));
    REQUIRE_THROWS_WITH(find_cam_head(load_model(gapnet::test::source_path("tests/models/brightness.json")).graph),
                        "global_avg_pool2d reads the input itself: there are no learned feature maps to map");
}
