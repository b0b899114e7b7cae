#include "conv2d.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/conv2d.h"
#include "../kernels/conv2d_depthwise.h"
#include "../kernels/conv2d_direct.h"
#include "../kernels/conv2d_winograd.h"
#include "activation.h"
#include "add.h"
#include "batch_norm2d.h"
#include "window2d.h"

namespace gapnet {

Shape Conv2d::weight_shape(const Params& p) {
    return {p.out_channels, p.in_channels / p.groups, p.window.kernel_h, p.window.kernel_w};
}

Conv2d::Conv2d(Params params, std::vector<float> weight, std::vector<float> bias) : p_(params) {
    if (p_.in_channels < 1 || p_.out_channels < 1 || p_.groups < 1)
        throw Error("channels and groups must be positive");
    if (p_.in_channels % p_.groups != 0)
        throw Error("in_channels " + std::to_string(p_.in_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups), "groups");
    if (p_.out_channels % p_.groups != 0)
        throw Error("out_channels " + std::to_string(p_.out_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups), "groups");
    p_.window.ceil_mode = false;
    if (static_cast<int64_t>(weight.size()) != element_count(weight_shape(p_)))
        throw Error(std::to_string(weight.size()) + " values, shape " + to_string(weight_shape(p_)) +
                        " needs " + std::to_string(element_count(weight_shape(p_))), "weight");
    if (!bias.empty() && static_cast<int64_t>(bias.size()) != p_.out_channels)
        throw Error(std::to_string(bias.size()) + " values, out_channels is " +
                        std::to_string(p_.out_channels), "bias");
    parameters_ = prepare(p_, std::move(weight), std::move(bias));
}

Conv2d::Conv2d(Params params, std::shared_ptr<const Parameters> parameters, Activation activation,
               std::optional<Algorithm> preferred)
    : p_(params), parameters_(std::move(parameters)), activation_(activation), preferred_(preferred) {}

// Which convolutions run as Winograd F(4x4, 3x3), decided by measurement (CPU time of one thread,
// AVX-512; the kernels branch's report has the numbers):
//  - 3x3, stride 1, undilated, ungrouped (what the algorithm computes), with at least
//    kWinogradMinChannels input and output channels: with fewer the transforms (per channel, not
//    per channel pair) cost what the 36 thin GEMMs save;
//  - the transformed weights (36/9 = 4x the weights) are kept with the layer when they take at most
//    kWinogradMaxBytes: all of VGG-11's would take 148 MB, beyond its memory budget (weights + 3x
//    the largest activation + 64 MiB); 20 MB keeps 34 MB of them (its 64- to 256-channel layers).
//    Wider layers transform their weights again on each call, a block of output channels at a time;
//  - the GEMMs must be wide enough: at least kWinogradMinTiles tiles (4x4 output blocks) a wave,
//    kWinogradMinTilesUncached when the weights are transformed per call. Batch 1, ms:
//        channels, map      Winograd  (weights transformed per call)  im2col+GEMM
//        64 -> 128, 7x7     0.23      0.45                            0.16   (4 tiles)
//        32 -> 64, 14x14    0.10      0.17                            0.15   (16 tiles)
//        128 -> 128, 14x14  0.39      0.69                            0.66
//        512 -> 512, 14x14  8.9       14.5                            8.3
//        512 -> 512, 28x28  16        21                              31     (49 tiles)
//        64 -> 128, 112x112 10                                        22
//    and at batch 32 (Winograd's waves then span samples) it wins on all of these.
constexpr int64_t kWinogradMinChannels = 16;
constexpr int64_t kWinogradMaxBytes = int64_t{20} << 20;
constexpr int64_t kWinogradMinTiles = 16;
constexpr int64_t kWinogradMinTilesUncached = 48;

// Stride-1 ungrouped convolutions run as direct convolution (kernels/conv2d_direct.h) when one
// sample's zero-padded input takes at most kDirectMaxFloats (128 KiB: it is re-read by every tile
// of output channels, from L1/L2) and Winograd is not chosen with waves of at least
// kDirectMaxWinogradTiles tiles. Measured, ms (1 thread; 2 threads), isolated layers:
//        channels, map      direct        Winograd      im2col+GEMM
//        1 -> 32, 28x28     0.012; 0.011                0.012; 0.014
//        32 -> 64, 14x14    0.064; 0.054  0.075; 0.10   0.17
//        64 -> 128, 7x7     0.076; 0.062                0.10;  0.10
// while at batch 32 Winograd's waves span samples and it wins (64 -> 128, 7x7: 1.5 vs 2.1). Larger
// inputs go to Winograd first where it suits: VGG-11's 256 -> 512 at 28x28 took 6.1-7.0 ms direct
// (channel tiles), 3.9-4.4 Winograd (2 threads). Output maps of at most kDirectMaxPixels (16 x 16) run
// direct whatever the channels (unless Winograd's waves are wide enough, as above): VGG-11's
// 512 -> 512 at 14x14, where Winograd would transform its 9 MB of weights on every call, took (ms,
// 1 thread; 2 threads, gapnet bench --conv-algorithm, 3 interleaved rounds): direct 6.1-6.2; 3.3-3.5,
// GEMM 7.4-8.1; 4.3-4.5, Winograd 10.9-13.4; 6.1-7.6.
// Larger inputs run direct too when neither Winograd nor the depthwise kernel is chosen, except 1x1
// kernels (their GEMM reads the input in place, no im2col): VGG-11's 3 -> 64 at 224x224 took
// 2.8-3.7 ms direct, 4.6-5.1 GEMM (1 thread; 1.8-2.0 and 3.5-5.0 with 2; 3 interleaved rounds of
// gapnet bench --conv-algorithm), where im2col copies 27 floats per pixel for 64 multiply-adds each.
constexpr int64_t kDirectMaxFloats = int64_t{1} << 15;
constexpr int64_t kDirectMaxPixels = 256;
constexpr int64_t kDirectMaxWinogradTiles = 64;

namespace {

bool winograd_suits(const Conv2d::Params& p) {
    return winograd_applies(p) && p.in_channels >= kWinogradMinChannels && p.out_channels >= kWinogradMinChannels;
}

}  // namespace

std::shared_ptr<const Conv2d::Parameters> Conv2d::prepare(const Params& p, std::vector<float> weight, std::vector<float> bias) {
    auto parameters = std::make_shared<Parameters>();
    parameters->weight = std::move(weight);
    parameters->bias = std::move(bias);
    if (winograd_suits(p) && 36 * p.in_channels * p.out_channels * 4 <= kWinogradMaxBytes)
        parameters->winograd = winograd_filter(parameters->weight.data(), p.out_channels, p.in_channels);
    return parameters;
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
    p.window = read_window(config, {}, {1, 1}, /*with_dilation=*/true);
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
    return static_cast<int64_t>(weight().size() + bias().size());
}

int64_t Conv2d::macs(const Shape& input) const {
    const Shape out = output_shape(input);
    return out[0] * out[1] * out[2] * (p_.in_channels / p_.groups) * p_.window.kernel_h * p_.window.kernel_w;
}

const char* Conv2d::name(Algorithm algorithm) {
    switch (algorithm) {
        case Algorithm::gemm: return "gemm";
        case Algorithm::winograd: return "winograd";
        case Algorithm::depthwise: return "depthwise";
        case Algorithm::direct: return "direct";
    }
    return "?";
}

std::optional<Conv2d::Algorithm> Conv2d::applicable_preference() const {
    if (!preferred_) return std::nullopt;
    switch (*preferred_) {
        case Algorithm::gemm: return preferred_;
        case Algorithm::winograd: return winograd_applies(p_) ? preferred_ : std::nullopt;
        case Algorithm::direct: return direct_applies(p_) ? preferred_ : std::nullopt;
        case Algorithm::depthwise: return depthwise_applies(p_) ? preferred_ : std::nullopt;
    }
    return std::nullopt;
}

Conv2d::Algorithm Conv2d::algorithm(const Shape& input, int64_t batch) const {
    const Shape out = output_shape(input);  // checks the input
    if (const auto preferred = applicable_preference()) return *preferred;
    if (direct_applies(p_) &&
        (conv2d_direct_workspace(p_, input[1], input[2]) <= kDirectMaxFloats || out[1] * out[2] <= kDirectMaxPixels) &&
        !(winograd_suits(p_) && winograd_wave_tiles(p_, input[1], input[2], batch) >= kDirectMaxWinogradTiles))
        return Algorithm::direct;
    if (winograd_suits(p_) && winograd_wave_tiles(p_, input[1], input[2], batch) >=
                                  (parameters_->winograd.empty() ? kWinogradMinTilesUncached : kWinogradMinTiles))
        return Algorithm::winograd;
    if (depthwise_applies(p_)) return Algorithm::depthwise;
    if (direct_applies(p_) && p_.window.kernel_h * p_.window.kernel_w > 1) return Algorithm::direct;
    return Algorithm::gemm;
}

// The scratch of the kernel, the larger of the two when the batch decides between Winograd (its
// wave of transformed tiles, and per-call weights) and im2col + GEMM (its im2col wave). A preferred
// kernel runs whatever the batch: its own scratch.
int64_t Conv2d::workspace_elements(const Shape& input) const {
    const Shape out = output_shape(input);
    const bool winograd_cached = !parameters_->winograd.empty();
    if (const auto preferred = applicable_preference()) {
        switch (*preferred) {
            case Algorithm::gemm: return conv2d_gemm_workspace(p_, input[1], input[2], out[1], out[2]);
            case Algorithm::winograd: return winograd_workspace(p_, input[1], input[2], winograd_cached);
            case Algorithm::direct: return conv2d_direct_workspace(p_, input[1], input[2]);
            case Algorithm::depthwise: return 0;
        }
    }
    if (depthwise_applies(p_)) return 0;
    int64_t scratch = conv2d_gemm_workspace(p_, input[1], input[2], out[1], out[2]);
    if (algorithm(input, int64_t{1} << 20) == Algorithm::winograd) {  // Winograd for some batch
        const int64_t winograd = winograd_workspace(p_, input[1], input[2], winograd_cached);
        scratch = algorithm(input, 1) == Algorithm::winograd ? winograd : std::max(scratch, winograd);
    }
    if (algorithm(input, 1) == Algorithm::direct)  // its padded input (a per-thread buffer)
        scratch = std::max(scratch, conv2d_direct_workspace(p_, input[1], input[2]));
    return scratch;
}

// Winograd's transformed weights (kept from construction), and the direct kernel's packed ones if
// batch 1 runs it (a larger batch runs direct only where batch 1 does: Winograd's waves only grow).
int64_t Conv2d::prepared_elements(const Shape& input) const {
    int64_t floats = static_cast<int64_t>(parameters_->winograd.size());
    if (algorithm(input, 1) == Algorithm::direct && direct_channel_tiles(p_)) floats += direct_packed_size(p_);
    return floats;
}

void Conv2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const Epilogue epilogue{bias().empty() ? nullptr : bias().data(), activation_};
    switch (algorithm({input.shape[1], input.shape[2], input.shape[3]}, input.shape[0])) {
        case Algorithm::winograd:
            return conv2d_winograd(p_, parameters_->winograd.empty() ? nullptr : parameters_->winograd.data(),
                                   weight().data(), epilogue, input, output, pool);
        case Algorithm::direct:
            return conv2d_direct(p_, weight().data(), direct_weights(), epilogue, input, output, pool);
        case Algorithm::depthwise: return conv2d_depthwise(p_, weight().data(), epilogue, input, output, pool);
        case Algorithm::gemm: return conv2d_gemm(p_, weight().data(), epilogue, input, output, pool);
    }
}

