// Decompressing gzip files (RFC 1952) with the inflate decoder stb_image already carries for PNG.
#pragma once

#include <cstdint>
#include <string>

namespace gapnet {

// True if `bytes` starts with the gzip magic number.
bool is_gzip(const std::string& bytes);

// The decompressed content of a single-member gzip file. The size the trailer declares is checked
// against `max_bytes` before anything is allocated; the CRC-32 is verified. Throws gapnet::Error.
std::string gunzip(const std::string& bytes, int64_t max_bytes);

}  // namespace gapnet
