// The public API (include/gapnet/gapnet.h) against what it wraps: the shipped models classify the
// sample images with PyTorch's probabilities (tests/golden/), run() is Graph::forward, the caller's
// own pixels and an image in memory give the input the file gives, models with different
// convolution kernels live side by side, and errors name the file and the place.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/io/file.h"
#include "engine/io/image.h"
#include "engine/io/model_json.h"
#include "engine/model.h"
#include "gapnet/gapnet.h"
#include "helpers.h"

using gapnet::ConvAlgorithm;
using gapnet::Error;
using gapnet::Model;
using gapnet::Options;
using gapnet::Pixels;
using gapnet::Prediction;
using gapnet::Tensor;
using gapnet::test::random_values;
using gapnet::test::source_path;

namespace {

// `image`'s pixels copied into rows of `stride` bytes, the padding filled with 0xAB (which must not
// be read).
std::vector<uint8_t> padded_rows(const gapnet::Image& image, int64_t stride) {
    const auto row = static_cast<size_t>(image.width * image.channels);
    std::vector<uint8_t> rows(static_cast<size_t>(stride * image.height), 0xAB);
    for (int64_t y = 0; y < image.height; ++y)
        std::memcpy(rows.data() + y * stride, image.samples.data() + static_cast<size_t>(y) * row, row);
    return rows;
}

Tensor random_batch(const Model& model, int64_t n, std::mt19937& rng) {
    const gapnet::Shape shape{n, model.input().channels, model.input().height, model.input().width};
    return Tensor(shape, random_values(static_cast<size_t>(gapnet::element_count(shape)), rng));
}

Options one_thread() {
    Options options;
    options.threads = 1;
    return options;
}

// The error `f` throws (a test failure if it throws none).
template <class F>
Error error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    FAIL("no gapnet::Error");
    return Error("");
}

}  // namespace

TEST_CASE("the API classifies the sample images with PyTorch's probabilities") {
    for (const char* golden_file :
         {"tests/golden/fashion_gap_samples.json", "tests/golden/fashion_flatten_samples.json",
          "tests/golden/fashion_resnet_samples.json"}) {
        INFO(golden_file);
        std::ifstream in(source_path(golden_file));
        const auto golden = nlohmann::json::parse(in);
        const Model model = Model::load(source_path(golden["model"].get<std::string>()));
        const double tolerance = golden["tolerance"].get<double>();
        const auto classes = static_cast<int>(model.labels().size());
        for (const auto& sample : golden["samples"]) {
            INFO(sample["file"].get<std::string>());
            const auto expected = sample["probabilities"].get<std::vector<double>>();
            const std::vector<Prediction> top =
                model.classify_file(source_path(sample["file"].get<std::string>()), classes);
            REQUIRE(top.size() == expected.size());
            for (size_t k = 0; k < top.size(); ++k) {
                REQUIRE(top[k].probability == Approx(expected[static_cast<size_t>(top[k].index)]).margin(tolerance));
                REQUIRE(top[k].label == model.labels()[static_cast<size_t>(top[k].index)]);
                if (k > 0) REQUIRE(top[k].probability <= top[k - 1].probability);
            }
        }
    }
    const Model model = Model::load(source_path("models/fashion_gap.json"));
    const std::vector<Prediction> bag = model.classify_file(source_path("data/samples/bag.png"), 3);
    REQUIRE(bag.size() == 3);
    REQUIRE(bag[0].label == "Bag");
    REQUIRE(bag[0].index == 8);
}

