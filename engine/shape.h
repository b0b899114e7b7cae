// Shapes of tensors, and arithmetic on sizes that cannot overflow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gapnet/gapnet.h"  // gapnet::Shape: dimensions, outermost first

namespace gapnet {

// join({32,28,28}, "x") == "32x28x28"
std::string join(const Shape& shape, const char* separator);
// "[32,1,3,3]"
std::string to_string(const Shape& shape);

// The number of elements; throws gapnet::Error if it would exceed `limit` (so never overflows).
int64_t element_count(const Shape& shape, int64_t limit = INT64_MAX);

// The shape of a batch of n samples of shape `sample`: {n, sample...}.
Shape batched(int64_t n, const Shape& sample);

// a * b, throwing gapnet::Error when the product exceeds `limit` (a, b >= 0).
int64_t checked_mul(int64_t a, int64_t b, int64_t limit = INT64_MAX);

}  // namespace gapnet
