#include "conv2d.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/conv2d.h"

namespace gapnet {

Shape Conv2d::weight_shape(const Params& p) {
    return {p.out_channels, p.in_channels / p.groups, p.window.kernel_h, p.window.kernel_w};
}

Conv2d::Conv2d(Params params, std::vector<float> weight, std::vector<float> bias)
    : p_(params), weight_(std::move(weight)), bias_(std::move(bias)) {
    if (p_.in_channels < 1 || p_.out_channels < 1 || p_.groups < 1)
        throw Error("channels and groups must be positive");
    if (p_.in_channels % p_.groups != 0)
        throw Error("in_channels " + std::to_string(p_.in_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups), "groups");
    if (p_.out_channels % p_.groups != 0)
        throw Error("out_channels " + std::to_string(p_.out_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups), "groups");
    p_.window.ceil_mode = false;
    if (static_cast<int64_t>(weight_.size()) != element_count(weight_shape(p_)))
        throw Error(std::to_string(weight_.size()) + " values, shape " + to_string(weight_shape(p_)) +
                        " needs " + std::to_string(element_count(weight_shape(p_))), "weight");
    if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != p_.out_channels)
        throw Error(std::to_string(bias_.size()) + " values, out_channels is " +
                        std::to_string(p_.out_channels), "bias");
}

std::unique_ptr<Layer> Conv2d::create(LayerConfig& config) {
    Params p;
    p.in_channels = config.integer("in_channels", 1);
    p.out_channels = config.integer("out_channels", 1);
    p.groups = config.integer("groups", 1, 1);
    if (p.in_channels % p.groups != 0 || p.out_channels % p.groups != 0)
        config.fail("groups", "in_channels " + std::to_string(p.in_channels) + " and out_channels " +
                                  std::to_string(p.out_channels) + " must both be divisible by groups " +
                                  std::to_string(p.groups));
    p.window = Window2d::read(config, {}, {1, 1}, /*with_dilation=*/true);
    auto weight = config.tensor("weight", weight_shape(p), true);
    auto bias = config.tensor("bias", {p.out_channels}, false);
    return std::make_unique<Conv2d>(p, std::move(*weight), bias ? std::move(*bias) : std::vector<float>{});
}

Shape Conv2d::output_shape(const Shape& input) const {
    if (input.size() != 3)
        throw Error("needs a C x H x W input, got " + to_string(input), "in_channels");
    if (input[0] != p_.in_channels)
        throw Error("is " + std::to_string(p_.in_channels) + " but the input has " +
                        std::to_string(input[0]) + (input[0] == 1 ? " channel" : " channels"), "in_channels");
    return {p_.out_channels, p_.window.output_h(input[1]), p_.window.output_w(input[2])};
}

int64_t Conv2d::parameter_count() const {
    return static_cast<int64_t>(weight_.size() + bias_.size());
}

int64_t Conv2d::macs(const Shape& input) const {
    const Shape out = output_shape(input);
    return out[0] * out[1] * out[2] * (p_.in_channels / p_.groups) * p_.window.kernel_h * p_.window.kernel_w;
}

// conv2d_gemm's im2col matrix, [in_channels/groups * kh * kw, H' * W'] (none for a 1x1 stride-1 unpadded conv).
int64_t Conv2d::workspace_elements(const Shape& input) const {
    const Window2d& w = p_.window;
    if (w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_top == 0 &&
        w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0)
        return 0;
    const Shape out = output_shape(input);
    return (p_.in_channels / p_.groups) * w.kernel_h * w.kernel_w * out[1] * out[2];
}

void Conv2d::forward(const Tensor& input, Tensor& output, ThreadPool& /*pool*/) const { conv2d_gemm(p_, weight_, bias_, input, output); }

}  // namespace gapnet