TEST_CASE("run() is Graph::forward and layer_output() is each node's output") {
    const std::string path = source_path("models/fashion_resnet.json");
    const gapnet::LoadedModel engine = gapnet::load_model(path);
    Options two_threads;
    two_threads.threads = 2;
    const Model model = Model::load(path, two_threads);
    std::mt19937 rng(1);
    const Tensor batch = random_batch(model, 3, rng);
    const Tensor out = model.run(batch);
    REQUIRE(out.shape == gapnet::Shape{3, 10});
    REQUIRE(out.data == engine.graph.forward(batch).data);  // bit for bit: the same kernels, any thread count

    const std::vector<Tensor> all = engine.graph.forward_all(batch);
    const std::vector<std::string> names = model.layer_names();
    REQUIRE(names.size() == all.size());
    for (size_t i : {size_t{0}, size_t{5}, names.size() - 1}) {
        INFO(names[i]);
        const Tensor layer = model.layer_output(names[i], batch);
        REQUIRE(layer.shape == all[i].shape);
        REQUIRE(layer.data == all[i].data);
    }
    REQUIRE(model.layer_output("input", batch).data == batch.data);

    const gapnet::Summary summary = model.summary();
    REQUIRE(summary.layers == static_cast<int64_t>(names.size()));
    REQUIRE(summary.parameters == engine.graph.parameter_count());
    REQUIRE(summary.macs == engine.graph.macs());
    const gapnet::Summary gap = Model::load(source_path("models/fashion_gap.json")).summary();
    REQUIRE(gap.parameters == 66410);  // models/README.md, gapnet summary
    REQUIRE(gap.head_parameters == 650);
    REQUIRE(gap.macs == 18365056);
    REQUIRE(gap.head == gapnet::HeadKind::gap_dense);
    REQUIRE(Model::load(source_path("models/fashion_flatten.json")).summary().head == gapnet::HeadKind::flatten_dense);
    REQUIRE(Model::load(source_path("models/emotion_mini_xception.json")).summary().head ==
            gapnet::HeadKind::all_convolutional);
}

TEST_CASE("the caller's pixels and an image in memory give the input its file gives") {
    SECTION("gray, 28x28") {
        const Model model = Model::load(source_path("models/fashion_gap.json"));
        const std::string file = source_path("data/samples/bag.png");
        const gapnet::Image image = gapnet::read_image(file);
        REQUIRE(image.channels == 1);
        const std::vector<uint8_t> rows = padded_rows(image, image.width + 13);
        const Pixels pixels{rows.data(), image.width, image.height, image.channels, image.width + 13};
        const Tensor from_file = model.input_from_file(file);
        REQUIRE(from_file.shape == gapnet::Shape{1, 1, 28, 28});
        REQUIRE(model.input_from_pixels(pixels).data == from_file.data);
        const Pixels unpadded{image.samples.data(), image.width, image.height, image.channels, 0};
        REQUIRE(model.input_from_pixels(unpadded).data == from_file.data);

        const std::string bytes = gapnet::read_file(file, 1 << 20, "");
        REQUIRE(model.input_from_encoded(bytes.data(), bytes.size()).data == from_file.data);
        const std::vector<Prediction> a = model.classify_pixels(pixels, 2), b = model.classify_file(file, 2);
        REQUIRE(a.size() == 2);
        for (size_t k = 0; k < a.size(); ++k) {
            REQUIRE(a[k].index == b[k].index);
            REQUIRE(a[k].probability == b[k].probability);
        }
        REQUIRE(model.classify_encoded(bytes.data(), bytes.size(), 1)[0].label == "Bag");
    }
    SECTION("RGB, resized, to an RGB model") {
        const Model model = Model::load(source_path("tests/parity/parity-0-002.json"));
        REQUIRE(model.input().color == gapnet::ColorMode::rgb);
        const std::string file = source_path("data/test-images/rgb.png");
        const gapnet::Image image = gapnet::read_image(file);
        REQUIRE(image.channels == 3);
        REQUIRE(image.bits == 8);
        const std::vector<uint8_t> rows = padded_rows(image, image.width * 3 + 5);
        const Pixels pixels{rows.data(), image.width, image.height, 3, image.width * 3 + 5};
        REQUIRE(model.input_from_pixels(pixels).data == model.input_from_file(file).data);
    }
}

