// An image's bytes as the decoders read them: from a file (any readable path: a FIFO, /dev/stdin) a
// buffer at a time, or from memory, counted against ImageLimits::max_bytes, so that a source that
// never ends is refused after a bounded read holding a bounded buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gapnet {

// A file descriptor reading `path`; throws gapnet::Error ("cannot open: ...", "is a directory, not a
// file") with no location.
int open_for_reading(const std::string& path);

class ByteSource {
public:
    // The bytes of `memory`, which must outlive the source, handed out `chunk` bytes at a time at most.
    ByteSource(std::string_view memory, int64_t max_bytes, size_t chunk = SIZE_MAX);
    // The bytes read from `fd`, `chunk` bytes per read() at most; `fd` is closed with the source when
    // `owned`.
    ByteSource(int fd, int64_t max_bytes, size_t chunk = size_t{1} << 16, bool owned = false);
    ~ByteSource();
    ByteSource(const ByteSource&) = delete;
    ByteSource& operator=(const ByteSource&) = delete;

    // The next min(n, what is left) bytes, not consumed. Valid until the next call.
    std::string_view peek(size_t n);
    // The next bytes, at least one and at most `n` (empty only at the end), consumed. Valid until the
    // next call.
    std::string_view next(size_t n = SIZE_MAX);
    // Consumes the next min(n, what is left) bytes; copies them to `out` unless it is nullptr.
    // Returns how many.
    size_t read(void* out, size_t n);
    size_t skip(size_t n) { return read(nullptr, n); }
    // Whether the source holds at least `total` bytes from its start. From a file, reads ahead and
    // holds up to total - position() bytes: what a decoder checks this way (the least bytes its
    // declared size needs) it reads next anyway.
    bool reaches(int64_t total);

    int64_t position() const { return consumed_; }  // bytes consumed
    // Bytes taken from the file or memory so far: the source's size once it reached the end.
    int64_t size_so_far() const { return consumed_ + static_cast<int64_t>(end_ - begin_); }

private:
    // Makes at least min(n, what is left) unconsumed bytes available; refuses a source past max_bytes.
    void fill(size_t n);

    const char* data_ = nullptr;  // memory, or buffer_'s data: unconsumed bytes [begin_, end_)
    size_t begin_ = 0, end_ = 0;
    size_t memory_size_ = 0;
    std::string buffer_;  // from a file only
    int fd_ = -1;
    bool owns_fd_ = false, at_end_ = false;
    int64_t consumed_ = 0, max_bytes_ = 0;
    size_t chunk_ = 0;
};

}  // namespace gapnet
