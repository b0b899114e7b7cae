#include "base64.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace gapnet {
namespace {

// Each character's 6 bits, or -1 for a character outside the alphabet.
constexpr std::array<int8_t, 256> kSextets = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
}();

// The '=' that end `text` (at most two), which carry no data.
size_t base64_padding(std::string_view text) {
    const size_t n = text.size();
    return (n >= 1 && text[n - 1] == '=') + (n >= 2 && text[n - 2] == '=');
}

}  // namespace

size_t base64_decoded_size(std::string_view text) { return (text.size() - base64_padding(text)) * 6 / 8; }

size_t decode_base64(std::string_view text, unsigned char* out) {
    const size_t n = text.size() - base64_padding(text);
    const auto sextet = [&](size_t i) { return kSextets[static_cast<unsigned char>(text[i])]; };
    // Whole groups: 4 characters, 24 bits, 3 bytes.
    size_t i = 0;
    for (; i + 4 <= n; i += 4, out += 3) {
        const int8_t a = sextet(i), b = sextet(i + 1), c = sextet(i + 2), d = sextet(i + 3);
        if ((a | b | c | d) < 0) break;  // one of them is -1: found below
        const uint32_t bits = uint32_t(a) << 18 | uint32_t(b) << 12 | uint32_t(c) << 6 | uint32_t(d);
        out[0] = static_cast<unsigned char>(bits >> 16);
        out[1] = static_cast<unsigned char>(bits >> 8);
        out[2] = static_cast<unsigned char>(bits);
    }
    // The rest (and the group holding a bad character): bit by bit, every full 8 bits a byte.
    uint32_t bits = 0;
    int bit_count = 0;
    for (; i < n; ++i) {
        const int8_t v = sextet(i);
        if (v < 0) return i;
        bits = (bits << 6 | static_cast<uint32_t>(v)) & 0xFFFFFF;
        if ((bit_count += 6) >= 8) *out++ = static_cast<unsigned char>(bits >> (bit_count -= 8));
    }
    return std::string::npos;
}

std::string encode_base64(const unsigned char* data, size_t size) {
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string text;
    text.reserve((size + 2) / 3 * 4);
    for (size_t i = 0; i < size; i += 3) {
        const size_t n = std::min<size_t>(3, size - i);
        const uint32_t bits =
            uint32_t{data[i]} << 16 | (n > 1 ? uint32_t{data[i + 1]} << 8 : 0) | (n > 2 ? data[i + 2] : 0);
        for (size_t k = 0; k < 4; ++k) text += k <= n ? alphabet[bits >> (18 - 6 * k) & 63] : '=';
    }
    return text;
}

}  // namespace gapnet
