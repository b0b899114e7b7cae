#include "conv_chain.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/conv2d_blocked.h"
#include "../kernels/conv2d_choice.h"
#include "../kernels/depthwise_blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/scratch.h"
#include "activation.h"
#include "add.h"

namespace gapnet {

namespace {

// A band's expanded rows (E channels x rows x W) fit this many bytes at most, so that they, the
// band's depthwise rows and the 1x1 weights stay in a core's L2 (1 MB here) between the band's
// three steps.
constexpr int64_t kBandBytes = int64_t{384} << 10;

bool is_pointwise(const ConvParams& p) {
    const Window2d& w = p.window;
    return p.groups == 1 && w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 &&
           w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0;
}

// A convolution that runs blocked on a blocked input.
bool chains(const Conv2d& conv) {
    // The chain's 1x1 stages compute in float32: a layer computing in bfloat16 runs on its own.
    return conv_runs_blocked(conv.params(), conv.preferred()) &&
           conv.params().in_channels >= Conv2d::kPlainInputChannels && !conv.blocked_in_bfloat16();
}

// Input rows [first, last) that output rows [y0, y1) of a window read, clipped to the map's rows.
std::pair<int64_t, int64_t> rows_read(const Window2d& w, int64_t y0, int64_t y1, int64_t in_h) {
    const int64_t first = y0 * w.stride_h - w.pad_top;
    const int64_t last = (y1 - 1) * w.stride_h - w.pad_top + (w.kernel_h - 1) * w.dilation_h + 1;
    return {std::clamp<int64_t>(first, 0, in_h), std::clamp<int64_t>(last, 0, in_h)};
}

}  // namespace

std::unique_ptr<Layer> ConvChain::start(const Conv2d& first, const Conv2d& next) {
    if (!chains(first) || !chains(next)) return nullptr;
    const bool first_dw = !first.adds_residual(), next_dw = !next.adds_residual();
    if (!first_dw && is_pointwise(first.params()) && next_dw)  // expand -> depthwise
        return std::unique_ptr<Layer>(new ConvChain(first, next, std::nullopt, false, Activation{}));
    if (first_dw && !next_dw && is_pointwise(next.params()))  // depthwise -> project
        return std::unique_ptr<Layer>(new ConvChain(std::nullopt, first, next, false, Activation{}));
    return nullptr;
}

ConvChain::ConvChain(std::optional<Conv2d> expand, Conv2d depthwise, std::optional<Conv2d> project, bool residual,
                     Activation output_activation)
    : expand_(std::move(expand)),
      depthwise_(std::move(depthwise)),
      project_(std::move(project)),
      residual_(residual),
      output_activation_(output_activation) {}

std::vector<std::pair<const Conv2d*, Shape>> ConvChain::stages(Shape input) const {
    std::vector<std::pair<const Conv2d*, Shape>> stages;
    for (const Conv2d* conv : {expand(), &depthwise_, project()})
        if (conv) {
            stages.emplace_back(conv, input);
            input = conv->output_shape(input);
        }
    return stages;
}

Shape ConvChain::output_shape(const Shapes& inputs) const {
    const auto [conv, input] = stages(inputs.at(0)).back();
    const Shape shape = conv->output_shape(input);
    if (residual_ && inputs.at(1) != shape) throw Error("does not match " + to_string(shape), "inputs[1]");
    return shape;
}

int64_t ConvChain::parameter_count() const {
    return (expand_ ? expand_->parameter_count() : 0) + depthwise_.parameter_count() +
           (project_ ? project_->parameter_count() : 0);
}

int64_t ConvChain::macs(const Shapes& inputs) const {
    int64_t macs = 0;
    for (const auto& [conv, input] : stages(inputs.at(0))) macs += conv->macs(input);
    return macs;
}

int64_t ConvChain::work(const Shapes& inputs) const {
    int64_t work = 0;
    for (const auto& [conv, input] : stages(inputs.at(0))) work += conv->work(input);
    return work;
}

int64_t ConvChain::band_rows(int64_t in_w) const {
    const Window2d& w = depthwise_.params().window;
    const int64_t row_bytes = channel_blocks(depthwise_.params().in_channels) * kBlock * in_w * 4;
    const int64_t rows = kBandBytes / row_bytes;  // expanded rows that fit
    const int64_t reach = (w.kernel_h - 1) * w.dilation_h + 1;
    return std::max<int64_t>(1, (rows - reach) / w.stride_h + 1);
}

int64_t ConvChain::expanded_rows(int64_t band) const {
    const Window2d& w = depthwise_.params().window;
    return (band - 1) * w.stride_h + (w.kernel_h - 1) * w.dilation_h + 1;
}

int64_t ConvChain::workspace_elements(const Shapes& inputs) const {
    const Shape& in = inputs.at(0);
    const int64_t channels = channel_blocks(depthwise_.params().in_channels) * kBlock;
    const int64_t band = band_rows(in[2]), out_w = depthwise_.params().window.output_w(in[2]);
    return (expand_ ? channels * expanded_rows(band) * in[2] : 0) + (project_ ? channels * band * out_w : 0);
}

int64_t ConvChain::prepared_elements(const Shapes& inputs) const {
    int64_t prepared = 0;
    for (const auto& [conv, input] : stages(inputs.at(0))) prepared += conv->prepared_elements(input);
    return prepared;
}

void ConvChain::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    const Tensor* residual = residual_ ? inputs.at(1) : nullptr;
    if (is_blocked(output)) return forward_blocked(*inputs.at(0), residual ? residual->ptr() : nullptr, output, pool);
    forward_plain(*inputs.at(0), residual, output, pool);
}

