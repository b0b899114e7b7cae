#include "gzip.h"

#include <algorithm>
#include <zlib.h>

#include "../error.h"
#include "byte_order.h"

namespace gapnet {

bool is_gzip(const std::string& bytes) { return big_endian16(bytes, 0) == 0x1f8b; }

std::string gunzip(const std::string& bytes, int64_t max_bytes) {
    // The trailer's size (the last 4 bytes), if deflate's largest ratio (1032:1) could reach it from
    // this file (a truncated file's last bytes are not its trailer): a file declaring more than the
    // bound is refused before anything is inflated, and one declaring less gets that much memory at
    // once, plus one byte so that the call which reaches the trailer needs no larger buffer.
    if (!is_gzip(bytes) || bytes.size() < 18) throw Error("not a gzip file, or truncated");
    int64_t declared = little_endian32(bytes, bytes.size() - 4);
    if (static_cast<uint64_t>(declared) > 1032 * bytes.size()) declared = 0;
    const std::string allowed = std::to_string(max_bytes) + " allowed";
    if (declared > max_bytes)
        throw Error("decompresses to " + std::to_string(declared) + " bytes, more than the " + allowed);

    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();  // 16 +: the gzip wrapper
    struct End {
        z_stream& stream;
        ~End() { inflateEnd(&stream); }
    } end{stream};
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    std::string out(static_cast<size_t>(declared) + 1, '\0');
    size_t filled = 0;
    for (int status = Z_OK; status != Z_STREAM_END;) {
        if (filled == out.size()) {  // the trailer understates the size (it is the size modulo 2^32)
            if (static_cast<int64_t>(filled) > max_bytes)
                throw Error("decompresses to more than the " + std::to_string(max_bytes) + " bytes allowed");
            out.resize(std::min<size_t>(std::max<size_t>(2 * filled, 1 << 16), static_cast<size_t>(max_bytes) + 1));
        }
        // zlib counts in 32-bit units: at most 1 GiB in and out per call.
        stream.avail_in = static_cast<uInt>(std::min<size_t>(bytes.size() - stream.total_in, size_t{1} << 30));
        stream.next_out = reinterpret_cast<Bytef*>(out.data() + filled);
        stream.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - filled, size_t{1} << 30));
        const uInt room = stream.avail_out;
        status = inflate(&stream, Z_NO_FLUSH);
        filled += room - stream.avail_out;
        if (status == Z_MEM_ERROR) throw std::bad_alloc();
        if (status == Z_BUF_ERROR && stream.total_in == bytes.size())
            throw Error("truncated gzip file: it ends after " + std::to_string(bytes.size()) +
                        " bytes, inside its compressed data");
        if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR)
            throw Error(std::string("corrupt gzip file (zlib: ") + (stream.msg ? stream.msg : zError(status)) +
                        ", found after reading " + std::to_string(stream.total_in) + " of its " +
                        std::to_string(bytes.size()) + " bytes)");
    }
    if (stream.total_in != bytes.size())
        throw Error(std::to_string(bytes.size() - stream.total_in) +
                    " bytes after the end of the gzip data (gapnet reads a single gzip member)");
    out.resize(filled);
    return out;
}

}  // namespace gapnet
