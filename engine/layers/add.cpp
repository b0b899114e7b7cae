#include "add.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "activation.h"
#include "conv2d.h"

namespace gapnet {

Shape Add::output_shape(const Shapes& inputs) const {
    for (size_t i = 1; i < inputs.size(); ++i)
        if (inputs[i] != inputs[0])
            throw Error("shape " + to_string(inputs[i]) + " differs from inputs[0]'s " + to_string(inputs[0]) +
                            " (add needs inputs of one shape)",
                        "inputs[" + std::to_string(i) + "]");
    return inputs.at(0);
}

void Add::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    run_blocks(pool, output.size(), static_cast<int64_t>(inputs.size()), [&](int64_t begin, int64_t end) {
        float* y = output.ptr();
        const float* x0 = inputs[0]->ptr();
        std::copy(x0 + begin, x0 + end, y + begin);
        for (size_t k = 1; k < inputs.size(); ++k) {
            const float* x = inputs[k]->ptr();
            for (int64_t i = begin; i < end; ++i) y[i] += x[i];
        }
    });
}

void FusedAdd::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    // Blocked, a conv2d (Conv2d::fused_with makes this layer) adds the residual in its kernel's
    // epilogue where it can; otherwise the sum is a second pass, on either layout (element-wise).
    if (const auto* conv = dynamic_cast<const Conv2d*>(&producer_); conv && is_blocked(output) && conv->adds_residual())
        return conv->forward_blocked(*inputs.at(0), inputs.at(1)->ptr(), activation_, output, pool);
    producer_.forward(*inputs.at(0), output, pool);
    const float* residual = inputs.at(1)->ptr();
    run_blocks(pool, output.size(), 2, [&](int64_t begin, int64_t end) {
        float* y = output.ptr();
        int64_t i = begin;  // a vector at a time (the activation's kind tested once per 16 values)
        for (; i + kVec16Lanes <= end; i += kVec16Lanes)
            store16(y + i, activation_(load16(y + i) + load16(residual + i)));
        for (; i < end; ++i) y[i] = activation_(y[i] + residual[i]);
    });
}

std::unique_ptr<Layer> FusedAdd::fused_with(const Layer& next, int, int) const {
    const auto* act = dynamic_cast<const ActivationLayer*>(&next);
    if (!act || !activation_.is_identity()) return nullptr;
    return std::make_unique<FusedAdd>(producer_, act->activation());
}

}  // namespace gapnet
