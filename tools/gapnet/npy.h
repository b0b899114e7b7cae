// Writing tensors as NumPy .npy files (format 1.0: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
// so numpy.load reads them: shape as given, little-endian float32, C order.
#pragma once

#include <string>

#include "gapnet/gapnet.h"

namespace gapnet {

// The .npy file's bytes for `tensor`.
std::string npy_bytes(const Tensor& tensor);

// Writes npy_bytes(tensor) to `path`, whole or not at all (cli::OutputFile); throws cli::OutputError
// if it cannot.
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace gapnet
