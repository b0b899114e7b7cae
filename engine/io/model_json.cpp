// The JSON model loader. nlohmann/json stays inside it (this file and model_document.h, which reads
// the text): the engine sees a LoadedModel.
#include "model_json.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "../error.h"
#include "../kernels/bfloat16.h"
#include "../layer_registry.h"
#include "file.h"
#include "model_document.h"

namespace gapnet {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxListLength = 8;  // kernel sizes, strides, paddings: at most 4 values
constexpr size_t kMaxTests = 100;     // recorded test cases in one file

std::string describe(json::value_t type) {
    switch (type) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        case json::value_t::number_float: return "a number with a fraction or exponent";
        default: return "a number";
    }
}

std::string describe(const json& v) { return describe(v.type()); }

// Rejects keys of `object` that are not in `known`, naming the first one.
void reject_unknown_keys(const json& object, const std::set<std::string>& known, const std::string& where,
                         const std::string& what) {
    for (const auto& [key, value] : object.items())
        if (!known.count(key))
            throw Error("unknown key for " + what + " (a typo? see docs/model-format.md)",
                        where.empty() ? key : where + "." + key);
}

// An integer from min to max; past max when `limit` names the Limits field max is, the message says
// which limit it is and how to raise it.
int64_t read_integer(const json& v, const std::string& where, int64_t min, int64_t max, const char* limit = nullptr) {
    if (!v.is_number_integer()) throw Error("expected an integer, got " + describe(v), where);
    auto larger = [&](const std::string& n) {
        return Error(n + " is larger than " + std::to_string(max) + (limit ? " " + limit_note(limit, max) : ""), where);
    };
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max))
        throw larger(std::to_string(v.get<uint64_t>()));
    const int64_t n = v.get<int64_t>();
    if (n < min) throw Error(std::to_string(n) + " is less than " + std::to_string(min), where);
    if (n > max) throw larger(std::to_string(n));
    return n;
}

double read_number(const json& v, const std::string& where) {
    if (!v.is_number()) throw Error("expected a number, got " + describe(v), where);
    const double d = v.get<double>();
    if (!std::isfinite(d)) throw Error("is not finite", where);
    return d;
}

// The index of the first infinity or NaN in `values`, or values.size(). A block at a time with no
// early exit, which the compiler vectorizes: a model's tensors are tens of millions of floats.
size_t first_non_finite(const std::vector<float>& values) {
    constexpr size_t kBlock = 1024;
    for (size_t start = 0; start < values.size(); start += kBlock) {
        const size_t end = std::min(values.size(), start + kBlock);
        bool any = false;  // an exponent of all ones
        for (size_t i = start; i < end; ++i) any |= (std::bit_cast<uint32_t>(values[i]) & 0x7F800000u) == 0x7F800000u;
        if (any)
            for (size_t i = start; i < end; ++i)
                if (!std::isfinite(values[i])) return i;
    }
    return values.size();
}

// The `count` bfloat16 values of a base64 tensor, decoded as float32 (TensorData::values: each holds
// the little-endian bytes of two), widened to float32.
std::vector<float> widened_bfloat16(const std::vector<float>& pairs, int64_t count) {
    std::vector<float> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); ++i) {
        const auto bits = std::bit_cast<uint32_t>(pairs[i / 2]);  // the decoder read the bytes little-endian
        values[i] = from_bfloat16(static_cast<uint16_t>(i % 2 == 0 ? bits & 0xffffu : bits >> 16));
    }
    return values;
}