// Each (sample, span of output rows) is a chunk, run by one thread a band at a time with its own
// scratch: the expanded rows [a0, a1) the band's depthwise windows read, of which those the band
// before computed are moved to the front rather than computed again, then the band's depthwise
// rows, then their projection into the output.
void ConvChain::forward_blocked(const Tensor& input, const float* residual, Tensor& output, ThreadPool& pool) const {
    const ConvParams& dp = depthwise_.params();
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t out_h = output.shape[2], out_w = output.shape[3];
    const int64_t exp_blocks = channel_blocks(dp.in_channels);
    const int64_t in_plane = in_h * in_w * kBlock, out_plane = out_h * out_w * kBlock;
    const int64_t sample_in = input.shape[1] * in_plane, sample_out = output.shape[1] * out_plane;
    const int64_t band = band_rows(in_w);
    const int64_t a_plane = expanded_rows(band) * in_w * kBlock;  // a scratch plane of expanded rows
    const int64_t b_plane = band * out_w * kBlock;                // a scratch plane of depthwise rows
    // Spans of output rows: one a sample, or with fewer samples than threads as many as there are
    // threads. A span's first band computes expanded rows the span before also computes (its
    // halo), so spans are not cut finer than the threads need; the values do not depend on them.
    const int64_t spans = batch >= pool.size() ? 1 : std::min<int64_t>(pool.size(), out_h);
    const Epilogue expand_epilogue = expand_ ? expand_->epilogue(expand_->activation()) : Epilogue{};
    const Epilogue dw_epilogue = depthwise_.epilogue(depthwise_.activation());
    const Activation last_activation = residual_ ? output_activation_ : last().activation();
    const float* expand_weights = expand_ ? expand_->blocked_weights() : nullptr;
    const float* dw_weights = depthwise_.blocked_weights();
    const float* project_weights = project_ ? project_->blocked_weights() : nullptr;

    const int64_t in_channels = expand_ ? expand_->params().in_channels : dp.in_channels;
    run_chunks(pool, batch * spans, batch * macs(Shapes{{in_channels, in_h, in_w}}), [&](int64_t chunk) {
        thread_local std::vector<float> scratch_a, scratch_b;
        float* a = expand_ ? thread_scratch(scratch_a, exp_blocks * a_plane) : nullptr;
        float* b = project_ ? thread_scratch(scratch_b, exp_blocks * b_plane) : nullptr;
        const int64_t n = chunk / spans, span = chunk % spans;
        const float* x = input.ptr() + n * sample_in;
        float* y = output.ptr() + n * sample_out;
        const float* r = residual ? residual + n * sample_out : nullptr;
        int64_t have0 = 0, have1 = 0;  // the expanded rows in `a`: [have0, have1)
        const int64_t y_end = part_begin(out_h, spans, span + 1);
        for (int64_t y0 = part_begin(out_h, spans, span); y0 < y_end; y0 += band) {
            const int64_t y1 = std::min(y_end, y0 + band);
            const auto [a0, a1] = rows_read(dp.window, y0, y1, in_h);
            // The depthwise input: the expanded rows [a0, a1) in `a`, or the input itself.
            const float* dw_in = x;
            int64_t dw_step = in_plane, dw_row0 = 0;
            if (expand_) {
                const int64_t keep0 = std::max(a0, have0), keep1 = std::min(a1, have1);
                if (keep0 < keep1 && keep0 > have0)
                    for (int64_t c = 0; c < exp_blocks; ++c)
                        std::memmove(a + c * a_plane, a + c * a_plane + (keep0 - have0) * in_w * kBlock,
                                     static_cast<size_t>((keep1 - keep0) * in_w * kBlock) * sizeof(float));
                const int64_t from = keep0 < keep1 ? keep1 : a0;  // the first row to compute
                const int64_t at = from - a0;                     // its row in `a`
                if (from < a1)
                    pointwise_blocked_pixels(expand_->params(), expand_weights, expand_epilogue,
                                             x + from * in_w * kBlock, in_plane, (a1 - from) * in_w,
                                             a + at * in_w * kBlock, a_plane);
                have0 = a0, have1 = a1;
                dw_in = a, dw_step = a_plane, dw_row0 = a0;
            }
            if (project_) {
                depthwise_blocked_rows(dp, dw_weights, dw_epilogue, dw_in, dw_step, dw_row0, in_h, in_w, b, b_plane, y0,
                                       y0, y1);
                Epilogue e = project_->epilogue(last_activation);
                e.residual = r ? r + y0 * out_w * kBlock : nullptr;
                pointwise_blocked_pixels(project_->params(), project_weights, e, b, b_plane, (y1 - y0) * out_w,
                                         y + y0 * out_w * kBlock, out_plane);
            } else {
                depthwise_blocked_rows(dp, dw_weights, dw_epilogue, dw_in, dw_step, dw_row0, in_h, in_w, y, out_plane,
                                       0, y0, y1);
            }
        }
    });
}

