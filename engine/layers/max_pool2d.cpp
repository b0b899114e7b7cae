#include "max_pool2d.h"

#include "../kernels/blocked.h"
#include "../kernels/max_pooling.h"
#include "../kernels/pooling_blocked.h"

namespace gapnet {

MaxPool2d::MaxPool2d(Window2d window) : w_(window) { w_.check_pads_smaller_than_kernel(); }

std::unique_ptr<Layer> MaxPool2d::create(LayerConfig& config) {
    return std::make_unique<MaxPool2d>(read_pooling_window(config));
}

int64_t MaxPool2d::workspace_elements(const Shape& input) const {
    return max_pooling_workspace(w_, input[1], input[2]);
}

void MaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    if (is_blocked(output)) return max_pool_blocked(w_, input, output, pool);
    max_pooling(w_, input, output, pool);
}

}  // namespace gapnet
