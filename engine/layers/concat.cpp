#include "concat.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"

namespace gapnet {

Shape Concat::output_shape(const Shapes& inputs) const {
    Shape out = inputs.at(0);
    for (size_t i = 1; i < inputs.size(); ++i) {
        const Shape& in = inputs[i];
        if (in.size() != out.size() || !std::equal(in.begin() + 1, in.end(), out.begin() + 1))
            throw Error("shape " + to_string(in) + " does not fit inputs[0]'s " + to_string(inputs[0]) +
                            (out.size() == 3 ? " (concat joins feature maps of one height and width along channels)"
                                             : " (concat joins vectors, or feature maps along channels)"),
                        "inputs[" + std::to_string(i) + "]");
        out[0] += in[0];
    }
    return out;
}

Layer::Blocking Concat::blocking(const Shapes& inputs) const {
    if (inputs.at(0).size() != 3) return Blocking::never;
    for (size_t k = 0; k + 1 < inputs.size(); ++k)
        if (inputs[k][0] % kBlock != 0) return Blocking::never;
    return Blocking::follows;
}

// A chunk per sample and input: each copies its input's values to their place in the sample's output.
void Concat::forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const {
    const int64_t batch = output.shape[0], count = static_cast<int64_t>(inputs.size());
    const int64_t out_sample = output.size() / batch;
    std::vector<int64_t> offset(inputs.size() + 1, 0);  // where input k starts in a sample
    for (size_t k = 0; k < inputs.size(); ++k) offset[k + 1] = offset[k] + inputs[k]->size() / batch;
    run_chunks(pool, batch * count, output.size(), [&](int64_t chunk) {
        const int64_t n = chunk / count, k = chunk % count, size = offset[k + 1] - offset[k];
        const float* x = inputs[k]->ptr() + n * size;
        std::copy(x, x + size, output.ptr() + n * out_sample + offset[k]);
    });
}

}  // namespace gapnet
