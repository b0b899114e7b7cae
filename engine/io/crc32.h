// CRC-32 (ISO 3309 / ITU-T V.42, polynomial 0xEDB88320 reflected): the checksum of gzip members and
// PNG chunks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gapnet {

uint32_t crc32(const char* data, size_t size);

}  // namespace gapnet
