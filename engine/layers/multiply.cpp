#include "multiply.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/parallel.h"

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

// A chunk per (sample, channel) plane of the output: out = x0 * x1 * ..., a broadcast vector giving
// one value for the whole plane.
void Multiply::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
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

}  // namespace gapnet
