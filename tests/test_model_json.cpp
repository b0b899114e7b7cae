// The model loader: a valid file loads; every validation rule refuses its defect with the JSON
// location and a message that names the problem.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/io/base64.h"
#include "engine/io/model_document.h"
#include "engine/io/model_json.h"
#include "engine/io/quantize.h"
#include "engine/kernels/bfloat16.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/dense.h"
#include "engine/verify.h"
#include "fuzz/harness.h"
#include "helpers.h"

using namespace gapnet;
using json = nlohmann::json;

namespace {

json tensor(const Shape& shape, float first = 0.5f) {
    std::vector<float> data(static_cast<size_t>(element_count(shape)));
    for (size_t i = 0; i < data.size(); ++i) data[i] = first + 0.01f * static_cast<float>(i);
    return {{"shape", shape}, {"data", data}};
}

// 1x6x6 -> conv(1->2, 3x3, pad 1) -> bn -> relu -> max_pool -> gap -> dense(2->3) -> softmax
json valid_model() {
    return {{"format", "gapnet"},
            {"version", 1},
            {"name", "tiny"},
            {"input",
             {{"channels", 1},
              {"height", 6},
              {"width", 6},
              {"color", "grayscale"},
              {"scale", 1.0 / 255},
              {"mean", {0.5}},
              {"std", {0.25}}}},
            {"labels", {"a", "b", "c"}},
            {"layers", json::array({{{"type", "conv2d"},
                                     {"name", "conv1"},
                                     {"in_channels", 1},
                                     {"out_channels", 2},
                                     {"kernel_size", {3, 3}},
                                     {"stride", {1, 1}},
                                     {"padding", {1, 1}},
                                     {"dilation", {1, 1}},
                                     {"groups", 1},
                                     {"weight", tensor({2, 1, 3, 3})},
                                     {"bias", tensor({2})}},
                                    {{"type", "batch_norm2d"},
                                     {"num_features", 2},
                                     {"eps", 1e-5},
                                     {"weight", tensor({2})},
                                     {"bias", tensor({2})},
                                     {"running_mean", tensor({2})},
                                     {"running_var", tensor({2})}},
                                    {{"type", "relu"}},
                                    {{"type", "max_pool2d"}, {"kernel_size", {2, 2}}, {"stride", {2, 2}}},
                                    {{"type", "global_avg_pool2d"}},
                                    {{"type", "dense"},
                                     {"name", "fc"},
                                     {"in_features", 2},
                                     {"out_features", 3},
                                     {"weight", tensor({3, 2})},
                                     {"bias", tensor({3})}},
                                    {{"type", "softmax"}}})}};
}

// The error parse_model throws for `doc`, as "where: what".
std::string error_of(const json& doc, const Limits& limits = {}) {
    try {
        parse_model(doc.dump(), limits);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

std::string error_of_text(const std::string& text) {
    try {
        parse_model(text);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

std::string base64_of(const std::vector<float>& values) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bytes(values.size() * 4, '\0');
    std::memcpy(bytes.data(), values.data(), bytes.size());  // little-endian host
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t group = 0;
        const size_t n = std::min<size_t>(3, bytes.size() - i);
        for (size_t j = 0; j < 3; ++j) group = group << 8 | (j < n ? static_cast<unsigned char>(bytes[i + j]) : 0u);
        for (size_t j = 0; j < 4; ++j) out += j <= n ? alphabet[(group >> (18 - 6 * j)) & 63] : '=';
    }
    return out;
}

// valid_model() as text, with the dense layer's bias data (3 values) written as `data`, verbatim.
std::string with_bias_data(const std::string& data, const std::string& extra_bias_keys = "") {
    json doc = valid_model();
    doc["layers"][5]["bias"]["data"] = "BIAS-DATA";
    std::string text = doc.dump();
    const std::string marker = "\"BIAS-DATA\"";
    text.replace(text.find(marker), marker.size(), data + extra_bias_keys);
    return text;
}

std::vector<float> dense_bias(const std::string& text) {
    const LoadedModel model = parse_model(text);
    return dynamic_cast<const Dense&>(*model.graph.nodes()[5].layer).bias();
}

// What nlohmann's DOM made of a number (the loader before it read tensor data itself): a double,
// then a float.
float through_nlohmann(const std::string& number) { return static_cast<float>(json::parse(number).get<double>()); }

// `text` in quotes. (Built by appending: GCC 12 warns falsely about "\"" + text, -Wrestrict.)
std::string in_quotes(const std::string& text) {
    std::string out = "\"";
    out += text;
    out += '"';
    return out;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The reader's document of `text`, or std::nullopt where it refuses the text.
std::optional<ModelDocument> document_of(const std::string& text) {
    try {
        return read_model_document(text);
    } catch (const Error&) {
        return std::nullopt;
    }
}

using fuzz::nlohmann_accepts;

}  // namespace

TEST_CASE("a valid model loads with shapes, parameters and MACs inferred") {
    const LoadedModel model = parse_model(valid_model().dump());
    REQUIRE(model.name == "tiny");
    REQUIRE(model.labels == std::vector<std::string>{"a", "b", "c"});
    const auto& nodes = model.graph.nodes();
    REQUIRE(nodes.size() == 7);
    REQUIRE(nodes[0].name == "conv1");
    REQUIRE(nodes[1].name == "batch_norm2d_1");  // default name: type and index
    REQUIRE(nodes[0].output_shape == Shape{2, 6, 6});
    REQUIRE(nodes[3].output_shape == Shape{2, 3, 3});
    REQUIRE(nodes[4].output_shape == Shape{2});
    REQUIRE(nodes[0].parameters == 20);
    REQUIRE(nodes[0].macs == 2 * 36 * 9);
    REQUIRE(model.graph.parameter_count() == 20 + 8 + 9);
    REQUIRE(model.graph.head_start() == 4);
    // Peak memory at the convolution: the 36 input values, its 72 outputs and its scratch (the
    // padded input, 8 x 8, and its im2col matrix of 9 taps x 36 pixels packed in 2 panels of 32,
    // 64 + 576 = 640), plus the 37 parameters. With a batch of 2, the
    // activations double and the scratch (reused per sample) does not.
    REQUIRE(model.graph.peak_memory_bytes(1) == 4 * (37 + 36 + 72 + 640));
    REQUIRE(model.graph.peak_memory_bytes(2) == 4 * (37 + 2 * (36 + 72) + 640));
    // The arena's slots (activation_arena.h), the steps' outputs largest first, each living from its
    // step to its reader: conv+bn+relu 72 [0, 1] -> slot 0; max pool 18 [1, 2] -> slot 1; dense 3
    // [3, 4] -> slot 0; softmax 3 [4, 4] -> slot 1; gap 2 [2, 3] meets both -> slot 2 of 2 floats.
    REQUIRE(model.graph.steps().size() == 5);
    REQUIRE(model.graph.arena_bytes(1) == 4 * (72 + 18 + 2));
    REQUIRE(model.graph.arena_bytes(3) == 3 * 4 * (72 + 18 + 2));
    REQUIRE(model.input.mean == std::vector<float>{0.5f});
}

TEST_CASE("optional keys take PyTorch's defaults") {
    json doc = valid_model();
    auto& conv = doc["layers"][0];
    conv.erase("stride"), conv.erase("dilation"), conv.erase("groups"), conv.erase("bias");
    conv["kernel_size"] = 3;  // an integer means [3, 3]
    conv["padding"] = 1;
    doc["layers"][3].erase("stride");  // pooling stride defaults to the kernel size
    doc["input"].erase("mean"), doc["input"].erase("std"), doc["input"].erase("scale");
    const LoadedModel model = parse_model(doc.dump());
    REQUIRE(model.graph.nodes()[3].output_shape == Shape{2, 3, 3});
    REQUIRE(model.graph.nodes()[0].parameters == 18);
    REQUIRE(model.input.std == std::vector<float>{1.0f});
    REQUIRE(model.input.scale == Approx(1.0 / 255));
}

TEST_CASE("base64 float32 data loads the same values as a number array") {
    json doc = valid_model();
    const std::vector<float> w = {0.5f, -1.25f, 3e-8f, 1e30f, 0, 2, -3, 4.5f, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    doc["layers"][0]["weight"] = {
        {"shape", {2, 1, 3, 3}}, {"dtype", "float32"}, {"encoding", "base64"}, {"data", base64_of(w)}};
    const LoadedModel model = parse_model(doc.dump());
    REQUIRE(dynamic_cast<const Conv2d&>(*model.graph.nodes()[0].layer).weight() == w);
    doc["layers"][0]["weight"]["data"] = base64_of(std::vector<float>(w.begin(), w.end() - 1));
    REQUIRE(error_of(doc) == "layers[0].weight.data: 92 base64 characters, 18 float32 values need 96");
    std::string bad = base64_of(w);
    bad[5] = '*';
    doc["layers"][0]["weight"]["data"] = bad;
    REQUIRE(error_of(doc) == "layers[0].weight.data: invalid base64 character at offset 5");
    doc["layers"][0]["weight"]["data"] = base64_of({1, NAN, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8});
    REQUIRE(error_of(doc) == "layers[0].weight.data: value 1 is not finite in float32");
}

TEST_CASE("not JSON, not an object, wrong format or version") {
    REQUIRE(error_of_text("{\"format\": ") ==
            "not valid JSON at line 1, column 12 (byte 11): expected a value (an object, array, string, number, true, "
            "false or null), got the end of the text (is the file truncated?)");
    REQUIRE(error_of_text("") == "empty file, not a model (a gapnet model is a JSON object: see docs/model-format.md)");
    REQUIRE(error_of_text("{\"format\": \"gap\xff\"}") ==
            "not valid JSON at line 1, column 16 (byte 15): ill-formed UTF-8 in a string: byte 0xff cannot start a "
            "character");
    REQUIRE(error_of(json::array()) == "a model file is a JSON object, got an array");
    json doc = valid_model();
    doc["format"] = "keras";
    REQUIRE(error_of(doc) == "format: expected \"gapnet\", got \"keras\" (not a gapnet model file)");
    doc = valid_model();
    doc["version"] = 3;
    REQUIRE(error_of(doc) == "version: version 3 is newer than this gapnet reads (2): upgrade gapnet");
    doc = valid_model();
    doc.erase("layers");
    REQUIRE(error_of(doc) == "layers: required");
    doc = valid_model();
    doc["extra"] = 1;
    REQUIRE(error_of(doc) == "extra: unknown key for a model (a typo? see docs/model-format.md)");
}

TEST_CASE("JSON nested beyond the bound is refused before recursing") {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    REQUIRE(error_of_text(deep) == "JSON nested deeper than 64 levels, at line 1, column 66 (byte 65)");
}

TEST_CASE("a key repeated in one object is refused, not resolved to its last value") {
    std::string text = valid_model().dump();
    const std::string kernel = "\"kernel_size\":[2,2],";
    REQUIRE(text.find(kernel) != std::string::npos);
    text.replace(text.find(kernel), kernel.size(), kernel + "\"kernel_size\":[3,3],");
    REQUIRE(error_of_text(text) ==
            "layers[3]: key \"kernel_size\" appears twice in this object (JSON keys must be unique)");
    REQUIRE(error_of_text("{\"format\": \"gapnet\", \"format\": \"gapnet\"}") ==
            "key \"format\" appears twice in the top-level object (JSON keys must be unique)");
    // The same key in different objects, and in an array of objects, is fine.
    REQUIRE_NOTHROW(parse_model(valid_model().dump()));
}

TEST_CASE("strings from the file are quoted as one printable line") {
    // A key with a newline and an escape sequence, and a layer name with a C1 control character (U+009B).
    json doc = valid_model();
    doc["layers"][0]["a\nb\x1b[2J"] = 1;
    REQUIRE(error_of(doc) == "layers[0].a\\x0ab\\x1b[2J: unknown key for conv2d (a typo? see docs/model-format.md)");
    doc = valid_model();
    doc["layers"][1]["name"] = "bn\xc2\x9b\xc3\xa9";
    doc["layers"][2]["name"] = "bn\xc2\x9b\xc3\xa9";
    REQUIRE(error_of(doc) == "layers[2].name: 'bn\\xc2\\x9b\xc3\xa9' is already used by another layer");
}

TEST_CASE("a file cut short says it may be truncated") {
    REQUIRE(error_of_text("{\"format\": \"gapnet\", ") ==
            "not valid JSON at line 1, column 22 (byte 21): expected a key (a string in double quotes), got the end of "
            "the text (is the file truncated?)");
}

TEST_CASE("input section") {
    json doc = valid_model();
    doc["input"]["channels"] = 2;
    REQUIRE(error_of(doc) == "input.channels: must be 1 (grayscale) or 3 (rgb)");
    doc = valid_model();
    doc["input"]["color"] = "rgb";
    REQUIRE(error_of(doc) == "input.color: 'rgb' does not match 1 channel(s)");
    doc = valid_model();
    doc["input"]["std"] = {0};
    REQUIRE(error_of(doc) == "input.std[0]: must be positive");
    doc = valid_model();
    doc["input"]["mean"] = {0.1, 0.2};
    REQUIRE(error_of(doc) == "input.mean: expected an array of 1 numbers (one per channel)");
    doc = valid_model();
    doc["input"]["color"] = "none";  // a tensor model: any channel count
    doc["input"]["channels"] = 2;
    doc["input"]["mean"] = {0, 0};
    doc["input"]["std"] = {1, 1};
    REQUIRE(error_of(doc) == "layers[0].in_channels: is 1 but the input has 2 channels");
    doc = valid_model();
    doc["input"]["color"] = "cmyk";
    REQUIRE(error_of(doc) == "input.color: 'cmyk' is not \"grayscale\", \"rgb\" or \"none\"");
    doc = valid_model();
    doc["input"]["height"] = "28";
    REQUIRE(error_of(doc) == "input.height: expected an integer, got a string");
    doc = valid_model();
    doc["input"]["width"] = 0;
    REQUIRE(error_of(doc) == "input.width: 0 is less than 1");
}

TEST_CASE("unknown layer types and keys, mistyped fields") {
    json doc = valid_model();
    doc["layers"][2]["type"] = "gelu";
    REQUIRE(error_of(doc).rfind("layers[2].type: unknown layer type 'gelu' (known: conv2d, batch_norm2d,", 0) == 0);
    doc = valid_model();
    doc["layers"][0]["stide"] = {2, 2};
    REQUIRE(error_of(doc) == "layers[0].stide: unknown key for conv2d (a typo? see docs/model-format.md)");
    doc = valid_model();
    doc["layers"][0]["kernel_size"] = "3";
    REQUIRE(error_of(doc) == "layers[0].kernel_size: expected an integer, got a string");
    doc = valid_model();
    doc["layers"][0]["kernel_size"] = {3, 3, 3};
    REQUIRE(error_of(doc) == "layers[0].kernel_size: expected an integer or [height, width], got 3 values");
    doc = valid_model();
    doc["layers"][3]["ceil_mode"] = 1;
    REQUIRE(error_of(doc) == "layers[3].ceil_mode: expected true or false, got a number");
    doc = valid_model();
    doc["layers"][1]["eps"] = -1;
    REQUIRE(error_of(doc) == "layers[1].eps: must be positive");
    doc = valid_model();
    doc["layers"][0].erase("weight");
    REQUIRE(error_of(doc) == "layers[0].weight: required (a tensor of shape [2,1,3,3])");
    doc = valid_model();
    doc["layers"][1] = "relu";
    REQUIRE(error_of(doc) == "layers[1]: expected a layer object, got a string");
}

TEST_CASE("tensor data must match its shape and be finite") {
    json doc = valid_model();
    doc["layers"][0]["weight"]["data"].erase(0);
    REQUIRE(error_of(doc) == "layers[0].weight.data: 17 values, shape [2,1,3,3] needs 18");
    doc = valid_model();
    doc["layers"][0]["weight"]["shape"] = {2, 1, 5, 5};
    REQUIRE(error_of(doc) ==
            "layers[0].weight.shape: [2,1,5,5] does not match the layer's attributes, which need [2,1,3,3]");
    doc = valid_model();
    doc["layers"][5]["bias"]["data"][1] = "x";
    REQUIRE(error_of(doc) == "layers[5].bias.data: value 1 is a string, not a number");
    doc = valid_model();
    doc["layers"][5]["bias"]["data"][2] = 1e39;  // finite as a double, infinite as float32
    REQUIRE(error_of(doc) == "layers[5].bias.data: value 2 is not finite in float32");
    doc = valid_model();
    doc["layers"][1]["running_var"]["data"][0] = -1;
    REQUIRE(error_of(doc) == "layers[1].running_var: value 0 is negative");
    doc = valid_model();
    doc["layers"][0]["weight"]["dtype"] = "float16";
    REQUIRE(error_of(doc) == "layers[0].weight.dtype: expected \"float32\" or \"bfloat16\", got \"float16\"");
    doc["layers"][0]["weight"]["dtype"] = "float32";
    doc["layers"][0]["bias"]["dtype"] = "int8";
    REQUIRE(error_of(doc) == "layers[0].bias.dtype: expected \"float32\", got \"int8\"");
}

TEST_CASE("channels, features and sizes must fit the previous layer") {
    json doc = valid_model();
    doc["layers"][0]["in_channels"] = 3;
    doc["layers"][0]["weight"] = tensor({2, 3, 3, 3});
    REQUIRE(error_of(doc) == "layers[0].in_channels: is 3 but the input has 1 channel");
    doc = valid_model();
    doc["layers"][1]["num_features"] = 4;
    for (const char* k : {"weight", "bias", "running_mean", "running_var"}) doc["layers"][1][k] = tensor({4});
    REQUIRE(error_of(doc) == "layers[1].num_features: is 4 but the input has 2 channels");
    doc = valid_model();
    doc["layers"][5]["in_features"] = 5;
    doc["layers"][5]["weight"] = tensor({3, 5});
    REQUIRE(error_of(doc) == "layers[5].in_features: is 5 but the input has 2 features");
    doc = valid_model();
    doc["layers"].erase(4);  // dense straight after a feature map
    REQUIRE(error_of(doc) ==
            "layers[4].in_features: needs a vector input, got [2,3,3] (put a flatten or a global pool before it)");
}

TEST_CASE("kernels larger than the padded input, non-positive sizes and strides") {
    json doc = valid_model();
    doc["layers"][3]["kernel_size"] = 7;
    REQUIRE(error_of(doc) == "layers[3].kernel_size: kernel extent 7 is larger than the padded input height 6");
    doc = valid_model();
    doc["layers"][0]["out_channels"] = 0;
    REQUIRE(error_of(doc) == "layers[0].out_channels: 0 is less than 1");
    doc = valid_model();
    doc["layers"][0]["stride"] = {1, 0};
    REQUIRE(error_of(doc) == "layers[0].stride[1]: 0 is less than 1");
    doc = valid_model();
    doc["layers"][0]["padding"] = {-1, 0};
    REQUIRE(error_of(doc) == "layers[0].padding[0]: -1 is less than 0");
    doc = valid_model();
    doc["layers"][3]["padding"] = 2;
    REQUIRE(error_of(doc) ==
            "layers[3].padding: each pad must be smaller than the kernel, so that every window covers the input");
    doc = valid_model();
    doc["layers"][0]["groups"] = 2;
    REQUIRE(error_of(doc) == "layers[0].groups: in_channels 1 and out_channels 2 must both be divisible by groups 2");
}

TEST_CASE("labels must match the output, and the model must end in a vector") {
    json doc = valid_model();
    doc["labels"] = {"a", "b"};
    REQUIRE(error_of(doc) == "labels: 2 labels for 3 outputs");
    doc = valid_model();
    doc["labels"][1] = 7;
    REQUIRE(error_of(doc) == "labels[1]: expected a string, got a number");
    doc = valid_model();
    doc["layers"] = json::array({doc["layers"][0]});
    REQUIRE(error_of(doc).rfind("layers: the last layer outputs [2,6,6]; a classifier must end in a vector", 0) == 0);
}

TEST_CASE("declared sizes beyond the limits are refused before allocating") {
    Limits small;
    small.max_tensor_elements = 10;
    REQUIRE(error_of(valid_model(), small) ==
            "layers[0].weight.shape: shape [2,1,3,3] exceeds 10 values (Limits::max_tensor_elements = 10)");
    // A dense layer declaring 2^29 weights fails on its shape, without reading a single value.
    json doc = valid_model();
    doc["layers"][5]["out_features"] = int64_t{1} << 28;
    doc["layers"][5]["weight"] = {{"shape", {int64_t{1} << 28, 2}}, {"data", json::array()}};
    REQUIRE(error_of(doc) ==
            "layers[5].weight.shape: shape [268435456,2] exceeds 268435456 values (Limits::max_tensor_elements = "
            "268435456)");
    Limits few_layers;
    few_layers.max_layers = 3;
    REQUIRE(error_of(valid_model(), few_layers) == "layers: 7 layers exceed 3 (Limits::max_layers = 3)");
    Limits small_total;
    small_total.max_parameters = 30;
    REQUIRE(error_of(valid_model(), small_total) ==
            "layers[5].weight: the model's tensors exceed 30 values in total (Limits::max_parameters = 30)");
    Limits small_maps;
    small_maps.max_activation_elements = 50;
    REQUIRE(error_of(valid_model(), small_maps) ==
            "layers[0]: output shape [2,6,6] exceeds 50 values (Limits::max_activation_elements = 50)");
    // A convolution's scratch counts as an activation: 640 values (see above).
    Limits small_scratch;
    small_scratch.max_activation_elements = 600;
    REQUIRE(error_of(valid_model(), small_scratch) ==
            "layers[0]: its scratch buffer (im2col) for a 1x6x6 input would hold 640 values, more than 600 "
            "(Limits::max_activation_elements = 600)");
    doc = valid_model();
    doc["input"]["height"] = 100000;
    REQUIRE(error_of(doc) == "input.height: 100000 is larger than 16384 (Limits::max_input_side = 16384)");
}

TEST_CASE("layer names are unique; a layer may read any earlier layer by name") {
    json doc = valid_model();
    doc["layers"][5]["name"] = "conv1";
    REQUIRE(error_of(doc) == "layers[5].name: 'conv1' is already used by another layer");
    doc = valid_model();
    doc["layers"][2]["input"] = "nope";
    REQUIRE(error_of(doc) == "layers[2].input: no earlier layer is named 'nope'");
    // The relu reads conv1 directly, skipping the batch norm: a graph, not only a chain.
    doc = valid_model();
    doc["layers"][2]["input"] = "conv1";
    const LoadedModel model = parse_model(doc.dump());
    REQUIRE(model.graph.nodes()[2].inputs == std::vector<int>{0});
}

TEST_CASE("recorded tests: shapes checked at load, re-run by verify") {
    json doc = valid_model();
    const LoadedModel plain = parse_model(doc.dump());
    Tensor x({1, 1, 6, 6});
    for (int64_t i = 0; i < x.size(); ++i) x.data[i] = static_cast<float>(i % 5) - 2;
    const Tensor y = plain.graph.forward(x);
    doc["tests"] = {
        {{"input", {{"shape", {1, 6, 6}}, {"data", x.data}}}, {"output", {{"shape", {3}}, {"data", y.data}}}}};
    const LoadedModel model = parse_model(doc.dump());
    REQUIRE(model.tests.size() == 1);
    VerifyReport report = verify(model, model.tolerance);
    REQUIRE(report.passed);
    REQUIRE(report.largest_difference == 0);

    // A recorded value off by 1e-3 fails, and the report says where.
    std::vector<float> wrong = y.data;
    wrong[2] += 1e-3f;
    doc["tests"][0]["output"]["data"] = wrong;
    report = verify(parse_model(doc.dump()), kDefaultVerifyTolerance);
    REQUIRE_FALSE(report.passed);
    REQUIRE(report.worst_case == 0);
    REQUIRE(report.worst_index == 2);
    REQUIRE(report.largest_difference == Approx(1e-3).epsilon(1e-3));

    doc["tests"][0]["input"]["shape"] = {1, 5, 6};
    REQUIRE(error_of(doc) == "tests[0].input.shape: [1,5,6] does not match the model input, which is [1,6,6]");
    doc["tests"][0]["input"]["shape"] = {1, 6, 6};
    doc["tests"][0].erase("output");
    REQUIRE(error_of(doc) == "tests[0].output: required");
}

TEST_CASE("flatten after a global pool is accepted and changes nothing") {
    json doc = valid_model();
    doc["layers"].insert(doc["layers"].begin() + 5, json{{"type", "flatten"}});
    const LoadedModel with_flatten = parse_model(doc.dump());
    const LoadedModel without = parse_model(valid_model().dump());
    Tensor x({1, 1, 6, 6});
    for (int64_t i = 0; i < x.size(); ++i) x.data[i] = static_cast<float>(i % 7) - 3;
    gapnet::test::require_values(with_flatten.graph.forward(x).data, without.graph.forward(x).data, 0);
}

TEST_CASE("tensor numbers load as nlohmann's double, cast to float, bit for bit") {
    // Exponents, signs, denormals, integers past int64 and uint64, digits past a double's precision.
    const std::vector<std::string> numbers = {
        "0",
        "-0",
        "0.0",
        "-0.0",
        "1.5e3",
        "2.5E-3",
        "1e+2",
        "-7.25e-1",
        "3.4028234663852886e38",
        "1e-45",
        "1.4e-45",
        "7e-46",
        "1e-40",
        "1e-310",
        "4.9e-324",
        "1e-400",
        "-1e-400",
        "123456789",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "0.1000000000000000055511151231257827021181583404541015625000000000000000000001",
        "3.14159265358979323846264338327950288419716939937510582097494459230781640628620899",
        "0.000000000000000000000000000000000000000000000000000000000000000000000000000000001234",
        std::string("1").append(30, '0'),
        std::string("0.").append(400, '0').append("1e400")};
    for (const std::string& number : numbers) {
        INFO(number);
        const std::vector<float> bias = dense_bias(with_bias_data("[" + number + ", 1, 2]"));
        REQUIRE(same_bits(bias[0], through_nlohmann(number)));
    }
    // Some of them, by value: -0 is the integer 0 (positive); -0.0 keeps its sign.
    REQUIRE(same_bits(dense_bias(with_bias_data("[-0, -0.0, 1.5e3]"))[0], 0.0f));
    REQUIRE(same_bits(dense_bias(with_bias_data("[-0, -0.0, 1.5e3]"))[1], -0.0f));
    REQUIRE(dense_bias(with_bias_data("[-0, -0.0, 1.5e3]"))[2] == 1500.0f);
    const std::vector<float> small = dense_bias(with_bias_data("[1e-45, 1e-400, 18446744073709551615]"));
    REQUIRE(small[0] == std::numeric_limits<float>::denorm_min());
    REQUIRE(small[1] == 0.0f);
    REQUIRE(small[2] == 18446744073709551616.0f);
    // Rounded twice, as before: to the double 1 + 2^-24 (this is just above it), then to the even
    // float 1. Straight to float it would round up, to 1 + 2^-23.
    const std::string just_above_a_tie = "1.00000005960464477539147";
    REQUIRE(std::strtof(just_above_a_tie.c_str(), nullptr) == 1.0f + 0x1p-23f);
    REQUIRE(dense_bias(with_bias_data("[" + just_above_a_tie + ", 0, 0]"))[0] == 1.0f);
}

TEST_CASE("numbers that JSON or float32 cannot hold are refused as before") {
    REQUIRE(error_of_text(with_bias_data("[1, 2, 1e39]")) == "layers[5].bias.data: value 2 is not finite in float32");
    REQUIRE(error_of_text(with_bias_data("[1, -3.5e38, 2]")) ==
            "layers[5].bias.data: value 1 is not finite in float32");
    // Beyond a double, as nlohmann's parser did, the file is refused; so is what JSON does not write as a
    // number, each at the byte where it breaks the grammar (`at`, counted from the data's first byte).
    const std::string value = "a value (an object, array, string, number, true, false or null)";
    const struct {
        const char* data;
        size_t at;
        std::string problem;
    } bad_numbers[] = {
        {"[1, 1e400, 2]", 4, "the number 1e400 is beyond the range of a double"},
        {"[1, -1e400, 2]", 4, "the number -1e400 is beyond the range of a double"},
        {"[01, 1, 2]", 1, "a number may not start with the digit 0 followed by another digit"},
        {"[1, -00, 2]", 4, "a number may not start with the digit 0 followed by another digit"},
        {"[1., 1, 2]", 3, "expected a digit after the decimal point, got ','"},
        {"[.5, 1, 2]", 1, "expected " + value + ", got '.'"},
        {"[1e, 1, 2]", 3, "expected a digit in the exponent, got ','"},
        {"[1E+, 1, 2]", 4, "expected a digit in the exponent, got ','"},
        {"[-, 1, 2]", 2, "expected a digit after '-', got ','"},
        {"[+1, 1, 2]", 1, "expected " + value + ", got '+'"},
        {"[1, 2, 3,]", 9, "expected " + value + ", got ']'"},
        {"[0x10, 1, 2]", 2, "expected ',' or ']', got 'x'"},
        {"[NaN, 1, 2]", 1, "expected " + value + ", got 'N'"},
        {"[Infinity, 1, 2]", 1, "expected " + value + ", got 'I'"},
        {"[1 2 3]", 3, "expected ',' or ']', got '2'"},
    };
    for (const auto& [data, at, problem] : bad_numbers) {
        INFO(data);
        const std::string text = with_bias_data(data);
        const size_t byte = text.find(data) + at;
        REQUIRE(error_of_text(text) == "not valid JSON at line 1, column " + std::to_string(byte + 1) + " (byte " +
                                           std::to_string(byte) + "): " + problem);
    }
}

TEST_CASE("tensor data of the wrong kind is named") {
    REQUIRE(error_of_text(with_bias_data("[1, 2, null]")) == "layers[5].bias.data: value 2 is null, not a number");
    REQUIRE(error_of_text(with_bias_data("[[1], 2, 3]")) == "layers[5].bias.data: value 0 is an array, not a number");
    REQUIRE(error_of_text(with_bias_data("[1, {\"data\": [1]}, \"3\"]")) ==
            "layers[5].bias.data: value 1 is an object, not a number");
    REQUIRE(error_of_text(with_bias_data("[1, 2, 3, \"x\"]")) == "layers[5].bias.data: 4 values, shape [3] needs 3");
    REQUIRE(error_of_text(with_bias_data("{}")) == "layers[5].bias.data: expected an array of numbers, got an object");
    REQUIRE(error_of_text(with_bias_data("7")) == "layers[5].bias.data: expected an array of numbers, got a number");
    REQUIRE(error_of_text(with_bias_data("\"AAAA\"")) ==
            "layers[5].bias.data: expected an array of numbers, got a string");
    REQUIRE(error_of_text(with_bias_data("[1, 2, 3]", ", \"encoding\": \"base64\"")) ==
            "layers[5].bias.data: expected a base64 string, got an array");
    REQUIRE(error_of_text(with_bias_data("null", ", \"encoding\": \"base64\"")) ==
            "layers[5].bias.data: expected a base64 string, got null");
}

TEST_CASE("base64 data: padding, escapes, misplaced padding") {
    const auto base64_bias = [](const std::string& text) { return with_bias_data(text, ", \"encoding\": \"base64\""); };
    // 3 floats are 12 bytes, 16 characters without padding; base64_of's own output loads as is.
    const std::vector<float> values = {1.5f, -0.0f, std::numeric_limits<float>::denorm_min()};
    const std::string text = base64_of(values);
    REQUIRE(text.size() == 16);
    const std::vector<float> loaded = dense_bias(base64_bias(in_quotes(text)));
    REQUIRE(loaded.size() == 3);
    for (size_t i = 0; i < 3; ++i) REQUIRE(same_bits(loaded[i], values[i]));
    // A JSON string is base64 once unescaped: \u0041 is 'A' and \/ is '/'.
    const std::string zeros = "AAAAAAAAAAAAAAAA";
    const std::string escaped = std::string("\\u0041").append(zeros, 1, 14).append("\\/");
    REQUIRE(dense_bias(base64_bias(in_quotes(escaped)))[2] != 0.0f);  // the '/' sets bits in the last byte
    REQUIRE(dense_bias(base64_bias(in_quotes(escaped)))[0] == 0.0f);
    // Padding where none belongs: 16 characters, but "==" leaves 14, which make 10 bytes.
    REQUIRE(error_of_text(base64_bias(in_quotes(zeros.substr(0, 14) + "=="))) ==
            "layers[5].bias.data: decodes to 10 bytes, 3 float32 values need 12");
    // '=' inside the text, a character outside the alphabet, a non-ASCII one.
    REQUIRE(error_of_text(base64_bias("\"AAAA=AAAAAAAAAAA\"")) ==
            "layers[5].bias.data: invalid base64 character at offset 4");
    REQUIRE(error_of_text(base64_bias("\"AAAAAAAAAAAAAA-_\"")) ==
            "layers[5].bias.data: invalid base64 character at offset 14");
    // A two-byte UTF-8 character counts as two characters, as it did (the string's bytes).
    REQUIRE(error_of_text(base64_bias("\"AAAAAAAAAAAAAA\\u00e9\"")) ==
            "layers[5].bias.data: invalid base64 character at offset 14");
    REQUIRE(error_of_text(base64_bias("\"AAAA\"")) ==
            "layers[5].bias.data: 4 base64 characters, 3 float32 values need 16");
    // 2 floats are 8 bytes: 12 characters, the last one '='.
    json doc = valid_model();
    doc["layers"][0]["bias"] = {{"shape", {2}}, {"encoding", "base64"}, {"data", base64_of({-2.0f, 0.75f})}};
    REQUIRE(doc["layers"][0]["bias"]["data"] == "AAAAwAAAQD8=");
    REQUIRE(dynamic_cast<const Conv2d&>(*parse_model(doc.dump()).graph.nodes()[0].layer).bias() ==
            std::vector<float>{-2.0f, 0.75f});
}

TEST_CASE("the JSON reader accepts exactly what nlohmann's parser, with the loader's rules, accepts") {
    const std::string deep_value = std::string(64, '[') + "1" + std::string(64, ']');
    const std::string deep_empty = std::string(65, '[') + std::string(65, ']');
    const std::string too_deep_value = std::string(65, '[') + "1" + std::string(65, ']');
    const std::string too_deep_empty = std::string(66, '[') + std::string(66, ']');
    const std::vector<std::string> texts = {
        "{}", "[]", "1", "-0", "\"s\"", "true", "null", " {\"a\" : [ 1 , 2 ] } ", "\xEF\xBB\xBF{}", "\xEF\xBB{}",
        std::string("{}\0garbage", 10), std::string("[1]\0", 4), std::string("\0{}", 3), "{} x", "{}{}", "",
        "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1},\"c\":{\"b\":1}}", "{\"data\":1,\"data\":[2]}", "{\"a\":1,}", "[1,]",
        "[,1]", "{\"a\" 1}", "{1:2}", "[1 2]", "tru", "nul", "True", "\"\\u00e9\\ud83d\\ude00\"", "\"\\ud83d\"",
        "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\u00G0\"", "\"\\x\"", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"",
        "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xE0\x9F\xBF\"", "\"\xF0\x8F\xBF\xBF\"",
        "\"\xC3\"", "\"\x7F\"", "\"tab\there\"", "\"unterminated",
        // Long strings are checked 8 bytes at a time: odd bytes in the first word, later ones, the tail.
        "\"0123456789abcdef\\n0123456789\"",
        "\"0123456789abcdef\x1F"
        "0123456789\"",
        "\"0123456789abcdef\x7F"
        "0123456789\"",
        "\"01234567\xC3\xA9"
        "abcdef01234567\"",
        "\"0123456\xC3\xA9"
        "abcdef01234567\"",
        "\"0123456\xC3"
        "abcdef01234567\"",
        "\"0123456789abcde \x1F\"", "\"0123456789abcde\x20\\\"\"", "\"0123456789abcdef\\\"\"", "{\"data\":\"AAAA\"}",
        "{\"data\":[1,\"x\",[2,{}]]}", "{\"data\":[01]}", "{\"data\":[1e400]}", "{\"data\":[1e-400]}",
        "{\"data\":\"\\ud800\"}", "[1e309]", "[-1e309]", "[123456789012345678901234567890]", deep_value, deep_empty,
        too_deep_value, too_deep_empty, "{\"k\":" + std::string(64, '[') + std::string(64, ']') + "}",
        "{\"k\":" + std::string(64, '[') + "{}" + std::string(64, ']') + "}",
        "{\"data\":" + std::string(63, '[') + "[1]" + std::string(63, ']') + "}",
        "{\"data\":" + std::string(64, '[') + "[1]" + std::string(64, ']') + "}"};
    for (const std::string& text : texts) {
        INFO(text);
        const std::optional<ModelDocument> doc = document_of(text);
        REQUIRE(doc.has_value() == nlohmann_accepts(text));
        if (doc && text.find("\"data\"") == std::string::npos) REQUIRE(doc->tree == json::parse(text));
    }
    REQUIRE(document_of(deep_value));
    REQUIRE(document_of(deep_empty));
    REQUIRE_FALSE(document_of(too_deep_value));
    REQUIRE_FALSE(document_of(too_deep_empty));
}

TEST_CASE("every \"data\" array or string is decoded, wherever it is; the rest of the tree is nlohmann's") {
    std::optional<ModelDocument> doc = document_of(
        "{\"metadata\": {\"data\": \"not base64!\", \"n\": [-1, 18446744073709551615, 1.5]}, \"data\": [1, 2.5]}");
    REQUIRE(doc);
    const json& n = doc->tree["metadata"]["n"];
    REQUIRE(n[0].is_number_integer());
    REQUIRE(n[1].is_number_unsigned());
    REQUIRE(n[1].get<uint64_t>() == UINT64_MAX);
    REQUIRE(n[2].is_number_float());
    TensorData* top = doc->tensor_data_of(doc->tree["data"]);
    REQUIRE(top);
    REQUIRE(top->source == TensorData::Source::number_array);
    REQUIRE(top->values == std::vector<float>{1.0f, 2.5f});
    TensorData* text = doc->tensor_data_of(doc->tree["metadata"]["data"]);
    REQUIRE(text);
    REQUIRE(text->source == TensorData::Source::base64_string);
    REQUIRE(text->invalid_character == size_t{3});
    REQUIRE(doc->tensor_data_of(n) == nullptr);

    // A "data" inside an element of another: each keeps its own numbers.
    doc = document_of("[{\"data\": [1, {\"data\": [5, 6]}, 3]}, {\"data\": [2, 4]}]");
    REQUIRE(doc);
    REQUIRE(doc->tensor_data_of(doc->tree[0]["data"])->first_non_number == size_t{1});
    REQUIRE(doc->tensor_data_of(doc->tree[1]["data"])->values == std::vector<float>{2.0f, 4.0f});
    REQUIRE(doc->tensor_data.size() == 3);
    REQUIRE(doc->tensor_data[0].values == std::vector<float>{5.0f, 6.0f});  // the nested one, read first
}

// The reader's message for a text it refuses ("(no error)" for one it reads).
std::string reader_error(const std::string& text) {
    try {
        read_model_document(text);
    } catch (const Error& e) {
        return e.message();
    }
    return "(no error)";
}

TEST_CASE("each way a text breaks JSON is named, with its line, column and byte") {
    const std::string value = "a value (an object, array, string, number, true, false or null)";
    const std::string truncated = "the end of the text (is the file truncated?)";
    const auto at = [](int line, int column, int byte, const std::string& problem) {
        return "not valid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) + " (byte " +
               std::to_string(byte) + "): " + problem;
    };
    // Structure: what was expected where the text breaks, and what is there instead.
    REQUIRE(reader_error("[1, ") == at(1, 5, 4, "expected " + value + ", got " + truncated));
    REQUIRE(reader_error("{} x") == at(1, 4, 3, "expected the end of the text after the top-level value, got 'x'"));
    REQUIRE(reader_error("{1: 2}") == at(1, 2, 1, "expected a key (a string in double quotes) or '}', got '1'"));
    REQUIRE(reader_error("{\"a\": 1,}") == at(1, 9, 8, "expected a key (a string in double quotes), got '}'"));
    REQUIRE(reader_error("{\n  \"a\": 1,\n  \"b\" 2}") == at(3, 7, 18, "expected ':' after the key, got '2'"));
    REQUIRE(reader_error("{\"a\": 1 \"b\": 2}") == at(1, 9, 8, "expected ',' or '}', got '\"'"));
    REQUIRE(reader_error("[[1]\r\n  }") == at(2, 3, 8, "expected ',' or ']', got '}'"));
    REQUIRE(reader_error("[tru]") == at(1, 5, 4, "expected true, got ']'"));
    REQUIRE(reader_error("nul") == at(1, 4, 3, "expected null, got " + truncated));
    REQUIRE(reader_error("[True]") == at(1, 2, 1, "expected " + value + ", got 'T'"));
    // A NUL byte ends the text after the value, as nlohmann's lexer reads it; before it, it is a byte.
    REQUIRE(reader_error(std::string("{}\0garbage", 10)) == "(no error)");
    REQUIRE(reader_error(std::string("[\0]", 3)) == at(1, 2, 1, "expected " + value + ", got byte 0x00"));
    // A byte order mark is skipped, but counted in the location.
    REQUIRE(reader_error("\xEF\xBB\xBF{}") == "(no error)");
    REQUIRE(reader_error("\xEF\xBB\xBF[,") == at(1, 5, 4, "expected " + value + ", got ','"));
    // Strings.
    REQUIRE(reader_error("[\"abc") == at(1, 6, 5, "expected '\"' to end the string, got " + truncated));
    REQUIRE(reader_error("\"ab\tc\"") == at(1, 4, 3, "a control character (byte 0x09) must be escaped in a string"));
    REQUIRE(reader_error("\"a\\x\"") ==
            at(1, 4, 3, "expected an escape after '\\' (one of \" \\ / b f n r t u), got 'x'"));
    REQUIRE(reader_error("\"a\\") == at(1, 4, 3, "expected an escape after '\\', got " + truncated));
    REQUIRE(reader_error("\"\\u00G0\"") == at(1, 6, 5, "expected 4 hexadecimal digits after \\u, got 'G'"));
    REQUIRE(reader_error("\"\\u00") == at(1, 6, 5, "expected 4 hexadecimal digits after \\u, got " + truncated));
    REQUIRE(reader_error("\"x\\ude00\"") == at(1, 3, 2, "\\uDE00 is a low surrogate with no high surrogate before it"));
    REQUIRE(reader_error("\"\\ud83d\"") ==
            at(1, 8, 7, "expected a low surrogate (\\uDC00 to \\uDFFF) after the high surrogate \\uD83D, got '\"'"));
    REQUIRE(reader_error("\"\\ud83d\\u0041\"") ==
            at(1, 8, 7, "expected a low surrogate (\\uDC00 to \\uDFFF) after the high surrogate \\uD83D, got \\u0041"));
    REQUIRE(reader_error("\"\xC0\xAF\"") ==
            at(1, 2, 1, "ill-formed UTF-8 in a string: byte 0xc0 cannot start a character"));
    REQUIRE(reader_error("\"\xED\xA0\x80\"") ==
            at(1, 3, 2, "ill-formed UTF-8 in a string: byte 0xa0 cannot follow byte 0xed"));  // a surrogate
    REQUIRE(reader_error("\"\xE2\x82") == at(1, 4, 3, "expected the rest of a UTF-8 character, got " + truncated));
    // Nesting, located where the level past the bound opens.
    REQUIRE(reader_error("{\"k\": " + std::string(70, '[')) ==
            "JSON nested deeper than 64 levels, at line 1, column 71 (byte 70)");
    // A repeated key, located by the JSON path of its object, through arrays and "data" arrays.
    REQUIRE(reader_error("{\"l\": [{}, {\"b\": {\"k\": 1, \"k\": 2}}]}") ==
            "l[1].b: key \"k\" appears twice in this object (JSON keys must be unique)");
    REQUIRE(reader_error("[{\"data\": [1, {\"x\": 1, \"x\": 2}]}]") ==
            "[0].data[1]: key \"x\" appears twice in this object (JSON keys must be unique)");
}

namespace {

// A bfloat16 tensor of `values` (rounded), as the format stores it: base64 of little-endian 16-bit values.
json bfloat16_tensor(const Shape& shape, const std::vector<float>& values) {
    std::vector<unsigned char> bytes;
    for (float v : values) {
        const uint16_t b = to_bfloat16(v);
        bytes.push_back(static_cast<unsigned char>(b & 0xff));
        bytes.push_back(static_cast<unsigned char>(b >> 8));
    }
    return {{"shape", shape},
            {"dtype", "bfloat16"},
            {"encoding", "base64"},
            {"data", encode_base64(bytes.data(), bytes.size())}};
}

}  // namespace

TEST_CASE("version 2: bfloat16 weights widened exactly, the layer's precision bfloat16") {
    json doc = valid_model();
    doc["version"] = 2;
    // 18 conv weights, one of them halfway between two bfloat16 values (1 + 2^-8: to the even 1).
    std::vector<float> w(18);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.3f + 0.01f * static_cast<float>(i);
    w[4] = 1.0f + 0x1p-8f;
    doc["layers"][0]["weight"] = bfloat16_tensor({2, 1, 3, 3}, w);
    const LoadedModel model = parse_model(doc.dump());
    const auto& conv = dynamic_cast<const Conv2d&>(*model.graph.nodes()[0].layer);
    REQUIRE(conv.precision() == Precision::bfloat16);
    REQUIRE(conv.weight()[4] == 1.0f);
    for (size_t i = 0; i < w.size(); ++i) REQUIRE(conv.weight()[i] == round_to_bfloat16(w[i]));
    REQUIRE(conv.parameter_bytes() == 2 * 18 + 4 * 2);                         // bfloat16 weights, float32 bias
    REQUIRE(model.graph.nodes()[5].layer->precision() == Precision::float32);  // the dense layer
    REQUIRE(model.tolerance == kDefaultVerifyTolerance);

    // An odd count of values: the last 16 bits of the last base64 group.
    doc["layers"][5]["weight"] = bfloat16_tensor({3, 2}, {1.5f, -2.0f, 0.25f, 3.0f, -0.125f, 7.0f});
    const LoadedModel dense = parse_model(doc.dump());
    const auto& fc = dynamic_cast<const Dense&>(*dense.graph.nodes()[5].layer);
    REQUIRE(fc.weight() == std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f, -0.125f, 7.0f});
    REQUIRE(fc.precision() == Precision::bfloat16);
}

TEST_CASE("bfloat16 and tolerance are refused where the format does not allow them") {
    json doc = valid_model();
    doc["layers"][0]["weight"] = bfloat16_tensor({2, 1, 3, 3}, std::vector<float>(18, 0.5f));
    REQUIRE(error_of(doc) == "layers[0].weight.dtype: bfloat16 tensors need \"version\": 2 or later");
    doc["version"] = 2;
    REQUIRE(error_of(doc) == "(no error)");
    doc["layers"][0]["bias"] = bfloat16_tensor({2}, {0.5f, 0.5f});
    REQUIRE(error_of(doc) == "layers[0].bias.dtype: must be \"float32\": only a layer's weights may be bfloat16");
    doc["layers"][0]["bias"] = tensor({2});
    doc["layers"][0]["weight"]["encoding"] = "json";
    doc["layers"][0]["weight"]["data"] = std::vector<float>(18, 0.5f);
    REQUIRE(error_of(doc) ==
            "layers[0].weight.encoding: a bfloat16 tensor is stored as base64 (\"encoding\": \"base64\")");
    doc["layers"][0]["weight"] = bfloat16_tensor({2, 1, 3, 3}, std::vector<float>(17, 0.5f));  // 17 values for 18
    REQUIRE(error_of(doc) == "layers[0].weight.data: decodes to 34 bytes, 18 bfloat16 values need 36");
    doc["layers"][0]["weight"] = bfloat16_tensor({2, 1, 3, 3}, std::vector<float>(18, 0.5f));
    doc["layers"][0]["weight"]["dtype"] = "float16";
    REQUIRE(error_of(doc) == "layers[0].weight.dtype: expected \"float32\" or \"bfloat16\", got \"float16\"");
    doc["layers"][0]["weight"]["dtype"] = "bfloat16";

    doc["tolerance"] = 0;
    REQUIRE(error_of(doc) == "tolerance: must be above 0 and at most 1");
    doc["tolerance"] = 2;
    REQUIRE(error_of(doc) == "tolerance: must be above 0 and at most 1");
    doc["tolerance"] = 1e-3;
    REQUIRE(parse_model(doc.dump()).tolerance == 1e-3);
    doc["version"] = 1;
    doc["layers"][0]["weight"] = tensor({2, 1, 3, 3});
    REQUIRE(error_of(doc) == "tolerance: needs \"version\": 2 or later");
    doc["version"] = 3;
    REQUIRE(error_of(doc) == "version: version 3 is newer than this gapnet reads (2): upgrade gapnet");
}

TEST_CASE("quantize to bfloat16: weights rounded, tests kept, the tolerance measured and recorded") {
    json doc = valid_model();
    const LoadedModel original = parse_model(doc.dump());
    Tensor x({1, 1, 6, 6});
    for (int64_t i = 0; i < x.size(); ++i) x.data[i] = static_cast<float>(i % 7) * 0.3f - 1.0f;
    const Tensor y = original.graph.forward(x);
    doc["tests"] = {
        {{"input", {{"shape", {1, 6, 6}}, {"data", x.data}}}, {"output", {{"shape", {3}}, {"data", y.data}}}}};

    const QuantizedModel q = quantize_model(doc.dump(), Precision::bfloat16);
    REQUIRE(q.layers == 2);  // conv1 and fc
    REQUIRE(q.cases == 1);
    const LoadedModel model = parse_model(q.text);
    const auto& conv = dynamic_cast<const Conv2d&>(*model.graph.nodes()[0].layer);
    const auto& conv0 = dynamic_cast<const Conv2d&>(*original.graph.nodes()[0].layer);
    REQUIRE(conv.precision() == Precision::bfloat16);
    for (size_t i = 0; i < conv.weight().size(); ++i) REQUIRE(conv.weight()[i] == round_to_bfloat16(conv0.weight()[i]));
    REQUIRE(conv.bias() == conv0.bias());  // biases stay float32
    REQUIRE(model.graph.nodes()[5].layer->precision() == Precision::bfloat16);
    // The largest difference is the quantized model's own, against the recorded float32 outputs.
    const Tensor z = model.graph.forward(x);
    double largest = 0;
    for (size_t i = 0; i < 3; ++i) largest = std::max(largest, std::abs(static_cast<double>(z.data[i]) - y.data[i]));
    REQUIRE(q.largest_difference == Approx(largest).margin(1e-12));
    REQUIRE(largest > 0);  // the weights did change
    REQUIRE(q.tolerance >= 2 * largest);
    REQUIRE(q.tolerance <= 2.2 * std::max(largest, kDefaultVerifyTolerance / 2));
    REQUIRE(model.tolerance == q.tolerance);
    REQUIRE(verify(model, model.tolerance).passed);
    REQUIRE(json::parse(q.text)["version"] == 2);

    // Quantizing again changes nothing but keeps the file valid.
    const QuantizedModel again = quantize_model(q.text, Precision::bfloat16);
    REQUIRE(parse_model(again.text).graph.nodes()[0].layer->precision() == Precision::bfloat16);
}
