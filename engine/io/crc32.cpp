#include "crc32.h"

#include <zlib.h>

namespace gapnet {

uint32_t crc32(const char* data, size_t size) {
    return static_cast<uint32_t>(::crc32_z(0, reinterpret_cast<const Bytef*>(data), size));
}

}  // namespace gapnet