// A tensor object ({"shape", "data"[, "dtype", "encoding"]}) whose shape must be `shape` (which
// `shape_source` names in the error, e.g. "the model input, which is"); its values are counted
// against max_parameters through `parameters` when that is given.
// `precision`: where given, the tensor may also be stored in bfloat16 (in a file of `version` 2 or
// later), and its precision is set there.
std::vector<float> read_tensor(ModelDocument& doc, const json& v, const std::string& where, const Shape& shape,
                               const Limits& limits, int64_t* parameters, int64_t version = 1,
                               Precision* precision = nullptr,
                               const char* shape_source = "the layer's attributes, which need") {
    if (!v.is_object())
        throw Error("expected a tensor object {\"shape\": [...], \"data\": ...}, got " + describe(v), where);
    reject_unknown_keys(v, {"shape", "data", "dtype", "encoding"}, where, "a tensor");

    // The declared shape must be the one the layer's attributes (or the model) imply.
    const auto shape_it = v.find("shape");
    if (shape_it == v.end()) throw Error("required", where + ".shape");
    if (!shape_it->is_array() || shape_it->size() > kMaxListLength)
        throw Error("expected an array of sizes", where + ".shape");
    Shape declared;
    for (size_t i = 0; i < shape_it->size(); ++i)
        declared.push_back(
            read_integer((*shape_it)[i], where + ".shape[" + std::to_string(i) + "]", 1, limits.max_tensor_elements));
    if (declared != shape)
        throw Error(to_string(declared) + " does not match " + shape_source + " " + to_string(shape), where + ".shape");
    int64_t count;
    try {
        count = element_count(shape, limits.max_tensor_elements);
    } catch (const Error&) {
        throw Error("shape " + to_string(shape) + " exceeds " + std::to_string(limits.max_tensor_elements) +
                        " values " + limit_note("max_tensor_elements", limits.max_tensor_elements),
                    where + ".shape");
    }
    if (parameters) {
        if (count > limits.max_parameters - *parameters)
            throw Error("the model's tensors exceed " + std::to_string(limits.max_parameters) + " values in total " +
                            limit_note("max_parameters", limits.max_parameters),
                        where);
        *parameters += count;
    }

    Precision stored = Precision::float32;
    if (const auto dtype = v.find("dtype"); dtype != v.end() && *dtype != "float32") {
        const std::string got = dtype->is_string() ? "\"" + dtype->get<std::string>() + "\"" : describe(*dtype);
        if (*dtype != "bfloat16")
            throw Error((precision ? "expected \"float32\" or \"bfloat16\", got " : "expected \"float32\", got ") + got,
                        where + ".dtype");
        if (!precision) throw Error("must be \"float32\": only a layer's weights may be bfloat16", where + ".dtype");
        if (version < 2) throw Error("bfloat16 tensors need \"version\": 2 or later", where + ".dtype");
        stored = Precision::bfloat16;
    }
    const int64_t value_bytes = precision_bytes(stored);
    const char* const type_name = stored == Precision::bfloat16 ? " bfloat16" : " float32";
    std::string encoding = "json";
    if (const auto e = v.find("encoding"); e != v.end()) {
        if (!e->is_string() || (*e != "json" && *e != "base64"))
            throw Error("expected \"json\" or \"base64\"", where + ".encoding");
        encoding = e->get<std::string>();
    }
    if (stored != Precision::float32 && encoding != "base64")
        throw Error("a bfloat16 tensor is stored as base64 (\"encoding\": \"base64\")", where + ".encoding");
    const auto data_it = v.find("data");
    if (data_it == v.end()) throw Error("required", where + ".data");
    const std::string data_where = where + ".data";
    TensorData* data = doc.tensor_data_of(*data_it);  // set for any array or string
    if (encoding == "base64") {
        if (!data || data->source != TensorData::Source::base64_string)
            throw Error("expected a base64 string, got " + (data ? describe(json::value_t::array) : describe(*data_it)),
                        data_where);
        const int64_t bytes = count * value_bytes;
        const int64_t expected_chars = (bytes + 2) / 3 * 4;
        if (static_cast<int64_t>(data->length) != expected_chars)
            throw Error(std::to_string(data->length) + " base64 characters, " + std::to_string(count) + type_name +
                            " values need " + std::to_string(expected_chars),
                        data_where);
        if (data->invalid_character)
            throw Error("invalid base64 character at offset " + std::to_string(*data->invalid_character), data_where);
        if (static_cast<int64_t>(data->bytes) != bytes)
            throw Error("decodes to " + std::to_string(data->bytes) + " bytes, " + std::to_string(count) + type_name +
                            " values need " + std::to_string(bytes),
                        data_where);
    } else {
        if (!data || data->source != TensorData::Source::number_array)
            throw Error(
                "expected an array of numbers, got " + (data ? describe(json::value_t::string) : describe(*data_it)),
                data_where);
        if (static_cast<int64_t>(data->length) != count)
            throw Error(
                std::to_string(data->length) + " values, shape " + to_string(shape) + " needs " + std::to_string(count),
                data_where);
        if (data->first_non_number)
            throw Error("value " + std::to_string(*data->first_non_number) + " is " + describe(data->non_number_type) +
                            ", not a number",
                        data_where);
    }
    std::vector<float> values = std::move(data->values);  // each tensor is read once
    if (stored == Precision::bfloat16) values = widened_bfloat16(values, count);
    if (precision) *precision = stored;
    if (const size_t i = first_non_finite(values); i < values.size())
        throw Error("value " + std::to_string(i) + " is not finite in float32", data_where);
    return values;
}

