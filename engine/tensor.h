// A dense float32 tensor in row-major order: activations are N x C x H x W (or N x F for vectors).
#pragma once

#include <vector>

#include "shape.h"

namespace gapnet {

struct Tensor {
    Shape shape;
    std::vector<float> data;

    Tensor() = default;
    explicit Tensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape))) {}
    Tensor(Shape s, std::vector<float> values);  // throws gapnet::Error if the sizes differ

    int64_t size() const { return static_cast<int64_t>(data.size()); }
    float* ptr() { return data.data(); }
    const float* ptr() const { return data.data(); }
};

}  // namespace gapnet
