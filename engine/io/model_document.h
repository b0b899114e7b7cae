// A model file's JSON, read for building the model: nlohmann/json's DOM for the structure, with
// every "data" value that is an array or a string (a tensor's values: docs/model-format.md) decoded
// while the text is read, into float32, and held aside. nlohmann's DOM would hold each number as a
// 16-byte value and a base64 tensor as a string, and its parser reads them at 40 to 60 MB/s.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace gapnet {

// Deeper JSON is not a model file (and would recurse deeply). As nlohmann counts it: a value, or
// an object's key, inside more containers than this is refused.
constexpr int kMaxJsonNesting = 64;

// A "data" value, decoded; each problem it has is kept to be reported where the tensor is read.
struct TensorData {
    enum class Source { number_array, base64_string };
    Source source = Source::number_array;
    size_t length = 0;  // elements of the array, characters of the string

    // number_array: the first element that is not a number (its index and type), if any
    std::optional<size_t> first_non_number;
    nlohmann::json::value_t non_number_type = nlohmann::json::value_t::null;

    // base64_string: the offset of the first character outside the alphabet, if any; else how many
    // bytes it decodes to
    std::optional<size_t> invalid_character;
    size_t bytes = 0;

    // number_array: each number as nlohmann reads it (a double), cast to float;
    // base64_string: the bytes as little-endian float32 (a last, incomplete one zero-filled)
    std::vector<float> values;
};

struct ModelDocument {
    nlohmann::json tree;  // a decoded "data" value is a placeholder here: see tensor_data_of()
    std::vector<TensorData> tensor_data;

    // The decoded data a value of `tree` stands for; nullptr for any other value.
    TensorData* tensor_data_of(const nlohmann::json& value);
};

// Reads `text` as strict JSON (RFC 8259) the way nlohmann reads it (UTF-8 checked, a byte order
// mark skipped, a NUL byte after the value taken for the end of the text), with gapnet's two extra
// rules: at most kMaxJsonNesting levels, no key twice in one object. A text that breaks any rule
// throws gapnet::Error, one line: where it breaks it (line, column and byte offset) and what was
// expected there, e.g. "not valid JSON at line 3, column 7 (byte 41): expected ',' or '}', got ']'";
// a repeated key is located by its object's JSON path instead ("layers[3]").
ModelDocument read_model_document(std::string_view text);

}  // namespace gapnet
