#include "softmax.h"

#include <algorithm>
#include <cmath>

#include "../error.h"
#include "../kernels/parallel.h"

namespace gapnet {

Shape Softmax::output_shape(const Shape& input) const {
    if (input.size() != 1)
        throw Error("needs a vector input, got " + to_string(input) + " (put a flatten or a global pool before it)");
    return input;
}

// Samples are spread over the threads, one chunk each (only a large batch of wide vectors is
// worth it).
void Softmax::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const int64_t batch = input.shape[0], features = input.shape[1];
    run_chunks(pool, batch, 10 * batch * features, [&](int64_t n) {
        const float* x = input.ptr() + n * features;
        float* y = output.ptr() + n * features;
        const float max = *std::max_element(x, x + features);
        double sum = 0.0;
        for (int64_t i = 0; i < features; ++i) sum += (y[i] = std::exp(x[i] - max));
        for (int64_t i = 0; i < features; ++i) y[i] = static_cast<float>(y[i] / sum);
    });
}

}  // namespace gapnet
