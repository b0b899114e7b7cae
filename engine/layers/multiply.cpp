#include "multiply.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/vec16.h"

namespace gapnet {

Shape Multiply::output_shape(const Shapes& inputs) const {
    // The output is the largest input (a feature map, if any); every input is it or its channels' vector.
    const Shape out = *std::max_element(inputs.begin(), inputs.end(),
                                        [](const Shape& a, const Shape& b) { return a.size() < b.size(); });
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Shape& in = inputs[i];
        if (in != out && !(in.size() == 1 && out.size() == 3 && in[0] == out[0]))
            throw Error("shape " + to_string(in) + " fits neither the output " + to_string(out) + " nor its channels" +
                            (out.size() == 3 ? " [" + std::to_string(out[0]) + "]" : "") +
                            " (multiply needs equal shapes, or a per-channel vector and a feature map)",
                        "inputs[" + std::to_string(i) + "]");
    }
    return out;
}

Layer::Blocking Multiply::blocking(const Shapes& inputs) const {
    return output_shape(inputs).size() == 3 ? Blocking::follows : Blocking::never;
}

// A chunk per (sample, channel) plane of the output: out = x0 * x1 * ..., a broadcast vector giving
// one value for the whole plane.
void Multiply::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(output)) return forward_blocked(inputs, output, pool);
    const int64_t batch = output.shape[0], channels = output.shape[1];
    const int64_t plane = output.size() / (batch * channels);  // 1 for vectors
    run_chunks(pool, batch * channels, output.size() * static_cast<int64_t>(inputs.size()), [&](int64_t chunk) {
        float* y = output.ptr() + chunk * plane;
        for (size_t k = 0; k < inputs.size(); ++k) {
            const Tensor& x = *inputs[k];
            const bool broadcast = x.size() != output.size();
            const float* v = x.ptr() + (broadcast ? chunk : chunk * plane);
            for (int64_t i = 0; i < plane; ++i) {
                const float value = v[broadcast ? 0 : i];
                y[i] = k == 0 ? value : y[i] * value;
            }
        }
    });
}

// Blocked: a chunk per (sample, block); a per-channel vector [N, C] (plain) gives a vector of 16
// channels for the whole block, zeros past its last channel.
void Multiply::forward_blocked(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    const int64_t batch = output.shape[0], blocks = output.shape[1];
    const int64_t plane = output.shape[2] * output.shape[3];
    run_chunks(pool, batch * blocks, output.size() * static_cast<int64_t>(inputs.size()), [&](int64_t chunk) {
        float* y = output.ptr() + chunk * plane * kBlock;
        for (size_t k = 0; k < inputs.size(); ++k) {
            const Tensor& x = *inputs[k];
            if (is_blocked(x)) {
                const float* v = x.ptr() + chunk * plane * kBlock;
                for (int64_t i = 0; i < plane * kBlock; i += kBlock)
                    store16(y + i, k == 0 ? load16(v + i) : load16(y + i) * load16(v + i));
            } else {
                const int64_t channels = x.shape[1], c0 = chunk % blocks * kBlock;
                const Vec16 g = load_under16(x.ptr() + chunk / blocks * channels + c0, std::min(kBlock, channels - c0));
                for (int64_t i = 0; i < plane * kBlock; i += kBlock) store16(y + i, k == 0 ? g : load16(y + i) * g);
            }
        }
    });
}

}  // namespace gapnet