// LayerConfig over one object of the "layers" array. Remembers which keys were asked for, so keys no
// layer reads can be reported as unknown.
class JsonLayerConfig : public LayerConfig {
public:
    JsonLayerConfig(ModelDocument& doc, const json& object, std::string where, const Limits& limits,
                    int64_t& parameters, int64_t version)
        : doc_(doc),
          object_(object),
          where_(std::move(where)),
          limits_(limits),
          parameters_(parameters),
          version_(version) {}

    int64_t integer(const std::string& key, int64_t min, std::optional<int64_t> fallback) override {
        const json* v = find(key);
        if (!v) {
            if (!fallback) fail(key, "required");
            return *fallback;
        }
        return read_integer(*v, at(key), min, limits_.max_activation_elements);
    }

    std::vector<int64_t> integers(const std::string& key, int64_t min, std::vector<int64_t> fallback) override {
        const json* v = find(key);
        if (!v) return fallback;
        if (!v->is_array()) return {read_integer(*v, at(key), min, limits_.max_activation_elements)};
        if (v->empty() || v->size() > kMaxListLength)
            fail(key,
                 "expected 1 to " + std::to_string(kMaxListLength) + " integers, got " + std::to_string(v->size()));
        std::vector<int64_t> out;
        for (size_t i = 0; i < v->size(); ++i)
            out.push_back(
                read_integer((*v)[i], at(key) + "[" + std::to_string(i) + "]", min, limits_.max_activation_elements));
        return out;
    }

    double positive_number(const std::string& key, double fallback) override {
        const json* v = find(key);
        if (!v) return fallback;
        const double d = read_number(*v, at(key));
        if (d <= 0) fail(key, "must be positive");
        return d;
    }

    std::optional<double> number(const std::string& key) override {
        const json* v = find(key);
        if (!v) return std::nullopt;
        return read_number(*v, at(key));
    }

    bool boolean(const std::string& key, bool fallback) override {
        const json* v = find(key);
        if (!v) return fallback;
        if (!v->is_boolean()) fail(key, "expected true or false, got " + describe(*v));
        return v->get<bool>();
    }

    std::optional<std::vector<float>> tensor(const std::string& key, const Shape& shape, bool required,
                                             Precision* precision) override {
        const json* v = find(key);
        if (!v) {
            if (required) fail(key, "required (a tensor of shape " + to_string(shape) + ")");
            return std::nullopt;
        }
        return read_tensor(doc_, *v, at(key), shape, limits_, &parameters_, version_, precision);
    }

    [[noreturn]] void fail(const std::string& key, const std::string& problem) override {
        throw Error(problem, key.empty() ? where_ : at(key));
    }

    void reject_unread_keys(const std::string& type) const {
        std::set<std::string> known = read_;
        known.insert({"type", "name", "input", "inputs"});
        reject_unknown_keys(object_, known, where_, type);
    }

private:
    const json* find(const std::string& key) {
        read_.insert(key);
        const auto it = object_.find(key);
        return it == object_.end() ? nullptr : &*it;
    }
    std::string at(const std::string& key) const { return where_ + "." + key; }

    ModelDocument& doc_;
    const json& object_;
    std::string where_;
    const Limits& limits_;
    int64_t& parameters_;
    int64_t version_;
    std::set<std::string> read_;
};

const json& required(const json& object, const std::string& key, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end()) throw Error("required", where.empty() ? key : where + "." + key);
    return *it;
}

std::string read_string(const json& v, const std::string& where) {
    if (!v.is_string()) throw Error("expected a string, got " + describe(v), where);
    return v.get<std::string>();
}

// A layer's "input" (one name) or "inputs" (a list of names), never both; neither: empty (the
// previous layer).
std::vector<std::string> read_inputs(const json& layer, const std::string& where) {
    const auto one = layer.find("input"), many = layer.find("inputs");
    if (one != layer.end() && many != layer.end())
        throw Error("give \"input\" or \"inputs\", not both", where + ".inputs");
    if (one != layer.end()) return {read_string(*one, where + ".input")};
    if (many == layer.end()) return {};
    if (!many->is_array() || many->empty() || many->size() > static_cast<size_t>(Graph::kMaxInputs))
        throw Error("expected an array of 1 to " + std::to_string(Graph::kMaxInputs) + " layer names",
                    where + ".inputs");
    std::vector<std::string> names;
    for (size_t i = 0; i < many->size(); ++i)
        names.push_back(read_string((*many)[i], where + ".inputs[" + std::to_string(i) + "]"));
    return names;
}

