#include "gzip.h"

#include <climits>
#include <stb_image.h>

#include "../error.h"
#include "byte_order.h"
#include "crc32.h"

namespace gapnet {
namespace {}  // namespace

bool is_gzip(const std::string& bytes) {
    return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
           static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(const std::string& bytes, int64_t max_bytes) {
    // Header: magic (2), method (1, 8 = deflate), flags (1), mtime (4), extra flags (1), OS (1),
    // then the optional fields the flags announce; the trailer is CRC-32 (4) and size mod 2^32 (4).
    if (!is_gzip(bytes) || bytes.size() < 18) throw Error("not a gzip file, or truncated");
    if (bytes[2] != 8) throw Error("gzip compression method " + std::to_string(bytes[2]) + " is not deflate");
    const auto flags = static_cast<unsigned char>(bytes[3]);
    size_t at = 10;
    auto need = [&](size_t n) {
        if (at + n + 8 > bytes.size()) throw Error("truncated gzip header");
    };
    if (flags & 0x04) {  // FEXTRA
        need(2);
        at += 2 + (static_cast<unsigned char>(bytes[at]) | static_cast<unsigned char>(bytes[at + 1]) << 8);
    }
    for (const int field : {0x08, 0x10}) {  // FNAME, FCOMMENT: zero-terminated
        if (!(flags & field)) continue;
        while (need(1), bytes[at] != '\0') ++at;
        ++at;
    }
    if (flags & 0x02) at += 2;  // FHCRC
    need(0);

    const int64_t size = little_endian32(bytes, bytes.size() - 4);
    if (size > max_bytes)
        throw Error("decompresses to " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                    " allowed");
    // The decoder is given the trailer too: stb's bit reader fetches ahead of the last deflate block
    // and reports a stream that ends exactly at the buffer's end as corrupt. The final block marks
    // where the data ends, so the trailer is never decoded.
    const size_t compressed = bytes.size() - at;
    if (compressed > static_cast<size_t>(INT_MAX) || size > INT_MAX) throw Error("gzip file too large");
    std::string out(static_cast<size_t>(size), '\0');
    const int got = stbi_zlib_decode_noheader_buffer(out.data(), static_cast<int>(size), bytes.data() + at,
                                                     static_cast<int>(compressed));
    if (got != size) throw Error("corrupt gzip data (or more than one member)");
    if (crc32(out.data(), out.size()) != little_endian32(bytes, bytes.size() - 8))
        throw Error("gzip CRC-32 mismatch: the file is corrupt");
    return out;
}

}  // namespace gapnet
