#include "conv2d.h"

#include <algorithm>
#include <stdexcept>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/conv2d_blocked.h"
#include "../kernels/conv2d_choice.h"
#include "../kernels/conv2d_depthwise.h"
#include "../kernels/conv2d_direct.h"
#include "../kernels/conv2d_gemm.h"
#include "../kernels/conv2d_winograd.h"
#include "../kernels/depthwise_blocked.h"
#include "activation.h"
#include "add.h"
#include "batch_norm2d.h"
#include "conv_chain.h"
#include "window2d.h"

namespace gapnet {

Shape Conv2d::weight_shape(const Params& p) {
    return {p.out_channels, p.in_channels / p.groups, p.window.kernel_h, p.window.kernel_w};
}

Conv2d::Conv2d(Params params, std::vector<float> weight, std::vector<float> bias, Precision precision) : p_(params) {
    if (p_.in_channels < 1 || p_.out_channels < 1 || p_.groups < 1) throw Error("channels and groups must be positive");
    if (p_.in_channels % p_.groups != 0)
        throw Error("in_channels " + std::to_string(p_.in_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups),
                    "groups");
    if (p_.out_channels % p_.groups != 0)
        throw Error("out_channels " + std::to_string(p_.out_channels) + " is not divisible by groups " +
                        std::to_string(p_.groups),
                    "groups");
    p_.window.ceil_mode = false;
    if (static_cast<int64_t>(weight.size()) != element_count(weight_shape(p_)))
        throw Error(std::to_string(weight.size()) + " values, shape " + to_string(weight_shape(p_)) + " needs " +
                        std::to_string(element_count(weight_shape(p_))),
                    "weight");
    if (!bias.empty() && static_cast<int64_t>(bias.size()) != p_.out_channels)
        throw Error(std::to_string(bias.size()) + " values, out_channels is " + std::to_string(p_.out_channels),
                    "bias");
    parameters_ = make_parameters(std::move(weight), std::move(bias), precision);
}

Conv2d::Conv2d(Params params, std::shared_ptr<const Parameters> parameters, Activation activation,
               std::optional<Algorithm> preferred)
    : p_(params), parameters_(std::move(parameters)), activation_(activation), preferred_(preferred) {}

std::shared_ptr<const Conv2d::Parameters> Conv2d::make_parameters(std::vector<float> weight, std::vector<float> bias,
                                                                  Precision precision) {
    auto parameters = std::make_shared<Parameters>();
    parameters->weight = std::move(weight);
    parameters->bias = std::move(bias);
    parameters->precision = precision;
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
    Precision precision = Precision::float32;
    auto weight = config.tensor("weight", weight_shape(p), true, &precision);
    auto bias = config.tensor("bias", {p.out_channels}, false);
    return std::make_unique<Conv2d>(p, std::move(*weight), bias ? std::move(*bias) : std::vector<float>{}, precision);
}

Shape Conv2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input), "in_channels");
    if (input[0] != p_.in_channels)
        throw Error("is " + std::to_string(p_.in_channels) + " but the input has " + std::to_string(input[0]) +
                        (input[0] == 1 ? " channel" : " channels"),
                    "in_channels");
    return {p_.out_channels, p_.window.output_h(input[1]), p_.window.output_w(input[2])};
}

int64_t Conv2d::parameter_count() const { return static_cast<int64_t>(weight().size() + bias().size()); }

int64_t Conv2d::macs(const Shape& input) const {
    const Shape out = output_shape(input);
    return out[0] * out[1] * out[2] * (p_.in_channels / p_.groups) * p_.window.kernel_h * p_.window.kernel_w;
}

const char* Conv2d::name(Algorithm algorithm) { return conv_kernel_name(algorithm); }

Layer::Blocking Conv2d::blocking(const Shape& input) const {
    output_shape(input);  // checks the input
    // In bfloat16 the blocked kernel does twice float32's multiply-adds a cycle, and beats Winograd
    // on the layers where float32 does not (M3's 3x3 layers: 377 against 230-320 effective GFLOP/s).
    const bool blocked = blocked_in_bfloat16() ? conv_runs_blocked(p_, preferred_)
                                               : conv_runs_blocked(p_, input[1], input[2], preferred_);
    return blocked ? Blocking::leads : Blocking::never;
}

Conv2d::Algorithm Conv2d::algorithm(const Shape& input, int64_t batch) const {
    output_shape(input);  // checks the input
    return plain_conv_kernel(p_, input[1], input[2], batch, preferred_);
}