// The convolutions one after another on plain maps, as the layers would run unfused.
void ConvChain::forward_plain(const Tensor& input, const Tensor* residual, Tensor& output, ThreadPool& pool) const {
    auto run = [&](const Conv2d& conv, const Tensor& x) {
        const Shape s = conv.output_shape(Shape{x.shape[1], x.shape[2], x.shape[3]});
        Tensor y(Shape{x.shape[0], s[0], s[1], s[2]});
        conv.forward(x, y, pool);
        return y;
    };
    Tensor expanded = expand_ ? run(*expand_, input) : Tensor();
    const Tensor& dw_in = expand_ ? expanded : input;
    if (!project_ && !residual_) return depthwise_.forward(dw_in, output, pool);
    Tensor dw_out = run(depthwise_, dw_in);
    if (project_) project_->forward(dw_out, output, pool);
    if (residual_) {
        float* y = output.ptr();
        const float* r = residual->ptr();
        for (int64_t i = 0; i < output.size(); ++i) y[i] = output_activation_(y[i] + r[i]);
    }
}

std::unique_ptr<Layer> ConvChain::fused_with(const Layer& next, int, int next_inputs) const {
    auto with = [&](std::optional<Conv2d> expand, Conv2d depthwise, std::optional<Conv2d> project, bool residual,
                    Activation activation) {
        return std::unique_ptr<Layer>(
            new ConvChain(std::move(expand), std::move(depthwise), std::move(project), residual, activation));
    };
    if (residual_) {  // the add's activation
        const auto* act = dynamic_cast<const ActivationLayer*>(&next);
        if (!act || !output_activation_.is_identity()) return nullptr;
        return with(expand_, depthwise_, project_, true, act->activation());
    }
    if (dynamic_cast<const Add*>(&next)) {
        if (!project_ || next_inputs != 2 || !project_->activation().is_identity()) return nullptr;
        return with(expand_, depthwise_, project_, true, Activation{});
    }
    if (const auto* conv = dynamic_cast<const Conv2d*>(&next)) {
        if (project_ || !chains(*conv) || !conv->adds_residual() || !is_pointwise(conv->params())) return nullptr;
        return with(expand_, depthwise_, *conv, false, Activation{});
    }
    // A batch norm or an activation joins the last convolution (Conv2d::fused_with).
    const std::unique_ptr<Layer> fused = last().fused_with(next, 0, 1);
    const auto* conv = dynamic_cast<const Conv2d*>(fused.get());
    if (!conv) return nullptr;
    if (project_) return with(expand_, depthwise_, *conv, false, Activation{});
    return with(expand_, *conv, std::nullopt, false, Activation{});
}

}  // namespace gapnet
