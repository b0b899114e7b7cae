#include "global_avg_pool2d.h"

#include <cstring>

#include "../error.h"
#include "../kernels/blocked.h"
#include "../kernels/parallel.h"
#include "../kernels/pooling_blocked.h"

namespace gapnet {

Shape GlobalAvgPool2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input));
    return {input[0]};
}

namespace {

// The sum of n floats in double (a large map, e.g. 224 x 224, must not lose its small values), in
// 8 double lanes: value i goes to lane i % 8, the lanes are added in order at the end (a fixed order,
// so the result does not depend on the thread count; one running sum would be a chain of dependent
// additions, 4x slower).
double sum_of(const float* values, int64_t n) {
    using Float8 = float __attribute__((vector_size(32)));
    using Double8 = double __attribute__((vector_size(64)));
    Double8 lanes{};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        Float8 v;
        std::memcpy(&v, values + i, sizeof v);
        lanes += __builtin_convertvector(v, Double8);
    }
    for (int64_t k = 0; i < n; ++i, ++k) lanes[k] += values[i];
    double sum = 0.0;
    for (int k = 0; k < 8; ++k) sum += lanes[k];
    return sum;
}

}  // namespace

// Planes are spread over the threads, one chunk each.
void GlobalAvgPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(input)) return global_avg_pool_blocked(input, output, pool);
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t plane = input.shape[2] * input.shape[3];
    run_chunks(pool, planes, planes * plane, [&](int64_t p) {
        output.data[p] = static_cast<float>(sum_of(input.ptr() + p * plane, plane) / static_cast<double>(plane));
    });
}

}  // namespace gapnet
