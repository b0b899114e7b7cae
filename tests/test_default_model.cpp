// The shipped models give PyTorch's probabilities on the bundled sample images, through the whole
// image path (decoding, preprocessing, forward pass). tests/golden/<model>_samples.json is written by
// tools/train_fashion_mnist.py, which ran PyTorch on the same PNG files right after training.
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/io/image.h"
#include "engine/io/model_json.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::source_path;

TEST_CASE("shipped models: probabilities on the sample images match PyTorch within 1e-5") {
    for (const char* golden_file :
         {"tests/golden/fashion_gap_samples.json", "tests/golden/fashion_flatten_samples.json",
          "tests/golden/fashion_resnet_samples.json"}) {
        INFO(golden_file);
        std::ifstream in(source_path(golden_file));
        REQUIRE(in.good());
        const auto golden = nlohmann::json::parse(in);
        const LoadedModel model = load_model(source_path(golden["model"].get<std::string>()));
        const double tolerance = golden["tolerance"].get<double>();
        REQUIRE(tolerance <= 1e-5);
        REQUIRE(golden["samples"].size() == model.labels.size());  // one per class

        for (const auto& sample : golden["samples"]) {
            const std::string file = sample["file"].get<std::string>();
            INFO(file);
            Tensor input = load_image(source_path(file), model.input);
            input.shape.insert(input.shape.begin(), 1);
            const Tensor probabilities = model.graph.forward(input);
            const auto expected = sample["probabilities"].get<std::vector<double>>();
            REQUIRE(probabilities.size() == static_cast<int64_t>(expected.size()));
            for (size_t c = 0; c < expected.size(); ++c) {
                INFO("class " << c);
                REQUIRE(probabilities.data[c] == Approx(expected[c]).margin(tolerance));
            }
        }
    }
}
