#include "global_max_pool2d.h"

#include <algorithm>

#include "../error.h"

namespace gapnet {

Shape GlobalMaxPool2d::output_shape(const Shape& input) const {
    if (input.size() != 3) throw Error("needs a C x H x W input, got " + to_string(input));
    return {input[0]};
}

void GlobalMaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& /*pool*/) const {
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t plane = input.shape[2] * input.shape[3];
    for (int64_t p = 0; p < planes; ++p) {
        const float* in = input.ptr() + p * plane;
        output.data[p] = *std::max_element(in, in + plane);
    }
}

}  // namespace gapnet
