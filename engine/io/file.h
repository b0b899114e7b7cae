// Reading a whole file into memory, refusing a directory or more bytes than a bound.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gapnet {

// The bytes of `path`; throws gapnet::Error ("cannot open: No such file or directory", "is a
// directory", "is larger than N bytes " + `limit`) with no location.
std::string read_file(const std::string& path, int64_t max_bytes, const std::string& limit);

// Memory for a large file's bytes (a model), not zero-filled, 2 MiB-aligned and marked for transparent
// huge pages (madvise(MADV_HUGEPAGE)), so that the kernel maps it 2 MiB at a time rather than faulting
// in each 4 KiB page (faults are most of what reading a large model costs). Untouched pages cost nothing.
class LargeBytes {
public:
    char* data() { return data_.get(); }
    size_t size() const { return size_; }
    std::string_view view() const { return {data_.get(), size_}; }
    void resize(size_t size);       // keeps the first min(size, size()) bytes
    void reserve(size_t capacity);  // memory for `capacity` bytes, of which only those written are touched
    void clear() { data_.reset(), size_ = capacity_ = 0; }

private:
    struct Free {
        void operator()(char* p) const;
    };
    std::unique_ptr<char, Free> data_;
    size_t size_ = 0, capacity_ = 0;
};
// The same into LargeBytes. A pipe or a device (no size to read ahead) is given max_bytes + 1 bytes of
// capacity at once and filled in chunks: an endless source is refused at the bound holding no more
// than the bound, where a buffer grown by doubling would hold the old and the new copy.
void read_file(const std::string& path, int64_t max_bytes, const std::string& limit, LargeBytes& bytes);

}  // namespace gapnet
