// Reading a whole file into memory, refusing what is not a regular file or is larger than a bound.
#pragma once

#include <cstdint>
#include <string>

namespace gapnet {

// The bytes of `path`; throws gapnet::Error ("cannot open: No such file or directory", "is a
// directory", "is larger than N bytes " + `limit`) with no location.
std::string read_file(const std::string& path, int64_t max_bytes, const std::string& limit);
// The same into `bytes`, reusing its memory (a program reading many files touches fresh pages once).
void read_file(const std::string& path, int64_t max_bytes, const std::string& limit, std::string& bytes);

}  // namespace gapnet
