// conv2d: 2-D convolution (cross-correlation, as in PyTorch's nn.Conv2d), zero padding, optional bias.
//   input  [N, in_channels, H, W]
//   weight [out_channels, in_channels / groups, kernel_h, kernel_w]   (PyTorch's layout)
//   output [N, out_channels, H', W'],  H' = floor((H + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride) + 1
// Channels split into `groups` independent groups; groups == in_channels is a depthwise convolution.
// The arithmetic is in kernels/conv2d.h (a fast GEMM kernel, and the plain reference loop).
#pragma once

#include <memory>
#include <vector>

#include "../layer.h"
#include "window2d.h"

namespace gapnet {

class Conv2d : public Layer {
public:
    struct Params {
        int64_t in_channels = 1, out_channels = 1, groups = 1;
        Window2d window;  // ceil_mode is ignored
    };

    // `bias` empty means no bias. Throws gapnet::Error on inconsistent parameters.
    Conv2d(Params params, std::vector<float> weight, std::vector<float> bias);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    static Shape weight_shape(const Params& p);

    std::string_view type() const override { return "conv2d"; }
    Shape output_shape(const Shape& input) const override;
    int64_t parameter_count() const override;
    int64_t macs(const Shape& input) const override;
    int64_t workspace_elements(const Shape& input) const override;
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

    const Params& params() const { return p_; }
    const std::vector<float>& weight() const { return weight_; }
    const std::vector<float>& bias() const { return bias_; }

private:
    Params p_;
    std::vector<float> weight_, bias_;
};

}  // namespace gapnet