int64_t Conv2d::workspace_elements(const Shape& input) const {
    output_shape(input);
    const int64_t scratch = conv_workspace(p_, input[1], input[2], preferred_);
    if (!blocked_in_bfloat16() || !runs_blocked(input)) return scratch;
    return std::max(scratch, conv2d_blocked_bf16_workspace(p_, input[1], input[2]));
}

int64_t Conv2d::prepared_elements(const Shape& input) const {
    output_shape(input);
    if (blocked_in_bfloat16() && runs_blocked(input)) return (conv2d_blocked_packed_size(p_) + 1) / 2;
    return conv_prepared(p_, input[1], input[2], preferred_);
}

void Conv2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(output)) return forward_blocked(input, nullptr, activation_, output, pool);
    const Epilogue epilogue = this->epilogue(activation_);
    switch (algorithm({input.shape[1], input.shape[2], input.shape[3]}, input.shape[0])) {
        case Algorithm::winograd:
            return conv2d_winograd(p_, winograd_weights(), weight().data(), epilogue, input, output, pool);
        case Algorithm::direct:
            return conv2d_direct(p_, weight().data(), direct_weights(), epilogue, input, output, pool);
        case Algorithm::depthwise: return conv2d_depthwise(p_, weight().data(), epilogue, input, output, pool);
        case Algorithm::blocked:  // algorithm() chooses among the plain kernels only
        case Algorithm::gemm: return conv2d_gemm(p_, weight().data(), epilogue, input, output, pool);
    }
}

void Conv2d::forward_blocked(const Tensor& input, const float* residual, const Activation& activation, Tensor& output,
                             ThreadPool& pool) const {
    Epilogue epilogue = this->epilogue(activation);
    epilogue.residual = residual;
    if (blocked_in_bfloat16() && is_blocked(input))
        return conv2d_blocked_bf16(p_, blocked_bf16_weights(), epilogue, input, output, pool);
    if (adds_residual()) return conv2d_blocked(p_, blocked_weights(), epilogue, input, output, pool);
    if (residual) throw std::logic_error("Conv2d::forward_blocked: the depthwise kernel adds no residual");
    depthwise_blocked(p_, blocked_weights(), epilogue, input, output, pool);
}

bool Conv2d::adds_residual() const { return !depthwise_blocked_applies(p_); }

const char* Conv2d::blocked_kernel() const {
    return depthwise_blocked_applies(p_) ? "blocked-dw" : blocked_in_bfloat16() ? "blocked-bf16" : "blocked";
}

bool Conv2d::blocked_in_bfloat16() const {
    return precision() == Precision::bfloat16 && !depthwise_blocked_applies(p_) &&
           p_.in_channels >= kPlainInputChannels;
}

const uint16_t* Conv2d::blocked_bf16_weights() const {
    std::call_once(parameters_->blocked_bf16_once,
                   [&] { parameters_->blocked_bf16 = conv2d_blocked_pack_bf16(p_, parameters_->weight.data()); });
    return parameters_->blocked_bf16.data();
}

const float* Conv2d::blocked_weights() const {
    std::call_once(parameters_->blocked_once, [&] {
        parameters_->blocked = depthwise_blocked_applies(p_) ? depthwise_blocked_pack(p_, parameters_->weight.data())
                                                             : conv2d_blocked_pack(p_, parameters_->weight.data());
    });
    return parameters_->blocked.data();
}

const float* Conv2d::winograd_weights() const {
    if (!winograd_keeps_filters(p_)) return nullptr;
    std::call_once(parameters_->winograd_once, [&] {
        parameters_->winograd = winograd_filter(parameters_->weight.data(), p_.out_channels, p_.in_channels);
    });
    return parameters_->winograd.data();
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
    if (const auto* conv = dynamic_cast<const Conv2d*>(&next)) return ConvChain::start(*this, *conv);
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
            for (size_t i = oc * per_channel; i < (oc + 1) * per_channel; ++i) w[i] = static_cast<float>(w[i] * scale);
            b[oc] = static_cast<float>((bias().empty() ? 0.0 : bias()[oc]) * scale + bn->shift()[oc]);
        }
        return std::unique_ptr<Layer>(
            new Conv2d(p_, make_parameters(std::move(w), std::move(b), precision()), Activation{}, preferred_));
    }
    return nullptr;
}

}  // namespace gapnet
