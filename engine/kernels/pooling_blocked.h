// Pooling on blocked maps (kernels/blocked.h), 16 channels per vector: max and average pooling over
// a window (blocked in, blocked out) and global average and max pooling (blocked in, a plain vector
// out). Each computes, lane by lane, exactly what the plain layers compute value by value, in the
// same order, so the results are the same bit for bit:
//   max pooling      layers/max_pool2d.h: from -infinity, the window's input pixels row by row,
//                    m = (m < v) ? v : m (padding never wins, NaN never a maximum, of equal zeros
//                    the first stays)
//   average pooling  layers/avg_pool2d.h: the window's input pixels summed row by row in float from
//                    0, divided by PyTorch's divisor (count_include_pad or not, ceil_mode)
//   global average   layers/global_avg_pool2d.h: pixel i added in double to partial sum i % 8, the
//                    8 partial sums added in order, divided by H * W in double, rounded to float
//   global max       layers/global_max_pool2d.h (std::max_element): from the first pixel,
//                    m = (m < v) ? v : m, so a NaN first pixel stays
// Padding lanes (channels past the last) hold a function of the input's padding lanes: finite.
// Chunks: (sample, channel block, span of output rows) for the windows, (sample, channel block) for
// the global poolings; fixed by the shapes, so results are bit-identical for any thread count.
#pragma once

#include "../tensor.h"
#include "../thread_pool.h"
#include "window_geometry.h"

namespace gapnet {

// input blocked {N, ceil(C/16), H, W, 16} -> output blocked {N, ceil(C/16), H', W', 16} (allocated by
// the caller, H' and W' Window2d::output_h/_w's); every pad smaller than its kernel extent, so that
// each window covers an input pixel.
void max_pool_blocked(const Window2d& w, const Tensor& input, Tensor& output, ThreadPool& pool);

// As max_pool_blocked; the window's dilation is ignored (PyTorch's nn.AvgPool2d has none).
void avg_pool_blocked(const Window2d& w, bool count_include_pad, const Tensor& input, Tensor& output, ThreadPool& pool);

// input blocked {N, ceil(C/16), H, W, 16} -> output {N, C} (allocated by the caller; C from it).
void global_avg_pool_blocked(const Tensor& input, Tensor& output, ThreadPool& pool);
void global_max_pool_blocked(const Tensor& input, Tensor& output, ThreadPool& pool);

}  // namespace gapnet
