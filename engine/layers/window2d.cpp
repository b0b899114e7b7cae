#include "window2d.h"

#include <algorithm>
#include <string>

#include "../error.h"

namespace gapnet {
namespace {

std::vector<int64_t> read_pair(LayerConfig& config, const std::string& key, int64_t min,
                               const std::vector<int64_t>& fallback) {
    std::vector<int64_t> v = config.integers(key, min, fallback);
    if (v.empty()) config.fail(key, "required");
    if (v.size() == 1) v.push_back(v[0]);
    if (v.size() != 2) config.fail(key, "expected an integer or [height, width], got " + std::to_string(v.size()) + " values");
    return v;
}

// PyTorch's output size for one axis (pooling_output_shape in aten/src/ATen/native/Pool.h):
// floor((in + pads - extent + (ceil_mode ? stride - 1 : 0)) / stride) + 1, where the extent is
// dilation*(k-1) + 1; with ceil_mode a last window starting in the trailing padding is dropped.
// So a window may hang past the input with ceil_mode (a 2-wide pool on a 1-wide map gives 1 output),
// but without it the dilated kernel must fit in the padded input.
int64_t axis_output(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_before,
                    int64_t pad_after, bool ceil_mode, const char* axis) {
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

Window2d Window2d::read(LayerConfig& config, const std::vector<int64_t>& default_kernel,
                        const std::vector<int64_t>& default_stride, bool with_dilation) {
    Window2d w;
    const auto kernel = read_pair(config, "kernel_size", 1, default_kernel);
    const auto stride = read_pair(config, "stride", 1, default_stride.empty() ? kernel : default_stride);
    w.kernel_h = kernel[0], w.kernel_w = kernel[1];
    w.stride_h = stride[0], w.stride_w = stride[1];
    if (with_dilation) {
        const auto dilation = read_pair(config, "dilation", 1, {1, 1});
        w.dilation_h = dilation[0], w.dilation_w = dilation[1];
    }
    auto pad = config.integers("padding", 0, {0});
    if (pad.size() == 1) pad = {pad[0], pad[0], pad[0], pad[0]};
    else if (pad.size() == 2) pad = {pad[0], pad[1], pad[0], pad[1]};
    else if (pad.size() != 4)
        config.fail("padding", "expected an integer, [h, w] or [top, left, bottom, right], got " +
                                   std::to_string(pad.size()) + " values");
    w.pad_top = pad[0], w.pad_left = pad[1], w.pad_bottom = pad[2], w.pad_right = pad[3];
    return w;
}

Window2d Window2d::read_pooling(LayerConfig& config) {
    Window2d w = read(config, {2, 2}, {}, /*with_dilation=*/false);
    w.ceil_mode = config.boolean("ceil_mode", false);
    try {
        w.check_pads_smaller_than_kernel();
    } catch (const Error& e) {
        config.fail(e.where(), e.what());
    }
    return w;
}

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
        throw Error("each pad must be smaller than the kernel, so that every window covers the input",
                    "padding");
}

}  // namespace gapnet
