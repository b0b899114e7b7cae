#include "window_geometry.h"

#include <algorithm>
#include <string>

#include "../error.h"

namespace gapnet {
namespace {

// PyTorch's output size for one axis (pooling_output_shape in aten/src/ATen/native/Pool.h):
// floor((in + pads - extent + (ceil_mode ? stride - 1 : 0)) / stride) + 1, where the extent is
// dilation*(k-1) + 1; with ceil_mode a last window starting in the trailing padding is dropped.
// So a window may hang past the input with ceil_mode (a 2-wide pool on a 1-wide map gives 1 output),
// but without it the dilated kernel must fit in the padded input.
int64_t axis_output(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_before, int64_t pad_after,
                    bool ceil_mode, const char* axis) {
    const int64_t padded = in + pad_before + pad_after;
    const int64_t extent = dilation * (kernel - 1) + 1;
    const int64_t numerator = padded - extent + (ceil_mode ? stride - 1 : 0);
    if (numerator < 0)
        throw Error("kernel extent " + std::to_string(extent) + " is larger than the padded input " + axis + " " +
                        std::to_string(padded) + (ceil_mode ? " by more than stride - 1 (even with ceil_mode)" : ""),
                    "kernel_size");
    int64_t out = numerator / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad_before) --out;
    return out;
}

}  // namespace

int64_t Window2d::output_h(int64_t in_h) const {
    return axis_output(in_h, kernel_h, stride_h, dilation_h, pad_top, pad_bottom, ceil_mode, "height");
}

int64_t Window2d::output_w(int64_t in_w) const {
    return axis_output(in_w, kernel_w, stride_w, dilation_w, pad_left, pad_right, ceil_mode, "width");
}

int64_t Window2d::pooled_reads(const Shape& input) const {
    const Shape out = pooled_shape(input);
    return checked_mul(element_count(out), std::min(kernel_h, input[1]) * std::min(kernel_w, input[2]));
}

Shape Window2d::pooled_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input), "kernel_size");
    return {input[0], output_h(input[1]), output_w(input[2])};
}

void Window2d::check_pads_smaller_than_kernel() const {
    if (pad_top >= kernel_h || pad_bottom >= kernel_h || pad_left >= kernel_w || pad_right >= kernel_w)
        throw Error("each pad must be smaller than the kernel, so that every window covers the input", "padding");
}

}  // namespace gapnet
