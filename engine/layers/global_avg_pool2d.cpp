#include "global_avg_pool2d.h"

#include "../error.h"
#include "../kernels/parallel.h"

namespace gapnet {

Shape GlobalAvgPool2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input));
    return {input[0]};
}

// Planes are spread over the threads, one chunk each.
void GlobalAvgPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t plane = input.shape[2] * input.shape[3];
    run_chunks(pool, planes, planes * plane, [&](int64_t p) {
        const float* in = input.ptr() + p * plane;
        double sum = 0.0;  // double: a large map (e.g. 224 x 224) must not lose its small values
        for (int64_t i = 0; i < plane; ++i) sum += in[i];
        output.data[p] = static_cast<float>(sum / static_cast<double>(plane));
    });
}

}  // namespace gapnet