TEST_CASE("two models with different convolution kernels in one process agree and keep their own") {
    const std::string path = source_path("models/fashion_gap.json");
    Options gemm, winograd;
    gemm.conv_algorithm = ConvAlgorithm::gemm;
    winograd.conv_algorithm = ConvAlgorithm::winograd;
    winograd.threads = 1;
    const Model a = Model::load(path, gemm);
    const Model b = Model::load(path, winograd);
    const Model automatic = Model::load(path);
    std::mt19937 rng(2);
    const Tensor batch = random_batch(a, 4, rng);
    const Tensor out_a = a.run(batch), out_b = b.run(batch), out_auto = automatic.run(batch);
    gapnet::test::require_values(out_a.data, out_b.data, 1e-5);
    gapnet::test::require_values(out_a.data, out_auto.data, 1e-5);
    REQUIRE(out_a.data != out_b.data);  // they did run different kernels (rounding differs)
    REQUIRE(a.options().conv_algorithm == ConvAlgorithm::gemm);
    REQUIRE(b.options().conv_algorithm == ConvAlgorithm::winograd);
    // Nothing leaked into the process: a model loaded now chooses its own kernels.
    const gapnet::LoadedModel fresh = gapnet::load_model(path);
    REQUIRE_FALSE(fresh.graph.conv_algorithm());
    REQUIRE(fresh.graph.forward(batch).data == out_auto.data);
}

TEST_CASE("API errors are gapnet::Error with the file and the place") {
    const std::string bad_model = source_path("tests/bad_inputs/models/data-length.json");
    Error e = error_of([&] { Model::load(bad_model); });
    REQUIRE(e.file() == bad_model);
    REQUIRE(e.where() == "layers[0].weight.data");
    REQUIRE(std::string(e.what()) == "17 values, shape [2,1,3,3] needs 18");
    REQUIRE(e.message() == bad_model + ": layers[0].weight.data: 17 values, shape [2,1,3,3] needs 18");

    std::ifstream in(bad_model);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    e = error_of([&] { Model::from_json(text); });
    REQUIRE(e.file().empty());
    REQUIRE(e.message() == "layers[0].weight.data: 17 values, shape [2,1,3,3] needs 18");

    const std::string missing = source_path("models/no-such-model.json");
    REQUIRE(error_of([&] { Model::load(missing); }).file() == missing);

    const Model model = Model::load(source_path("models/fashion_gap.json"));
    const std::string not_an_image = source_path("data/test-images/not-an-image.png");
    e = error_of([&] { model.classify_file(not_an_image); });
    REQUIRE(e.file() == not_an_image);
    REQUIRE_FALSE(std::string(e.what()).empty());

    e = error_of([&] { model.layer_output("conv9", model.input_from_file(source_path("data/samples/bag.png"))); });
    REQUIRE(e.file() == model.file());
    REQUIRE_THAT(e.what(), Catch::Contains("no layer is named 'conv9'") && Catch::Contains("input, conv1, bn1"));

    e = error_of([&] { model.run(Tensor({1, 3, 28, 28})); });
    REQUIRE_THAT(e.what(), Catch::Contains("does not match the model input"));
    const uint8_t pixel = 0;
    REQUIRE_THAT(error_of([&] { model.input_from_pixels({&pixel, 1, 1, 5, 0}); }).what(), Catch::Contains("channels"));
    REQUIRE_THAT(error_of([&] { model.input_from_pixels({&pixel, 2, 1, 1, 1}); }).what(), Catch::Contains("stride"));
    Options bad;
    bad.threads = -1;
    e = error_of([&] { Model::load(source_path("models/fashion_gap.json"), bad); });
    REQUIRE_THAT(e.what(), Catch::Contains("threads"));
    REQUIRE(e.file().empty());  // not the file's fault
}

