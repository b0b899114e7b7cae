// The number format a layer's weights are stored in, as the model file's tensors declare it (their
// "dtype": docs/model-format.md), and that its kernels compute in.
//   float32   the default
//   bfloat16  weights in bfloat16 (kernels/bfloat16.h); a convolution on the blocked layout also
//             rounds its input to bfloat16 and sums the products in float32 (AVX512-BF16)
#pragma once

#include <cstdint>
#include <string_view>

namespace gapnet {

enum class Precision : uint8_t { float32, bfloat16 };

inline std::string_view precision_name(Precision p) { return p == Precision::bfloat16 ? "bfloat16" : "float32"; }

// Bytes a stored value takes.
inline int64_t precision_bytes(Precision p) { return p == Precision::bfloat16 ? 2 : 4; }

}  // namespace gapnet
