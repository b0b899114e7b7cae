// The geometry shared by conv2d, max_pool2d and avg_pool2d: a kh x kw window moved by a stride over
// an input padded with zeros on each side, optionally dilated.
#pragma once

#include <cstdint>
#include <vector>

#include "../layer_config.h"
#include "../shape.h"

namespace gapnet {

struct Window2d {
    int64_t kernel_h = 1, kernel_w = 1;
    int64_t stride_h = 1, stride_w = 1;
    int64_t dilation_h = 1, dilation_w = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
    // Pooling only: round the output size up instead of down (PyTorch's ceil_mode).
    bool ceil_mode = false;

    // Reads kernel_size, stride, padding and, if `with_dilation`, dilation. Sizes are an integer or
    // [h, w]; padding is an integer, [h, w] (symmetric) or [top, left, bottom, right]. A missing
    // kernel_size is `default_kernel` (an empty one makes it required); a missing stride is
    // `default_stride`, or the kernel size when that is empty (PyTorch's pooling default).
    static Window2d read(LayerConfig& config, const std::vector<int64_t>& default_kernel,
                         const std::vector<int64_t>& default_stride, bool with_dilation);

    // A pooling window: kernel_size (default [2, 2]), stride (default: the kernel size, as in
    // PyTorch), padding (default 0, each pad smaller than the kernel), ceil_mode (default false).
    static Window2d read_pooling(LayerConfig& config);

    // Output height and width for an input of in_h x in_w; throws gapnet::Error when the dilated
    // kernel does not fit in the padded input. Convolution rounds down; pooling may round up
    // (ceil_mode), but, as in PyTorch, a last window starting in the bottom/right padding is dropped.
    int64_t output_h(int64_t in_h) const;
    int64_t output_w(int64_t in_w) const;

    // A pooling layer's output for a C x H x W input: C x output_h(H) x output_w(W).
    Shape pooled_shape(const Shape& input) const;
    // Values a pooling layer reads for one sample: each output reads its window, clipped to the input.
    int64_t pooled_reads(const Shape& input) const;

    // Throws unless every pad is smaller than its kernel extent, so each pooling window covers at
    // least one input pixel.
    void check_pads_smaller_than_kernel() const;
};

}  // namespace gapnet