const float* Conv2d::direct_weights() const {
    if (!direct_channel_tiles(p_)) return nullptr;
    std::call_once(parameters_->direct_once,
                   [&] { parameters_->direct = direct_pack_weights(p_, parameters_->weight.data()); });
    return parameters_->direct.data();
}

// An activation: the same parameters, the activation in the epilogue. An add of two tensors: a
// FusedAdd (layers/add.h). batch_norm2d (y = x*scale + shift per channel): w' = w*scale,
// b' = b*scale + shift, i.e. w*gamma/sqrt(var+eps) and (b-mean)*gamma/sqrt(var+eps)+beta.
std::unique_ptr<Layer> Conv2d::fused_with(const Layer& next, int, int next_inputs) const {
    if (!activation_.is_identity()) return nullptr;
    if (const auto* act = dynamic_cast<const ActivationLayer*>(&next))
        return std::unique_ptr<Layer>(new Conv2d(p_, parameters_, act->activation(), preferred_));
    if (dynamic_cast<const Add*>(&next) && next_inputs == 2) return std::make_unique<FusedAdd>(*this, Activation{});
    if (const auto* bn = dynamic_cast<const BatchNorm2d*>(&next)) {
        if (static_cast<int64_t>(bn->scale().size()) != p_.out_channels) return nullptr;
        std::vector<float> w = weight(), b(static_cast<size_t>(p_.out_channels));
        const size_t per_channel = w.size() / b.size();
        for (size_t oc = 0; oc < b.size(); ++oc) {
            const double scale = bn->scale()[oc];
            for (size_t i = oc * per_channel; i < (oc + 1) * per_channel; ++i)
                w[i] = static_cast<float>(w[i] * scale);
            b[oc] = static_cast<float>((bias().empty() ? 0.0 : bias()[oc]) * scale + bn->shift()[oc]);
        }
        return std::unique_ptr<Layer>(new Conv2d(p_, prepare(p_, std::move(w), std::move(b)), Activation{}, preferred_));
    }
    return nullptr;
}

}  // namespace gapnet