std::vector<float> read_per_channel(const json& input, const std::string& key, int64_t channels, float fallback,
                                    bool positive) {
    const std::string where = "input." + key;
    const auto it = input.find(key);
    if (it == input.end()) return std::vector<float>(static_cast<size_t>(channels), fallback);
    if (!it->is_array() || static_cast<int64_t>(it->size()) != channels)
        throw Error("expected an array of " + std::to_string(channels) + " numbers (one per channel)", where);
    std::vector<float> values;
    for (size_t i = 0; i < it->size(); ++i) {
        const double d = read_number((*it)[i], where + "[" + std::to_string(i) + "]");
        if (positive && d <= 0) throw Error("must be positive", where + "[" + std::to_string(i) + "]");
        values.push_back(static_cast<float>(d));
    }
    return values;
}

// The value named by the string `v` among `choices`; otherwise "'x' is not "a", "b" or "c"" at `where`.
template <class T>
T read_choice(const json& v, const std::string& where, std::initializer_list<std::pair<const char*, T>> choices) {
    const std::string name = read_string(v, where);
    std::string listed;
    for (size_t i = 0; const auto& [choice, value] : choices) {
        if (name == choice) return value;
        listed += std::string(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + '"' + choice + '"';
        ++i;
    }
    throw Error("'" + name + "' is not " + listed, where);
}

// channel_order, resize and its parameters (shorter_side, pad), each only where it means something.
void read_resize(const json& input, InputSpec& spec) {
    auto only_with = [&](const char* key, bool allowed, const char* when) {
        if (input.contains(key) && !allowed)
            throw Error(std::string("only applies ") + when, std::string("input.") + key);
    };
    if (const auto it = input.find("channel_order"); it != input.end()) {
        only_with("channel_order", spec.color == ColorMode::rgb, "to an \"rgb\" input");
        spec.channel_order = read_choice<ChannelOrder>(*it, "input.channel_order",
                                                       {{"rgb", ChannelOrder::rgb}, {"bgr", ChannelOrder::bgr}});
    }
    if (const auto it = input.find("resize"); it != input.end()) {
        only_with("resize", spec.color != ColorMode::none, "to images");
        spec.resize = read_choice<ResizeMode>(*it, "input.resize",
                                              {{"stretch", ResizeMode::stretch},
                                               {"shorter_side", ResizeMode::shorter_side},
                                               {"letterbox", ResizeMode::letterbox}});
    }
    if (const auto it = input.find("filter"); it != input.end()) {
        only_with("filter", spec.color != ColorMode::none, "to images");
        spec.filter = read_choice<ResizeFilter>(*it, "input.filter",
                                                {{"area", ResizeFilter::area}, {"bilinear", ResizeFilter::bilinear}});
    }
    only_with("shorter_side", spec.resize == ResizeMode::shorter_side, "with \"resize\": \"shorter_side\"");
    only_with("pad", spec.resize == ResizeMode::letterbox, "with \"resize\": \"letterbox\"");
    const int64_t crop_side = std::max(spec.height, spec.width);
    if (spec.resize == ResizeMode::shorter_side) {
        // The crop must lie inside the scaled image, whose sides are both at least shorter_side.
        spec.shorter_side = crop_side;
        if (const auto it = input.find("shorter_side"); it != input.end())
            spec.shorter_side = read_integer(*it, "input.shorter_side", crop_side, 8 * crop_side);
    }
    if (const auto it = input.find("pad"); it != input.end()) {
        const double pad = read_number(*it, "input.pad");
        if (pad < 0 || pad > 255) throw Error("must be a pixel value from 0 to 255", "input.pad");
        spec.pad = static_cast<float>(pad);
    }
}

InputSpec read_input(const json& doc, const Limits& limits) {
    const json& input = required(doc, "input", "");
    if (!input.is_object()) throw Error("expected an object, got " + describe(input), "input");
    reject_unknown_keys(input,
                        {"channels", "height", "width", "color", "channel_order", "resize", "filter", "shorter_side",
                         "pad", "scale", "mean", "std"},
                        "input", "input");
    InputSpec spec;
    spec.color = read_choice<ColorMode>(
        required(input, "color", "input"), "input.color",
        {{"grayscale", ColorMode::grayscale}, {"rgb", ColorMode::rgb}, {"none", ColorMode::none}});
    const std::string color = color_name(spec.color);
    spec.channels =
        read_integer(required(input, "channels", "input"), "input.channels", 1, limits.max_activation_elements);
    if (spec.color != ColorMode::none && spec.channels != 1 && spec.channels != 3)
        throw Error("must be 1 (grayscale) or 3 (rgb)", "input.channels");
    for (const char* side : {"height", "width"}) {
        (side[0] == 'h' ? spec.height : spec.width) = read_integer(
            required(input, side, "input"), std::string("input.") + side, 1, limits.max_input_side, "max_input_side");
    }
    if (spec.color != ColorMode::none && (spec.color == ColorMode::grayscale) != (spec.channels == 1))
        throw Error("'" + color + "' does not match " + std::to_string(spec.channels) + " channel(s)", "input.color");
    read_resize(input, spec);
    if (const auto it = input.find("scale"); it != input.end()) {
        spec.scale = read_number(*it, "input.scale");
        if (spec.scale <= 0) throw Error("must be positive", "input.scale");
    }
    spec.mean = read_per_channel(input, "mean", spec.channels, 0.0f, false);
    spec.std = read_per_channel(input, "std", spec.channels, 1.0f, true);
    return spec;
}

LoadedModel build_model(ModelDocument& document, const Limits& limits, const std::string& fallback_name) {
    const json& doc = document.tree;
    if (!doc.is_object()) throw Error("a model file is a JSON object, got " + describe(doc));
    reject_unknown_keys(doc,
                        {"format", "version", "name", "input", "labels", "layers", "tests", "tolerance", "metadata"},
                        "", "a model");
    if (const std::string format = read_string(required(doc, "format", ""), "format"); format != "gapnet")
        throw Error("expected \"gapnet\", got \"" + format + "\" (not a gapnet model file)", "format");
    const int64_t version = read_integer(required(doc, "version", ""), "version", 1, INT32_MAX);
    if (version > kModelFormatVersion)
        throw Error("version " + std::to_string(version) + " is newer than this gapnet reads (" +
                        std::to_string(kModelFormatVersion) + "): upgrade gapnet",
                    "version");
    double tolerance = kDefaultVerifyTolerance;
    if (const auto it = doc.find("tolerance"); it != doc.end()) {
        if (version < 2) throw Error("needs \"version\": 2 or later", "tolerance");
        tolerance = read_number(*it, "tolerance");
        if (!(tolerance > 0 && tolerance <= kMaxVerifyTolerance))
            throw Error("must be above 0 and at most 1", "tolerance");
    }
    std::string name = fallback_name;
    if (const auto it = doc.find("name"); it != doc.end()) name = read_string(*it, "name");

    InputSpec input = read_input(doc, limits);
    Graph graph({input.channels, input.height, input.width}, limits);

    const json& layers = required(doc, "layers", "");
    if (!layers.is_array() || layers.empty()) throw Error("expected a non-empty array of layers", "layers");
    if (static_cast<int64_t>(layers.size()) > limits.max_layers)
        throw Error(std::to_string(layers.size()) + " layers exceed " + std::to_string(limits.max_layers) + " " +
                        limit_note("max_layers", limits.max_layers),
                    "layers");
    int64_t parameters = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
        const std::string where = "layers[" + std::to_string(i) + "]";
        const json& layer = layers[i];
        if (!layer.is_object()) throw Error("expected a layer object, got " + describe(layer), where);
        const std::string type = read_string(required(layer, "type", where), where + ".type");
        std::string layer_name = type + "_" + std::to_string(i);
        if (const auto it = layer.find("name"); it != layer.end()) layer_name = read_string(*it, where + ".name");
        const std::vector<std::string> from = read_inputs(layer, where);
        try {
            JsonLayerConfig config(document, layer, where, limits, parameters, version);
            auto built = create_layer(type, config);
            config.reject_unread_keys(type);
            graph.add(layer_name, std::move(built), from);
        } catch (const Error& e) {
            // Errors from layers and the graph are located at an attribute; locate them in the file
            // (an error at the graph's inputs[0] is at "input" when the file says "input").
            if (e.where().rfind(where, 0) == 0) throw;
            std::string at = e.where();
            if ((at == "inputs[0]" || at == "inputs") && !layer.contains("inputs") && layer.contains("input"))
                at = "input";
            throw Error(e.what(), at.empty() ? where : where + "." + at);
        }
    }
    graph.fuse();

    const json& labels_json = required(doc, "labels", "");
    if (!labels_json.is_array()) throw Error("expected an array of strings", "labels");
    std::vector<std::string> labels;
    for (size_t i = 0; i < labels_json.size(); ++i)
        labels.push_back(read_string(labels_json[i], "labels[" + std::to_string(i) + "]"));
    const Shape& out = graph.output_shape();
    if (out.size() != 1)
        throw Error("the last layer outputs " + to_string(out) +
                        "; a classifier must end in a vector "
                        "(add a global pool or flatten, and a dense layer)",
                    "layers");
    if (static_cast<int64_t>(labels.size()) != out[0])
        throw Error(std::to_string(labels.size()) + " labels for " + std::to_string(out[0]) + " outputs", "labels");

    std::vector<ModelTest> tests;
    if (const auto it = doc.find("tests"); it != doc.end()) {
        if (!it->is_array()) throw Error("expected an array of {\"input\", \"output\"} objects", "tests");
        if (it->size() > kMaxTests)
            throw Error(std::to_string(it->size()) + " test cases, more than " + std::to_string(kMaxTests), "tests");
        for (size_t i = 0; i < it->size(); ++i) {
            const std::string where = "tests[" + std::to_string(i) + "]";
            const json& test = (*it)[i];
            if (!test.is_object()) throw Error("expected an {\"input\", \"output\"} object", where);
            reject_unknown_keys(test, {"input", "output"}, where, "a test");
            const Shape& in = graph.input_shape();
            tests.push_back(
                {Tensor(in, read_tensor(document, required(test, "input", where), where + ".input", in, limits, nullptr,
                                        version, nullptr, "the model input, which is")),
                 Tensor(out, read_tensor(document, required(test, "output", where), where + ".output", out, limits,
                                         nullptr, version, nullptr, "the model output, which is"))});
        }
    }

    return LoadedModel{std::move(name),  std::move(input), std::move(labels),
                       std::move(graph), std::move(tests), tolerance};
}

