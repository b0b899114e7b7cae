// Reading fixed-size integers out of a byte string, in a given byte order, whatever the host's. A byte
// past the end reads as 0, as stb_image reads past the end of memory: a header too short for a field
// gives a field of 0, never a read outside the string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gapnet {

inline uint32_t byte_at(std::string_view b, size_t at) { return at < b.size() ? static_cast<uint8_t>(b[at]) : 0; }
inline uint32_t big_endian16(std::string_view b, size_t at) { return byte_at(b, at) << 8 | byte_at(b, at + 1); }
inline uint32_t little_endian16(std::string_view b, size_t at) { return byte_at(b, at) | byte_at(b, at + 1) << 8; }
inline uint32_t big_endian32(std::string_view b, size_t at) {
    return big_endian16(b, at) << 16 | big_endian16(b, at + 2);
}
inline uint32_t little_endian32(std::string_view b, size_t at) {
    return little_endian16(b, at) | little_endian16(b, at + 2) << 16;
}

}  // namespace gapnet
