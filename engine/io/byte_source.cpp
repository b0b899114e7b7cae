#include "byte_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../error.h"

namespace gapnet {

ByteSource::ByteSource(std::string_view memory, int64_t max_bytes, size_t chunk)
    : data_(memory.data()), memory_size_(memory.size()), max_bytes_(max_bytes), chunk_(std::max<size_t>(chunk, 1)) {}

ByteSource::ByteSource(int fd, int64_t max_bytes, size_t chunk, bool owned)
    : fd_(fd), owns_fd_(owned), max_bytes_(max_bytes), chunk_(std::max<size_t>(chunk, 1)) {}

int open_for_reading(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a file");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(std::string("cannot open: ") + std::strerror(errno));
    return fd;
}

ByteSource::~ByteSource() {
    if (owns_fd_) ::close(fd_);
}

void ByteSource::fill(size_t n) {
    while (end_ - begin_ < n && !at_end_) {
        // Never past max_bytes: at the limit, one byte more is asked for only to know whether the
        // source ends there, so that what is refused does not depend on the chunk size.
        const auto allowed = static_cast<size_t>(max_bytes_ - size_so_far());
        char probe = 0;
        ssize_t got = 0;
        if (fd_ < 0) {
            got = static_cast<ssize_t>(
                std::min({memory_size_ - end_, std::max<size_t>(allowed, 1), std::max(chunk_, n - (end_ - begin_))}));
        } else {
            if (begin_ > 0) {  // the unconsumed bytes to the front, so the buffer never grows past what is held
                std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
                end_ -= begin_, begin_ = 0;
            }
            const size_t capacity = std::max(n, std::min(chunk_, size_t{1} << 20));
            if (buffer_.size() < capacity) buffer_.resize(capacity);
            data_ = buffer_.data();
            got = allowed == 0 ? ::read(fd_, &probe, 1)
                               : ::read(fd_, buffer_.data() + end_, std::min({buffer_.size() - end_, allowed, chunk_}));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw Error(std::string("read failed: ") + std::strerror(errno));
        }
        if (allowed == 0 && got > 0)
            throw Error("read more than ImageLimits::max_bytes = " + std::to_string(max_bytes_) +
                        " bytes without reaching the end of the image");
        at_end_ = got == 0;
        end_ += static_cast<size_t>(got);
    }
}

std::string_view ByteSource::peek(size_t n) {
    fill(n);
    return {data_ + begin_, std::min(n, end_ - begin_)};
}

std::string_view ByteSource::next(size_t n) {
    fill(1);
    const size_t count = std::min(n, end_ - begin_);
    const std::string_view bytes(data_ + begin_, count);
    begin_ += count, consumed_ += static_cast<int64_t>(count);
    return bytes;
}

size_t ByteSource::read(void* out, size_t n) {
    size_t done = 0;
    while (done < n) {
        const std::string_view bytes = next(std::min(n - done, std::max(chunk_, end_ - begin_)));
        if (bytes.empty()) break;
        if (out) std::memcpy(static_cast<char*>(out) + done, bytes.data(), bytes.size());
        done += bytes.size();
    }
    return done;
}

bool ByteSource::reaches(int64_t total) {
    if (total > size_so_far()) fill(static_cast<size_t>(total - consumed_));
    return size_so_far() >= total;
}

}  // namespace gapnet
