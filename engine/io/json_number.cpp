#include "json_number.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <system_error>

namespace gapnet {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

const char* skip_digits(const char* p, const char* last) {
    while (p < last && is_digit(*p)) ++p;
    return p;
}

}  // namespace

JsonNumberToken scan_json_number(const char* first, const char* last) {
    const char* p = first;
    if (p < last && *p == '-') ++p;
    if (p == last || !is_digit(*p)) return {};
    p = *p == '0' ? p + 1 : skip_digits(p, last);
    bool integer = true;
    if (p < last && *p == '.') {
        if (++p == last || !is_digit(*p)) return {};
        p = skip_digits(p, last);
        integer = false;
    }
    if (p < last && (*p == 'e' || *p == 'E')) {
        if (++p < last && (*p == '+' || *p == '-')) ++p;
        if (p == last || !is_digit(*p)) return {};
        p = skip_digits(p, last);
        integer = false;
    }
    return {static_cast<size_t>(p - first), integer};
}

std::optional<double> json_number_value(std::string_view token, bool integer) {
    // std::from_chars rounds to nearest, as std::strtod does, and is several times faster.
    double value = 0;
    const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (error == std::errc::result_out_of_range) {
        // Beyond the double range either way: from_chars leaves `value` alone; strtod gives 0 or
        // infinity (with the "C" locale's '.', which gapnet never changes).
        value = std::strtod(std::string(token).c_str(), nullptr);
    } else if (error != std::errc() || end != token.data() + token.size()) {
        return std::nullopt;  // not a number scan_json_number accepts
    }
    if (!std::isfinite(value)) return std::nullopt;
    if (integer && value == 0) return 0.0;  // "-0" is nlohmann's integer 0, which converts to +0
    return value;
}

}  // namespace gapnet
