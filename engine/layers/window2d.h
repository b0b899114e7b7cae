// Reading a window (kernel_size, stride, padding, dilation; kernels/window_geometry.h) from a layer's
// attributes, for conv2d, max_pool2d and avg_pool2d.
#pragma once

#include <cstdint>
#include <vector>

#include "../kernels/window_geometry.h"
#include "../layer_config.h"

namespace gapnet {

// Reads kernel_size, stride, padding and, if `with_dilation`, dilation. Sizes are an integer or
// [h, w]; padding is an integer, [h, w] (symmetric) or [top, left, bottom, right]. A missing
// kernel_size is `default_kernel` (an empty one makes it required); a missing stride is
// `default_stride`, or the kernel size when that is empty (PyTorch's pooling default).
Window2d read_window(LayerConfig& config, const std::vector<int64_t>& default_kernel,
                     const std::vector<int64_t>& default_stride, bool with_dilation);

// A pooling window: kernel_size (default [2, 2]), stride (default: the kernel size, as in
// PyTorch), padding (default 0, each pad smaller than the kernel), ceil_mode (default false).
Window2d read_pooling_window(LayerConfig& config);

}  // namespace gapnet
