// conv_chain: a depthwise convolution with the 1x1 convolutions around it, run band by band -
// MobileNetV2's inverted residual block (Sandler et al. 2018: 1x1 expand -> depthwise -> 1x1
// project, + the block's input), or the part of it a model has (EfficientNet's squeeze-and-
// excitation gate comes between the depthwise and the projection, so there the chain ends at the
// depthwise). Made by Graph::fuse, never read from a model file:
//   input  [N, C, H, W]  (blocked)
//   expand (optional)    1x1 conv C -> E, its activation     [N, E, H, W]    never stored whole
//   depthwise            k x k conv E -> E, stride s          [N, E, H', W']  stored whole only when
//                                                                               nothing follows it
//   project (optional)   1x1 conv E -> C', + residual [N, C', H', W'], the add's activation
//   output [N, C', H', W'] (blocked)
//
// Why: the expanded map is the block's largest (MobileNetV2's second block: 96 channels at
// 112 x 112, 4.8 MB, against 16 channels in and 24 out), and layer by layer it is written to memory
// and read back twice. Here each thread computes the output a band of rows at a time: the expanded
// rows the band's depthwise windows read (kept from the band before where they overlap), the
// depthwise rows, and their projection, all within a few hundred kilobytes of scratch that stay in
// the core's cache; the output is the only map written. Each value is computed by the same kernels
// in the same order as the layers one by one (kernels/conv2d_blocked.h's pointwise_blocked_pixels,
// kernels/depthwise_blocked.h's depthwise_blocked_rows), so the results are the same bit for bit.
//
// Where the graph runs plain (blocking off), the chain runs its convolutions one after another.
#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "../kernels/activation_function.h"
#include "../layer.h"
#include "conv2d.h"

namespace gapnet {

class ConvChain : public Layer {
public:
    // The part a chain can start from: a conv2d that runs blocked and reads a blocked map, 1x1
    // (stride 1, no padding) or depthwise; nullptr if `first` and `next` do not make a chain
    // (exactly one depthwise, at most one 1x1 before and one after it).
    static std::unique_ptr<Layer> start(const Conv2d& first, const Conv2d& next);

    std::string_view type() const override { return "conv_chain"; }
    int min_inputs() const override { return residual_ ? 2 : 1; }
    int max_inputs() const override { return residual_ ? 2 : 1; }
    // inputs: the chain's input, then (with a residual) the map added to the projection.
    Shape output_shape(const Shapes& inputs) const override;
    int64_t parameter_count() const override;
    int64_t macs(const Shapes& inputs) const override;
    int64_t work(const Shapes& inputs) const override;
    // One thread's band scratch (the expanded rows and the depthwise rows of a band).
    int64_t workspace_elements(const Shapes& inputs) const override;
    int64_t prepared_elements(const Shapes& inputs) const override;
    Blocking blocking(const Shapes&) const override { return Blocking::leads; }
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const override;
    // Absorbs the last convolution's batch norm or activation, a 1x1 projection after the
    // depthwise, an add of the block's input after the projection, and the activation after that.
    std::unique_ptr<Layer> fused_with(const Layer& next, int next_position, int next_inputs) const override;

    const Conv2d* expand() const { return expand_ ? &*expand_ : nullptr; }
    const Conv2d& depthwise() const { return depthwise_; }
    const Conv2d* project() const { return project_ ? &*project_ : nullptr; }

private:
    struct Band;  // one band's geometry (conv_chain.cpp)
    ConvChain(std::optional<Conv2d> expand, Conv2d depthwise, std::optional<Conv2d> project, bool residual,
              Activation output_activation);
    const Conv2d& last() const { return project_ ? *project_ : depthwise_; }
    // The convolutions in order, each with the per-sample shape of its input.
    std::vector<std::pair<const Conv2d*, Shape>> stages(Shape input) const;
    // Rows of the depthwise output per band, and the expanded rows a band reads at most.
    int64_t band_rows(int64_t in_w) const;
    int64_t expanded_rows(int64_t band) const;
    void forward_blocked(const Tensor& input, const float* residual, Tensor& output, ThreadPool& pool) const;
    void forward_plain(const Tensor& input, const Tensor* residual, Tensor& output, ThreadPool& pool) const;

    std::optional<Conv2d> expand_;
    Conv2d depthwise_;
    std::optional<Conv2d> project_;
    bool residual_ = false;
    Activation output_activation_;  // after the residual add (the projection's own is identity then)
};

}  // namespace gapnet