// `text` with control characters written as \xNN: messages quote keys and names from the file, and
// an error must stay one printable line.
std::string printable(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        // U+0080 to U+009F (0xC2 0x80-0x9F) are control characters too (C1: a terminal obeys some).
        const bool c1 = c == 0xC2 && i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xE0) == 0x80;
        const bool c1_second = i > 0 && static_cast<unsigned char>(text[i - 1]) == 0xC2 && (c & 0xE0) == 0x80;
        if ((c >= 0x20 && c < 0x7F) || (c >= 0x80 && !c1 && !c1_second)) {
            out += static_cast<char>(c);
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
            out += escaped;
        }
    }
    return out;
}

// The document of a model file's text (model_document.h: its errors say where the JSON breaks).
ModelDocument read_document(std::string_view text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
        throw Error("empty file, not a model (a gapnet model is a JSON object: see docs/model-format.md)");
    return read_model_document(text);
}

// build(), with the strings of its errors made printable: strings from the file (keys, names, types;
// valid UTF-8 once parsed) may hold control characters.
template <typename Build>
LoadedModel with_printable_errors(Build&& build) {
    try {
        return build();
    } catch (const Error& e) {
        throw Error(printable(e.what()), printable(e.where()));
    }
}

}  // namespace

LoadedModel parse_model(std::string_view text, const Limits& limits, const std::string& fallback_name) {
    return with_printable_errors([&] {
        ModelDocument doc = read_document(text);
        return build_model(doc, limits, fallback_name);
    });
}

LoadedModel load_model(const std::string& path, const Limits& limits) {
    LargeBytes text;
    read_file(path, limits.max_file_bytes, limit_note("max_file_bytes", limits.max_file_bytes), text);
    return with_printable_errors([&] {
        ModelDocument doc = read_document(text.view());
        text.clear();  // the tensors are decoded: the text is not needed while the graph is built
        return build_model(doc, limits, std::filesystem::path(path).stem().string());
    });
}

}  // namespace gapnet
