// The geometry shared by conv2d, max_pool2d and avg_pool2d: a kh x kw window moved by a stride over
// an input padded with zeros on each side, optionally dilated. (Reading it from a model file:
// layers/window2d.h.)
#pragma once

#include <algorithm>
#include <cstdint>

#include "../shape.h"

namespace gapnet {

struct Window2d {
    int64_t kernel_h = 1, kernel_w = 1;
    int64_t stride_h = 1, stride_w = 1;
    int64_t dilation_h = 1, dilation_w = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
    // Pooling only: round the output size up instead of down (PyTorch's ceil_mode).
    bool ceil_mode = false;

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

// Along one axis, what the average-pooling window of output index `o` covers: input indices
// [begin, end), and `padded`, its extent clipped to the padded input (count_include_pad's divisor,
// as PyTorch's CPU kernel counts it).
struct PoolSpan {
    int64_t begin, end, padded;
};
inline PoolSpan pool_span(int64_t o, int64_t stride, int64_t pad_before, int64_t pad_after, int64_t kernel,
                          int64_t size) {
    const int64_t start = o * stride - pad_before, stop = std::min(start + kernel, size + pad_after);
    return {std::max<int64_t>(start, 0), std::min(stop, size), stop - start};
}

}  // namespace gapnet
