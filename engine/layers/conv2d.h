// conv2d: 2-D convolution (cross-correlation, as in PyTorch's nn.Conv2d), zero padding, optional bias.
//   input  [N, in_channels, H, W]
//   weight [out_channels, in_channels / groups, kernel_h, kernel_w]   (PyTorch's layout)
//   output [N, out_channels, H', W'],  H' = floor((H + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride) + 1
// Channels split into `groups` independent groups; groups == in_channels is a depthwise convolution.
// The arithmetic is in kernels/: the plain reference loop and the fast kernels, and which one runs
// (kernels/conv2d_choice.h): on blocked maps (kernels/blocked.h) conv2d_blocked.h, or
// depthwise_blocked.h for a depthwise layer; on plain maps im2col + GEMM (conv2d_gemm.h),
// conv2d_winograd.h, conv2d_direct.h or conv2d_depthwise.h, chosen by the shapes.
//
// Fusion (Graph::fuse): a conv2d absorbs a following activation (applied by the kernel as each
// output block is finished), a following batch_norm2d (folded into its weights and bias, after
// which it can absorb the rest too) and a following add of one more tensor (a residual
// connection: layers/add.h's FusedAdd, which can absorb the activation after the add). A 1x1
// conv2d followed by a depthwise one, or a depthwise one followed by a 1x1, start a chain run band
// by band (layers/conv_chain.h). An activation-fused layer shares this layer's parameters (no copy).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "../kernels/activation_function.h"
#include "../kernels/conv2d_choice.h"
#include "../kernels/conv2d_params.h"
#include "../kernels/epilogue.h"
#include "../layer.h"
#include "../precision.h"

namespace gapnet {

class Conv2d : public UnaryLayer {
public:
    using Params = ConvParams;

    // `bias` empty means no bias. Throws gapnet::Error on inconsistent parameters. `precision`: the
    // weights' (bfloat16: their values are bfloat16's, and the blocked kernel computes in it).
    Conv2d(Params params, std::vector<float> weight, std::vector<float> bias, Precision precision = Precision::float32);
    static std::unique_ptr<Layer> create(LayerConfig& config);

    static Shape weight_shape(const Params& p);

    std::string_view type() const override { return "conv2d"; }
    Shape output_shape(const Shape& input) const override;
    int64_t parameter_count() const override;
    int64_t macs(const Shape& input) const override;
    int64_t workspace_elements(const Shape& input) const override;
    int64_t prepared_elements(const Shape& input) const override;
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;
    std::unique_ptr<Layer> fused_with(const Layer& next, int next_position, int next_inputs) const override;
    // Leads to the blocked layout where the blocked kernels run (conv_runs_blocked); reads an input
    // of fewer than kPlainInputChannels channels plain (an image).
    static constexpr int64_t kPlainInputChannels = 8;
    Blocking blocking(const Shape& input) const override;
    bool runs_blocked(const Shape& input) const { return blocking(input) == Blocking::leads; }
    bool reads_plain(const Shape& input) const override { return input.at(0) < kPlainInputChannels; }

    // The blocked kernel on `input` (blocked, or plain when reads_plain), writing `output` (blocked):
    // activation(conv(input) + residual), `residual` (a blocked map of the output's shape) or null;
    // a residual only where adds_residual() (the depthwise kernel adds none).
    bool adds_residual() const;
    void forward_blocked(const Tensor& input, const float* residual, const Activation& activation, Tensor& output,
                         ThreadPool& pool) const;
    // The blocked kernel's name: "blocked-dw" (depthwise), "blocked-bf16" or "blocked".
    const char* blocked_kernel() const;
    // Whether the blocked kernel computes in bfloat16: a bfloat16 layer that is not depthwise and
    // reads a blocked map (a depthwise layer's few multiply-adds per value gain nothing from it, an
    // image's few channels would be padded to pairs: their bfloat16 weights run in float32).
    bool blocked_in_bfloat16() const;
    // The kernels' epilogue: this layer's bias (or none) and `activation`.
    Epilogue epilogue(const Activation& activation) const {
        return {bias().empty() ? nullptr : bias().data(), activation};
    }
    // The weights packed for the blocked kernel, made by the first call (shared by the layers fused
    // from this one); a layer computing in bfloat16 packs them so instead (blocked_bf16_weights).
    const float* blocked_weights() const;
    const uint16_t* blocked_bf16_weights() const;

    const Params& params() const { return p_; }
    const std::vector<float>& weight() const { return parameters_->weight; }
    const std::vector<float>& bias() const { return parameters_->bias; }
    const Activation& activation() const { return activation_; }  // a fused activation, or identity
    Precision precision() const override { return parameters_->precision; }
    int64_t parameter_bytes() const override {
        return precision_bytes(precision()) * static_cast<int64_t>(weight().size()) +
               4 * static_cast<int64_t>(bias().size());
    }

    // blocked: the blocked kernels (on blocked maps; as a preference, the plain kernels' choice
    // stays automatic where a step runs plain).
    using Algorithm = ConvKernel;
    static const char* name(Algorithm algorithm);  // "gemm", "winograd", ...
    // The kernel forward() runs for a batch of `batch` inputs of per-sample shape `input`.
    Algorithm algorithm(const Shape& input, int64_t batch = 1) const;
    // For benchmarks and comparisons: this layer runs `algorithm` wherever that kernel applies
    // (gemm: always), its own choice elsewhere; nullopt (the default) is the automatic choice. A
    // setting of the layer, so that models in one process can differ; a graph sets it on all its
    // convolutions (Graph::set_conv_algorithm), which also re-checks its limits against the kernel's
    // scratch size. Not while the layer runs.
    void prefer(std::optional<Algorithm> algorithm) { preferred_ = algorithm; }
    std::optional<Algorithm> preferred() const { return preferred_; }

private:
    struct Parameters {
        std::vector<float> weight, bias;
        Precision precision = Precision::float32;
        // The weights transformed by winograd_filter and those packed for the direct kernel's
        // channel tiles (direct_pack_weights), each made by the first call that runs that kernel:
        // only layers that run them keep these copies of their weights.
        mutable std::once_flag winograd_once, direct_once, blocked_once, blocked_bf16_once;
        mutable std::vector<float> winograd, direct, blocked;  // blocked: packed for the blocked kernel
        mutable std::vector<uint16_t> blocked_bf16;            // or so in bfloat16
    };
    const float* winograd_weights() const;  // parameters_->winograd, made on first use; null if not kept
    const float* direct_weights() const;    // parameters_->direct, packed on first use; null if unused
    Conv2d(Params params, std::shared_ptr<const Parameters> parameters, Activation activation,
           std::optional<Algorithm> preferred);
    static std::shared_ptr<const Parameters> make_parameters(std::vector<float> weight, std::vector<float> bias,
                                                             Precision precision);

    Params p_;
    std::shared_ptr<const Parameters> parameters_;
    Activation activation_;
    std::optional<Algorithm> preferred_;
};

}  // namespace gapnet
