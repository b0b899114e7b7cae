// A dense float32 tensor in row-major order: activations are N x C x H x W (or N x F for vectors).
// gapnet::Tensor is declared in the public header (the API's callers pass and receive tensors);
// shape.h has the arithmetic on its shapes. Batches are built and cut here, in one place: concatenate()
// (gapnet.h) joins samples, batch_rows() and set_batch_rows() cut a batch into groups and join them.
#pragma once

#include "gapnet/gapnet.h"
#include "shape.h"

namespace gapnet {

// Rows first .. first + count - 1 of a batch [N, ...]: [count, ...].
Tensor batch_rows(const Tensor& batch, int64_t first, int64_t count);

// Writes `rows` [count, ...] over rows first .. first + count - 1 of `batch` [N, ...] (same sample shape).
void set_batch_rows(Tensor& batch, int64_t first, const Tensor& rows);

}  // namespace gapnet
