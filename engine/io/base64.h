// Standard base64 (RFC 4648: A-Z a-z 0-9 + /, '=' padding), as model files carry float32 tensors.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gapnet {

// The bytes `text` decodes to: every 4 characters before the padding are 3 bytes, and 2 or 3
// trailing ones 1 or 2 (their leftover bits are dropped).
size_t base64_decoded_size(std::string_view text);

// Decodes `text` into `out` (base64_decoded_size(text) bytes). Returns std::string::npos, or the
// offset of the first character before the padding that is not in the alphabet ('=' included);
// `out` is then only partly written.
size_t decode_base64(std::string_view text, unsigned char* out);

// `size` bytes as base64 text, '=' padded.
std::string encode_base64(const unsigned char* data, size_t size);

}  // namespace gapnet