// The contract of gapnet.h: the library names an exceeded limit as its C++ member, with its value, and
// no command-line option (the gapnet program adds one: tests/cli_test.sh, tests/bad_inputs/).
TEST_CASE("an exceeded limit's message names it as the API spells it, and no command-line flag") {
    const std::string path = source_path("models/fashion_gap.json");
    Options options;
    options.model_limits.max_layers = 3;
    Error e = error_of([&] { Model::load(path, options); });
    REQUIRE(e.where() == "layers");
    REQUIRE(std::string(e.what()) == "18 layers exceed 3 (Limits::max_layers = 3)");  // conv1 ... softmax1
    options = Options();
    options.model_limits.max_file_bytes = 1000;
    e = error_of([&] { Model::load(path, options); });
    REQUIRE(std::string(e.what()) == "is larger than 1000 bytes (Limits::max_file_bytes = 1000)");
    REQUIRE_THAT(e.message(), !Catch::Contains("--"));

    const std::string bag = source_path("data/samples/bag.png");  // 28x28
    options = Options();
    options.image_limits.max_pixels = 783;
    const Model few_pixels = Model::load(path, options);
    e = error_of([&] { few_pixels.input_from_file(bag); });
    REQUIRE(std::string(e.what()) == "image is 28x28 = 784 pixels, beyond ImageLimits::max_pixels = 783");
    REQUIRE_THAT(e.message(), !Catch::Contains("--"));
    gapnet::ImageLimits narrow;
    narrow.max_side = 27;
    e = error_of([&] { gapnet::decode_image_file(bag, narrow); });
    REQUIRE(std::string(e.what()) == "image is 28x28, a side beyond ImageLimits::max_side = 27");
    REQUIRE_THAT(e.message(), !Catch::Contains("--"));
}

TEST_CASE("the API verifies a model file's recorded tests") {
    const gapnet::VerifyReport report = Model::load(source_path("models/fashion_gap.json")).verify();
    REQUIRE(report.cases > 0);
    REQUIRE(report.passed);
    REQUIRE(report.largest_difference <= gapnet::kDefaultVerifyTolerance);
}

TEST_CASE("layers() and summary() and steps() describe the model as its file and graph do") {
    const Model model = Model::load(source_path("models/fashion_gap.json"), one_thread());
    const gapnet::LoadedModel loaded = gapnet::load_model(source_path("models/fashion_gap.json"));
    const std::vector<gapnet::LayerInfo> layers = model.layers();
    REQUIRE(layers.size() == loaded.graph.nodes().size());
    // Hand-checked against the README's summary table: conv1 3x3x1 -> 32 (288 + 32 = 320 values,
    // 28 x 28 x 32 x 9 = 225,792 MACs), fc1 64 -> 10 (650 values, 640 MACs).
    CHECK(layers[0].name == "conv1");
    CHECK(layers[0].type == "conv2d");
    CHECK(layers[0].inputs == std::vector<std::string>{"input"});
    CHECK(layers[0].output == gapnet::Shape{32, 28, 28});
    CHECK(layers[0].parameters == 320);
    CHECK(layers[0].macs == 225792);
    CHECK(layers[16].name == "fc1");
    CHECK(layers[16].inputs == std::vector<std::string>{"flatten1"});
    CHECK(layers[16].parameters == 650);
    CHECK(layers[16].macs == 640);
    const gapnet::Summary s = model.summary();
    CHECK(s.parameters == 66410);
    CHECK(s.head_parameters == 650);
    CHECK(s.head_start == 14);
    CHECK(s.head == gapnet::HeadKind::gap_dense);
    CHECK(s.no_class_maps.empty());
    CHECK(s.peak_memory_bytes == loaded.graph.peak_memory_bytes(1));
    CHECK(s.working_bytes_per_image == loaded.graph.working_memory_bytes(1));
    // The steps are the fused ones: conv + batch norm + relu as one, 18 layers in fewer steps.
    const std::vector<gapnet::Step> steps = model.steps();
    REQUIRE(steps.size() == loaded.graph.steps().size());
    CHECK(steps[0].name == "conv1+bn1+relu1");
    CHECK(steps[0].type == "conv2d+batch_norm2d+relu");
    CHECK(steps[0].macs == 225792 + 25088);
    CHECK_FALSE(steps[0].kernel.empty());
    int64_t macs = 0;
    for (const gapnet::Step& step : steps) macs += step.macs;
    CHECK(macs == s.macs);
    std::vector<double> seconds;
    std::mt19937 rng(3);
    const Tensor batch = random_batch(model, 2, rng);
    CHECK(model.run(batch, seconds).data == model.run(batch).data);
    CHECK(seconds.size() == steps.size());
}

