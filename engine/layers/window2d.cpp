#include "window2d.h"

#include <string>

#include "../error.h"

namespace gapnet {
namespace {

std::vector<int64_t> read_pair(LayerConfig& config, const std::string& key, int64_t min,
                               const std::vector<int64_t>& fallback) {
    std::vector<int64_t> v = config.integers(key, min, fallback);
    if (v.empty()) config.fail(key, "required");
    if (v.size() == 1) v.push_back(v[0]);
    if (v.size() != 2)
        config.fail(key, "expected an integer or [height, width], got " + std::to_string(v.size()) + " values");
    return v;
}

}  // namespace

Window2d read_window(LayerConfig& config, const std::vector<int64_t>& default_kernel,
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
    if (pad.size() == 1)
        pad = {pad[0], pad[0], pad[0], pad[0]};
    else if (pad.size() == 2)
        pad = {pad[0], pad[1], pad[0], pad[1]};
    else if (pad.size() != 4)
        config.fail("padding", "expected an integer, [h, w] or [top, left, bottom, right], got " +
                                   std::to_string(pad.size()) + " values");
    w.pad_top = pad[0], w.pad_left = pad[1], w.pad_bottom = pad[2], w.pad_right = pad[3];
    return w;
}

Window2d read_pooling_window(LayerConfig& config) {
    Window2d w = read_window(config, {2, 2}, {}, /*with_dilation=*/false);
    w.ceil_mode = config.boolean("ceil_mode", false);
    try {
        w.check_pads_smaller_than_kernel();
    } catch (const Error& e) {
        config.fail(e.where(), e.what());
    }
    return w;
}

}  // namespace gapnet
