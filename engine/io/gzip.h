// Decompressing gzip files (RFC 1952) with zlib's inflate.
#pragma once

#include <cstdint>
#include <string>

namespace gapnet {

// True if `bytes` starts with the gzip magic number.
bool is_gzip(const std::string& bytes);

// The decompressed content of a single-member gzip file, inflated a chunk at a time and refused
// (gapnet::Error) as soon as it would exceed `max_bytes`: the size the trailer declares is checked
// first, but it is the size modulo 2^32 and may lie, so the output itself is bounded too. zlib
// checks the header, the CRC-32 and the size.
std::string gunzip(const std::string& bytes, int64_t max_bytes);

}  // namespace gapnet
