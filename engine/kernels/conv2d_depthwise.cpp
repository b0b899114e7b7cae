#include "conv2d_depthwise.h"

#include <algorithm>
#include <vector>

#include "parallel.h"
#include "scratch.h"
#include "vec16.h"
#include "window_phases.h"

namespace gapnet {

namespace {

// Chunks of whole channels with at least this many outputs, so that small maps (7 x 7) do not pay
// a chunk's overhead per channel.
constexpr int64_t kChunkOutputs = 4096;

// One output channel's wide outputs from its input channel's phases: each vector accumulates every
// tap in a register (bias first, then the taps in order), gets the activation and is stored once.
// Taps > 0: the kernel's kh * kw, known at compile time (unrolled).
template <int Taps>
void wide_channel(const WindowPhases& layout, const float* phases, int64_t taps, const float* kernel, float bias,
                  const Activation& activation, float* target) {
    if constexpr (Taps > 0) taps = Taps;
    const int64_t* offsets = layout.tap_offsets().data();
    for (int64_t j = 0; j < layout.wide_count(); j += kVec16Lanes) {
        Vec16 acc = broadcast16(bias);
        for (int64_t t = 0; t < taps; ++t) acc = fma16(broadcast16(kernel[t]), load16(phases + offsets[t] + j), acc);
        layout.store(target, j, activation(acc));
    }
}

}  // namespace

bool depthwise_applies(const ConvParams& p) { return p.groups > 1 && p.groups == p.in_channels; }

int64_t conv2d_depthwise_workspace(const ConvParams& p, int64_t in_h, int64_t in_w) {
    const Window2d& w = p.window;
    const WindowPhases phases(w, in_h, in_w, w.output_h(in_h), w.output_w(in_w));
    return phases.phase_floats() + phases.wide_floats();
}

void conv2d_depthwise(const ConvParams& p, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                      ThreadPool& pool) {
    const Window2d& w = p.window;
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_h = output.shape[2], out_w = output.shape[3];
    const int64_t planes = input.shape[0] * p.in_channels;  // (sample, input channel)
    const int64_t multiplier = p.out_channels / p.in_channels, taps = w.kernel_h * w.kernel_w;
    const WindowPhases layout(w, in_h, in_w, out_h, out_w);
    const auto wide_kernel = taps == 9 ? wide_channel<9> : taps == 25 ? wide_channel<25> : wide_channel<0>;
    const int64_t per_chunk = std::max<int64_t>(1, kChunkOutputs / (multiplier * out_h * out_w));

    run_chunks(
        pool, (planes + per_chunk - 1) / per_chunk, planes * multiplier * taps * out_h * out_w, [&](int64_t chunk) {
            thread_local std::vector<float> scratch;
            float* phases = thread_scratch(scratch, layout.phase_floats() + layout.wide_floats());
            float* wide = phases + layout.phase_floats();
            for (int64_t plane = chunk * per_chunk; plane < std::min(planes, (chunk + 1) * per_chunk); ++plane) {
                layout.fill(input.ptr() + plane * in_h * in_w, 0.0f, phases);
                for (int64_t m = 0; m < multiplier; ++m) {
                    const int64_t oc = plane % p.in_channels * multiplier + m;
                    float* out = output.ptr() + (plane * multiplier + m) * out_h * out_w;
                    wide_kernel(layout, phases, taps, weight + oc * taps, epilogue.bias ? epilogue.bias[oc] : 0.0f,
                                epilogue.activation, layout.wide_target(wide, out));
                    layout.unwiden(wide, out);
                }
            }
        });
}

}  // namespace gapnet