TEST_CASE("class_activation_maps(): each map's mean moves with its class's logit (Zhou et al.)") {
    // The mean of class c's map is its logit minus the dense bias: between two images, the means
    // differ exactly as the logits (fc1's outputs) do.
    const Model model = Model::load(source_path("models/fashion_gap.json"), one_thread());
    std::vector<Tensor> maps, logits;
    for (const char* image : {"data/samples/sneaker.png", "data/samples/bag.png"}) {
        const Tensor input = model.input_from_file(source_path(image));
        Tensor output;
        maps.push_back(model.class_activation_maps(input, &output));
        REQUIRE(maps.back().shape == gapnet::Shape{10, 7, 7});
        gapnet::test::require_values(output.data, model.run(input).data, 1e-6f);  // unfused: within rounding
        logits.push_back(model.layer_output("fc1", input));
    }
    for (size_t c = 0; c < 10; ++c) {
        double mean[2] = {0, 0};
        for (size_t k = 0; k < 2; ++k)
            for (size_t i = 0; i < 49; ++i) mean[k] += maps[k].data[c * 49 + i] / 49.0;
        CHECK(mean[0] - mean[1] == Approx(logits[0].data[c] - logits[1].data[c]).margin(1e-4));
    }
    const Model flatten = Model::load(source_path("models/fashion_flatten.json"), one_thread());
    const Tensor input = flatten.input_from_file(source_path("data/samples/bag.png"));
    CHECK_FALSE(flatten.summary().no_class_maps.empty());
    CHECK(std::string(error_of([&] { flatten.class_activation_maps(input); }).what()) ==
          flatten.summary().no_class_maps);
}

TEST_CASE("predictions() ranks outputs as classify() does and decode_image_file gives the file's pixels") {
    const Model model = Model::load(source_path("models/fashion_gap.json"), one_thread());
    const Tensor input = model.input_from_file(source_path("data/samples/bag.png"));
    const std::vector<Prediction> direct = model.classify(input, 3)[0];
    const std::vector<Prediction> ranked = model.predictions(model.run(input), 3)[0];
    REQUIRE(ranked.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(ranked[i].index == direct[i].index);
        CHECK(ranked[i].probability == direct[i].probability);
    }
    CHECK(ranked[0].label == "Bag");
    const gapnet::DecodedImage image = gapnet::decode_image_file(source_path("data/samples/bag.png"));
    const gapnet::Image engine_image = gapnet::read_image(source_path("data/samples/bag.png"));
    CHECK(image.width == engine_image.width);
    CHECK(image.channels == engine_image.channels);
    CHECK(image.samples == std::vector<uint8_t>(engine_image.samples.begin(), engine_image.samples.end()));
    CHECK(model.input_from_pixels(image.pixels()).data == input.data);
    CHECK(error_of([] { gapnet::decode_image_file("no/such.png"); }).file() == "no/such.png");
}

TEST_CASE("Dataset reads IDX files as the model's input with the labels beside them") {
    const Model model = Model::load(source_path("models/fashion_gap.json"), one_thread());
    const std::string idx = source_path("data/test-datasets/idx/samples-images-idx3-ubyte");
    const gapnet::Dataset dataset = gapnet::Dataset::open(idx);
    REQUIRE(dataset.size() > 0);
    CHECK(dataset.labels_are_indices());
    const Tensor input = dataset.input(0, model);
    CHECK(input.shape == gapnet::Shape{1, 1, 28, 28});
    CHECK(dataset.label(0) >= 0);
    CHECK(dataset.label(0) < 10);
    gapnet::Limits limits;
    CHECK(gapnet::set_limit(limits, "max_layers", 7));
    CHECK(limits.max_layers == 7);
    CHECK_FALSE(gapnet::set_limit(limits, "no_such_limit", 7));
    CHECK(gapnet::named_limits().size() == 7);
    CHECK(gapnet::hardware_threads() >= 1);
}

