#include "quantize.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "../error.h"
#include "../kernels/bfloat16.h"
#include "../verify.h"
#include "base64.h"
#include "model_json.h"

namespace gapnet {
namespace {

using ordered_json = nlohmann::ordered_json;

// A float32 tensor's values, from the JSON numbers or the base64 text (parse_model has checked it).
std::vector<float> float32_values(const ordered_json& tensor) {
    const ordered_json& data = tensor.at("data");
    if (!data.is_string()) return data.get<std::vector<float>>();
    const auto& text = data.get_ref<const std::string&>();
    std::vector<unsigned char> bytes(base64_decoded_size(text));
    decode_base64(text, bytes.data());
    std::vector<float> values(bytes.size() / 4);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint32_t bits = uint32_t{bytes[4 * i]} | uint32_t{bytes[4 * i + 1]} << 8 |
                              uint32_t{bytes[4 * i + 2]} << 16 | uint32_t{bytes[4 * i + 3]} << 24;
        std::memcpy(&values[i], &bits, sizeof bits);
    }
    return values;
}

// The tensor with its values rounded to bfloat16, stored so (base64 of little-endian 16-bit values).
ordered_json bfloat16_tensor(const ordered_json& tensor) {
    const std::vector<float> values = float32_values(tensor);
    std::vector<unsigned char> bytes(2 * values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t b = to_bfloat16(values[i]);
        bytes[2 * i] = static_cast<unsigned char>(b & 0xff);
        bytes[2 * i + 1] = static_cast<unsigned char>(b >> 8);
    }
    return {{"shape", tensor.at("shape")},
            {"dtype", "bfloat16"},
            {"encoding", "base64"},
            {"data", encode_base64(bytes.data(), bytes.size())}};
}

// x rounded up to two significant digits: 0.00123 -> 0.0013.
double round_up_two_digits(double x) {
    const double unit = std::pow(10.0, std::floor(std::log10(x)) - 1);
    return std::ceil(x / unit - 1e-9) * unit;  // 1e-5 stays 1e-5 despite its binary form
}

// `doc`'s keys in order, "tolerance" (replaced, or added after "version") set to `tolerance`.
ordered_json with_tolerance(const ordered_json& doc, double tolerance) {
    ordered_json out = ordered_json::object();
    for (const auto& [key, value] : doc.items()) {
        if (key == "tolerance") continue;
        out[key] = value;
        if (key == "version") out["tolerance"] = tolerance;
    }
    return out;
}

}  // namespace

QuantizedModel quantize_model(std::string_view text, Precision precision, const Limits& limits) {
    if (precision != Precision::bfloat16) throw Error("only bfloat16 can be made so far");
    parse_model(text, limits);  // the file as it is: any problem is reported where it is
    ordered_json doc = ordered_json::parse(text);
    QuantizedModel result;
    for (ordered_json& layer : doc.at("layers")) {
        const std::string type = layer.at("type").get<std::string>();
        if ((type != "conv2d" && type != "dense") || !layer.contains("weight")) continue;
        ordered_json& weight = layer["weight"];
        if (weight.value("dtype", std::string("float32")) == "float32") weight = bfloat16_tensor(weight);
        ++result.layers;
    }
    doc["version"] = std::max<int64_t>(doc.at("version").get<int64_t>(), 2);
    // A name of its own, so that compare and summary tell the two apart (a file without one is named
    // by its file name).
    if (doc.contains("name")) doc["name"] = doc["name"].get<std::string>() + "_bf16";
    doc.erase("tolerance");
    result.text = doc.dump();

    const LoadedModel quantized = parse_model(result.text, limits);
    result.cases = static_cast<int64_t>(quantized.tests.size());
    if (result.cases > 0) {
        result.largest_difference = verify(quantized, kMaxVerifyTolerance).largest_difference;
        const double tolerance = round_up_two_digits(std::max(2 * result.largest_difference, kDefaultVerifyTolerance));
        if (tolerance > kMaxVerifyTolerance)
            throw Error("in bfloat16 the recorded tests' outputs differ by " +
                        std::to_string(result.largest_difference) + ", more than a model file may allow (" +
                        std::to_string(kMaxVerifyTolerance) + ")");
        result.tolerance = tolerance;
        result.text = with_tolerance(doc, tolerance).dump();
    }
    result.text += '\n';
    return result;
}

}  // namespace gapnet
