#include "file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>

#include "../error.h"

namespace gapnet {

std::string read_file(const std::string& path, int64_t max_bytes, const std::string& limit) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a file");
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) throw Error(std::string("cannot open: ") + std::strerror(errno));
    // Read in chunks rather than trusting st_size: pipes and special files report 0, and a file may
    // grow while it is read. A regular file's size (within the limit) is reserved up front, so a
    // large model is not copied each time the string would have doubled.
    std::string bytes;
    if (S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= max_bytes) bytes.reserve(static_cast<size_t>(st.st_size));
    char chunk[1 << 16];
    size_t got;
    while ((got = std::fread(chunk, 1, sizeof chunk, f.get())) > 0) {
        if (static_cast<int64_t>(bytes.size() + got) > max_bytes)
            throw Error("is larger than " + std::to_string(max_bytes) + " bytes " + limit);
        bytes.append(chunk, got);
    }
    if (std::ferror(f.get())) throw Error(std::string("read failed: ") + std::strerror(errno));
    return bytes;
}

}  // namespace gapnet
