// Max pooling on plain maps (the layer: layers/max_pool2d.h), and its reference loop.
//   input [N, C, H, W] -> output [N, C, H', W'] (allocated by the caller), H' and W' as in
//   Window2d::output_h/_w; every pad smaller than its kernel extent.
// Each output is its window's maximum taken row by row from -infinity, m = (m < v) ? v : m, i.e.
// std::max(m, v): padding never wins, NaN is never a maximum (a window of NaNs gives -infinity), and
// of two equal zeros the first stays. max_pooling computes exactly that, bit for bit.
#pragma once

#include <cstdint>

#include "../tensor.h"
#include "../thread_pool.h"
#include "window_geometry.h"

namespace gapnet {

// The scratch floats max_pooling uses per thread for an in_h x in_w map.
int64_t max_pooling_workspace(const Window2d& w, int64_t in_h, int64_t in_w);

// A plane at a time, padded with -infinity and split by stride (kernels/window_phases.h), 16 outputs
// a step; the 2x2 stride-2 unpadded window (most CNNs' pool) straight from the input rows, two rows'
// 32 pixels split into their even and odd columns (a plane of a 28 x 28 map is too small to pay for
// the copy). Chunks of whole planes, fixed by the shapes.
void max_pooling(const Window2d& w, const Tensor& input, Tensor& output, ThreadPool& pool);

// The plain loop over each window: the oracle max_pooling is tested against.
void max_pooling_reference(const Window2d& w, const Tensor& input, Tensor& output);

}  // namespace gapnet
