#include "tensor.h"

#include "error.h"

namespace gapnet {

Tensor::Tensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape))) {}

Tensor::Tensor(Shape s, std::vector<float> values) : shape(std::move(s)), data(std::move(values)) {
    if (element_count(shape) != size())
        throw Error(std::to_string(size()) + " values do not fill shape " + to_string(shape));
}

}  // namespace gapnet
