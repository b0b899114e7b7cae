#include "file.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <new>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.h"
#include "byte_source.h"

namespace gapnet {

namespace {

// Reads `path` into `bytes` (a std::string or LargeBytes: data(), size(), resize(), reserve()).
template <typename Bytes>
void read_into(const std::string& path, int64_t max_bytes, const std::string& limit, Bytes& bytes) {
    const int fd = open_for_reading(path);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (fstat(fd, &st) != 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    auto too_large = [&] { return Error("is larger than " + std::to_string(max_bytes) + " bytes " + limit); };
    // A regular file's size (within the limit) is read straight into `bytes`, with one byte more so
    // that the read which finds the end needs no larger buffer (growing one copies it: twice the
    // file's memory at once); then, as for pipes and special files (which report 0) and a file that
    // grows while it is read, in chunks until the end. A pipe or a device gets the bound's capacity
    // at once, for the same reason: its untouched pages cost no memory.
    bytes.resize(0);
    if (S_ISREG(st.st_mode) && st.st_size > max_bytes) throw too_large();
    if (S_ISREG(st.st_mode)) bytes.resize(static_cast<size_t>(st.st_size) + 1);
    // A bound raised past what the kernel maps at once (or a std::string holds): the buffer grows.
    try {
        if (!S_ISREG(st.st_mode)) bytes.reserve(static_cast<size_t>(max_bytes) + 1);
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    }
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

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

std::string read_file(const std::string& path, int64_t max_bytes, const std::string& limit) {
    std::string bytes;
    read_into(path, max_bytes, limit, bytes);
    return bytes;
}

void read_file(const std::string& path, int64_t max_bytes, const std::string& limit, LargeBytes& bytes) {
    read_into(path, max_bytes, limit, bytes);
}

void LargeBytes::Free::operator()(char* p) const { std::free(p); }

void LargeBytes::resize(size_t size) {
    // Doubling, for a regular file that grows while it is read (the bound stops it).
    if (size > capacity_) reserve(std::max(size, 2 * capacity_));
    size_ = size;  // shrinking keeps the memory: a model's text is freed whole, after parsing
}

void LargeBytes::reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    capacity = (capacity + kHugePage - 1) / kHugePage * kHugePage;
    std::unique_ptr<char, Free> grown(static_cast<char*>(std::aligned_alloc(kHugePage, capacity)));
    if (!grown) throw std::bad_alloc();
    madvise(grown.get(), capacity, MADV_HUGEPAGE);  // a hint: without it, 4 KiB pages
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
}

}  // namespace gapnet