TEST_CASE("concatenate() joins batches in order, refusing samples of another shape") {
    const Tensor a({1, 2}, {1, 2}), b({2, 2}, {3, 4, 5, 6});
    const Tensor joined = gapnet::concatenate({a, b});
    CHECK(joined.shape == gapnet::Shape{3, 2});
    CHECK(joined.data == std::vector<float>{1, 2, 3, 4, 5, 6});
    CHECK(gapnet::concatenate({}).shape.empty());
    CHECK(std::string(error_of([&] {
                          gapnet::concatenate({a, Tensor({1, 3})});
                      }).what()) == "concatenate(): batch [1,3] does not hold samples of batch 0's shape, [1,2]");
}

// The issue this guards: a JPEG photo was decoded shrunk (DCT scaling) by classify and whole by cam,
// so the same file scored differently in the two commands.
TEST_CASE("one image path: a JPEG photo is the same input from its file, its bytes, a batch and a dataset") {
    Options two_threads;
    two_threads.threads = 2;
    const Model model = Model::load(source_path("models/fashion_gap.json"), two_threads);
    const std::string file = source_path("data/test-images/coffee.jpg");  // 600x400: decoded at 1/8
    const Tensor from_file = model.input_from_file(file);
    REQUIRE(from_file.shape == gapnet::Shape{1, 1, 28, 28});

    const std::string bytes = gapnet::read_file(file, 1 << 20, "");
    CHECK(model.input_from_encoded(bytes.data(), bytes.size()).data == from_file.data);

    const gapnet::InputBatch batch = model.inputs_from_files({file, "no/such.png", file});
    REQUIRE(batch.batch.shape == gapnet::Shape{2, 1, 28, 28});
    REQUIRE(batch.errors.size() == 3);
    CHECK_FALSE(batch.errors[0]);
    REQUIRE(batch.errors[1]);
    CHECK(batch.errors[1]->file() == "no/such.png");
    CHECK_FALSE(batch.errors[2]);
    for (int64_t n = 0; n < 2; ++n)
        CHECK(std::equal(from_file.data.begin(), from_file.data.end(), batch.batch.data.begin() + n * 28 * 28));

    // A folder of class folders, the photo in one of them.
    const std::filesystem::path folder = std::filesystem::temp_directory_path() / "gapnet-one-image-path";
    std::filesystem::remove_all(folder);
    std::filesystem::create_directories(folder / "Bag");
    std::filesystem::copy_file(file, folder / "Bag" / "coffee.jpg");
    const gapnet::Dataset dataset = gapnet::Dataset::open(folder.string());
    const gapnet::InputBatch from_dataset = dataset.inputs(0, 1, model);
    std::filesystem::remove_all(folder);
    REQUIRE_FALSE(from_dataset.errors[0]);
    CHECK(from_dataset.batch.data == from_file.data);
    CHECK(std::string(error_of([&] { dataset.inputs(0, 2, model); }).what()) ==
          "Dataset::inputs(0, 2): the dataset holds 1 images");

    // The class activation maps' forward pass reads the same input as classify's (it keeps every
    // layer's output, so its rounding may differ in the last bits).
    Tensor output;
    model.class_activation_maps(from_file, &output);
    const Tensor classified = model.run(from_file);
    REQUIRE(output.size() == classified.size());
    for (int64_t i = 0; i < output.size(); ++i) CHECK(output.data[i] == Approx(classified.data[i]).margin(1e-6));

    // The same photo decoded whole and handed over as pixels is another input: what makes the test
    // above able to fail.
    const gapnet::DecodedImage whole = gapnet::decode_image_file(file);
    REQUIRE(whole.width == 600);
    CHECK(model.input_from_pixels(whole.pixels()).data != from_file.data);
}
