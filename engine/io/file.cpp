#include "file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.h"

namespace gapnet {

void read_file(const std::string& path, int64_t max_bytes, const std::string& limit, std::string& bytes) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    auto too_large = [&] { return Error("is larger than " + std::to_string(max_bytes) + " bytes " + limit); };
    // A regular file's size (within the limit) is read straight into `bytes`; then, as for pipes and
    // special files (which report 0) and a file that grows while it is read, in chunks until the end.
    bytes.clear();
    if (S_ISREG(st.st_mode) && st.st_size > max_bytes) throw too_large();
    if (S_ISREG(st.st_mode)) bytes.resize(static_cast<size_t>(st.st_size));
    size_t filled = 0;
    for (;;) {
        if (filled == bytes.size()) {
            if (static_cast<int64_t>(filled) >= max_bytes + 1) throw too_large();
            bytes.resize(filled + std::min<size_t>(size_t{1} << 16, static_cast<size_t>(max_bytes + 1) - filled));
        }
        const ssize_t got = ::read(fd, bytes.data() + filled, bytes.size() - filled);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw Error(std::string("read failed: ") + std::strerror(errno));
        if (got == 0) break;
        filled += static_cast<size_t>(got);
    }
    if (static_cast<int64_t>(filled) > max_bytes) throw too_large();
    bytes.resize(filled);
}

std::string read_file(const std::string& path, int64_t max_bytes, const std::string& limit) {
    std::string bytes;
    read_file(path, max_bytes, limit, bytes);
    return bytes;
}

}  // namespace gapnet
