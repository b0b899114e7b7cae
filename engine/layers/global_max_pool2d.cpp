#include "global_max_pool2d.h"

#include <algorithm>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/pooling_blocked.h"

namespace gapnet {

Shape GlobalMaxPool2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input));
    return {input[0]};
}

// Planes are spread over the threads, one chunk each.
void GlobalMaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(input)) return global_max_pool_blocked(input, output, pool);
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t plane = input.shape[2] * input.shape[3];
    run_chunks(pool, planes, planes * plane, [&](int64_t p) {
        const float* in = input.ptr() + p * plane;
        output.data[p] = *std::max_element(in, in + plane);
    });
}

}  // namespace gapnet
