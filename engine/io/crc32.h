// CRC-32 (ISO 3309 / ITU-T V.42, as PNG chunks carry it), zlib's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gapnet {

uint32_t crc32(const char* data, size_t size);

}  // namespace gapnet
