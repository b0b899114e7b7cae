// JSON numbers (RFC 8259) read exactly as nlohmann/json reads them, so that a model's values do
// not depend on which of gapnet's two JSON readers (engine/io/model_document.h) parsed the file.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace gapnet {

// A number at the start of some text: its length (0: the text does not start with one), and
// whether it is an integer (neither fraction nor exponent).
struct JsonNumberToken {
    size_t length = 0;
    bool integer = false;
};

// The longest number -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at `first`. A digit right after
// it ("01") is no part of it: the caller sees a second token and refuses the text.
JsonNumberToken scan_json_number(const char* first, const char* last);

// The number as a double, as nlohmann's get<double>() returns it: the nearest double (for an integer
// too, nlohmann converting its int64/uint64 exactly like that), except that the integer -0 is +0.
// std::nullopt past the double range, which nlohmann refuses ("number overflow"); a number too
// small for a double is 0 or a denormal, as std::strtod (nlohmann's reader) makes it.
std::optional<double> json_number_value(std::string_view token, bool integer);

}  // namespace gapnet
